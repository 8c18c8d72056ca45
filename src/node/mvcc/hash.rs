//! HashKV: a checksum of the key-value history, for comparing members.
//!
//! Like etcd's `HashByRev`, the hash at revision R covers every record in (compacted, R] and,
//! of the records at or below the compaction point, those still holding a key's value at R;
//! plus the compaction revision itself. It is a crc32c over a canonical byte form of the
//! records in revision order, so members with the same history agree whatever their
//! protobuf encoder does, and a member whose file lost or changed a record disagrees.

use crate::errors::EtcdError;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::record::hash_record;
use crate::node::mvcc::store::Reader;
use crate::node::mvcc::view::ReadView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKv {
    pub hash: u32,
    /// the compaction revision when the hash was taken (-1 before any)
    pub compact_revision: i64,
    /// the revision the hash covers
    pub hash_revision: i64,
    /// the store revision when the hash was taken (for the response header)
    pub revision: i64,
}

/// `revision` 0 (or below) means the current revision. etcd refuses a revision at or below
/// the compaction point (note: at, unlike Range) and one in the future.
pub(crate) fn hash_kv(reader: &Reader<'_>, revision: i64) -> Result<HashKv, Failure> {
    let compact = reader.compact_revision();
    let current = reader.read_revision();
    if revision > 0 && revision <= compact {
        return Err(EtcdError::Compacted.into());
    }
    if revision > current {
        return Err(EtcdError::FutureRevision.into());
    }
    let at = if revision <= 0 { current } else { revision };
    let kept = reader.index().live_revisions_at(at);
    let mut hash = crc32c::crc32c(b"raftty/kv");
    hash = crc32c::crc32c_append(hash, &compact.to_be_bytes());
    reader.for_each_record(i64::MIN..=at, |rev, record| {
        if rev.main > compact || kept.contains(&rev) {
            hash_record(&mut hash, rev, &record);
        }
        Ok(())
    })?;
    Ok(HashKv { hash, compact_revision: compact, hash_revision: at, revision: current })
}
