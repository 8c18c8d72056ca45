//! `etcdctl lease ...` and `put --lease` against a lab, unchanged, on the leader and on
//! followers; and the lease parts of Put and Txn through the API.

mod common;
mod spawned;

use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::*;
use spawned::Spawned;

const WAIT: Duration = Duration::from_secs(15);

/// The id etcdctl printed in "lease 694d7e9f5a3c1b2d granted with TTL(60s)".
fn granted_id(out: &str) -> String {
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"lease"), "{out}");
    assert!(out.contains("granted with TTL("), "{out}");
    words[1].to_string()
}

fn followers(lab: &TestLab) -> Vec<String> {
    let leader = lab.leader();
    ["n1", "n2", "n3"].iter().filter(|m| **m != leader).map(|m| m.to_string()).collect()
}

#[test]
fn etcdctl_lease_grant_put_timetolive_list_keep_alive_and_revoke() {
    let lab = TestLab::up(3);
    let out = lab.etcdctl_ok(&["lease", "grant", "100"]);
    let id = granted_id(&out);
    assert!(out.contains("TTL(100s)"), "{out}");
    lab.etcdctl_ok(&["put", "--lease", &id, "k1", "v1"]);
    lab.etcdctl_ok(&["put", &format!("--lease={id}"), "k2", "v2"]);

    // The leader keeps the clock; every member answers with its view.
    for member in ["n1", "n2", "n3"] {
        let out = lab.etcdctl_on(member, &["lease", "timetolive", "--keys", &id]);
        let text = stdout(&out);
        assert!(text.starts_with(&format!("lease {id} granted with TTL(100s), remaining(")), "{member}: {text}");
        assert!(text.trim_end().ends_with("attached keys([k1 k2])"), "{member}: {text}");
        let remaining: i64 = text.split("remaining(").nth(1).unwrap().split('s').next().unwrap().parse().unwrap();
        assert!((90..=100).contains(&remaining), "{member}: {text}");
    }
    let other = granted_id(&lab.etcdctl_ok(&["lease", "grant", "50"]));
    let list = lab.etcdctl_ok(&["lease", "list"]);
    assert!(list.starts_with("found 2 leases\n"), "{list}");
    assert!(list.contains(&id) && list.contains(&other), "{list}");

    // keep-alive --once from a follower reaches the leader
    let follower = &followers(&lab)[0];
    let out = lab.etcdctl_on(follower, &["lease", "keep-alive", "--once", &id]);
    assert_eq!(stdout(&out).trim(), format!("lease {id} keepalived with TTL(100)"), "{}", describe(&out));

    // a keep-alive stream on a follower, until the lease is revoked
    let short = granted_id(&lab.etcdctl_ok(&["lease", "grant", "3"]));
    let mut keeper = Spawned::etcdctl(&lab, Some(follower), &["lease", "keep-alive", &short]);
    let expected = format!("lease {short} keepalived with TTL(3)");
    assert_eq!(keeper.stdout_lines(2, WAIT), [expected.clone(), expected]);
    assert_eq!(lab.etcdctl_ok(&["lease", "revoke", &short]).trim(), format!("lease {short} revoked"));
    keeper.wait_for_text(&format!("lease {short} expired or revoked."), WAIT);

    // revoking deletes the attached keys
    assert_eq!(lab.etcdctl_ok(&["lease", "revoke", &id]).trim(), format!("lease {id} revoked"));
    assert_eq!(lab.etcdctl_ok(&["get", "--prefix", "k"]), "");
    assert_eq!(lab.etcdctl_ok(&["lease", "timetolive", &id]).trim(), format!("lease {id} already expired"));
    assert!(!lab.etcdctl_ok(&["lease", "list"]).contains(&id));
}

