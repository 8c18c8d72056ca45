//! The in-memory key index: for every key, the revisions at which it changed.
//!
//! This plays the part of etcd's `treeIndex`. etcd groups a key's revisions into
//! generations (create .. tombstone); here a key's history is one flat list of entries in
//! revision order, each flagged put or tombstone, which answers the same questions: the key's
//! state at revision R is the last entry at or below R (absent if that is a tombstone), and
//! the record stored under that entry's revision holds its value, create revision, version
//! and lease.

use std::collections::BTreeMap;
use std::collections::HashSet;

use bytes::Bytes;

use crate::node::mvcc::span::KeySpan;

/// A position in the store's history: the `main` revision of a write transaction and the
/// `sub` revision of one change inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub rev: Revision,
    pub tombstone: bool,
}

/// The last entry of a history at or below main revision `at`.
pub fn latest_at(history: &[IndexEntry], at: i64) -> Option<IndexEntry> {
    let after = history.partition_point(|e| e.rev.main <= at);
    after.checked_sub(1).map(|i| history[i])
}

/// The revision holding the key's value at `at`, if the key exists then.
pub fn live_at(history: &[IndexEntry], at: i64) -> Option<Revision> {
    latest_at(history, at).filter(|e| !e.tombstone).map(|e| e.rev)
}

/// How many leading entries a compaction at `at` removes from a history.
///
/// etcd keeps, of the revisions at or below the compaction point, only the last one, and only
/// if it is not a tombstone: that is what a read at exactly `at` still needs. Everything above
/// `at` stays.
pub fn compaction_cut(history: &[IndexEntry], at: i64) -> usize {
    let at_or_below = history.partition_point(|e| e.rev.main <= at);
    match at_or_below.checked_sub(1).map(|i| history[i]) {
        None => 0,
        Some(last) if last.tombstone => at_or_below,
        Some(_) => at_or_below - 1,
    }
}

#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    keys: BTreeMap<Bytes, Vec<IndexEntry>>,
    /// Entries in all histories: the revision records the store holds.
    records: usize,
}

impl KeyIndex {
    /// Appends a change; changes arrive in revision order.
    pub fn push(&mut self, key: Bytes, entry: IndexEntry) {
        self.keys.entry(key).or_default().push(entry);
        self.records += 1;
    }

    /// Undoes the last `push` for `key` (a command that failed half-way).
    pub fn pop(&mut self, key: &[u8]) {
        if let Some(history) = self.keys.get_mut(key) {
            if history.pop().is_some() {
                self.records -= 1;
            }
            if history.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    pub fn history(&self, key: &[u8]) -> &[IndexEntry] {
        self.keys.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every key in the span with its history, in key order.
    pub fn histories<'s>(&'s self, span: KeySpan<'_>) -> Box<dyn Iterator<Item = (&'s Bytes, &'s [IndexEntry])> + 's> {
        match span.bounds() {
            None => Box::new(std::iter::empty()),
            Some(bounds) => Box::new(self.keys.range::<[u8], _>(bounds).map(|(k, h)| (k, h.as_slice()))),
        }
    }

    /// The keys existing at revision `at` within the span, in key order, with the revision
    /// holding each one's value.
    pub fn live(&self, span: KeySpan<'_>, at: i64) -> Vec<(Bytes, Revision)> {
        self.histories(span).filter_map(|(key, history)| live_at(history, at).map(|rev| (key.clone(), rev))).collect()
    }

    /// Removes the history a compaction at `at` discards and returns the revisions whose
    /// records must go too.
    pub fn compact(&mut self, at: i64) -> Vec<Revision> {
        let mut dropped = Vec::new();
        self.keys.retain(|_, history| {
            let cut = compaction_cut(history, at);
            dropped.extend(history.drain(..cut).map(|e| e.rev));
            !history.is_empty()
        });
        self.records -= dropped.len();
        dropped.sort_unstable();
        dropped
    }

    /// The revisions holding each key's value at `at` (etcd's `Keep`): of the history at or
    /// below a compaction point, the part a hash at `at` covers.
    pub fn live_revisions_at(&self, at: i64) -> HashSet<Revision> {
        self.keys.values().filter_map(|history| live_at(history, at)).collect()
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The revision records the histories hold, as many as a snapshot writes out.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// Every key with its history, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &[IndexEntry])> {
        self.keys.iter().map(|(k, h)| (k, h.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64) -> IndexEntry {
        IndexEntry { rev: Revision::new(main, 0), tombstone: false }
    }
    fn tomb(main: i64) -> IndexEntry {
        IndexEntry { rev: Revision::new(main, 0), tombstone: true }
    }

    #[test]
    fn state_at_a_revision() {
        let h = [put(2), put(4), tomb(6), put(9)];
        assert_eq!(live_at(&h, 1), None);
        assert_eq!(live_at(&h, 3), Some(Revision::new(2, 0)));
        assert_eq!(live_at(&h, 5), Some(Revision::new(4, 0)));
        assert_eq!(live_at(&h, 7), None);
        assert_eq!(live_at(&h, 100), Some(Revision::new(9, 0)));
    }

    #[test]
    fn compaction_keeps_what_a_read_at_the_compaction_point_needs() {
        let h = [put(2), put(4), tomb(6), put(9)];
        assert_eq!(compaction_cut(&h, 1), 0);
        // the put at 4 is still the value at 5
        assert_eq!(compaction_cut(&h, 5), 1);
        // the key is deleted at 6: nothing at or below 6 survives
        assert_eq!(compaction_cut(&h, 6), 3);
        assert_eq!(compaction_cut(&h, 8), 3);
        assert_eq!(compaction_cut(&h, 9), 3);
        assert_eq!(compaction_cut(&h, 10), 3);

        let mut index = KeyIndex::default();
        for e in [put(2), tomb(3)] {
            index.push(Bytes::from_static(b"gone"), e);
        }
        index.push(Bytes::from_static(b"kept"), put(4));
        let dropped = index.compact(4);
        assert_eq!(dropped, vec![Revision::new(2, 0), Revision::new(3, 0)]);
        assert_eq!(index.key_count(), 1);
        assert_eq!(index.history(b"kept"), &[put(4)]);
    }

    #[test]
    fn records_are_counted_through_pushes_undos_and_compactions() {
        let mut index = KeyIndex::default();
        for main in 2..=5 {
            index.push(Bytes::from_static(b"a"), put(main));
        }
        index.push(Bytes::from_static(b"b"), put(6));
        assert_eq!(index.record_count(), 5);
        index.pop(b"b");
        index.pop(b"b");
        assert_eq!(index.record_count(), 4, "an undo of a key with no history changes nothing");
        index.compact(4);
        assert_eq!(index.record_count(), 2, "the puts at 4 and 5 stay");
    }
}
