//! The real etcdctl against a real lab: member list, endpoint status and health across the
//! cluster, the refusal of clients without a certificate of the lab's CA, and of non-members on
//! the peer port's append link.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn member_list_shows_every_member_with_its_urls() {
    let lab = TestLab::up(3);
    let list: Value = serde_json::from_str(&lab.etcdctl_ok(&["member", "list", "-w", "json"])).unwrap();
    let members = list["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{list}");
    let status = lab.status();
    for node in status["nodes"].as_array().unwrap() {
        let name = node["name"].as_str().unwrap();
        let m = members.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name} missing from {list}"));
        assert_eq!(m["peerURLs"][0], node["peer_url"]);
        assert_eq!(m["clientURLs"][0], node["client_url"]);
        assert_eq!(format!("{:x}", m["ID"].as_u64().unwrap()), node["id"].as_str().unwrap());
        assert!(m.get("isLearner").is_none() || m["isLearner"] == false);
    }
    let header = &list["header"];
    assert_ne!(header["cluster_id"].as_u64().unwrap_or(0), 0, "a real cluster id: {header}");

    // The table form a person reads.
    let table = lab.etcdctl_ok(&["member", "list"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.lines().all(|l| l.contains("started") && l.contains("false")), "{table}");
}

#[test]
fn endpoint_status_and_health_across_the_cluster() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "a", "1"]);
    let status: Value =
        serde_json::from_str(&lab.etcdctl_ok(&["endpoint", "status", "--cluster", "-w", "json"])).unwrap();
    let endpoints = status.as_array().expect("one entry per member");
    assert_eq!(endpoints.len(), 3, "{status}");
    let leaders: Vec<u64> = endpoints.iter().map(|e| e["Status"]["leader"].as_u64().unwrap()).collect();
    assert!(leaders.iter().all(|l| *l == leaders[0] && *l != 0), "every member names the same leader: {leaders:?}");
    let member_ids: Vec<u64> = endpoints.iter().map(|e| e["Status"]["header"]["member_id"].as_u64().unwrap()).collect();
    assert!(member_ids.contains(&leaders[0]), "the leader is one of the members");
    let mut unique = member_ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3, "each endpoint answers for itself: {member_ids:?}");
    for e in endpoints {
        let s = &e["Status"];
        assert!(s["version"].as_str().unwrap().starts_with("3."), "{s}");
        assert!(s["dbSize"].as_i64().unwrap() > 0, "{s}");
        assert!(s["raftIndex"].as_u64().unwrap() >= 2, "{s}");
        assert!(s["raftTerm"].as_u64().unwrap() >= 1, "{s}");
    }

    let table = lab.etcdctl_ok(&["endpoint", "status", "--cluster"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    let leader_lines = table.lines().filter(|l| l.contains(", true, ")).count();
    assert_eq!(leader_lines, 1, "exactly one endpoint says IS LEADER true:\n{table}");

    // etcdctl 3.4 prints health reports on stderr.
    let out = lab.etcdctl(&["endpoint", "health", "--cluster"]);
    assert!(out.status.success(), "{}", describe(&out));
    let health = String::from_utf8_lossy(&out.stderr);
    let healthy = health.lines().filter(|l| l.contains("is healthy")).count();
    assert_eq!(healthy, 3, "{health}");
}

/// etcdctl for a connection expected to fail: short timeouts, so the test does not wait
/// out etcdctl's retries.
fn etcdctl_refused(args: &[&str]) -> std::process::Output {
    let mut full = vec!["--dial-timeout", "1s", "--command-timeout", "2s"];
    full.extend_from_slice(args);
    std::process::Command::new("etcdctl").args(full).output().expect("etcdctl")
}

#[test]
fn clients_without_a_lab_certificate_are_refused() {
    let lab = TestLab::up(1);
    let url = lab.client_url("n1");
    let pki = lab.pki();
    let ca = path_str(&pki.join("ca.crt"));

    // No client certificate at all.
    let no_cert = etcdctl_refused(&["--endpoints", &url, "--cacert", &ca, "get", "x"]);
    assert!(!no_cert.status.success(), "a client without a certificate was served:\n{}", describe(&no_cert));

    // A certificate from another CA.
    let other = tempfile::tempdir().unwrap();
    let foreign = raftty::pki::Pki::create(&other.path().join("pki")).unwrap();
    let f = foreign.files(raftty::pki::ROOT_NAME);
    let foreign_ca = etcdctl_refused(&[
        "--endpoints",
        &url,
        "--cacert",
        &ca,
        "--cert",
        &path_str(&f.cert),
        "--key",
        &path_str(&f.key),
        "get",
        "x",
    ]);
    assert!(!foreign_ca.status.success(), "a certificate of another CA was accepted:\n{}", describe(&foreign_ca));

    // Plain HTTP: there is no plaintext listener.
    let plain_url = url.replace("https://", "http://");
    let plaintext = etcdctl_refused(&["--endpoints", &plain_url, "get", "x"]);
    assert!(!plaintext.status.success(), "plaintext was served:\n{}", describe(&plaintext));

    // And the lab's own root certificate works.
    assert_eq!(lab.etcdctl_ok(&["put", "x", "1"]).trim(), "OK");
}

#[test]
fn the_peer_ports_append_link_serves_members_only() {
    use raftty::node::raft::append_link::AppendLink;
    use raftty::proto::rafttypb::AppendEntriesRequest;
    use raftty::proto::rafttypb::append_entries_response::Outcome;

    let lab = TestLab::up(1);
    let peer_url = lab.node("n1")["peer_url"].as_str().expect("n1's peer URL").to_string();
    let pki = raftty::pki::Pki::open(&lab.pki()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let call = |cert: raftty::pki::CertFiles| {
        runtime.block_on(async {
            let mut link =
                AppendLink::connect(&peer_url, cert.rustls_client(raftty::node::raft::append_link::ALPN).unwrap())
                    .await?;
            // A leader of term 0: a member answers that it knows a higher vote.
            let stale = AppendEntriesRequest { vote: Some(Default::default()), ..Default::default() };
            link.call(&stale).await
        })
    };

    let refused = call(root_cert(&lab)).expect_err("a client certificate was let onto the append link");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("not a member's"), "{refused:?}");

    let answer = call(pki.files("n1")).expect("a member certificate may use the append link");
    assert_eq!(answer.outcome(), Outcome::HigherVote, "{answer:?}");
    // The refused and the stale caller disturbed nothing.
    assert_eq!(lab.etcdctl_ok(&["put", "x", "1"]).trim(), "OK");
}
