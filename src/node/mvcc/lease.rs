//! The replicated part of leases: grant, revoke and checkpoint as etcd's lessor applies them.
//! When a lease expires is decided elsewhere (by the leader, which then proposes a revoke).

use std::collections::BTreeSet;

use crate::errors::EtcdError;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::span::KeySpan;
use crate::node::mvcc::state::Lease;
use crate::node::mvcc::state::MAX_LEASE_TTL;
use crate::node::mvcc::state::MIN_LEASE_TTL;
use crate::node::mvcc::view::TxnTarget;
use crate::node::mvcc::write::Writer;
use crate::proto::etcdserverpb::LeaseCheckpointRequest;
use crate::proto::etcdserverpb::LeaseCheckpointResponse;
use crate::proto::etcdserverpb::LeaseGrantRequest;
use crate::proto::etcdserverpb::LeaseGrantResponse;
use crate::proto::etcdserverpb::LeaseRevokeRequest;
use crate::proto::etcdserverpb::LeaseRevokeResponse;

pub(crate) fn grant(w: &mut Writer<'_, '_>, req: &LeaseGrantRequest) -> Result<LeaseGrantResponse, Failure> {
    // etcd's lessor treats id 0 as "no lease"; the proposer always picks a real id
    if req.id == 0 {
        return Err(EtcdError::LeaseNotFound.into());
    }
    if req.ttl > MAX_LEASE_TTL {
        return Err(EtcdError::LeaseTtlTooLarge.into());
    }
    if w.state.leases.contains_key(&req.id) {
        return Err(EtcdError::LeaseExists.into());
    }
    let ttl = req.ttl.max(MIN_LEASE_TTL);
    w.save_lease(Lease { id: req.id, ttl, remaining_ttl: 0, keys: BTreeSet::new() })?;
    Ok(LeaseGrantResponse { header: None, id: req.id, ttl, error: String::new() })
}

/// Deletes every key attached to the lease, all in one revision (in key order, so every
/// member numbers the sub-revisions alike), then forgets the lease.
pub(crate) fn revoke(w: &mut Writer<'_, '_>, req: &LeaseRevokeRequest) -> Result<LeaseRevokeResponse, Failure> {
    let keys = match w.state.leases.get(&req.id) {
        Some(lease) => lease.keys.clone(),
        None => return Err(EtcdError::LeaseNotFound.into()),
    };
    for key in &keys {
        w.delete_span(KeySpan::One(key))?;
    }
    w.remove_lease(req.id)?;
    Ok(LeaseRevokeResponse { header: None })
}

/// Records how much TTL each lease had left, so a new leader does not restart long leases
/// from their full TTL. Unknown leases are skipped, as etcd does.
pub(crate) fn checkpoint(
    w: &mut Writer<'_, '_>,
    req: &LeaseCheckpointRequest,
) -> Result<LeaseCheckpointResponse, Failure> {
    for cp in &req.checkpoints {
        if let Some(lease) = w.state.leases.get_mut(&cp.id) {
            lease.remaining_ttl = cp.remaining_ttl;
            let record = lease.record();
            w.write_lease_record(&record)?;
        }
    }
    Ok(LeaseCheckpointResponse { header: None })
}
