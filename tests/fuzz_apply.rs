//! Fuzzing (with proptest) the two places arbitrary input reaches: decoding requests and log
//! entries from bytes, and the MVCC apply path, which must take any command the log holds
//! (valid or not) without panicking, and keep the store's invariants.

use std::sync::LazyLock;

use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;
use raftty::node::mvcc::MvccStore;
use raftty::node::mvcc::validate;
use raftty::node::raft::types::Command;
use raftty::node::raft::types::StoreIdentity;
use raftty::proto::etcdserverpb::*;
use raftty::proto::rafttypb;
use raftty::proto::rafttypb::command::Op;
use raftty::proto::rafttystore::AppliedState;

static IDENTITY: StoreIdentity = StoreIdentity { cluster_id: 7, member_id: 1 };
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

fn key() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        Just(Bytes::from_static(b"\0")),
        "[a-d]{1,3}".prop_map(Bytes::from),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from),
    ]
}

fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), -3i64..3, 1i64..40, Just(i64::MAX), Just(i64::MIN)]
}

fn range() -> impl Strategy<Value = RangeRequest> {
    (key(), key(), -2i64..5, revision(), -1i32..4, -1i32..6, any::<bool>(), any::<bool>(), revision(), revision())
        .prop_map(
            |(key, range_end, limit, revision, sort_order, sort_target, keys_only, count_only, min_mod, max_create)| {
                RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order,
                    sort_target,
                    keys_only,
                    count_only,
                    min_mod_revision: min_mod,
                    max_create_revision: max_create,
                    ..Default::default()
                }
            },
        )
}

fn put() -> impl Strategy<Value = PutRequest> {
    (key(), key(), prop_oneof![Just(0i64), any::<i64>(), 1i64..4], any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutRequest {
            key,
            value,
            lease,
            prev_kv,
            ignore_value,
            ignore_lease,
        })
}

fn delete() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), key(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest { key, range_end, prev_kv })
}

fn compare() -> impl Strategy<Value = Compare> {
    use compare::TargetUnion;
    let union = prop_oneof![
        Just(None),
        revision().prop_map(|r| Some(TargetUnion::Version(r))),
        revision().prop_map(|r| Some(TargetUnion::ModRevision(r))),
        revision().prop_map(|r| Some(TargetUnion::CreateRevision(r))),
        key().prop_map(|v| Some(TargetUnion::Value(v))),
        any::<i64>().prop_map(|l| Some(TargetUnion::Lease(l))),
    ];
    (-1i32..5, -1i32..6, key(), union, key()).prop_map(|(result, target, key, target_union, range_end)| Compare {
        result,
        target,
        key,
        target_union,
        range_end,
    })
}

fn txn() -> impl Strategy<Value = TxnRequest> {
    let leaf = prop_oneof![
        Just(RequestOp { request: None }),
        range().prop_map(|r| RequestOp { request: Some(request_op::Request::RequestRange(r)) }),
        put().prop_map(|p| RequestOp { request: Some(request_op::Request::RequestPut(p)) }),
        delete().prop_map(|d| RequestOp { request: Some(request_op::Request::RequestDeleteRange(d)) }),
    ];
    let flat = (
        proptest::collection::vec(compare(), 0..3),
        proptest::collection::vec(leaf.clone(), 0..4),
        proptest::collection::vec(leaf, 0..3),
    )
        .prop_map(|(compare, success, failure)| TxnRequest { compare, success, failure });
    flat.prop_recursive(2, 12, 3, |inner| {
        (proptest::collection::vec(compare(), 0..2), proptest::collection::vec(inner, 0..2)).prop_map(
            |(compare, nested)| TxnRequest {
                compare,
                success: nested
                    .into_iter()
                    .map(|t| RequestOp { request: Some(request_op::Request::RequestTxn(t)) })
                    .collect(),
                failure: vec![],
            },
        )
    })
}

fn command() -> impl Strategy<Value = Command> {
    let op = prop_oneof![
        4 => put().prop_map(Op::Put),
        2 => delete().prop_map(Op::DeleteRange),
        3 => txn().prop_map(Op::Txn),
        1 => revision().prop_map(|revision| Op::Compaction(CompactionRequest { revision, physical: false })),
        1 => (1i64..5, prop_oneof![Just(-5i64), 0i64..30, Just(i64::MAX)]).prop_map(|(id, ttl)| Op::LeaseGrant(LeaseGrantRequest { id, ttl })),
        1 => (0i64..5).prop_map(|id| Op::LeaseRevoke(LeaseRevokeRequest { id })),
    ];
    prop_oneof![9 => op.prop_map(|op| Command { op: Some(op), user: String::new() }), 1 => Just(Command { op: None, user: String::new() })]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// No byte string makes decoding panic, whatever message it is read as.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = PutRequest::decode(bytes.as_slice());
        let _ = RangeRequest::decode(bytes.as_slice());
        let _ = TxnRequest::decode(bytes.as_slice());
        let _ = WatchRequest::decode(bytes.as_slice());
        let _ = rafttypb::Command::decode(bytes.as_slice());
        if let Ok(entry) = rafttypb::Entry::decode(bytes.as_slice()) {
            let _ = raftty::node::raft::codec::entry_from_pb(entry);
        }
        if let Ok(req) = rafttypb::AppendEntriesRequest::decode(bytes.as_slice()) {
            let _ = raftty::node::raft::codec::append_request_from_pb(req);
        }
        if let Ok(cmd) = rafttypb::Command::decode(bytes.as_slice()) {
            let _ = validate::check_command(&cmd);
        }
    }

    /// Any sequence of commands, valid or not, applies without panicking; the revision never
    /// goes backwards; reads at the current revision keep working; and every member applying
    /// the same commands would hold the same data (a second store agrees on HashKV).
    #[test]
    fn applying_arbitrary_commands_keeps_the_store_sound(commands in proptest::collection::vec(command(), 1..25)) {
        let case = tempfile::tempdir_in(DIR.path()).unwrap();
        let a = MvccStore::open(&case.path().join("a.redb"), IDENTITY).unwrap();
        let b = MvccStore::open(&case.path().join("b.redb"), IDENTITY).unwrap();
        let mut last = a.current_revision();
        for (i, cmd) in commands.iter().enumerate() {
            let applied = AppliedState::default();
            let _ = validate::check_command(cmd);
            let results = a.apply([cmd], &applied).expect("storage does not fail");
            prop_assert_eq!(results.len(), 1);
            prop_assert_eq!(results[0].revision, a.current_revision(), "command {} reports the store's revision", i);
            prop_assert!(a.current_revision() >= last, "revision went backwards at command {}", i);
            last = a.current_revision();
            let all = RangeRequest { key: Bytes::from_static(b"\0"), range_end: Bytes::from_static(b"\0"), ..Default::default() };
            prop_assert!(a.range(&all).is_ok());
        }
        // The same commands in one batch: same outcome.
        b.apply(commands.iter(), &AppliedState::default()).expect("storage does not fail");
        prop_assert_eq!(a.current_revision(), b.current_revision());
        prop_assert_eq!(a.hash_kv(0).unwrap().hash, b.hash_kv(0).unwrap().hash);
    }
}
