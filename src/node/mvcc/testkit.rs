//! Builders for tests: commands and requests as a client would send them, and a store in a
//! temporary directory that applies them one by one like the Raft state machine does.

use bytes::Bytes;
use tempfile::TempDir;

use crate::errors::EtcdError;
use crate::node::mvcc::MvccStore;
use crate::node::mvcc::STATE_FILE;
use crate::node::raft::types::StoreIdentity;
use crate::proto::etcdserverpb::CompactionRequest;
use crate::proto::etcdserverpb::Compare;
use crate::proto::etcdserverpb::DeleteRangeRequest;
use crate::proto::etcdserverpb::LeaseCheckpoint;
use crate::proto::etcdserverpb::LeaseCheckpointRequest;
use crate::proto::etcdserverpb::LeaseGrantRequest;
use crate::proto::etcdserverpb::LeaseRevokeRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::compare::CompareResult;
use crate::proto::etcdserverpb::compare::CompareTarget;
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::mvccpb::KeyValue;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::CommandResult;
use crate::proto::rafttypb::LogId;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;
use crate::proto::rafttystore::AppliedState;

pub const IDENTITY: StoreIdentity = StoreIdentity { cluster_id: 0xc1, member_id: 0xa1 };

pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

pub fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest { key: b(key), value: b(value), ..Default::default() }
}

pub fn put(key: &str, value: &str) -> Command {
    Command { op: Some(Op::Put(put_req(key, value))), user: String::new() }
}

pub fn put_with(req: PutRequest) -> Command {
    Command { op: Some(Op::Put(req)), user: String::new() }
}

pub fn del_req(key: &str, end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest { key: b(key), range_end: b(end), prev_kv: false }
}

pub fn del(key: &str, end: &str) -> Command {
    Command { op: Some(Op::DeleteRange(del_req(key, end))), user: String::new() }
}

pub fn txn(req: TxnRequest) -> Command {
    Command { op: Some(Op::Txn(req)), user: String::new() }
}

pub fn compact(revision: i64) -> Command {
    Command { op: Some(Op::Compaction(CompactionRequest { revision, physical: false })), user: String::new() }
}

pub fn grant(id: i64, ttl: i64) -> Command {
    Command { op: Some(Op::LeaseGrant(LeaseGrantRequest { ttl, id })), user: String::new() }
}

pub fn revoke(id: i64) -> Command {
    Command { op: Some(Op::LeaseRevoke(LeaseRevokeRequest { id })), user: String::new() }
}

pub fn checkpoint(id: i64, remaining_ttl: i64) -> Command {
    Command {
        op: Some(Op::LeaseCheckpoint(LeaseCheckpointRequest {
            checkpoints: vec![LeaseCheckpoint { id, remaining_ttl }],
        })),
        user: String::new(),
    }
}

pub fn op_put(key: &str, value: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestPut(put_req(key, value))) }
}

pub fn op_del(key: &str, end: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestDeleteRange(del_req(key, end))) }
}

pub fn op_range(req: RangeRequest) -> RequestOp {
    RequestOp { request: Some(Request::RequestRange(req)) }
}

pub fn op_txn(req: TxnRequest) -> RequestOp {
    RequestOp { request: Some(Request::RequestTxn(req)) }
}

pub fn get_req(key: &str) -> RangeRequest {
    RangeRequest { key: b(key), ..Default::default() }
}

pub fn range_req(key: &str, end: &str) -> RangeRequest {
    RangeRequest { key: b(key), range_end: b(end), ..Default::default() }
}

pub fn cmp(key: &str, target: CompareTarget, result: CompareResult, with: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b(key),
        target_union: Some(with),
        range_end: Bytes::new(),
    }
}

pub fn mod_eq(key: &str, revision: i64) -> Compare {
    cmp(key, CompareTarget::Mod, CompareResult::Equal, TargetUnion::ModRevision(revision))
}

pub fn value_eq(key: &str, value: &str) -> Compare {
    cmp(key, CompareTarget::Value, CompareResult::Equal, TargetUnion::Value(b(value)))
}

pub fn applied_at(index: u64) -> AppliedState {
    AppliedState { last_applied: Some(LogId { term: 1, index }), ..Default::default() }
}

/// A store in a temporary directory, fed commands one per Raft entry.
pub struct TestStore {
    pub dir: TempDir,
    pub store: MvccStore,
    pub next_index: u64,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = MvccStore::open(&dir.path().join(STATE_FILE), IDENTITY).expect("open store");
        TestStore { dir, store, next_index: 1 }
    }

    pub fn reopen(self) -> Self {
        let TestStore { dir, store, next_index } = self;
        drop(store);
        let store = MvccStore::open(&dir.path().join(STATE_FILE), IDENTITY).expect("reopen store");
        TestStore { dir, store, next_index }
    }

    pub fn apply(&mut self, cmd: Command) -> CommandResult {
        let applied = applied_at(self.next_index);
        self.next_index += 1;
        let mut results = self.store.apply([&cmd], &applied).expect("apply");
        results.pop().expect("one result per command")
    }

    /// Applies a command that must succeed; returns what it produced.
    pub fn ok(&mut self, cmd: Command) -> (i64, Outcome) {
        let result = self.apply(cmd);
        match result.result {
            Some(Outcome::Error(e)) => panic!("command failed: {}", e.message),
            Some(outcome) => (result.revision, outcome),
            None => panic!("no outcome"),
        }
    }

    /// Applies a command that must fail; returns the error.
    pub fn refused(&mut self, cmd: Command) -> EtcdError {
        match self.apply(cmd).result {
            Some(Outcome::Error(e)) => EtcdError::from_apply_error(&e),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.store.range(&get_req(key)).expect("range").0.kvs.pop()
    }

    pub fn keys(&self, req: RangeRequest) -> Vec<String> {
        let resp = self.store.range(&req).expect("range").0;
        resp.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
    }
}

pub fn txn_resp(outcome: Outcome) -> crate::proto::etcdserverpb::TxnResponse {
    match outcome {
        Outcome::Txn(t) => t,
        other => panic!("not a txn response: {other:?}"),
    }
}
