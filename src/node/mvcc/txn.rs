//! Txn, Put and DeleteRange as etcd 3.4 applies them.
//!
//! A transaction runs in three steps, all against the same store:
//! 1. every compare, including those of nested transactions on the taken branches, is
//!    evaluated up front against the state before the transaction (etcd's `compareToPath`),
//!    giving the "path" of branches taken;
//! 2. the operations on that path are checked up front (puts: `ignore_value`/`ignore_lease`
//!    keys exist, leases exist; then ranges: revisions neither future nor compacted), so a
//!    failing transaction changes nothing;
//! 3. the operations run in order, each seeing the writes of the ones before, all writes in
//!    one main revision.

use bytes::Bytes;

use crate::errors::EtcdError;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::range::range;
use crate::node::mvcc::span::KeySpan;
use crate::node::mvcc::view::ReadView;
use crate::node::mvcc::view::TxnTarget;
use crate::proto::etcdserverpb::Compare;
use crate::proto::etcdserverpb::DeleteRangeRequest;
use crate::proto::etcdserverpb::DeleteRangeResponse;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::PutResponse;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::etcdserverpb::ResponseOp;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::TxnResponse;
use crate::proto::etcdserverpb::compare::CompareResult;
use crate::proto::etcdserverpb::compare::CompareTarget;
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::mvccpb::KeyValue;

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader { revision, ..Default::default() })
}

/// Whether a transaction can be served without going through Raft: no put or delete on any
/// branch, at any depth.
pub fn is_read_only(txn: &TxnRequest) -> bool {
    txn.success.iter().chain(&txn.failure).all(|op| match &op.request {
        Some(Request::RequestPut(_)) | Some(Request::RequestDeleteRange(_)) => false,
        Some(Request::RequestTxn(nested)) => is_read_only(nested),
        Some(Request::RequestRange(_)) | None => true,
    })
}

/// A Put inside or outside a transaction (for a standalone Put the caller checks the lease
/// first, as etcd does).
pub(crate) fn put(target: &mut impl TxnTarget, req: &PutRequest) -> Result<PutResponse, Failure> {
    let needs_existing = req.ignore_value || req.ignore_lease;
    let prev = if needs_existing || req.prev_kv { target.get(&req.key)? } else { None };
    if needs_existing && prev.is_none() {
        return Err(EtcdError::KeyNotFound.into());
    }
    let value = match (&prev, req.ignore_value) {
        (Some(prev), true) => prev.value.clone(),
        _ => req.value.clone(),
    };
    let lease = match (&prev, req.ignore_lease) {
        (Some(prev), true) => prev.lease,
        _ => req.lease,
    };
    let revision = target.put_kv(req.key.clone(), value, lease)?;
    Ok(PutResponse { header: header(revision), prev_kv: prev.filter(|_| req.prev_kv) })
}

