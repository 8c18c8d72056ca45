//! What readers see: the in-memory half of the store, always describing exactly the last
//! committed batch of `state.redb`.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use bytes::Bytes;

use crate::node::mvcc::index::KeyIndex;
use crate::proto::rafttystore::AppliedState;
use crate::proto::rafttystore::LeaseRecord;

/// etcd's `MaxLeaseTTL`: a granted TTL above it is refused.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// etcd raises shorter TTLs to 1.5 election timeouts, rounded up to whole seconds: with
/// raftty's (and etcd's) default election timeout of one second, 2 seconds.
pub const MIN_LEASE_TTL: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: i64,
    pub remaining_ttl: i64,
    /// The keys whose current value carries this lease: revoking the lease deletes them.
    pub keys: BTreeSet<Bytes>,
}

impl Lease {
    pub fn record(&self) -> LeaseRecord {
        LeaseRecord { id: self.id, ttl: self.ttl, remaining_ttl: self.remaining_ttl }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub index: KeyIndex,
    pub revision: i64,
    pub compact_revision: i64,
    pub leases: BTreeMap<i64, Lease>,
    pub applied: AppliedState,
    pub alarms: crate::node::mvcc::alarm::Alarms,
    pub auth: crate::node::auth::store::AuthState,
    /// Set when a write failed half-way: memory and file may disagree, so nothing is served.
    pub failed: Option<String>,
}

impl State {
    pub fn empty() -> Self {
        State {
            index: KeyIndex::default(),
            revision: 1,
            compact_revision: -1,
            leases: BTreeMap::new(),
            applied: AppliedState::default(),
            alarms: Default::default(),
            auth: Default::default(),
            failed: None,
        }
    }
}
