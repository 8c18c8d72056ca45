//! The etcd 3.4 rules, one test each, checked the way a user of etcdctl would see them.

use bytes::Bytes;

use crate::errors::EtcdError;
use crate::node::mvcc::MvccStore;
use crate::node::mvcc::STATE_FILE;
use crate::node::mvcc::StoreError;
use crate::node::mvcc::WatchFeed;
use crate::node::mvcc::testkit::*;
use crate::node::raft::types::StoreIdentity;
use crate::proto::etcdserverpb::AlarmRequest;
use crate::proto::etcdserverpb::AlarmType;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::alarm_request::AlarmAction;
use crate::proto::etcdserverpb::compare::CompareResult;
use crate::proto::etcdserverpb::compare::CompareTarget;
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::etcdserverpb::range_request::SortOrder;
use crate::proto::etcdserverpb::range_request::SortTarget;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::mvccpb::event::EventType;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

#[test]
fn revisions_versions_and_tombstones() {
    let mut s = TestStore::new();
    assert_eq!(s.store.current_revision(), 1, "an empty store is at revision 1");

    assert_eq!(s.ok(put("a", "1")).0, 2);
    let a = s.get("a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 2, 1));

    assert_eq!(s.ok(put("a", "2")).0, 3);
    let a = s.get("a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version, &a.value[..]), (2, 3, 2, &b"2"[..]));

    let (rev, outcome) = s.ok(del("a", ""));
    assert_eq!(rev, 4);
    assert!(matches!(outcome, Outcome::DeleteRange(d) if d.deleted == 1));
    assert!(s.get("a").is_none());

    s.ok(put("a", "3"));
    let a = s.get("a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (5, 5, 1), "a delete resets the version");

    // history is still there
    let old = s.store.range(&RangeRequest { revision: 3, ..get_req("a") }).unwrap();
    assert_eq!(&old.0.kvs[0].value[..], b"2");
    assert_eq!(old.1, 5, "the header shows the current revision, not the one read");
    assert!(s.store.range(&RangeRequest { revision: 4, ..get_req("a") }).unwrap().0.kvs.is_empty());
}

#[test]
fn changing_nothing_does_not_bump_the_revision() {
    let mut s = TestStore::new();
    s.ok(put("a", "1"));
    let (rev, outcome) = s.ok(del("zzz", ""));
    assert_eq!(rev, 2);
    assert!(matches!(outcome, Outcome::DeleteRange(d) if d.deleted == 0));
    let read_only = TxnRequest { success: vec![op_range(get_req("a"))], ..Default::default() };
    assert_eq!(s.ok(txn(read_only)).0, 2);
    assert_eq!(s.store.current_revision(), 2);
}

#[test]
fn a_txn_writes_one_revision_with_sub_revisions() {
    let mut s = TestStore::new();
    s.ok(put("c", "0"));
    let mut feed = s.store.subscribe();
    let t = TxnRequest { success: vec![op_put("a", "1"), op_put("b", "2"), op_del("c", "")], ..Default::default() };
    let (rev, outcome) = s.ok(txn(t));
    assert_eq!(rev, 3);
    let resp = txn_resp(outcome);
    assert!(resp.succeeded);
    assert!(resp.header.is_none(), "the server fills the top-level header");
    let Some(Response::ResponsePut(p)) = &resp.responses[0].response else { panic!() };
    assert_eq!(p.header.as_ref().unwrap().revision, 3);
    assert_eq!(s.get("a").unwrap().mod_revision, 3);
    assert_eq!(s.get("b").unwrap().mod_revision, 3);
    assert!(s.get("c").is_none());

    let WatchFeed::Revision(events) = feed.try_recv().unwrap() else { panic!("not a revision") };
    assert_eq!(events.revision, 3);
    let kinds: Vec<_> = events.events.iter().map(|e| (e.r#type, e.kv.as_ref().unwrap().key.clone())).collect();
    assert_eq!(
        kinds,
        vec![(EventType::Put as i32, b("a")), (EventType::Put as i32, b("b")), (EventType::Delete as i32, b("c"))]
    );
    assert_eq!(events.events[2].prev_kv.as_ref().unwrap().mod_revision, 2);
    let history = s.store.events(3, 3).unwrap();
    assert_eq!(history[0], *events, "history and live feed agree");
}

#[test]
fn range_spans_limits_and_counts() {
    let mut s = TestStore::new();
    for k in ["a", "b", "c", "d"] {
        s.ok(put(k, k));
    }
    assert_eq!(s.keys(get_req("b")), ["b"]);
    assert_eq!(s.keys(range_req("b", "d")), ["b", "c"]);
    assert_eq!(s.keys(range_req("b", "\0")), ["b", "c", "d"]);
    assert_eq!(s.keys(range_req("\0", "\0")), ["a", "b", "c", "d"]);
    assert!(s.keys(range_req("d", "b")).is_empty(), "an inverted range is empty, not an error");

    let limited = s.store.range(&RangeRequest { limit: 2, ..range_req("a", "\0") }).unwrap().0;
    assert_eq!(limited.kvs.len(), 2);
    assert!(limited.more);
    assert_eq!(limited.count, 4, "count ignores the limit");
    let exact = s.store.range(&RangeRequest { limit: 4, ..range_req("a", "\0") }).unwrap().0;
    assert!(!exact.more);

    let counted = s.store.range(&RangeRequest { count_only: true, ..range_req("a", "\0") }).unwrap().0;
    assert!(counted.kvs.is_empty());
    assert_eq!(counted.count, 4);

    let keys_only = s.store.range(&RangeRequest { keys_only: true, ..get_req("a") }).unwrap().0;
    assert!(keys_only.kvs[0].value.is_empty());
    assert_eq!(keys_only.kvs[0].version, 1);
}

#[test]
fn range_revisions_future_and_compacted() {
    let mut s = TestStore::new();
    for v in ["1", "2", "3"] {
        s.ok(put("k", v));
    }
    // revision 4 now
    let future = s.store.range(&RangeRequest { revision: 5, ..get_req("k") }).unwrap_err();
    assert_eq!(future, EtcdError::FutureRevision);
    assert_eq!(future.to_string(), "etcdserver: mvcc: required revision is a future revision");
    assert_eq!(tonic::Status::from(future).code(), tonic::Code::OutOfRange);

    s.ok(compact(3));
    let compacted = s.store.range(&RangeRequest { revision: 2, ..get_req("k") }).unwrap_err();
    assert_eq!(compacted, EtcdError::Compacted);
    assert_eq!(compacted.to_string(), "etcdserver: mvcc: required revision has been compacted");
    let at_compaction = s.store.range(&RangeRequest { revision: 3, ..get_req("k") }).unwrap().0;
    assert_eq!(&at_compaction.kvs[0].value[..], b"2", "reading at the compaction point is fine");
    assert_eq!(s.store.current_revision(), 4, "compaction does not create a revision");
}

#[test]
fn range_sorting_and_filters_follow_etcd() {
    let mut s = TestStore::new();
    s.ok(put("a", "z")); // rev 2
    s.ok(put("b", "y")); // rev 3
    s.ok(put("c", "x")); // rev 4
    s.ok(put("a", "w")); // rev 5: a has version 2

    let sorted = |order: SortOrder, target: SortTarget, limit: i64| {
        s.keys(RangeRequest { sort_order: order as i32, sort_target: target as i32, limit, ..range_req("a", "\0") })
    };
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Key, 0), ["c", "b", "a"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Value, 0), ["a", "c", "b"]);
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Mod, 0), ["a", "c", "b"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Create, 0), ["a", "b", "c"]);
    // a non-KEY target with order NONE sorts ascending...
    assert_eq!(sorted(SortOrder::None, SortTarget::Version, 0), ["b", "c", "a"]);
    assert_eq!(sorted(SortOrder::None, SortTarget::Value, 0), ["a", "c", "b"]);
    // ...of the first limit+1 keys only, as etcd does (it fetches everything only when the
    // order is not NONE)
    assert_eq!(sorted(SortOrder::None, SortTarget::Value, 1), ["a"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Value, 1), ["a"]);
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Value, 1), ["b"]);

    let filtered = |req: RangeRequest| s.store.range(&req).unwrap().0;
    let r = filtered(RangeRequest { min_mod_revision: 4, ..range_req("a", "\0") });
    assert_eq!(r.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(), [b("a"), b("c")]);
    assert_eq!(r.count, 3, "count is taken before the filters");
    let r = filtered(RangeRequest { max_create_revision: 3, limit: 1, ..range_req("a", "\0") });
    assert_eq!(r.kvs.len(), 1);
    assert!(r.more);
    let r = filtered(RangeRequest { min_create_revision: 3, max_mod_revision: 3, ..range_req("a", "\0") });
    assert_eq!(r.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(), [b("b")]);
}

