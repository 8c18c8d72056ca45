//! Replay: a lab records its timeline as it runs; `raftty replay --at` shows the cluster as
//! it was at a moment, and must agree with what `raftty status` showed then.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Now, as replay takes a moment.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Each member's (state, role, term), as a status JSON shows them.
fn roles(status: &Value) -> BTreeMap<String, (String, Value, Value)> {
    status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let name = n["name"].as_str().unwrap().to_string();
            (name, (n["state"].as_str().unwrap().to_string(), n["role"].clone(), n["term"].clone()))
        })
        .collect()
}

fn replayed(lab: &TestLab, args: &[&str]) -> Value {
    serde_json::from_str(&lab.raftty_ok(args)).expect("replay --json is JSON")
}

/// The status now, and the moment just after it was taken, once the recording agrees.
///
/// A member records a change of role as its recorder task gets to it, a moment after status
/// can already see it (longer on a busy machine), and writes it in batches: a moment taken
/// too early replays what the recorder knew then. The moment is taken again until the
/// recording shows at that moment what status showed.
fn recorded_moment(lab: &TestLab, what: &str) -> (Value, String) {
    let mut found = None;
    wait_for(Duration::from_secs(10), &format!("the recording to show {what} as status does"), || {
        let (status, moment) = (lab.status(), now_rfc3339());
        let agrees = roles(&replayed(lab, &["replay", "--at", &moment, "--json"])) == roles(&status);
        found = Some((status, moment));
        agrees
    });
    found.unwrap()
}

#[test]
fn a_replayed_moment_shows_the_roles_and_terms_status_showed_then() {
    let lab = TestLab::up(3);
    lab.leader();
    let (before, t1) = recorded_moment(&lab, "the cluster before the kill");
    let old = lab.leader();

    lab.raftty_ok(&["kill", &old]);
    let new = lab.wait_new_leader(&old);
    // Every member's view settles: the survivors follow the new leader.
    wait_for(Duration::from_secs(20), "the survivors to agree on the new leader", || {
        lab.status()["nodes"].as_array().unwrap().iter().filter(|n| n["state"] == "running").all(|n| n["leader"] == new)
    });
    let (after, t2) = recorded_moment(&lab, "the cluster after the election");

    let want_before = roles(&before);
    let want_after = roles(&after);
    // Later records leave earlier moments as they were.
    assert_eq!(roles(&replayed(&lab, &["replay", "--at", &t2, "--json"])), want_after);
    assert_eq!(roles(&replayed(&lab, &["replay", "--at", &t1, "--json"])), want_before, "before the kill");
    assert_eq!(want_after[&old].0, "exited", "the old leader shows as down after the kill");

    // The recording travels as one file and replays the same elsewhere.
    let file = lab.home.path().join("incident.raftty");
    let file = file.to_str().unwrap();
    assert!(lab.raftty_ok(&["replay", "--export", file]).contains("records of lab test"));
    let other = TestLab { home: tempfile::tempdir().unwrap(), name: "elsewhere".into() };
    assert_eq!(roles(&replayed(&other, &["replay", file, "--at", &t1, "--json"])), want_before);
    assert_eq!(roles(&replayed(&other, &["replay", file, "--at", &t2, "--json"])), want_after);
}

#[test]
fn replay_names_what_is_wrong() {
    let lab = TestLab::up(1);
    let out = lab.raftty(&["replay", "--at", "yesterday", "--json"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("is not a moment"), "{}", describe(&out));

    let junk = lab.home.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = lab.raftty(&["replay", junk.to_str().unwrap(), "--at", "+0s"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("is not a raftty recording"), "{}", describe(&out));

    let missing = TestLab { home: tempfile::tempdir().unwrap(), name: "nothing-here".into() };
    let out = missing.raftty(&["replay", "--at", "+0s"]);
    assert!(!out.status.success(), "a lab that does not exist has nothing to replay");
    assert!(describe(&out).contains("nothing-here"), "the error names the lab: {}", describe(&out));
}
