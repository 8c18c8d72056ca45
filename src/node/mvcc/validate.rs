//! Request checks the API layer runs before proposing anything, exactly as etcd 3.4's
//! `v3rpc/key.go` does: pure functions of the request, with etcd's errors.

use std::collections::HashSet;

use bytes::Bytes;

use crate::errors::EtcdError;
use crate::proto::etcdserverpb::DeleteRangeRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::command::Op;

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

pub fn check_range(req: &RangeRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

pub fn check_put(req: &PutRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete(req: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if req.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// Everything etcd checks of a Txn before proposing it: sizes, keys, and that no branch
/// writes a key twice.
pub fn check_txn(req: &TxnRequest) -> Result<(), EtcdError> {
    txn_shape(req, MAX_TXN_OPS)?;
    overlaps(&req.success)?;
    overlaps(&req.failure)?;
    Ok(())
}

/// The checks of a replicated command (the state machine runs them again, see `apply`).
pub fn check_command(cmd: &Command) -> Result<(), EtcdError> {
    match &cmd.op {
        Some(Op::Put(req)) => check_put(req),
        Some(Op::DeleteRange(req)) => check_delete(req),
        Some(Op::Txn(req)) => check_txn(req),
        _ => Ok(()),
    }
}

/// etcd counts the largest of the compare, success and failure lists against the limit, and
/// gives a nested transaction only what its parent left over.
fn txn_shape(req: &TxnRequest, max_ops: usize) -> Result<(), EtcdError> {
    let ops = req.compare.len().max(req.success.len()).max(req.failure.len());
    if ops > max_ops {
        return Err(EtcdError::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range(r)?,
            Some(Request::RequestPut(p)) => check_put(p)?,
            Some(Request::RequestDeleteRange(d)) => check_delete(d)?,
            Some(Request::RequestTxn(nested)) => txn_shape(nested, max_ops - ops)?,
            // etcd answers an empty operation with "key not found"
            None => return Err(EtcdError::KeyNotFound),
        }
    }
    Ok(())
}

/// A deleted interval as etcd's `checkIntervals` sees it: `[start, end)`, or one key.
///
/// etcd builds the interval from the raw `range_end`, so a delete with range end `"\0"`
/// ("every key from here on") becomes `[key, "\0")`, which holds no key: etcd 3.4 does not
/// notice a put under such a delete, and neither does this.
enum Deleted {
    Key(Bytes),
    Interval(Bytes, Bytes),
}

impl Deleted {
    fn covers(&self, key: &[u8]) -> bool {
        match self {
            Deleted::Key(k) => k.as_ref() == key,
            Deleted::Interval(start, end) => start.as_ref() <= key && key < end.as_ref(),
        }
    }
}

fn covered(deleted: &[Deleted], key: &[u8]) -> bool {
    deleted.iter().any(|d| d.covers(key))
}

/// etcd's `checkIntervals`: within one branch, a key may not be put twice, nor put and
/// deleted; nested transactions count with their parent (their two branches exclude each
/// other, so a key put in both of them is fine). Returns the branch's puts and deletes.
fn overlaps(ops: &[RequestOp]) -> Result<(HashSet<Bytes>, Vec<Deleted>), EtcdError> {
    let mut deleted: Vec<Deleted> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) if d.range_end.is_empty() => Some(Deleted::Key(d.key.clone())),
            Some(Request::RequestDeleteRange(d)) => Some(Deleted::Interval(d.key.clone(), d.range_end.clone())),
            _ => None,
        })
        .collect();

    let mut puts = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let (puts_then, deleted_then) = overlaps(&nested.success)?;
        let (puts_else, deleted_else) = overlaps(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || covered(&deleted, key) {
                return Err(EtcdError::DuplicateKey);
            }
        }
        puts.extend(puts_then.iter().cloned());
        for key in puts_else {
            if (puts.contains(&key) && !puts_then.contains(&key)) || covered(&deleted, &key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key);
        }
        deleted.extend(deleted_then);
        deleted.extend(deleted_else);
    }

    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || covered(&deleted, &p.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::Compare;

    fn put_op(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest { key: Bytes::from(key.to_owned()), ..Default::default() })),
        }
    }
    fn del_op(key: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: Bytes::from(key.to_owned()),
                range_end: Bytes::from(end.to_owned()),
                ..Default::default()
            })),
        }
    }
    fn range_op(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: Bytes::from(key.to_owned()),
                ..Default::default()
            })),
        }
    }
    fn txn_op(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp { request: Some(Request::RequestTxn(TxnRequest { compare: vec![], success, failure })) }
    }
    fn txn_of(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest { compare: vec![], success, failure: vec![] }
    }
    fn cmp(key: &str) -> Compare {
        Compare { key: Bytes::from(key.to_owned()), ..Default::default() }
    }

    #[test]
    fn empty_keys_are_refused_everywhere() {
        assert_eq!(check_range(&RangeRequest::default()), Err(EtcdError::EmptyKey));
        assert_eq!(check_put(&PutRequest::default()), Err(EtcdError::EmptyKey));
        assert_eq!(check_delete(&DeleteRangeRequest::default()), Err(EtcdError::EmptyKey));
        let with_empty_compare = TxnRequest { compare: vec![cmp("")], ..Default::default() };
        assert_eq!(check_txn(&with_empty_compare), Err(EtcdError::EmptyKey));
        assert_eq!(check_txn(&txn_of(vec![range_op("")])), Err(EtcdError::EmptyKey));
        assert_eq!(check_txn(&txn_of(vec![txn_op(vec![put_op("")], vec![])])), Err(EtcdError::EmptyKey));
        assert_eq!(EtcdError::EmptyKey.to_string(), "etcdserver: key is not provided");
    }

    #[test]
    fn ignore_flags_refuse_what_they_ignore() {
        let p = PutRequest { key: "k".into(), value: "v".into(), ignore_value: true, ..Default::default() };
        assert_eq!(check_put(&p), Err(EtcdError::ValueProvided));
        assert_eq!(EtcdError::ValueProvided.to_string(), "etcdserver: value is provided");
        let p = PutRequest { key: "k".into(), lease: 7, ignore_lease: true, ..Default::default() };
        assert_eq!(check_put(&p), Err(EtcdError::LeaseProvided));
        assert_eq!(EtcdError::LeaseProvided.to_string(), "etcdserver: lease is provided");
        let p = PutRequest { key: "k".into(), ignore_value: true, ignore_lease: true, ..Default::default() };
        assert_eq!(check_put(&p), Ok(()));
    }

    #[test]
    fn op_limit_is_the_longest_list_and_nested_txns_share_it() {
        let many = |n: usize| (0..n).map(|i| put_op(&format!("k{i}"))).collect::<Vec<_>>();
        assert_eq!(check_txn(&txn_of(many(128))), Ok(()));
        assert_eq!(check_txn(&txn_of(many(129))), Err(EtcdError::TooManyOps));
        assert_eq!(EtcdError::TooManyOps.to_string(), "etcdserver: too many operations in txn request");
        // compares, success and failure are not added up
        let wide = TxnRequest {
            compare: (0..128).map(|i| cmp(&format!("c{i}"))).collect(),
            success: many(128),
            failure: many(128),
        };
        assert_eq!(check_txn(&wide), Ok(()));
        // a nested txn gets what is left: 128 - 100 = 28
        let nested = |n: usize| txn_op((0..n).map(|i| put_op(&format!("n{i}"))).collect(), vec![]);
        let mut ops = many(99);
        ops.push(nested(28));
        assert_eq!(check_txn(&txn_of(ops.clone())), Ok(()));
        ops.pop();
        ops.push(nested(29));
        assert_eq!(check_txn(&txn_of(ops)), Err(EtcdError::TooManyOps));
    }

    #[test]
    fn an_empty_op_is_key_not_found() {
        assert_eq!(check_txn(&txn_of(vec![RequestOp { request: None }])), Err(EtcdError::KeyNotFound));
    }

    #[test]
    fn duplicate_keys_follow_check_intervals() {
        let dup = Err(EtcdError::DuplicateKey);
        assert_eq!(check_txn(&txn_of(vec![put_op("a"), put_op("a")])), dup);
        assert_eq!(check_txn(&txn_of(vec![put_op("a"), del_op("a", "")])), dup);
        assert_eq!(check_txn(&txn_of(vec![del_op("a", "c"), put_op("b")])), dup);
        assert_eq!(check_txn(&txn_of(vec![del_op("a", "c"), put_op("c")])), Ok(()));
        // deleting twice, or reading and writing, is fine
        assert_eq!(check_txn(&txn_of(vec![del_op("a", ""), del_op("a", "b")])), Ok(()));
        assert_eq!(check_txn(&txn_of(vec![range_op("a"), put_op("a")])), Ok(()));
        // etcd 3.4 reads a "\0" range end literally, so it covers nothing here
        assert_eq!(check_txn(&txn_of(vec![del_op("a", "\0"), put_op("b")])), Ok(()));
        // success and failure are checked separately
        let split = TxnRequest { compare: vec![], success: vec![put_op("a")], failure: vec![put_op("a")] };
        assert_eq!(check_txn(&split), Ok(()));
        // nested: a put in the child clashes with the parent's put or delete ...
        assert_eq!(check_txn(&txn_of(vec![put_op("a"), txn_op(vec![put_op("a")], vec![])])), dup);
        assert_eq!(check_txn(&txn_of(vec![del_op("a", "b"), txn_op(vec![put_op("a")], vec![])])), dup);
        assert_eq!(check_txn(&txn_of(vec![txn_op(vec![del_op("a", "b")], vec![]), put_op("a")])), dup);
        // ... but the child's two branches exclude each other
        assert_eq!(check_txn(&txn_of(vec![txn_op(vec![put_op("a")], vec![put_op("a")])])), Ok(()));
        // two children putting one key do clash
        assert_eq!(check_txn(&txn_of(vec![txn_op(vec![put_op("a")], vec![]), txn_op(vec![], vec![put_op("a")])])), dup);
        assert_eq!(EtcdError::DuplicateKey.to_string(), "etcdserver: duplicate key given in txn request");
    }
}
