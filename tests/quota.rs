//! etcd's space quota with the real etcdctl: a small quota fills up, the NOSPACE alarm stops
//! growth on every member (and survives a restart), and the recovery etcd documents (compact,
//! defrag, disarm) gives the space back and the writes with it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
const MEMBERS: [&str; 3] = ["n1", "n2", "n3"];

fn endpoint_status(lab: &TestLab) -> Vec<Value> {
    let text = lab.etcdctl_ok(&["endpoint", "status", "--cluster", "-w", "json"]);
    serde_json::from_str::<Vec<Value>>(&text).expect("endpoint status -w json prints a JSON list")
}

fn db_sizes(lab: &TestLab) -> Vec<(String, i64)> {
    let mut sizes: Vec<(String, i64)> = endpoint_status(lab)
        .iter()
        .map(|e| (e["Endpoint"].as_str().unwrap().to_string(), e["Status"]["dbSize"].as_i64().unwrap()))
        .collect();
    sizes.sort();
    sizes
}

#[test]
fn past_the_quota_writes_stop_everywhere_until_compact_defrag_and_disarm() {
    let lab = TestLab::up_with(3, &["--quota-backend-bytes", "2MiB"]);
    let value = "x".repeat(60_000);

    let mut refused = None;
    for i in 0..200 {
        let out = lab.etcdctl(&["put", &format!("/fill/{i:03}"), &value]);
        if !out.status.success() {
            refused = Some((i, String::from_utf8_lossy(&out.stderr).into_owned()));
            break;
        }
    }
    let (written, error) = refused.expect("a 2 MiB quota took 12 MB of values without a refusal");
    assert!(written > 5, "the quota refused after only {written} values of 60 kB");
    assert!(error.contains(NO_SPACE), "the refusal should carry etcd's message, got: {error}");

    let alarms = lab.etcdctl_ok(&["alarm", "list"]);
    assert!(alarms.contains("alarm:NOSPACE"), "alarm list should show NOSPACE, got: {alarms:?}");

    // The alarm is replicated: every member refuses growth and still serves reads.
    for member in MEMBERS {
        let put = lab.etcdctl_on(member, &["put", "/small", "1"]);
        assert!(!put.status.success() && stdout_or_err(&put).contains(NO_SPACE), "{member}: {}", describe(&put));
        let grant = lab.etcdctl_on(member, &["lease", "grant", "60"]);
        assert!(!grant.status.success() && stdout_or_err(&grant).contains(NO_SPACE), "{member}: {}", describe(&grant));
        let get = lab.etcdctl_on(member, &["get", "/fill/000", "--keys-only"]);
        assert!(get.status.success() && stdout(&get).contains("/fill/000"), "{member} reads: {}", describe(&get));
    }
    for e in endpoint_status(&lab) {
        let errors = e["Status"]["errors"].to_string();
        assert!(errors.contains("alarm:NOSPACE"), "endpoint status of {} lists no alarm: {errors}", e["Endpoint"]);
    }
    let status = lab.raftty_ok(&["status"]);
    assert!(status.contains("NOSPACE raised by n"), "raftty status should name the alarm:\n{status}");

    // A member that restarts still knows: the alarm is part of its stored state.
    lab.raftty_ok(&["stop", "n3"]);
    lab.raftty_ok(&["start", "n3"]);
    wait_for(Duration::from_secs(20), "n3 to list the NOSPACE alarm after its restart", || {
        let out = lab.etcdctl_on_quick("n3", &["alarm", "list"]);
        out.status.success() && stdout(&out).contains("alarm:NOSPACE")
    });

    // The way out, as etcd documents it. Deleting and compacting work while the alarm is on.
    lab.etcdctl_ok(&["del", "--prefix", "/fill/"]);
    let revision = endpoint_status(&lab)[0]["Status"]["header"]["revision"].as_i64().unwrap();
    let compacted = lab.etcdctl_ok(&["compact", &revision.to_string()]);
    assert!(compacted.contains(&format!("compacted revision {revision}")), "{compacted}");
    let before = db_sizes(&lab);
    let defrag = lab.etcdctl_ok(&["defrag", "--cluster"]);
    assert_eq!(defrag.matches("Finished defragmenting etcd member").count(), 3, "{defrag}");
    let after = db_sizes(&lab);
    for ((endpoint, was), (_, is)) in before.iter().zip(&after) {
        assert!(is * 4 < *was, "{endpoint}: dbSize went from {was} to {is} bytes after compact and defrag");
    }

    // The space is back, but the alarm stays until someone disarms it.
    let still = lab.etcdctl(&["put", "/small", "1"]);
    assert!(stdout_or_err(&still).contains(NO_SPACE), "the alarm must hold until disarmed: {}", describe(&still));
    let disarmed = lab.etcdctl_ok(&["alarm", "disarm"]);
    assert!(disarmed.contains("alarm:NOSPACE"), "alarm disarm names what it disarmed: {disarmed:?}");
    assert_eq!(lab.etcdctl_ok(&["alarm", "list"]).trim(), "", "no alarm after disarm");
    for member in MEMBERS {
        lab.etcdctl_ok(&["put", &format!("/after/{member}"), "1"]);
        let put = lab.etcdctl_on(member, &["put", "/small", member]);
        assert!(put.status.success(), "{member} takes writes again: {}", describe(&put));
    }
    assert!(!lab.raftty_ok(&["status"]).contains("alarms:"), "raftty status still shows an alarm");
}

#[test]
fn a_bad_quota_is_refused_with_the_reason() {
    let lab = TestLab { home: tempfile::tempdir().unwrap(), name: "test".into() };
    let out = lab.raftty(&["up", "--quota-backend-bytes", "lots"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a number of bytes"), "{err}");
    assert!(!lab.dir().exists(), "a refused `up` made a lab anyway");
}

fn stdout_or_err(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
