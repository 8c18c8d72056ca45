//! The backend quota (`--quota-backend-bytes`), checked as etcd checks it: before a write is
//! proposed, the member adds an estimate of what the write costs to the size of its state file,
//! and refuses the write (raising the NOSPACE alarm for everyone) when that reaches the quota.

use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::request_op::Request;

/// etcd's default quota: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: i64 = 2 * 1024 * 1024 * 1024;

/// etcd's estimate of what storing a key's metadata costs.
const KV_OVERHEAD: u64 = 256;
/// etcd's estimate of what storing a lease costs.
pub const LEASE_OVERHEAD: u64 = 64;

pub fn put_cost(put: &PutRequest) -> u64 {
    KV_OVERHEAD + put.key.len() as u64 + put.value.len() as u64
}

/// The bigger of the two branches' top-level puts, as etcd counts it.
pub fn txn_cost(txn: &TxnRequest) -> u64 {
    let branch = |ops: &[crate::proto::etcdserverpb::RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match &op.request {
                Some(Request::RequestPut(put)) => put_cost(put),
                _ => 0,
            })
            .sum()
    };
    branch(&txn.success).max(branch(&txn.failure))
}

/// A member's quota: the limit of its state file, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: Option<u64>,
}

impl Quota {
    /// From the flag's value as etcd reads it: 0 means the default, a negative value no quota.
    pub fn from_flag(bytes: i64) -> Quota {
        let limit = match bytes {
            0 => Some(DEFAULT_QUOTA_BYTES as u64),
            b if b < 0 => None,
            b => Some(b as u64),
        };
        Quota { limit }
    }

    /// Whether a write costing `cost` still fits in a file of `db_size` bytes.
    pub fn allows(&self, db_size: u64, cost: u64) -> bool {
        self.limit.is_none_or(|limit| cost == 0 || db_size + cost < limit)
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            Some(limit) => write!(f, "{limit}"),
            None => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_reads_as_etcds() {
        assert!(Quota::from_flag(0).allows(DEFAULT_QUOTA_BYTES as u64 - 1000, 500));
        assert!(!Quota::from_flag(0).allows(DEFAULT_QUOTA_BYTES as u64 - 100, 500));
        assert!(Quota::from_flag(-1).allows(u64::MAX / 2, 500));
        assert!(!Quota::from_flag(1000).allows(800, 200), "reaching the quota exactly is past it");
        assert!(Quota::from_flag(1000).allows(800, 199));
    }

    #[test]
    fn a_put_costs_its_bytes_and_etcds_overhead() {
        let put = PutRequest { key: b"abc".to_vec().into(), value: vec![0; 1000].into(), ..Default::default() };
        assert_eq!(put_cost(&put), 256 + 3 + 1000);
    }
}
