//! Splitting one large watch response into fragments, for watchers that asked for it.
//!
//! A revision can hold more than a client accepts in one message (a delete of many large
//! keys, with their previous values). With `fragment` set, etcd sends such a response as
//! several, each below the request size limit and each with at least one event, all but the
//! last marked `fragment`; the client joins them back before handing them on.

use prost::Message;

use crate::proto::etcdserverpb::WatchResponse;

/// Fragments of `response` of fewer than `limit` bytes each (a single event larger than the
/// limit travels alone); the response itself when it is already small enough or has fewer
/// than two events.
pub fn split_fragments(mut response: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    if response.events.len() < 2 || response.encoded_len() < limit {
        return vec![response];
    }
    let events = std::mem::take(&mut response.events);
    let mut template = response;
    template.fragment = true;
    let base = template.encoded_len();

    let mut fragments: Vec<WatchResponse> = Vec::new();
    let mut current = template.clone();
    let mut size = base;
    for event in events {
        let added = prost::encoding::message::encoded_len(11, &event);
        if !current.events.is_empty() && size + added >= limit {
            fragments.push(std::mem::replace(&mut current, template.clone()));
            size = base;
        }
        size += added;
        current.events.push(event);
    }
    current.fragment = false;
    fragments.push(current);
    fragments
}