#[test]
fn put_flags() {
    let mut s = TestStore::new();
    // ignore_value / ignore_lease need the key
    let ignore_value = PutRequest { key: b("k"), ignore_value: true, ..Default::default() };
    let err = s.refused(put_with(ignore_value.clone()));
    assert_eq!(err, EtcdError::KeyNotFound);
    assert_eq!(err.to_string(), "etcdserver: key not found");
    assert_eq!(s.store.current_revision(), 1, "a refused put changes nothing");

    s.ok(grant(7, 60));
    s.ok(put_with(PutRequest { lease: 7, ..put_req("k", "v1") }));
    let (_, outcome) = s.ok(put_with(PutRequest { prev_kv: true, ..ignore_value }));
    let Outcome::Put(p) = outcome else { panic!() };
    assert_eq!(&p.prev_kv.unwrap().value[..], b"v1");
    let k = s.get("k").unwrap();
    assert_eq!((&k.value[..], k.version, k.lease), (&b"v1"[..], 2, 0), "ignore_value keeps the value, not the lease");
    assert!(s.store.lease(7).unwrap().keys.is_empty(), "the put without lease detached the key");

    s.ok(put_with(PutRequest { lease: 7, ..put_req("k", "v2") }));
    s.ok(put_with(PutRequest { key: b("k"), value: b("v3"), ignore_lease: true, ..Default::default() }));
    let k = s.get("k").unwrap();
    assert_eq!((&k.value[..], k.lease), (&b"v3"[..], 7), "ignore_lease keeps the lease");
    assert_eq!(s.store.lease(7).unwrap().keys, vec![b("k")]);

    let err = s.refused(put_with(PutRequest { lease: 99, ..put_req("x", "y") }));
    assert_eq!(err, EtcdError::LeaseNotFound);
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    // a standalone put checks the lease before the key, like etcd
    let both_wrong = PutRequest { key: b("nope"), lease: 99, ignore_value: true, ..Default::default() };
    assert_eq!(s.refused(put_with(both_wrong)), EtcdError::LeaseNotFound);

    // no prev_kv unless asked
    let (_, outcome) = s.ok(put("k", "v4"));
    assert!(matches!(outcome, Outcome::Put(p) if p.prev_kv.is_none()));
}

