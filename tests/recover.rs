//! `raftty recover NAME`: a cluster whose quorum is gone for good (two of three disks lost)
//! rebuilt around the survivor, which keeps every key; and the refusals that keep the drill
//! safe.

mod common;

use common::TestLab;
use common::describe;

#[test]
fn a_cluster_that_lost_two_of_three_disks_is_rebuilt_around_the_survivor() {
    let lab = TestLab::up(3);
    for i in 0..20 {
        lab.etcdctl_ok(&["put", &format!("/survives/k{i}"), &format!("v{i}")]);
    }
    let survivor_revision = {
        let v: serde_json::Value = serde_json::from_str(&lab.etcdctl_ok(&["get", "health", "-w", "json"])).unwrap();
        v["header"]["revision"].as_i64().unwrap()
    };

    let out = lab.raftty(&["recover", "n1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("a quorum is still alive"), "a healthy lab is refused: {err}");

    // Every member has applied the writes once a linearizable read of them succeeds on it.
    for m in ["n1", "n2", "n3"] {
        let out = lab.etcdctl_on(m, &["get", "/survives/k19", "--print-value-only"]);
        assert_eq!(common::stdout(&out).trim(), "v19", "{m} has the last write:\n{}", describe(&out));
    }
    for m in ["n2", "n3"] {
        common::kill9(&lab, m);
        std::fs::remove_dir_all(lab.dir().join("members").join(m)).expect("the disk is gone");
    }
    let out = lab.raftty(&["recover", "n2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("n2 has no data"), "a member without data is refused: {err}");

    let out = lab.raftty(&["recover", "n1"]);
    assert!(out.status.success(), "recover n1:\n{}", describe(&out));
    let said = common::stdout(&out);
    assert!(said.contains(&format!("revision {survivor_revision}")), "{said}");
    assert!(said.contains("what may be lost"), "{said}");

    let status = lab.status();
    let running: Vec<&str> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "running")
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(running.len(), 3, "back to three members: {status}");
    assert!(running.contains(&"n1") && !running.contains(&"n2") && !running.contains(&"n3"), "{running:?}");
    let keys = lab.etcdctl_ok(&["get", "/survives/", "--prefix", "--keys-only"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 20, "every key survived");
    lab.etcdctl_ok(&["put", "/after/recover", "works"]);
    let check = lab.raftty(&["check", "--wait", "30s"]);
    assert!(check.status.success(), "every member holds the same data:\n{}", describe(&check));
}
