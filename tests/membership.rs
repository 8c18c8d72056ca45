//! Growing a single member into a cluster and shrinking it again, with `raftty member` and
//! with the real etcdctl.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn member_list(lab: &TestLab) -> Vec<Value> {
    let list: Value = serde_json::from_str(&lab.etcdctl_ok(&["member", "list", "-w", "json"])).unwrap();
    list["members"].as_array().cloned().unwrap_or_default()
}

fn id_hex(lab: &TestLab, member: &str) -> String {
    lab.node(member)["id"].as_str().unwrap().to_string()
}

#[test]
fn one_member_grows_to_three_and_shrinks_to_two() {
    let lab = TestLab::up(1);
    lab.etcdctl_ok(&["put", "seed", "from-n1"]);

    let out = lab.raftty_ok(&["member", "add"]);
    assert!(out.contains("added n2 as a voter"), "{out}");
    let out = lab.raftty_ok(&["member", "add"]);
    assert!(out.contains("added n3 as a voter"), "{out}");

    let members = member_list(&lab);
    assert_eq!(members.len(), 3, "{members:?}");
    for name in ["n1", "n2", "n3"] {
        let m = members.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name} not in {members:?}"));
        assert!(m.get("isLearner").is_none() || m["isLearner"] == false, "{m}");
        assert_eq!(m["clientURLs"][0], lab.client_url(name).as_str(), "{name} published its client URL");
    }
    let status = lab.status();
    let roles: Vec<&str> = status["nodes"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles.iter().filter(|r| **r == "leader").count(), 1, "{status}");
    assert_eq!(roles.iter().filter(|r| **r == "follower").count(), 2, "{status}");
    let seed = lab.etcdctl_on("n3", &["get", "--consistency=s", "--print-value-only", "seed"]);
    assert_eq!(stdout(&seed), "from-n1\n", "the new member holds the data written before it joined");

    let removed_id = id_hex(&lab, "n2");
    let out = lab.raftty_ok(&["member", "remove", "n2"]);
    assert!(out.contains("removed n2"), "{out}");
    let members = member_list(&lab);
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| m["name"] != "n2"));
    assert_eq!(lab.status()["nodes"].as_array().unwrap().len(), 2, "a removed member leaves the lab's status");
    lab.etcdctl_ok(&["put", "after-removal", "ok"]);

    // A removed member's name and id are never used again.
    let out = lab.raftty_ok(&["member", "add", "--learner"]);
    assert!(out.contains("added n4 as a learner"), "{out}");
    assert_ne!(id_hex(&lab, "n4"), removed_id);
    assert_eq!(lab.node("n4")["role"], "learner");
}

#[test]
fn etcdctl_member_commands_work() {
    let lab = TestLab::up(3);
    lab.raftty_ok(&["member", "add", "--learner"]);
    let n4 = id_hex(&lab, "n4");
    let listed = member_list(&lab);
    let learner = listed.iter().find(|m| m["name"] == "n4").unwrap();
    assert_eq!(learner["isLearner"], true, "{learner}");
    let out = lab.etcdctl_ok(&["member", "promote", &n4]);
    assert!(out.contains("promoted"), "{out}");
    wait_for(Duration::from_secs(20), "n4 to become a follower", || lab.node("n4")["role"] == "follower");

    // A member added by etcdctl exists before any process runs for it: unstarted, no name.
    let out = lab.etcdctl_ok(&["member", "add", "n9", "--learner", "--peer-urls=https://127.0.0.1:1999"]);
    assert!(out.contains("Member") && out.contains("added"), "{out}");
    let added = member_list(&lab)
        .into_iter()
        .find(|m| m["peerURLs"][0] == "https://127.0.0.1:1999")
        .expect("added member listed");
    assert!(added.get("name").is_none() || added["name"] == "", "{added}");
    let added_id = format!("{:x}", added["ID"].as_u64().unwrap());
    let table = lab.etcdctl_ok(&["member", "list"]);
    assert!(table.lines().any(|l| l.contains("unstarted") && l.contains("https://127.0.0.1:1999")), "{table}");

    // It never caught up, so etcd refuses to promote it.
    let err = lab.etcdctl_err(&["member", "promote", &added_id]);
    assert!(err.contains("etcdserver: can only promote a learner member which is in sync with leader"), "{err}");
    let err = lab.etcdctl_err(&["member", "promote", &n4]);
    assert!(err.contains("etcdserver: can only promote a learner member"), "{err}");

    let out = lab.etcdctl_ok(&["member", "update", &added_id, "--peer-urls=https://127.0.0.1:1998"]);
    assert!(out.contains("updated"), "{out}");
    assert!(member_list(&lab).iter().any(|m| m["peerURLs"][0] == "https://127.0.0.1:1998"));
    let out = lab.etcdctl_ok(&["member", "remove", &added_id]);
    assert!(out.contains("removed"), "{out}");
    assert_eq!(member_list(&lab).len(), 4);
    let err = lab.etcdctl_err(&["member", "remove", &added_id]);
    assert!(err.contains("etcdserver: member not found"), "{err}");
    let err = lab.etcdctl_err(&["member", "add", "bad", "--peer-urls=not-a-url"]);
    assert!(err.contains("etcdserver: given member URLs are invalid") || err.contains("URL"), "{err}");
}

#[test]
fn a_five_member_lab_survives_two_failures() {
    let lab = TestLab::up(5);
    let leader = lab.leader();
    let victims: Vec<&str> = ["n1", "n2", "n3", "n4", "n5"].into_iter().filter(|m| *m != leader).take(2).collect();
    for v in &victims {
        lab.raftty_ok(&["kill", v]);
    }
    assert!(lab.etcdctl_on(&leader, &["put", "five", "ok"]).status.success());
    let survivor = ["n1", "n2", "n3", "n4", "n5"].into_iter().find(|m| *m != leader && !victims.contains(m)).unwrap();
    assert_eq!(stdout(&lab.etcdctl_on(survivor, &["get", "--print-value-only", "five"])), "ok\n");
}
