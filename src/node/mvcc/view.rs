//! The two ways requests see the store, so Range, Txn and Compare are written once.
//!
//! A [`ReadView`] is a consistent picture of the store: the readers' view is the last
//! committed batch; the writer's view is the command being applied, including its own
//! earlier writes (etcd reads at revision + 1 inside a write transaction once it has changed
//! something). A [`TxnTarget`] can also write; only the writer really does.

use bytes::Bytes;

use crate::errors::EtcdError;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::error::StoreError;
use crate::node::mvcc::index::KeyIndex;
use crate::node::mvcc::index::Revision;
use crate::node::mvcc::index::live_at;
use crate::node::mvcc::record::record_kv;
use crate::node::mvcc::span::KeySpan;
use crate::proto::mvccpb::KeyValue;
use crate::proto::rafttystore::RevisionRecord;

pub(crate) trait ReadView {
    /// The revision a read without an explicit revision sees (etcd's `curRev`).
    fn read_revision(&self) -> i64;
    /// The store revision before the command being applied (the read revision for readers).
    fn begin_revision(&self) -> i64;
    fn compact_revision(&self) -> i64;
    fn index(&self) -> &KeyIndex;
    fn record(&self, rev: Revision) -> Result<RevisionRecord, StoreError>;
    fn lease_exists(&self, id: i64) -> bool;

    fn kv_at(&self, rev: Revision) -> Result<KeyValue, StoreError> {
        self.record(rev).map(record_kv)
    }

    /// The key's current value as this view reads it.
    fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        live_at(self.index().history(key), self.read_revision()).map(|rev| self.kv_at(rev)).transpose()
    }

    /// The keys of the span existing at `at`, with their values, in key order.
    fn live_kvs(&self, span: KeySpan<'_>, at: i64) -> Result<Vec<KeyValue>, StoreError> {
        self.index().live(span, at).into_iter().map(|(_, rev)| self.kv_at(rev)).collect()
    }
}

/// What a transaction's operations need besides reading.
pub(crate) trait TxnTarget: ReadView {
    /// Whether the command being applied has changed anything yet.
    fn has_changes(&self) -> bool;
    /// Writes a new revision of the key; returns the revision it is written at.
    fn put_kv(&mut self, key: Bytes, value: Bytes, lease: i64) -> Result<i64, Failure>;
    /// Deletes the live keys of the span; returns how many there were.
    fn delete_span(&mut self, span: KeySpan<'_>) -> Result<i64, Failure>;
}

/// Checks an explicit read revision against a view, as etcd's `rangeKeys` does, and returns
/// the revision to read at.
pub(crate) fn resolve_read_revision(view: &impl ReadView, requested: i64) -> Result<i64, EtcdError> {
    let current = view.read_revision();
    if requested > current {
        return Err(EtcdError::FutureRevision);
    }
    let at = if requested <= 0 { current } else { requested };
    if at < view.compact_revision() {
        return Err(EtcdError::Compacted);
    }
    Ok(at)
}