#[test]
fn etcdctl_lease_errors_and_minimum_ttl_match_etcd() {
    let lab = TestLab::up(1);
    let err = lab.etcdctl_err(&["put", "--lease", "1234", "k", "v"]);
    assert!(err.contains("Error: etcdserver: requested lease not found"), "{err}");
    let err = lab.etcdctl_err(&["lease", "revoke", "1234"]);
    assert!(err.contains("Error: failed to revoke lease (etcdserver: requested lease not found)"), "{err}");
    let err = lab.etcdctl_err(&["lease", "keep-alive", "--once", "1234"]);
    assert!(err.contains("etcdserver: requested lease not found"), "{err}");
    assert_eq!(lab.etcdctl_ok(&["lease", "timetolive", "1234"]).trim(), "lease 0000000000001234 already expired");

    // etcd raises short TTLs to 1.5 election timeouts: 2 s with the default tempo
    let out = lab.etcdctl_ok(&["lease", "grant", "1"]);
    assert!(out.contains("granted with TTL(2s)"), "{out}");
    // a lease id chosen by the client, and a second grant of it
    let out = lab.etcdctl_ok(&["lease", "grant", "10"]);
    let id = granted_id(&out);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = EtcdClient::connect(&lab.client_url("n1"), &root_cert(&lab), WAIT).await.unwrap();
        let chosen = client.lease.lease_grant(LeaseGrantRequest { ttl: 30, id: 0x42 }).await.unwrap().into_inner();
        assert_eq!((chosen.id, chosen.ttl), (0x42, 30));
        let again = client.lease.lease_grant(LeaseGrantRequest { ttl: 30, id: 0x42 }).await.unwrap_err();
        assert_eq!(again.message(), "etcdserver: lease already exists");
        let too_long = client.lease.lease_grant(LeaseGrantRequest { ttl: 9_000_000_001, id: 0 }).await.unwrap_err();
        assert_eq!(too_long.message(), "etcdserver: too large lease TTL");
    });
    assert!(lab.etcdctl_ok(&["lease", "list"]).contains(&id));
}

#[test]
fn put_ignore_lease_and_txn_compares_on_leases() {
    let lab = TestLab::up(1);
    let id_hex = granted_id(&lab.etcdctl_ok(&["lease", "grant", "60"]));
    let id = i64::from_str_radix(&id_hex, 16).unwrap();
    lab.etcdctl_ok(&["put", "--lease", &id_hex, "k", "v1"]);
    // --ignore-lease keeps the key's lease
    lab.etcdctl_ok(&["put", "--ignore-lease", "k", "v2"]);
    let json: serde_json::Value = serde_json::from_str(&lab.etcdctl_ok(&["get", "k", "-w", "json"])).unwrap();
    assert_eq!(json["kvs"][0]["lease"].as_i64(), Some(id));
    let err = lab.etcdctl_err(&["put", "--ignore-lease", "absent", "v"]);
    assert!(err.contains("etcdserver: key not found"), "{err}");

    // etcdctl 3.4 cannot send a lease comparison (it panics parsing one); the API can
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = EtcdClient::connect(&lab.client_url("n1"), &root_cert(&lab), WAIT).await.unwrap();
        let compare = |lease: i64| Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Lease as i32,
            key: "k".into(),
            target_union: Some(compare::TargetUnion::Lease(lease)),
            ..Default::default()
        };
        let put = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: "k".into(),
                value: "v3".into(),
                ignore_lease: true,
                ..Default::default()
            })),
        };
        let txn = |lease| TxnRequest { compare: vec![compare(lease)], success: vec![put.clone()], failure: vec![] };
        let miss = client.kv.txn(txn(id + 1)).await.unwrap().into_inner();
        assert!(!miss.succeeded);
        let hit = client.kv.txn(txn(id)).await.unwrap().into_inner();
        assert!(hit.succeeded);
        // a put in a txn with an unknown lease fails the whole txn with etcd's error
        let unknown = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: "k2".into(),
                value: "v".into(),
                lease: 0x7777,
                ..Default::default()
            })),
        };
        let err =
            client.kv.txn(TxnRequest { compare: vec![], success: vec![unknown], failure: vec![] }).await.unwrap_err();
        assert_eq!(err.message(), "etcdserver: requested lease not found");
    });
    assert_eq!(lab.etcdctl_ok(&["get", "k", "--print-value-only"]).trim(), "v3");

    // leases are replicated state: they survive a restart of the whole lab
    lab.raftty_ok(&["down"]);
    lab.raftty_ok(&["up"]);
    let out = lab.etcdctl_ok(&["lease", "timetolive", "--keys", &id_hex]);
    assert!(out.starts_with(&format!("lease {id_hex} granted with TTL(60s), remaining(")), "{out}");
    assert!(out.trim_end().ends_with("attached keys([k])"), "{out}");
}