#[test]
fn delete_range_with_prev_kvs() {
    let mut s = TestStore::new();
    for k in ["a/1", "a/2", "b"] {
        s.ok(put(k, "x"));
    }
    let (rev, outcome) = s.ok(crate::proto::rafttypb::Command {
        op: Some(crate::proto::rafttypb::command::Op::DeleteRange(crate::proto::etcdserverpb::DeleteRangeRequest {
            prev_kv: true,
            ..del_req("a/", "a0")
        })),
        user: String::new(),
    });
    assert_eq!(rev, 5);
    let Outcome::DeleteRange(d) = outcome else { panic!() };
    assert_eq!(d.deleted, 2);
    assert_eq!(d.prev_kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(), [b("a/1"), b("a/2")]);
    assert_eq!(s.keys(range_req("\0", "\0")), ["b"]);
    // every key from "a" on
    s.ok(del("a", "\0"));
    assert!(s.keys(range_req("\0", "\0")).is_empty());
}

#[test]
fn txn_compares() {
    let mut s = TestStore::new();
    s.ok(grant(5, 60));
    s.ok(put_with(PutRequest { lease: 5, ..put_req("k", "m") })); // rev 2
    s.ok(put("k", "m")); // rev 3, version 2, no lease
    let check = |s: &mut TestStore, compare| {
        let t = TxnRequest { compare: vec![compare], ..Default::default() };
        txn_resp(s.ok(txn(t)).1).succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(check(&mut s, cmp("k", Value, Equal, TargetUnion::Value(b("m")))));
    assert!(check(&mut s, cmp("k", Value, Greater, TargetUnion::Value(b("l")))));
    assert!(check(&mut s, cmp("k", Value, Less, TargetUnion::Value(b("n")))));
    assert!(check(&mut s, cmp("k", Value, NotEqual, TargetUnion::Value(b("x")))));
    assert!(check(&mut s, cmp("k", Version, Equal, TargetUnion::Version(2))));
    assert!(check(&mut s, cmp("k", Create, Equal, TargetUnion::CreateRevision(2))));
    assert!(check(&mut s, cmp("k", Mod, Greater, TargetUnion::ModRevision(2))));
    assert!(check(&mut s, cmp("k", Lease, Equal, TargetUnion::Lease(0))));
    assert!(!check(&mut s, cmp("k", Lease, Equal, TargetUnion::Lease(5))));
    // a missing key: VALUE always fails, the rest compare with zero
    assert!(!check(&mut s, cmp("nope", Value, Equal, TargetUnion::Value(Bytes::new()))));
    assert!(!check(&mut s, cmp("nope", Value, NotEqual, TargetUnion::Value(b("x")))));
    assert!(check(&mut s, mod_eq("nope", 0)));
    assert!(check(&mut s, cmp("nope", Version, Less, TargetUnion::Version(1))));
    // a target union of the wrong kind compares with zero
    assert!(check(&mut s, cmp("k", Version, Greater, TargetUnion::ModRevision(100))));
    // with a range end, every key in the range must match
    s.ok(put("k2", "m"));
    let mut ranged = value_eq("k", "m");
    ranged.range_end = b("k3");
    assert!(check(&mut s, ranged.clone()));
    s.ok(put("k2", "other"));
    assert!(!check(&mut s, ranged));
}

#[test]
fn txn_branches_nesting_and_reads_of_own_writes() {
    let mut s = TestStore::new();
    s.ok(put("k", "v")); // rev 2
    // Kubernetes' update: MOD(k) == rev -> put, else range
    let update = |rev| TxnRequest {
        compare: vec![mod_eq("k", rev)],
        success: vec![op_put("k", "new"), op_range(get_req("k"))],
        failure: vec![op_range(get_req("k"))],
    };
    let resp = txn_resp(s.ok(txn(update(99))).1);
    assert!(!resp.succeeded);
    let Some(Response::ResponseRange(r)) = &resp.responses[0].response else { panic!() };
    assert_eq!(&r.kvs[0].value[..], b"v");
    assert_eq!(s.store.current_revision(), 2);

    let resp = txn_resp(s.ok(txn(update(2))).1);
    assert!(resp.succeeded);
    let Some(Response::ResponseRange(r)) = &resp.responses[1].response else { panic!() };
    assert_eq!(&r.kvs[0].value[..], b"new", "a range after a put in the same txn sees it");
    assert_eq!(r.header.as_ref().unwrap().revision, 3);

    // nested compares are evaluated before any op runs: the inner MOD(k)==3 holds
    // although the outer txn changes k first
    let nested = TxnRequest {
        compare: vec![],
        success: vec![
            op_put("k", "outer"),
            op_txn(TxnRequest {
                compare: vec![mod_eq("k", 3)],
                success: vec![op_put("inner", "yes")],
                failure: vec![],
            }),
        ],
        failure: vec![],
    };
    let resp = txn_resp(s.ok(txn(nested)).1);
    let Some(Response::ResponseTxn(inner)) = &resp.responses[1].response else { panic!() };
    assert!(inner.succeeded);
    assert_eq!(inner.header, Some(Default::default()), "etcd gives nested txns an empty header");
    assert_eq!(s.get("inner").unwrap().mod_revision, 4);
    assert_eq!(s.get("k").unwrap().mod_revision, 4);
}

#[test]
fn a_txn_that_fails_its_checks_applies_nothing() {
    let mut s = TestStore::new();
    s.ok(put("k", "v"));
    let bad_lease =
        TxnRequest { success: vec![op_put("a", "1"), op_range(get_req("k")), op_put("b", "2")], ..Default::default() };
    let mut with_lease = bad_lease.clone();
    if let Some(crate::proto::etcdserverpb::request_op::Request::RequestPut(p)) = &mut with_lease.success[2].request {
        p.lease = 42;
    }
    assert_eq!(s.refused(txn(with_lease)), EtcdError::LeaseNotFound);
    assert!(s.get("a").is_none());
    assert_eq!(s.store.current_revision(), 2);

    let future_read = TxnRequest {
        success: vec![op_put("a", "1"), op_range(RangeRequest { revision: 3, ..get_req("k") })],
        ..Default::default()
    };
    assert_eq!(s.refused(txn(future_read)), EtcdError::FutureRevision);
    assert!(s.get("a").is_none());

    // the put checks come first, then the range checks
    let both = TxnRequest {
        success: vec![
            op_range(RangeRequest { revision: 30, ..get_req("k") }),
            crate::proto::etcdserverpb::RequestOp {
                request: Some(crate::proto::etcdserverpb::request_op::Request::RequestPut(PutRequest {
                    key: b("missing"),
                    ignore_value: true,
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    assert_eq!(s.refused(txn(both)), EtcdError::KeyNotFound);

    // only the branch taken is checked
    let other_branch = TxnRequest {
        compare: vec![value_eq("k", "v")],
        success: vec![op_put("a", "1")],
        failure: vec![op_range(RangeRequest { revision: 30, ..get_req("k") })],
    };
    s.ok(txn(other_branch));
    assert!(s.get("a").is_some());
}

#[test]
fn a_txn_refused_half_way_is_rolled_back() {
    // etcd 3.4 lets a "from key" delete and an ignore_value put of a key it deletes through
    // its checks, then crashes applying it; raftty refuses the whole txn instead
    let mut s = TestStore::new();
    s.ok(grant(1, 60));
    s.ok(put_with(PutRequest { lease: 1, ..put_req("b", "old") }));
    let t = TxnRequest {
        success: vec![
            op_del("a", "\0"),
            crate::proto::etcdserverpb::RequestOp {
                request: Some(crate::proto::etcdserverpb::request_op::Request::RequestPut(PutRequest {
                    key: b("b"),
                    ignore_value: true,
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    let mut feed = s.store.subscribe();
    assert_eq!(s.refused(txn(t)), EtcdError::KeyNotFound);
    assert_eq!(s.store.current_revision(), 2);
    assert_eq!(&s.get("b").unwrap().value[..], b"old");
    assert_eq!(s.store.lease(1).unwrap().keys, vec![b("b")], "the lease keeps its key");
    assert!(feed.try_recv().is_err(), "nothing was published");
    let reopened = s.reopen();
    assert_eq!(&reopened.get("b").unwrap().value[..], b"old", "nothing reached the file either");
}

#[test]
fn read_only_txns_are_served_locally() {
    let mut s = TestStore::new();
    s.ok(put("k", "v"));
    let t = TxnRequest { compare: vec![value_eq("k", "v")], success: vec![op_range(get_req("k"))], failure: vec![] };
    let served = s.store.txn_read(&t).unwrap();
    assert!(served.0.succeeded);
    assert_eq!(served.1, 2);
    let writes = TxnRequest { success: vec![op_put("k", "x")], ..Default::default() };
    assert!(matches!(s.store.txn_read(&writes), Err(EtcdError::Internal(_))));
}

#[test]
fn compaction_rules() {
    let mut s = TestStore::new();
    s.ok(put("a", "1")); // 2
    s.ok(put("a", "2")); // 3
    s.ok(put("gone", "x")); // 4
    s.ok(del("gone", "")); // 5
    s.ok(put("a", "3")); // 6

    let future = s.refused(compact(7));
    assert_eq!(future, EtcdError::FutureRevision);
    let (rev, _) = s.ok(compact(5));
    assert_eq!(rev, 6, "compaction does not create a revision");
    assert_eq!(s.store.compact_revision(), 5);
    assert_eq!(s.refused(compact(5)), EtcdError::Compacted);
    assert_eq!(s.refused(compact(4)), EtcdError::Compacted);

    // at 5, a was "2" (rev 3) and gone was deleted: only a@3 and later survive
    let at5 = s.store.range(&RangeRequest { revision: 5, ..range_req("\0", "\0") }).unwrap().0;
    assert_eq!(at5.kvs.len(), 1);
    assert_eq!(&at5.kvs[0].value[..], b"2");
    assert_eq!(s.store.events(6, 6).unwrap()[0].events[0].prev_kv.as_ref().map(|kv| kv.mod_revision), Some(3));
    assert_eq!(s.store.events(5, 6).unwrap_err(), EtcdError::Compacted);
    // the tombstone and everything before it are gone from the file too
    let s = s.reopen();
    assert_eq!(s.store.compact_revision(), 5);
    let snap = s.store.snapshot().unwrap();
    let mut stored = Vec::new();
    snap.for_each_revision::<StoreError>(|rev, _| {
        stored.push(rev.main);
        Ok(())
    })
    .unwrap();
    assert_eq!(stored, [3, 6]);
}

#[test]
fn leases_grant_revoke_checkpoint() {
    let mut s = TestStore::new();
    let (rev, outcome) = s.ok(grant(0x10, 1));
    assert_eq!(rev, 1, "leases do not create revisions");
    assert!(matches!(outcome, Outcome::LeaseGrant(g) if g.id == 0x10 && g.ttl == 2), "TTLs are raised to the minimum");
    let exists = s.refused(grant(0x10, 60));
    assert_eq!(exists, EtcdError::LeaseExists);
    assert_eq!(exists.to_string(), "etcdserver: lease already exists");
    let too_large = s.refused(grant(0x11, 9_000_000_001));
    assert_eq!(too_large, EtcdError::LeaseTtlTooLarge);
    assert_eq!(too_large.to_string(), "etcdserver: too large lease TTL");
    s.ok(grant(0x11, 9_000_000_000));

    for k in ["z", "m", "a"] {
        s.ok(put_with(PutRequest { lease: 0x10, ..put_req(k, "v") }));
    }
    s.ok(put("unleased", "v"));
    assert_eq!(s.store.lease(0x10).unwrap().keys, [b("a"), b("m"), b("z")]);
    assert_eq!(s.store.lease_ids(), [0x10, 0x11]);

    s.ok(checkpoint(0x10, 1));
    s.ok(checkpoint(0x999, 5)); // unknown leases are skipped
    assert_eq!(s.store.lease(0x10).unwrap().remaining_ttl, 1);

    let mut feed = s.store.subscribe();
    let (rev, _) = s.ok(revoke(0x10));
    assert_eq!(rev, 6, "all the lease's keys go in one revision");
    let WatchFeed::Revision(events) = feed.try_recv().unwrap() else { panic!() };
    let deleted: Vec<_> = events.events.iter().map(|e| e.kv.as_ref().unwrap().key.clone()).collect();
    assert_eq!(deleted, [b("a"), b("m"), b("z")], "in key order");
    assert!(events.events.iter().all(|e| e.r#type == EventType::Delete as i32 && e.prev_kv.is_some()));
    assert_eq!(s.keys(range_req("\0", "\0")), ["unleased"]);
    assert!(s.store.lease(0x10).is_none());
    assert_eq!(s.refused(revoke(0x10)), EtcdError::LeaseNotFound);

    // a lease without keys: no revision
    assert_eq!(s.ok(revoke(0x11)).0, 6);
}

#[test]
fn leases_and_attachments_survive_a_restart() {
    let mut s = TestStore::new();
    s.ok(grant(3, 30));
    s.ok(put_with(PutRequest { lease: 3, ..put_req("a", "1") }));
    s.ok(put_with(PutRequest { lease: 3, ..put_req("b", "1") }));
    s.ok(put("b", "2")); // detached
    s.ok(checkpoint(3, 12));
    let s = s.reopen();
    let lease = s.store.lease(3).unwrap();
    assert_eq!((lease.ttl, lease.remaining_ttl, lease.keys), (30, 12, vec![b("a")]));
}

#[test]
fn hash_kv_agrees_between_identical_histories() {
    let mut one = TestStore::new();
    let mut two = TestStore::new();
    let script = [put("a", "1"), put("b", "2"), del("a", ""), put("c", "3"), compact(3), put("b", "4")];
    for cmd in &script {
        one.apply(cmd.clone());
        two.apply(cmd.clone());
    }
    let h1 = one.store.hash_kv(0).unwrap();
    assert_eq!(h1, two.store.hash_kv(0).unwrap());
    assert_eq!((h1.hash_revision, h1.compact_revision, h1.revision), (6, 3, 6));
    assert_eq!(one.store.hash_kv(5).unwrap(), two.store.hash_kv(5).unwrap());
    assert_ne!(one.store.hash_kv(5).unwrap().hash, h1.hash);

    two.apply(put("b", "different"));
    one.apply(put("b", "other"));
    assert_ne!(one.store.hash_kv(0).unwrap().hash, two.store.hash_kv(0).unwrap().hash);
    assert_eq!(one.store.hash_kv(6).unwrap().hash, h1.hash, "a hash at an old revision ignores later writes");

    assert_eq!(one.store.hash_kv(3).unwrap_err(), EtcdError::Compacted, "at the compaction point is refused");
    assert_eq!(one.store.hash_kv(8).unwrap_err(), EtcdError::FutureRevision);
    // the hash does not depend on whether a record was reloaded from the file
    let h = one.store.hash_kv(0).unwrap();
    let one = one.reopen();
    assert_eq!(one.store.hash_kv(0).unwrap(), h);
}

#[test]
fn watch_history_carries_prev_kv() {
    let mut s = TestStore::new();
    s.ok(put("k", "1")); // 2
    s.ok(put("k", "2")); // 3
    s.ok(del("k", "")); // 4
    let history = s.store.events(1, 100).unwrap();
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(history[0].events[0].prev_kv.is_none());
    assert_eq!(&history[1].events[0].prev_kv.as_ref().unwrap().value[..], b"1");
    let delete = &history[2].events[0];
    assert_eq!(delete.r#type, EventType::Delete as i32);
    assert_eq!(delete.kv.as_ref().unwrap().mod_revision, 4);
    assert_eq!(&delete.prev_kv.as_ref().unwrap().value[..], b"2");
}

#[test]
fn state_survives_a_clean_reopen() {
    let mut s = TestStore::new();
    s.ok(put("a", "1"));
    s.ok(grant(9, 100));
    s.ok(compact(2));
    s.ok(put("b", "2"));
    let before =
        (s.store.current_revision(), s.store.compact_revision(), s.store.applied_state(), s.store.hash_kv(0).unwrap());
    let s = s.reopen();
    let after =
        (s.store.current_revision(), s.store.compact_revision(), s.store.applied_state(), s.store.hash_kv(0).unwrap());
    assert_eq!(before, after);
    assert_eq!(after.2.last_applied.unwrap().index, 4);
    assert!(s.store.db_size_bytes() > 0);
}

#[test]
fn a_crash_never_leaves_the_applied_id_ahead_of_the_data() {
    let mut s = TestStore::new();
    s.store.set_durable_interval(std::time::Duration::from_secs(3600));
    for i in 0..5 {
        s.ok(put(&format!("k{i}"), "v"));
    }
    s.store.flush().unwrap();
    for i in 5..10 {
        s.ok(put(&format!("k{i}"), "v"));
    }
    // what a crash leaves: the file as it is on disk right now, without the clean close
    // that would make the last commits durable
    let crashed = tempfile::tempdir().unwrap();
    let copy = crashed.path().join(STATE_FILE);
    std::fs::copy(s.dir.path().join(STATE_FILE), &copy).unwrap();
    let after = MvccStore::open(&copy, IDENTITY).unwrap();
    let applied = after.applied_state().last_applied.unwrap().index;
    let keys = after.range(&range_req("\0", "\0")).unwrap().0.count;
    assert_eq!(applied, 5, "the non-durable batches are gone");
    assert_eq!(keys as u64, applied, "the applied id describes exactly the data there");
    assert_eq!(after.current_revision(), 6);
}

#[test]
fn a_foreign_or_damaged_state_file_is_refused_and_left_alone() {
    let s = TestStore::new();
    let path = s.dir.path().join(STATE_FILE);
    drop(s.store);
    let bytes_before = std::fs::read(&path).unwrap();

    let other_member = StoreIdentity { member_id: 0xb2, ..IDENTITY };
    let err = MvccStore::open(&path, other_member).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Foreign { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("member a1 of cluster c1") && msg.contains("member b2 of cluster c1"), "{msg}");
    let other_cluster = StoreIdentity { cluster_id: 0xc2, ..IDENTITY };
    assert!(matches!(MvccStore::open(&path, other_cluster), Err(StoreError::Foreign { .. })));
    assert!(std::fs::read(&path).unwrap() == bytes_before, "nothing was written");

    let garbage = s.dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"this is not a database, but someone's notes").unwrap();
    let err = MvccStore::open(&garbage, IDENTITY).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("garbage.redb"), "{msg}");
    assert!(std::fs::read(&garbage).unwrap() == b"this is not a database, but someone's notes");

    // a redb file that is not a raftty state file
    let alien = s.dir.path().join("alien.redb");
    drop(redb::Database::create(&alien).unwrap());
    let err = MvccStore::open(&alien, IDENTITY).unwrap_err();
    assert!(err.to_string().contains("not a raftty state file"), "{err}");
}

#[test]
fn the_same_commands_give_the_same_results_and_history_in_one_batch_or_many() {
    let script = [
        put("a", "1"),
        grant(1, 10),
        put_with(PutRequest { lease: 1, ..put_req("b", "2") }),
        txn(TxnRequest {
            compare: vec![value_eq("a", "1")],
            success: vec![op_put("c", "3"), op_del("a", "")],
            failure: vec![],
        }),
        put_with(PutRequest { key: b("zz"), ignore_value: true, ..Default::default() }),
        revoke(1),
        compact(3),
        put("d", "4"),
    ];
    let mut one_by_one = TestStore::new();
    let singles: Vec<_> = script.iter().map(|c| one_by_one.apply(c.clone())).collect();
    let batched = TestStore::new();
    let results = batched.store.apply(script.iter(), &applied_at(8)).unwrap();
    assert_eq!(singles, results);
    assert_eq!(one_by_one.store.hash_kv(0).unwrap(), batched.store.hash_kv(0).unwrap());
}

#[test]
fn empty_requests_are_refused_by_reads_and_writes() {
    let mut s = TestStore::new();
    assert_eq!(s.store.range(&RangeRequest::default()).unwrap_err(), EtcdError::EmptyKey);
    assert_eq!(s.refused(put("", "v")), EtcdError::EmptyKey);
    assert_eq!(
        s.refused(crate::proto::rafttypb::Command { op: None, user: String::new() }).code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(s.store.current_revision(), 1);
}

#[test]
fn a_restore_replaces_everything_and_tells_watchers() {
    let mut source = TestStore::new();
    source.ok(grant(4, 40));
    source.ok(put_with(PutRequest { lease: 4, ..put_req("a", "1") }));
    source.ok(put("b", "1"));
    source.ok(compact(2));
    let snap = source.store.snapshot().unwrap();
    let mut items = Vec::new();
    snap.for_each_revision::<StoreError>(|rev, record| {
        items.push(Ok(crate::node::mvcc::RestoreItem::Revision(rev, record)));
        Ok(())
    })
    .unwrap();
    items.extend(snap.leases().unwrap().into_iter().map(|l| Ok(crate::node::mvcc::RestoreItem::Lease(l))));

    let mut target = TestStore::new();
    target.ok(put("old", "x"));
    let mut feed = target.store.subscribe();
    target.store.restore(snap.state(), items).unwrap();
    assert!(matches!(feed.try_recv().unwrap(), WatchFeed::Restored { revision: 3, compact_revision: 2 }));
    assert_eq!(target.store.hash_kv(0).unwrap(), source.store.hash_kv(0).unwrap());
    assert_eq!(target.keys(range_req("\0", "\0")), ["a", "b"]);
    assert_eq!(target.store.lease(4).unwrap().keys, [b("a")]);
    assert_eq!(target.store.applied_state(), source.store.applied_state());
    let target = target.reopen();
    assert_eq!(target.store.hash_kv(0).unwrap(), source.store.hash_kv(0).unwrap());

    // a broken stream changes nothing
    let before = target.store.hash_kv(0).unwrap();
    let broken = vec![Err(StoreError::damaged(std::path::Path::new("x"), "cut short"))];
    assert!(target.store.restore(snap.state(), broken).is_err());
    assert_eq!(target.store.hash_kv(0).unwrap(), before);
}

#[test]
fn readers_never_see_half_a_batch_or_a_compacted_record() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::Ordering;

    let s = TestStore::new();
    let store = Arc::new(s.store);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    // both keys are always written together: a consistent view has them equal
                    let served = store.range(&range_req("a", "c")).expect("read current");
                    let values: Vec<_> = served.0.kvs.iter().map(|kv| kv.value.clone()).collect();
                    assert!(values.is_empty() || (values.len() == 2 && values[0] == values[1]), "{values:?}");
                    // an old revision is either readable or compacted, never missing
                    let old = served.1 - 3;
                    match store.range(&RangeRequest { revision: old.max(1), ..range_req("a", "c") }) {
                        Ok(r) => assert!(r.0.kvs.len() != 1, "half a revision at {old}"),
                        Err(e) => assert_eq!(e, EtcdError::Compacted),
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut applied = 0;
    for i in 0..400i64 {
        let both = TxnRequest {
            success: vec![op_put("a", &i.to_string()), op_put("b", &i.to_string())],
            ..Default::default()
        };
        let mut batch = vec![txn(both)];
        if i % 10 == 9 {
            batch.push(compact(store.current_revision() - 1));
        }
        applied += batch.len() as u64;
        store.apply(batch.iter(), &applied_at(applied)).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
}

fn alarm(action: AlarmAction, member_id: u64) -> Command {
    Command {
        op: Some(Op::Alarm(AlarmRequest { action: action as i32, member_id, alarm: AlarmType::Nospace as i32 })),
        user: String::new(),
    }
}

#[test]
fn a_nospace_alarm_stops_growth_until_disarmed_and_survives_a_reopen() {
    let mut s = TestStore::new();
    s.ok(put("a", "1"));
    s.ok(alarm(AlarmAction::Activate, 0xa1));
    assert_eq!(s.refused(put("b", "2")), EtcdError::NoSpace);
    assert_eq!(s.refused(grant(5, 100)), EtcdError::NoSpace);
    assert_eq!(
        s.refused(txn(TxnRequest { success: vec![op_put("c", "3")], ..Default::default() })),
        EtcdError::NoSpace
    );
    // the ways out still work
    s.ok(del("a", ""));
    s.ok(compact(2));
    let mut s = s.reopen();
    assert_eq!(s.store.alarms().len(), 1, "the alarm is part of the stored state");
    assert_eq!(s.refused(put("b", "2")), EtcdError::NoSpace);
    s.ok(alarm(AlarmAction::Deactivate, 0xa1));
    s.ok(put("b", "2"));
    assert_eq!(s.get("b").unwrap().value, b("2"));
}

#[test]
fn defragmenting_after_a_compaction_gives_the_space_back() {
    let mut s = TestStore::new();
    let big = "x".repeat(64 * 1024);
    for i in 0..64 {
        s.ok(put(&format!("k{i}"), &big));
    }
    let (revision, _) = s.ok(del("k", "l"));
    s.ok(compact(revision));
    s.store.flush().unwrap();
    let grown = s.store.db_size_bytes();
    let done = s.store.defragment(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(done.before, grown);
    assert!(
        done.after * 4 < grown,
        "4 MiB of values were compacted away, yet the file went from {grown} to {} bytes",
        done.after
    );
    assert_eq!(s.store.current_revision(), revision, "defragmenting changes no data");
    let mut s = s.reopen();
    s.ok(put("after", "1"));
    assert_eq!(s.get("after").unwrap().value, b("1"));
}

/// A write proposed on behalf of a user is checked again when applied: a permission revoked
/// while the entry waited in the log is honoured, on every member alike.
#[test]
fn a_write_is_checked_again_against_the_permissions_it_is_applied_under() {
    use crate::proto::authpb::Permission;
    use crate::proto::authpb::permission::Type;
    use crate::proto::etcdserverpb::*;
    let mut s = TestStore::new();
    let auth = |op: Op| Command { op: Some(op), user: String::new() };
    let as_alice = |cmd: Command| Command { user: "alice".into(), ..cmd };
    for op in [
        Op::UserAdd(AuthUserAddRequest { name: "root".into(), password: "$2b$hash".into(), options: None }),
        Op::UserGrantRole(AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() }),
        Op::UserAdd(AuthUserAddRequest { name: "alice".into(), password: "$2b$hash".into(), options: None }),
        Op::RoleAdd(AuthRoleAddRequest { name: "apps".into() }),
        Op::RoleGrantPermission(AuthRoleGrantPermissionRequest {
            name: "apps".into(),
            perm: Some(Permission { perm_type: Type::Readwrite as i32, key: b("/a/"), range_end: b("/a0") }),
        }),
        Op::UserGrantRole(AuthUserGrantRoleRequest { user: "alice".into(), role: "apps".into() }),
    ] {
        s.ok(auth(op));
    }
    // While auth is off, the user in a command decides nothing.
    s.ok(as_alice(put("/b/x", "1")));
    s.ok(auth(Op::AuthEnable(AuthEnableRequest {})));
    s.ok(as_alice(put("/a/x", "1")));
    assert_eq!(s.refused(as_alice(put("/b/x", "2"))), EtcdError::PermissionDenied);
    assert_eq!(s.refused(as_alice(del("/a/", "/c"))), EtcdError::PermissionDenied, "a range reaching past /a/");
    let crossing = TxnRequest { success: vec![op_put("/a/y", "1"), op_put("/b/y", "1")], ..Default::default() };
    assert_eq!(s.refused(as_alice(txn(crossing))), EtcdError::PermissionDenied, "refused as a whole");
    assert!(s.get("/a/y").is_none());
    let grant_role = Op::RoleAdd(AuthRoleAddRequest { name: "mine".into() });
    assert_eq!(s.refused(as_alice(auth(grant_role.clone()))), EtcdError::PermissionDenied, "admin changes need root");
    s.ok(Command { user: "root".into(), ..auth(grant_role) });

    // The revoke is applied before alice's put, which was checked when it was proposed.
    s.ok(auth(Op::RoleRevokePermission(AuthRoleRevokePermissionRequest {
        role: "apps".into(),
        key: b("/a/"),
        range_end: b("/a0"),
    })));
    assert_eq!(s.refused(as_alice(put("/a/x", "2"))), EtcdError::PermissionDenied);
    assert_eq!(s.get("/a/x").unwrap().value, b("1"));
}
