//! Compaction: forgetting history older than a revision.
//!
//! Which revisions survive is etcd's rule (see [`crate::node::mvcc::index::compaction_cut`]): of
//! each key's revisions at or below the compaction point only the last survives, and only if
//! it is not a tombstone. Compaction does not create a revision, and it runs synchronously
//! inside the apply (etcd finishes it in the background, which no client can tell apart
//! except by timing).

use crate::errors::EtcdError;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::write::Writer;
use crate::proto::etcdserverpb::CompactionRequest;
use crate::proto::etcdserverpb::CompactionResponse;

pub(crate) fn compact(w: &mut Writer<'_, '_>, req: &CompactionRequest) -> Result<CompactionResponse, Failure> {
    if req.revision <= w.state.compact_revision {
        return Err(EtcdError::Compacted.into());
    }
    if req.revision > w.state.revision {
        return Err(EtcdError::FutureRevision.into());
    }
    let dropped = w.state.index.compact(req.revision);
    w.state.compact_revision = req.revision;
    w.remove_records(&dropped)?;
    Ok(CompactionResponse { header: None })
}