pub(crate) fn delete_range(
    target: &mut impl TxnTarget,
    req: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse, Failure> {
    let span = KeySpan::new(&req.key, &req.range_end);
    let prev_kvs = if req.prev_kv { target.live_kvs(span, target.read_revision())? } else { Vec::new() };
    let deleted = target.delete_span(span)?;
    let revision = target.begin_revision() + i64::from(target.has_changes());
    Ok(DeleteRangeResponse { header: header(revision), deleted, prev_kvs })
}

/// Runs a whole transaction. The top-level header carries the revision after it only for
/// symmetry with nested ones; the server replaces it.
pub(crate) fn execute(target: &mut impl TxnTarget, txn: &TxnRequest) -> Result<TxnResponse, Failure> {
    let mut path = Vec::new();
    compare_path(target, txn, &mut path)?;
    if !is_read_only(txn) {
        check_ops(target, txn, &path, &mut 0, check_put)?;
    }
    check_ops(target, txn, &path, &mut 0, check_range)?;
    apply_ops(target, txn, &path, &mut 0)
}

fn branch(txn: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded { &txn.success } else { &txn.failure }
}

/// Evaluates the compares of this transaction and of every nested one on the branches taken,
/// depth first, in the order `apply_ops` will consume them.
fn compare_path(view: &impl ReadView, txn: &TxnRequest, path: &mut Vec<bool>) -> Result<(), Failure> {
    let mut succeeded = true;
    for cmp in &txn.compare {
        if !compare(view, cmp)? {
            succeeded = false;
            break;
        }
    }
    path.push(succeeded);
    for op in branch(txn, succeeded) {
        if let Some(Request::RequestTxn(nested)) = &op.request {
            compare_path(view, nested, path)?;
        }
    }
    Ok(())
}

fn taken(path: &[bool], cursor: &mut usize) -> Result<bool, Failure> {
    let succeeded = path
        .get(*cursor)
        .copied()
        .ok_or_else(|| EtcdError::Internal("transaction path shorter than its nesting".into()))?;
    *cursor += 1;
    Ok(succeeded)
}

fn check_ops<V: ReadView>(
    view: &V,
    txn: &TxnRequest,
    path: &[bool],
    cursor: &mut usize,
    check: fn(&V, &RequestOp) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let succeeded = taken(path, cursor)?;
    for op in branch(txn, succeeded) {
        match &op.request {
            Some(Request::RequestTxn(nested)) => check_ops(view, nested, path, cursor, check)?,
            _ => check(view, op)?,
        }
    }
    Ok(())
}

fn check_put<V: ReadView>(view: &V, op: &RequestOp) -> Result<(), Failure> {
    let Some(Request::RequestPut(put)) = &op.request else {
        return Ok(());
    };
    if (put.ignore_value || put.ignore_lease) && view.get(&put.key)?.is_none() {
        return Err(EtcdError::KeyNotFound.into());
    }
    if put.lease != 0 && !view.lease_exists(put.lease) {
        return Err(EtcdError::LeaseNotFound.into());
    }
    Ok(())
}

fn check_range<V: ReadView>(view: &V, op: &RequestOp) -> Result<(), Failure> {
    let Some(Request::RequestRange(r)) = &op.request else {
        return Ok(());
    };
    if r.revision == 0 {
        return Ok(());
    }
    if r.revision > view.read_revision() {
        return Err(EtcdError::FutureRevision.into());
    }
    if r.revision < view.compact_revision() {
        return Err(EtcdError::Compacted.into());
    }
    Ok(())
}

fn apply_ops(
    target: &mut impl TxnTarget,
    txn: &TxnRequest,
    path: &[bool],
    cursor: &mut usize,
) -> Result<TxnResponse, Failure> {
    let succeeded = taken(path, cursor)?;
    let mut responses = Vec::new();
    for op in branch(txn, succeeded) {
        let response = match &op.request {
            Some(Request::RequestRange(r)) => Some(Response::ResponseRange(range(target, r)?)),
            Some(Request::RequestPut(p)) => Some(Response::ResponsePut(put(target, p)?)),
            Some(Request::RequestDeleteRange(d)) => Some(Response::ResponseDeleteRange(delete_range(target, d)?)),
            Some(Request::RequestTxn(nested)) => {
                let mut resp = apply_ops(target, nested, path, cursor)?;
                // etcd gives nested transactions an empty header
                resp.header = Some(ResponseHeader::default());
                Some(Response::ResponseTxn(resp))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    let revision = target.begin_revision() + i64::from(target.has_changes());
    Ok(TxnResponse { header: header(revision), succeeded, responses })
}

/// One compare: every key in its range must satisfy it; with no key, VALUE compares fail
/// and the others compare against zero values (so `CREATE(k) == 0` means "k is absent").
fn compare(view: &impl ReadView, cmp: &Compare) -> Result<bool, Failure> {
    let kvs = view.live_kvs(KeySpan::new(&cmp.key, &cmp.range_end), view.read_revision())?;
    if kvs.is_empty() {
        if cmp.target == CompareTarget::Value as i32 {
            return Ok(false);
        }
        return Ok(compare_kv(cmp, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(cmp, kv)))
}

fn compare_kv(cmp: &Compare, kv: &KeyValue) -> bool {
    let int = |pick: fn(&TargetUnion) -> Option<i64>| cmp.target_union.as_ref().and_then(pick).unwrap_or(0);
    let ordering = match CompareTarget::try_from(cmp.target) {
        Ok(CompareTarget::Value) => {
            let wanted = match &cmp.target_union {
                Some(TargetUnion::Value(v)) => v.clone(),
                _ => Bytes::new(),
            };
            kv.value.cmp(&wanted)
        }
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&int(|t| match t {
            TargetUnion::CreateRevision(n) => Some(*n),
            _ => None,
        })),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&int(|t| match t {
            TargetUnion::ModRevision(n) => Some(*n),
            _ => None,
        })),
        Ok(CompareTarget::Version) => kv.version.cmp(&int(|t| match t {
            TargetUnion::Version(n) => Some(*n),
            _ => None,
        })),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&int(|t| match t {
            TargetUnion::Lease(n) => Some(*n),
            _ => None,
        })),
        Err(_) => std::cmp::Ordering::Equal,
    };
    match CompareResult::try_from(cmp.result) {
        Ok(CompareResult::Equal) => ordering.is_eq(),
        Ok(CompareResult::NotEqual) => ordering.is_ne(),
        Ok(CompareResult::Greater) => ordering.is_gt(),
        Ok(CompareResult::Less) => ordering.is_lt(),
        // etcd lets an unknown comparison pass
        Err(_) => true,
    }
}
