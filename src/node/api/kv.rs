//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
//!
//! Writes go through Raft as a `Command` and come back as the state machine's result;
//! reads are served from this member's MVCC store, after a read-index barrier unless the
//! client asked for a serializable read.

use std::sync::Arc;

use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::node::api::check_size;
use crate::node::auth::gate;
use crate::node::member::Member;
use crate::node::mvcc::validate;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::*;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

pub struct KvService {
    member: Arc<Member>,
}

impl KvService {
    pub fn new(member: Arc<Member>) -> KvService {
        KvService { member }
    }

    fn unexpected(outcome: &Outcome) -> Status {
        Status::internal(format!("unexpected state machine result {outcome:?}"))
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        let req = req.into_inner();
        check_size(&req)?;
        validate::check_range(&req)?;
        caller.allow(&self.member, |_| gate::range(&req))?;
        if !req.serializable {
            self.member.linearizable_barrier().await?;
        }
        let (mut resp, revision) = self.member.state_machine.mvcc().range(&req)?;
        resp.header = Some(self.member.header(revision));
        Ok(Response::new(resp))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        let req = req.into_inner();
        check_size(&req)?;
        validate::check_put(&req)?;
        caller.allow(&self.member, |s| gate::put(s, &req))?;
        self.member.check_quota(crate::node::quota::put_cost(&req)).await?;
        match self.member.write_as(&caller, Op::Put(req)).await? {
            (Outcome::Put(mut resp), revision) => {
                resp.header = Some(self.member.header(revision));
                Ok(Response::new(resp))
            }
            (other, _) => Err(Self::unexpected(&other)),
        }
    }

    async fn delete_range(&self, req: Request<DeleteRangeRequest>) -> Result<Response<DeleteRangeResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        let req = req.into_inner();
        check_size(&req)?;
        validate::check_delete(&req)?;
        caller.allow(&self.member, |_| gate::delete(&req))?;
        match self.member.write_as(&caller, Op::DeleteRange(req)).await? {
            (Outcome::DeleteRange(mut resp), revision) => {
                resp.header = Some(self.member.header(revision));
                Ok(Response::new(resp))
            }
            (other, _) => Err(Self::unexpected(&other)),
        }
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let caller = gate::caller(&self.member, &req).await?;
        let req = req.into_inner();
        check_size(&req)?;
        validate::check_txn(&req)?;
        caller.allow(&self.member, |s| gate::txn(s, &req))?;
        if crate::node::mvcc::is_read_only(&req) {
            // Like etcd, a transaction that writes nothing is served without a Raft entry.
            if !is_serializable(&req) {
                self.member.linearizable_barrier().await?;
            }
            let (mut resp, revision) = self.member.state_machine.mvcc().txn_read(&req)?;
            fill_txn_headers(&mut resp, &self.member.header(revision));
            return Ok(Response::new(resp));
        }
        self.member.check_quota(crate::node::quota::txn_cost(&req)).await?;
        match self.member.write_as(&caller, Op::Txn(req)).await? {
            (Outcome::Txn(mut resp), revision) => {
                fill_txn_headers(&mut resp, &self.member.header(revision));
                Ok(Response::new(resp))
            }
            (other, _) => Err(Self::unexpected(&other)),
        }
    }

    async fn compact(&self, req: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        let req = req.into_inner();
        match self.member.write(Op::Compaction(req)).await? {
            (Outcome::Compaction(mut resp), revision) => {
                resp.header = Some(self.member.header(revision));
                Ok(Response::new(resp))
            }
            (other, _) => Err(Self::unexpected(&other)),
        }
    }
}

/// etcd's rule: a read-only transaction may skip the read barrier only if every operation on
/// both branches is a serializable range.
fn is_serializable(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|op| matches!(&op.request, Some(request_op::Request::RequestRange(r)) if r.serializable))
}

/// etcd gives every response inside a txn the txn's header too.
fn fill_txn_headers(resp: &mut TxnResponse, header: &ResponseHeader) {
    resp.header = Some(*header);
    for op in &mut resp.responses {
        match &mut op.response {
            Some(response_op::Response::ResponseRange(r)) => r.header = Some(*header),
            Some(response_op::Response::ResponsePut(r)) => r.header = Some(*header),
            Some(response_op::Response::ResponseDeleteRange(r)) => r.header = Some(*header),
            Some(response_op::Response::ResponseTxn(r)) => fill_txn_headers(r, header),
            None => {}
        }
    }
}
