//! One watch: which keys, which kinds of events, and how far it has been told.

use bytes::Bytes;
use prost::Message;

use crate::node::mvcc::KeySpan;
use crate::node::mvcc::RevisionEvents;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::mvccpb::Event;
use crate::proto::mvccpb::event::EventType;

/// etcd's error for a range whose end is not after its start.
pub const EMPTY_RANGE: &str = "mvcc: watcher range is empty";

#[derive(Debug, Clone, PartialEq)]
pub struct Watcher {
    pub id: i64,
    key: Bytes,
    range_end: Bytes,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    pub fragment: bool,
    pub progress_notify: bool,
    /// The first revision this watcher has not been told about.
    pub next_rev: i64,
    /// No events were sent since the last progress tick (etcd skips the notification
    /// otherwise: the events said as much).
    pub quiet: bool,
}

/// The events one response carries, and the revision its header names: every event of the
/// watcher up to that revision is in this response or an earlier one.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub through: i64,
    pub events: Vec<Event>,
}

impl Watcher {
    /// A watcher for `req` with id `id`, starting at `next_rev`; `Err` with etcd's reason
    /// when the range is empty.
    pub fn new(id: i64, req: &WatchCreateRequest, next_rev: i64) -> Result<Watcher, &'static str> {
        // etcd: the smallest key stands for an empty one
        let key = if req.key.is_empty() { Bytes::from_static(b"\0") } else { req.key.clone() };
        let range_end = req.range_end.clone();
        if !range_end.is_empty() && range_end.as_ref() != b"\0" && key >= range_end {
            return Err(EMPTY_RANGE);
        }
        let filters = || req.filters.iter().filter_map(|f| FilterType::try_from(*f).ok());
        Ok(Watcher {
            id,
            key,
            range_end,
            no_put: filters().any(|f| f == FilterType::Noput),
            no_delete: filters().any(|f| f == FilterType::Nodelete),
            prev_kv: req.prev_kv,
            fragment: req.fragment,
            progress_notify: req.progress_notify,
            next_rev,
            quiet: true,
        })
    }

    fn span(&self) -> KeySpan<'_> {
        KeySpan::new(&self.key, &self.range_end)
    }

    /// The events of `revision` this watcher wants, as it wants them.
    pub fn select(&self, revision: &RevisionEvents) -> Vec<Event> {
        let span = self.span();
        revision
            .events
            .iter()
            .filter(|e| e.kv.as_ref().is_some_and(|kv| span.contains(&kv.key)))
            .filter(|e| match EventType::try_from(e.r#type) {
                Ok(EventType::Put) => !self.no_put,
                Ok(EventType::Delete) => !self.no_delete,
                Err(_) => true,
            })
            .map(|e| {
                let mut e = e.clone();
                if !self.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect()
    }

    /// Takes the watcher's events from `revisions` (ascending; those it was already told
    /// about are skipped) and moves it past `through`, which must be at least the last of
    /// them. Responses are cut between revisions once they reach `soft_limit` bytes, never
    /// inside one: a revision is delivered whole.
    pub fn take<'r>(
        &mut self,
        revisions: impl IntoIterator<Item = &'r RevisionEvents>,
        through: i64,
        soft_limit: usize,
    ) -> Vec<Batch> {
        let mut batches = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut size = 0usize;
        let mut last = self.next_rev - 1;
        for revision in revisions {
            if revision.revision < self.next_rev || revision.revision > through {
                continue;
            }
            let selected = self.select(revision);
            if !selected.is_empty() {
                if size >= soft_limit && !events.is_empty() {
                    batches.push(Batch { through: last, events: std::mem::take(&mut events) });
                    size = 0;
                }
                size += selected.iter().map(Message::encoded_len).sum::<usize>();
                events.extend(selected);
            }
            last = revision.revision;
        }
        if !events.is_empty() {
            batches.push(Batch { through, events });
        }
        if through >= self.next_rev {
            self.next_rev = through + 1;
        }
        if !batches.is_empty() {
            self.quiet = false;
        }
        batches
    }
}
