//! What watchers are told: the events of every committed revision, as they happen and from
//! retained history.

use std::sync::Arc;

use crate::proto::mvccpb::Event;

/// All events of one revision, in sub-revision order. A PUT event's `kv` is the new
/// key-value; a DELETE event's `kv` holds the key and the deleting revision. `prev_kv` is
/// always filled when the key existed before the revision, so watchers that asked for it need
/// no extra read.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionEvents {
    pub revision: i64,
    pub events: Vec<Event>,
}

/// One message of the live feed ([`crate::node::mvcc::MvccStore::subscribe`]).
#[derive(Debug, Clone)]
pub enum WatchFeed {
    /// A revision was committed; published in revision order, after readers can see it.
    Revision(Arc<RevisionEvents>),
    /// The whole state was replaced by a Raft snapshot: watchers must re-read history from
    /// where they were (or learn that it was compacted away).
    Restored { revision: i64, compact_revision: i64 },
}
