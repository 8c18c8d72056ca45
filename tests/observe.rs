//! The lab's instruments: the event timeline, the log reader, the consistency check, and
//! the tempo that makes elections slow enough to watch.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn events_tell_the_story_of_writes_as_json_lines() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    let recorder = lab.record_events();
    // Wait until the recorder follows every member before causing anything.
    wait_for(Duration::from_secs(10), "the event stream to connect", || {
        lab.etcdctl_ok(&["put", "ping", "1"]);
        let events = recorder.events();
        ["n1", "n2", "n3"].iter().all(|m| events.iter().any(|e| e["member"] == *m))
    });
    // Twenty writes at once, as a busy client makes them: well inside one merge window
    // however loaded the machine is (one etcdctl after another would not be).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let client =
        raftty::client::EtcdClient::connect_lazy(&lab.client_url(&leader), &root_cert(&lab), Duration::from_secs(10))
            .expect("a client of the leader");
    runtime.block_on(async {
        let puts = (0..20).map(|i| {
            let mut c = client.clone();
            async move {
                let put = raftty::proto::etcdserverpb::PutRequest {
                    key: format!("/registry/pods/p{i}").into(),
                    value: "v".into(),
                    ..Default::default()
                };
                c.kv.put(put).await.expect("a put")
            }
        });
        futures::future::join_all(puts).await
    });
    let sent = recorder.wait_for_event("the leader to report entries sent", |e| {
        e["member"] == leader.as_str() && e["kind"] == "append_sent"
    });
    for field in ["time", "member", "kind", "term", "peer", "from", "to"] {
        assert!(sent.get(field).is_some(), "append_sent lacks {field}: {sent}");
    }
    assert!(sent["to"].as_u64().unwrap() >= sent["from"].as_u64().unwrap());
    recorder.wait_for_event("a follower to report entries applied", |e| {
        e["member"] != leader.as_str() && e["kind"] == "applied"
    });
    recorder.wait_for_event("commits to be reported", |e| e["kind"] == "commit_advanced");
    // Replication is merged into ranges: far fewer events than messages.
    let appends = recorder.events().iter().filter(|e| e["kind"] == "append_sent").count();
    assert!(appends < 40, "{appends} append_sent events for 21 writes to 2 followers: not merged");
}

#[test]
fn the_log_reader_shows_entries_and_the_commit_point() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "/registry/pods/default/nginx", "x"]);
    lab.etcdctl_ok(&["del", "/registry/pods/default/nginx"]);
    let leader = lab.leader();
    let table = lab.raftty_ok(&["log", &leader]);
    assert!(table.contains("membership: voters n1,n2,n3"), "{table}");
    assert!(table.contains("put /registry/pods/default/nginx (1 bytes)"), "{table}");
    assert!(table.contains("delete /registry/pods/default/nginx"), "{table}");
    assert!(table.contains("blank"), "{table}");
    let log: Value =
        serde_json::from_str(&lab.raftty_ok(&["log", &leader, "--json", "--from", "1", "--limit", "2"])).unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["index"], 1);
    assert_eq!(log["committed_index"], log["last_index"]);
}

#[test]
fn check_reports_a_member_that_is_behind() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    let behind = ["n1", "n2", "n3"].into_iter().find(|m| *m != leader).unwrap();
    lab.raftty_ok(&["cut", &leader, behind]);
    lab.etcdctl_on(&leader, &["put", "k", "v"]);
    let out = lab.raftty(&["check", "--wait", "1s"]);
    assert!(!out.status.success(), "check must fail while {behind} is behind:\n{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("{behind}  --------  behind")), "{text}");
    assert!(text.contains("members do NOT agree"), "{text}");

    lab.raftty_ok(&["heal"]);
    let out = lab.raftty(&["check", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let verdicts: Vec<&str> =
        report["members"].as_object().unwrap().values().map(|v| v["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["agrees", "agrees", "agrees"], "{report}");
}

#[test]
fn tempo_slows_a_running_lab_down_and_back() {
    let lab = TestLab::up_with(3, &["--tempo", "50/500"]);
    let table = lab.raftty_ok(&["status"]);
    assert!(table.contains("heartbeat 50 ms, election timeout 500 ms"), "{table}");
    let pids = |lab: &TestLab| -> Vec<i64> {
        lab.status()["nodes"].as_array().unwrap().iter().map(|n| n["pid"].as_i64().unwrap()).collect()
    };
    let before = pids(&lab);
    lab.etcdctl_ok(&["put", "k", "v"]);
    lab.raftty_ok(&["tempo", "slow"]);
    let after = pids(&lab);
    assert!(before.iter().zip(&after).all(|(a, b)| a != b), "every member restarted: {before:?} -> {after:?}");
    let table = lab.raftty_ok(&["status"]);
    assert!(table.contains("heartbeat 1000 ms, election timeout 10000 ms"), "{table}");
    assert_eq!(lab.etcdctl_ok(&["get", "--print-value-only", "k"]), "v\n");
    let err = lab.raftty(&["tempo", "100/200"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("five heartbeats"), "{}", describe(&err));
}
