//! Bad input: a table of invalid or unusual requests, each answered with etcd's gRPC code
//! and message, none crashing or wedging a member. When an `etcd` binary is installed the
//! same table also runs against a real etcd, and raftty must answer exactly as it does.

mod common;

use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use raftty::client::EtcdClient;
use raftty::pki::CertFiles;
use raftty::proto::etcdserverpb::compare::CompareResult;
use raftty::proto::etcdserverpb::compare::CompareTarget;
use raftty::proto::etcdserverpb::compare::TargetUnion;
use raftty::proto::etcdserverpb::*;
use tonic::Code;

/// What a case must get back: success, or exactly this code and message.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Ok,
    Err(Code, &'static str),
}

type Call = for<'a> fn(&'a mut EtcdClient) -> BoxFuture<'a, Result<(), tonic::Status>>;

struct Case {
    name: &'static str,
    call: Call,
    expect: Expect,
}

/// Requests that make etcd 3.4 itself panic: raftty must answer them, but they are not
/// sent to the real etcd the table is compared with.
const ETCD_PANICS_ON: &[&str] = &["range with an unknown sort target"];

fn put(key: &[u8], value: &[u8]) -> PutRequest {
    PutRequest { key: key.to_vec().into(), value: value.to_vec().into(), ..Default::default() }
}

fn put_op(key: &[u8]) -> RequestOp {
    RequestOp { request: Some(request_op::Request::RequestPut(put(key, b"v"))) }
}

fn delete_op(key: &[u8], end: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.to_vec().into(),
            range_end: end.to_vec().into(),
            ..Default::default()
        })),
    }
}

fn ops(n: usize) -> Vec<RequestOp> {
    (0..n).map(|i| put_op(format!("k{i}").as_bytes())).collect()
}

macro_rules! call {
    ($c:ident, $svc:ident . $method:ident ( $req:expr )) => {
        Box::pin(async move { $c.$svc.$method($req).await.map(|_| ()) })
    };
}

const TOO_LARGE: usize = 1024 * 1024 + 600 * 1024;
const LEASE_NOT_FOUND: Expect = Expect::Err(Code::NotFound, "etcdserver: requested lease not found");
const EMPTY_KEY: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: key is not provided");
const TOO_MANY_OPS: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: too many operations in txn request");
const DUPLICATE: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: duplicate key given in txn request");
const FUTURE: Expect = Expect::Err(Code::OutOfRange, "etcdserver: mvcc: required revision is a future revision");
const COMPACTED: Expect = Expect::Err(Code::OutOfRange, "etcdserver: mvcc: required revision has been compacted");

