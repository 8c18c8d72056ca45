//! The record stored under each revision, and how it is written and read back.

use std::path::Path;

use bytes::Bytes;
use prost::Message;
use redb::ReadableTable;

use crate::node::mvcc::error::AtPath;
use crate::node::mvcc::error::StoreError;
use crate::node::mvcc::index::Revision;
use crate::proto::mvccpb::KeyValue;
use crate::proto::rafttystore::RevisionRecord;

pub fn put_record(kv: KeyValue) -> RevisionRecord {
    RevisionRecord { kv: Some(kv), tombstone: false }
}

/// A delete's record carries what a watcher's DELETE event shows: the key and the deleting
/// revision.
pub fn tombstone_record(key: Bytes, main: i64) -> RevisionRecord {
    RevisionRecord { kv: Some(KeyValue { key, mod_revision: main, ..Default::default() }), tombstone: true }
}

pub fn decode_record(bytes: &[u8], rev: Revision, path: &Path) -> Result<RevisionRecord, StoreError> {
    let record = RevisionRecord::decode(bytes)
        .map_err(|e| StoreError::damaged(path, format!("record of revision {}/{}: {e}", rev.main, rev.sub)))?;
    if record.kv.as_ref().is_none_or(|kv| kv.key.is_empty()) {
        return Err(StoreError::damaged(path, format!("record of revision {}/{} names no key", rev.main, rev.sub)));
    }
    Ok(record)
}

/// The record stored under `rev`, which the key index says exists.
pub fn read_record(
    records: &impl ReadableTable<(i64, i64), &'static [u8]>,
    rev: Revision,
    path: &Path,
) -> Result<RevisionRecord, StoreError> {
    let bytes = records.get((rev.main, rev.sub)).at(path)?.ok_or_else(|| {
        StoreError::damaged(path, format!("revision {}/{} is indexed but not stored", rev.main, rev.sub))
    })?;
    decode_record(bytes.value(), rev, path)
}

/// The key-value a record holds (records without one are refused when decoded).
pub fn record_kv(record: RevisionRecord) -> KeyValue {
    record.kv.unwrap_or_default()
}

/// Feeds a record to a hasher in a canonical byte form, independent of how protobuf happens
/// to encode it, so members running different builds still agree.
pub fn hash_record(hasher: &mut u32, rev: Revision, record: &RevisionRecord) {
    let empty = KeyValue::default();
    let kv = record.kv.as_ref().unwrap_or(&empty);
    let mut feed = |bytes: &[u8]| *hasher = crc32c::crc32c_append(*hasher, bytes);
    feed(&rev.main.to_be_bytes());
    feed(&rev.sub.to_be_bytes());
    feed(&[u8::from(record.tombstone)]);
    feed(&(kv.key.len() as u64).to_be_bytes());
    feed(&kv.key);
    feed(&(kv.value.len() as u64).to_be_bytes());
    feed(&kv.value);
    for n in [kv.create_revision, kv.mod_revision, kv.version, kv.lease] {
        feed(&n.to_be_bytes());
    }
}
