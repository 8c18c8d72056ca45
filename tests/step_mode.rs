//! Step mode on a real lab: every Raft message waits until `raftty step deliver` lets it go,
//! so a write commits exactly when enough appends and answers have been delivered, and an
//! election happens only when its votes are.

mod common;

use std::process::Output;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn held(lab: &TestLab) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(&lab.raftty_ok(&["step", "list", "--json"])).expect("step list --json")
}

/// Waits for a held message matching `what`; returns its id.
fn wait_held(lab: &TestLab, description: &str, what: impl Fn(&Value) -> bool) -> String {
    let mut id = String::new();
    wait_for(Duration::from_secs(20), description, || match held(lab).into_iter().find(|m| what(m)) {
        Some(m) => {
            id = m["id"].as_str().unwrap().to_string();
            true
        }
        None => false,
    });
    id
}

fn carries_entries(m: &Value, kind: &str, from: &str, to: &str) -> bool {
    m["kind"] == kind && m["from"] == from && m["to"] == to && m["last_index"].as_u64().unwrap_or(0) > 0
}

/// The value of `key` as `member` holds it locally (a serializable read), if any.
fn local_value(lab: &TestLab, member: &str, key: &str) -> Option<String> {
    let out = lab.etcdctl_on_quick(member, &["get", key, "--consistency=s", "--print-value-only"]);
    assert!(out.status.success(), "serializable read on {member} failed:\n{}", describe(&out));
    let text = stdout(&out).trim().to_string();
    (!text.is_empty()).then_some(text)
}

#[test]
fn a_put_commits_only_when_an_append_and_its_answer_are_delivered() {
    let lab = TestLab::up_with(3, &["--tempo", "slow"]);
    let leader = lab.leader();
    let followers: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).filter(|m| *m != leader).collect();
    let (first, other) = (&followers[0], &followers[1]);
    // Heartbeats flow, so the leader stays in place while the entries wait.
    lab.raftty_ok(&["step", "on", "--auto-heartbeats"]);

    let (done_tx, done) = mpsc::channel::<Output>();
    let env = lab.env();
    let leader_url = lab.client_url(&leader);
    std::thread::spawn(move || {
        let env: Vec<_> = env
            .into_iter()
            .map(|(k, v)| if k == "ETCDCTL_ENDPOINTS" { (k, leader_url.clone()) } else { (k, v) })
            .collect();
        let _ = done_tx.send(etcdctl_with_env(&env, &["--command-timeout", "120s", "put", "/stepped", "yes"]));
    });

    let append = wait_held(&lab, &format!("the put's append from {leader} to {first}"), |m| {
        carries_entries(m, "append", &leader, first)
    });
    assert!(done.try_recv().is_err(), "the put was acknowledged before any follower had its entry");
    lab.raftty_ok(&["step", "deliver", &append]);

    let answer = wait_held(&lab, &format!("{first}'s answer to the append"), |m| {
        carries_entries(m, "append-response", first, &leader)
    });
    assert_eq!(local_value(&lab, first, "/stepped"), None, "{first} applied the entry before it was committed");
    assert!(done.try_recv().is_err(), "the put was acknowledged before the leader heard that a majority holds it");
    lab.raftty_ok(&["step", "deliver", &answer]);

    let put = done.recv_timeout(Duration::from_secs(60)).expect("the put to be answered once its answer was delivered");
    assert!(put.status.success(), "the put failed:\n{}", describe(&put));

    // The other follower never got the entry: its append is still waiting.
    assert!(
        held(&lab).iter().any(|m| carries_entries(m, "append", &leader, other)),
        "the append to {other} should still be held"
    );
    assert_eq!(
        local_value(&lab, other, "/stepped"),
        None,
        "{other} has the entry although none of its messages flowed"
    );

    // Once its messages flow, it catches up.
    wait_for(Duration::from_secs(30), &format!("{other} to hold /stepped once its link flows"), || {
        lab.raftty_ok(&["step", "deliver", "--from", &leader, "--to", other]);
        lab.raftty_ok(&["step", "deliver", "--from", other, "--to", &leader]);
        local_value(&lab, other, "/stepped").as_deref() == Some("yes")
    });

    // Step off delivers what is left, and writes flow at normal speed again.
    lab.raftty_ok(&["step", "off"]);
    assert!(held(&lab).is_empty(), "step off left messages held: {:?}", held(&lab));
    for i in 0..20 {
        lab.etcdctl_ok(&["--command-timeout", "5s", "put", &format!("/after/{i}"), "v"]);
    }
    assert_eq!(local_value(&lab, other, "/stepped").as_deref(), Some("yes"));
}

#[test]
fn votes_held_back_keep_the_cluster_leaderless_until_they_are_delivered() {
    let lab = TestLab::up(3);
    let old = lab.leader();
    let old_term = lab.node(&old)["term"].as_u64().unwrap();
    // Heartbeats flow so that, once elected, the new leader keeps its followers.
    lab.raftty_ok(&["step", "on", "--auto-heartbeats"]);
    kill9(&lab, &old);

    // Every vote and pre-vote the survivors send is lost, round after round of elections.
    let mut dropped_from = std::collections::BTreeMap::<String, usize>::new();
    wait_for(Duration::from_secs(60), "both survivors to campaign twice with every vote lost", || {
        for m in held(&lab) {
            let kind = m["kind"].as_str().unwrap();
            if matches!(kind, "vote" | "prevote") {
                let id = m["id"].as_str().unwrap();
                if lab.raftty(&["step", "drop", id]).status.success() {
                    *dropped_from.entry(m["from"].as_str().unwrap().to_string()).or_default() += 1;
                }
            }
        }
        assert!(lab.leaders().is_empty(), "a leader was elected although every vote was lost: {}", lab.status());
        dropped_from.len() == 2 && dropped_from.values().all(|n| *n >= 4)
    });

    // Delivering the votes (and what follows) elects a leader in a higher term.
    wait_for(Duration::from_secs(60), "a leader once the votes are delivered", || {
        lab.raftty_ok(&["step", "deliver", "--all"]);
        lab.leaders().len() == 1
    });
    let new = lab.leaders().remove(0);
    assert_ne!(new, old);
    assert!(lab.node(&new)["term"].as_u64().unwrap() > old_term, "the new leader's term must be higher");
    lab.raftty_ok(&["step", "off"]);
    lab.etcdctl_ok(&["put", "/after-election", "v"]);
}

#[test]
fn step_mode_names_what_is_wrong() {
    let lab = TestLab::up(1);
    let out = lab.raftty(&["step", "deliver", "n9-3"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("ids look like n1-17"), "{}", describe(&out));
    let out = lab.raftty(&["step", "deliver", "n1-999"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("no longer held"), "{}", describe(&out));
    let out = lab.raftty(&["step", "deliver"]);
    assert!(!out.status.success(), "deliver without ids or --all must be refused");
    assert!(lab.raftty_ok(&["step", "list"]).contains("step mode is off"));
}