fn cases() -> Vec<Case> {
    vec![
        Case { name: "put with an empty key", call: |c| call!(c, kv.put(put(b"", b"v"))), expect: EMPTY_KEY },
        Case {
            name: "range with an empty key",
            call: |c| call!(c, kv.range(RangeRequest::default())),
            expect: EMPTY_KEY,
        },
        Case {
            name: "delete with an empty key",
            call: |c| call!(c, kv.delete_range(DeleteRangeRequest::default())),
            expect: EMPTY_KEY,
        },
        Case {
            name: "put over 1.5 MiB",
            call: |c| call!(c, kv.put(put(b"big", &vec![b'x'; TOO_LARGE]))),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: request is too large"),
        },
        Case {
            name: "txn over 1.5 MiB",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        success: vec![RequestOp {
                            request: Some(request_op::Request::RequestPut(put(b"big", &vec![b'x'; TOO_LARGE])))
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: request is too large"),
        },
        Case {
            name: "put with a value and ignore_value",
            call: |c| call!(c, kv.put(PutRequest { ignore_value: true, ..put(b"k", b"v") })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: value is provided"),
        },
        Case {
            name: "put with a lease and ignore_lease",
            call: |c| call!(c, kv.put(PutRequest { ignore_lease: true, lease: 7, ..put(b"k", b"v") })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: lease is provided"),
        },
        Case {
            name: "ignore_value on a missing key",
            call: |c| call!(c, kv.put(PutRequest { ignore_value: true, ..put(b"missing", b"") })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: key not found"),
        },
        Case {
            name: "ignore_lease on a missing key",
            call: |c| call!(c, kv.put(PutRequest { ignore_lease: true, ..put(b"missing", b"v") })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: key not found"),
        },
        Case {
            name: "put with an unknown lease",
            call: |c| call!(c, kv.put(PutRequest { lease: 0x1234, ..put(b"k", b"v") })),
            expect: LEASE_NOT_FOUND,
        },
        Case {
            name: "txn with 129 operations",
            call: |c| call!(c, kv.txn(TxnRequest { success: ops(129), ..Default::default() })),
            expect: TOO_MANY_OPS,
        },
        Case {
            name: "txn with 129 compares",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        compare: (0..129)
                            .map(|i| Compare { key: format!("k{i}").into_bytes().into(), ..Default::default() })
                            .collect(),
                        ..Default::default()
                    })
                )
            },
            expect: TOO_MANY_OPS,
        },
        Case {
            name: "txn with a compare on an empty key",
            call: |c| call!(c, kv.txn(TxnRequest { compare: vec![Compare::default()], ..Default::default() })),
            expect: EMPTY_KEY,
        },
        Case {
            name: "txn putting one key twice",
            call: |c| {
                call!(c, kv.txn(TxnRequest { success: vec![put_op(b"dup"), put_op(b"dup")], ..Default::default() }))
            },
            expect: DUPLICATE,
        },
        Case {
            name: "txn putting inside a range it deletes",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest { success: vec![delete_op(b"a", b"c"), put_op(b"b")], ..Default::default() })
                )
            },
            expect: DUPLICATE,
        },
        Case {
            name: "txn with a put of an empty key",
            call: |c| call!(c, kv.txn(TxnRequest { success: vec![put_op(b"")], ..Default::default() })),
            expect: EMPTY_KEY,
        },
        Case {
            name: "nested txns over the op limit",
            call: |c| {
                let inner = TxnRequest { success: ops(120), ..Default::default() };
                let outer = TxnRequest {
                    success: vec![
                        RequestOp { request: Some(request_op::Request::RequestTxn(inner)) },
                        put_op(b"x"),
                        put_op(b"y"),
                        put_op(b"z"),
                    ]
                    .into_iter()
                    .chain(ops(126).into_iter().skip(120))
                    .collect(),
                    ..Default::default()
                };
                call!(c, kv.txn(outer))
            },
            expect: TOO_MANY_OPS,
        },
        Case {
            name: "txn with a put under an unknown lease",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        success: vec![RequestOp {
                            request: Some(request_op::Request::RequestPut(PutRequest { lease: 99, ..put(b"k", b"v") }))
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: LEASE_NOT_FOUND,
        },
        Case {
            name: "txn reading a future revision",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        success: vec![RequestOp {
                            request: Some(request_op::Request::RequestRange(RangeRequest {
                                key: "k".into(),
                                revision: 1_000_000,
                                ..Default::default()
                            }))
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: FUTURE,
        },
        Case {
            name: "range at a future revision",
            call: |c| call!(c, kv.range(RangeRequest { key: "k".into(), revision: 1_000_000, ..Default::default() })),
            expect: FUTURE,
        },
        Case {
            name: "range at a compacted revision",
            call: |c| call!(c, kv.range(RangeRequest { key: "k".into(), revision: 2, ..Default::default() })),
            expect: COMPACTED,
        },
        Case {
            name: "compact to a future revision",
            call: |c| call!(c, kv.compact(CompactionRequest { revision: 1_000_000, physical: false })),
            expect: FUTURE,
        },
        Case {
            name: "compact to an old revision",
            call: |c| call!(c, kv.compact(CompactionRequest { revision: 2, physical: false })),
            expect: COMPACTED,
        },
        Case {
            name: "compact to a negative revision",
            call: |c| call!(c, kv.compact(CompactionRequest { revision: -5, physical: false })),
            expect: COMPACTED,
        },
        Case {
            name: "HashKV at a future revision",
            call: |c| call!(c, maintenance.hash_kv(HashKvRequest { revision: 1_000_000 })),
            expect: FUTURE,
        },
        Case {
            name: "range with a negative revision reads the current one",
            call: |c| call!(c, kv.range(RangeRequest { key: "k".into(), revision: -3, ..Default::default() })),
            expect: Expect::Ok,
        },
        Case {
            name: "range whose end sorts before its key",
            call: |c| call!(c, kv.range(RangeRequest { key: "z".into(), range_end: "a".into(), ..Default::default() })),
            expect: Expect::Ok,
        },
        Case {
            name: "delete whose end sorts before its key",
            call: |c| {
                call!(
                    c,
                    kv.delete_range(DeleteRangeRequest {
                        key: "z".into(),
                        range_end: "a".into(),
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "range with a negative limit",
            call: |c| {
                call!(
                    c,
                    kv.range(RangeRequest { key: "a".into(), range_end: "\0".into(), limit: -1, ..Default::default() })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "range with an unknown sort order",
            call: |c| {
                call!(
                    c,
                    kv.range(RangeRequest {
                        key: "a".into(),
                        range_end: "\0".into(),
                        sort_order: 9,
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "range with an unknown sort target",
            call: |c| {
                call!(
                    c,
                    kv.range(RangeRequest {
                        key: "a".into(),
                        range_end: "\0".into(),
                        sort_target: 9,
                        sort_order: 1,
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "txn with an unknown compare target",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        compare: vec![Compare {
                            key: "k".into(),
                            target: 9,
                            target_union: Some(TargetUnion::Version(1)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "txn with an unknown compare result",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        compare: vec![Compare {
                            key: "k".into(),
                            result: 9,
                            target: CompareTarget::Version as i32,
                            target_union: Some(TargetUnion::Version(1)),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "txn compare without a value to compare with",
            call: |c| {
                call!(
                    c,
                    kv.txn(TxnRequest {
                        compare: vec![Compare {
                            key: "k".into(),
                            result: CompareResult::Equal as i32,
                            target: CompareTarget::Value as i32,
                            target_union: None,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                )
            },
            expect: Expect::Ok,
        },
        Case {
            name: "txn with an empty operation",
            call: |c| call!(c, kv.txn(TxnRequest { success: vec![RequestOp { request: None }], ..Default::default() })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: key not found"),
        },
        Case {
            name: "keys that are not UTF-8",
            call: |c| {
                Box::pin(async move {
                    c.kv.put(put(&[0xff, 0xfe, 0x00, 0x80], b"\xc3\x28")).await?;
                    let got =
                        c.kv.range(RangeRequest { key: vec![0xff, 0xfe, 0x00, 0x80].into(), ..Default::default() })
                            .await?;
                    assert_eq!(got.get_ref().kvs[0].value.as_ref(), b"\xc3\x28");
                    Ok(())
                })
            },
            expect: Expect::Ok,
        },
        Case {
            name: "a key of 1 MiB",
            call: |c| call!(c, kv.put(put(&vec![b'k'; 1024 * 1024], b"v"))),
            expect: Expect::Ok,
        },
        Case {
            name: "revoke an unknown lease",
            call: |c| call!(c, lease.lease_revoke(LeaseRevokeRequest { id: 0x4242 })),
            expect: LEASE_NOT_FOUND,
        },
        Case {
            // etcd answers, with a TTL of -1, rather than failing.
            name: "time-to-live of an unknown lease",
            call: |c| {
                Box::pin(async move {
                    let ttl = c.lease.lease_time_to_live(LeaseTimeToLiveRequest { id: 0x4242, keys: true }).await?;
                    assert_eq!(ttl.get_ref().ttl, -1, "{:?}", ttl.get_ref());
                    Ok(())
                })
            },
            expect: Expect::Ok,
        },
        Case {
            name: "grant a lease with a TTL too large",
            call: |c| call!(c, lease.lease_grant(LeaseGrantRequest { ttl: 9_000_000_001, id: 0 })),
            expect: Expect::Err(Code::OutOfRange, "etcdserver: too large lease TTL"),
        },
        Case {
            name: "remove an unknown member",
            call: |c| call!(c, cluster.member_remove(MemberRemoveRequest { id: 0x99 })),
            expect: Expect::Err(Code::NotFound, "etcdserver: member not found"),
        },
        Case {
            name: "promote an unknown member",
            call: |c| call!(c, cluster.member_promote(MemberPromoteRequest { id: 0x99 })),
            expect: Expect::Err(Code::NotFound, "etcdserver: member not found"),
        },
        Case {
            name: "add a member with a malformed peer URL",
            call: |c| {
                call!(
                    c,
                    cluster.member_add(MemberAddRequest { peer_ur_ls: vec!["not a url".into()], is_learner: true })
                )
            },
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: given member URLs are invalid"),
        },
        Case {
            name: "add a member without a peer URL",
            call: |c| call!(c, cluster.member_add(MemberAddRequest { peer_ur_ls: vec![], is_learner: true })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: given member URLs are invalid"),
        },
        // ---- auth: management mistakes while auth is off, then with auth on ----
        Case { name: "add a user with an empty name", call: |c| call!(c, auth.user_add(user(""))), expect: USER_EMPTY },
        Case {
            name: "add a role with an empty name",
            call: |c| call!(c, auth.role_add(AuthRoleAddRequest { name: "".into() })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: role name is empty"),
        },
        Case {
            name: "authenticate while auth is off",
            call: |c| call!(c, auth.authenticate(AuthenticateRequest { name: "x".into(), password: "y".into() })),
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: authentication is not enabled"),
        },
        Case {
            name: "enable auth without a root user",
            call: |c| call!(c, auth.auth_enable(AuthEnableRequest {})),
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: root user does not exist"),
        },
        Case {
            name: "grant a role to an unknown user",
            call: |c| call!(c, auth.user_grant_role(grant("nobody", "reader"))),
            expect: USER_NOT_FOUND,
        },
        Case { name: "add user u", call: |c| call!(c, auth.user_add(user("u"))), expect: Expect::Ok },
        Case {
            name: "add user u again",
            call: |c| call!(c, auth.user_add(user("u"))),
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: user name already exists"),
        },
        Case {
            name: "grant u an unknown role",
            call: |c| call!(c, auth.user_grant_role(grant("u", "nope"))),
            expect: ROLE_NOT_FOUND,
        },
        Case {
            name: "revoke from u a role it never had",
            call: |c| {
                call!(c, auth.user_revoke_role(AuthUserRevokeRoleRequest { name: "u".into(), role: "nope".into() }))
            },
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: role is not granted to the user"),
        },
        Case {
            name: "add role r",
            call: |c| call!(c, auth.role_add(AuthRoleAddRequest { name: "r".into() })),
            expect: Expect::Ok,
        },
        Case {
            name: "add role r again",
            call: |c| call!(c, auth.role_add(AuthRoleAddRequest { name: "r".into() })),
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: role name already exists"),
        },
        Case {
            name: "revoke from r a permission it never had",
            call: |c| {
                call!(
                    c,
                    auth.role_revoke_permission(AuthRoleRevokePermissionRequest {
                        role: "r".into(),
                        key: b"/k".to_vec().into(),
                        range_end: Default::default(),
                    })
                )
            },
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: permission is not granted to the role"),
        },
        Case {
            name: "delete an unknown role",
            call: |c| call!(c, auth.role_delete(AuthRoleDeleteRequest { role: "nope".into() })),
            expect: ROLE_NOT_FOUND,
        },
        Case {
            name: "delete an unknown user",
            call: |c| call!(c, auth.user_delete(AuthUserDeleteRequest { name: "nobody".into() })),
            expect: USER_NOT_FOUND,
        },
        Case {
            name: "get an unknown user",
            call: |c| call!(c, auth.user_get(AuthUserGetRequest { name: "nobody".into() })),
            expect: USER_NOT_FOUND,
        },
        Case {
            name: "get an unknown role",
            call: |c| call!(c, auth.role_get(AuthRoleGetRequest { role: "nope".into() })),
            expect: ROLE_NOT_FOUND,
        },
        Case {
            name: "a malformed token while auth is off",
            call: range_with_a_garbage_token,
            expect: Expect::Err(Code::Unauthenticated, "etcdserver: invalid auth token"),
        },
        Case { name: "add user root", call: |c| call!(c, auth.user_add(user("root"))), expect: Expect::Ok },
        Case {
            name: "enable auth before root has the root role",
            call: |c| call!(c, auth.auth_enable(AuthEnableRequest {})),
            expect: Expect::Err(Code::FailedPrecondition, "etcdserver: root user does not have root role"),
        },
        Case {
            name: "add role root",
            call: |c| call!(c, auth.role_add(AuthRoleAddRequest { name: "root".into() })),
            expect: Expect::Ok,
        },
        Case {
            name: "grant root the root role",
            call: |c| call!(c, auth.user_grant_role(grant("root", "root"))),
            expect: Expect::Ok,
        },
        Case { name: "enable auth", call: |c| call!(c, auth.auth_enable(AuthEnableRequest {})), expect: Expect::Ok },
        Case {
            name: "a malformed token with auth on",
            call: range_with_a_garbage_token,
            expect: Expect::Err(Code::Unauthenticated, "etcdserver: invalid auth token"),
        },
        Case {
            name: "a wrong password",
            call: |c| {
                call!(c, auth.authenticate(AuthenticateRequest { name: "root".into(), password: "wrong".into() }))
            },
            expect: Expect::Err(
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
        },
        Case {
            name: "authenticate as an unknown user",
            call: |c| call!(c, auth.authenticate(AuthenticateRequest { name: "nobody".into(), password: "pw".into() })),
            expect: Expect::Err(
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
        },
        Case {
            name: "delete root while auth is on",
            call: |c| call!(c, auth.user_delete(AuthUserDeleteRequest { name: "root".into() })),
            expect: Expect::Err(Code::InvalidArgument, "etcdserver: invalid auth management"),
        },
        Case {
            name: "read with no token while auth is on: the certificate CN root is the user",
            call: |c| call!(c, kv.range(RangeRequest { key: b"k".to_vec().into(), ..Default::default() })),
            expect: Expect::Ok,
        },
        Case { name: "disable auth", call: |c| call!(c, auth.auth_disable(AuthDisableRequest {})), expect: Expect::Ok },
    ]
}

const USER_EMPTY: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: user name is empty");
const USER_NOT_FOUND: Expect = Expect::Err(Code::FailedPrecondition, "etcdserver: user name not found");
const ROLE_NOT_FOUND: Expect = Expect::Err(Code::FailedPrecondition, "etcdserver: role name not found");

fn user(name: &str) -> AuthUserAddRequest {
    AuthUserAddRequest { name: name.into(), password: "pw".into(), options: None }
}

fn grant(user: &str, role: &str) -> AuthUserGrantRoleRequest {
    AuthUserGrantRoleRequest { user: user.into(), role: role.into() }
}

fn range_with_a_garbage_token(c: &mut EtcdClient) -> BoxFuture<'_, Result<(), tonic::Status>> {
    let request = with_token(RangeRequest { key: b"k".to_vec().into(), ..Default::default() }, "garbage");
    Box::pin(async move { c.kv.range(request).await.map(|_| ()) })
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("token", token.parse().expect("an ASCII token"));
    request
}

/// Prepares a server the same way for every run: some history, then a compaction, so the
/// revision-dependent cases mean the same thing everywhere.
async fn prepare(c: &mut EtcdClient) {
    for i in 0..5 {
        c.kv.put(put(b"k", format!("v{i}").as_bytes())).await.expect("a plain put");
    }
    c.kv.compact(CompactionRequest { revision: 4, physical: true }).await.expect("compaction");
}

async fn answers(endpoint: &str, cert: &CertFiles, skip: &[&str]) -> Vec<(String, Expect)> {
    let mut c = EtcdClient::connect(endpoint, cert, Duration::from_secs(10)).await.unwrap();
    prepare(&mut c).await;
    let mut got = Vec::new();
    for case in cases() {
        if skip.contains(&case.name) {
            continue;
        }
        let answer = match (case.call)(&mut c).await {
            Ok(()) => Expect::Ok,
            Err(s) => Expect::Err(s.code(), Box::leak(s.message().to_string().into_boxed_str())),
        };
        got.push((case.name.to_string(), answer));
    }
    got
}

#[test]
fn invalid_requests_get_etcds_errors_and_crash_nothing() {
    let lab = TestLab::up(3);
    let cert = root_cert(&lab);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let endpoint = lab.client_url("n2");
    let ours = runtime.block_on(answers(&endpoint, &cert, &[]));

    // The same table against a real etcd, when one is installed: same codes, same words.
    let theirs = raftty::proving::bench::etcd::etcd_version().map(|_| {
        let dir = tempfile::tempdir().unwrap();
        let pki = raftty::pki::Pki::open(&lab.pki()).unwrap();
        let etcd = raftty::proving::bench::etcd::EtcdCluster::start(dir.path(), &pki, 1).unwrap();
        let url = runtime.block_on(etcd.wait_ready(&cert, Duration::from_secs(30))).unwrap();
        runtime.block_on(answers(&url, &cert, ETCD_PANICS_ON))
    });
    if let Some(theirs) = &theirs {
        let comparable = ours.iter().filter(|(name, _)| !ETCD_PANICS_ON.contains(&name.as_str()));
        let differences: Vec<String> = comparable
            .zip(theirs)
            .filter(|(a, b)| a.1 != b.1)
            .map(|((name, a), (_, b))| format!("{name}: raftty {a:?}, etcd {b:?}"))
            .collect();
        assert!(differences.is_empty(), "raftty and etcd answer differently:\n{}", differences.join("\n"));
    }

    let expected = cases();
    assert!(expected.len() >= 30, "the table must hold at least 30 cases");
    let mismatches: Vec<String> = ours
        .iter()
        .zip(&expected)
        .filter(|((_, got), case)| *got != case.expect)
        .map(|((name, got), case)| format!("{name}: got {got:?}, want {:?}", case.expect))
        .collect();
    assert!(mismatches.is_empty(), "raftty's answers differ from the table:\n{}", mismatches.join("\n"));

    // No member crashed or stopped answering.
    let status = lab.status();
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "running", "{n}");
        assert!(n.get("error").is_none(), "{n}");
    }
    assert_eq!(lab.etcdctl_ok(&["put", "still", "fine"]).trim(), "OK");
}
