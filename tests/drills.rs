//! `raftty drill`: each disaster struck on a busy, backed-up lab, recovered the way a
//! learner would (the real raftty and etcdctl), and scored; a score before the recovery does
//! not pass and says why; nothing is left running when the drill ends.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";

/// A drill on a lab of its own (named `drill`, to go through --lab), stopped and deleted
/// when the test ends, even when it fails.
struct Drill {
    lab: TestLab,
    state: Value,
}

impl Drop for Drill {
    fn drop(&mut self) {
        // The helpers first: the lab's own guard then takes the members down.
        let _ = self.lab.raftty(&["drill", "stop"]);
    }
}

impl Drill {
    /// `raftty drill start KIND`, which returns once the disaster has struck.
    fn start(kind: &str) -> Drill {
        Drill::start_with(kind, &[])
    }

    fn start_with(kind: &str, extra: &[&str]) -> Drill {
        let lab = TestLab { home: tempfile::tempdir().expect("temp home"), name: "drill".into() };
        let mut args = vec!["drill", "start", kind];
        args.extend_from_slice(extra);
        let said = lab.raftty_ok(&args);
        assert!(said.contains(&format!("DISASTER ({kind})")), "start tells what struck:\n{said}");
        assert!(said.contains("drill score --lab drill"), "and how to be scored:\n{said}");
        let mut drill = Drill { lab, state: Value::Null };
        drill.state = serde_json::from_str(&drill.lab.raftty_ok(&["drill", "status", "--json"])).expect("JSON");
        assert!(drill.helpers_run(), "the workload and the backup run after start returned: {}", drill.state);
        drill
    }

    fn destroyed(&self) -> Vec<String> {
        self.state["strike"]["destroyed"]
            .as_array()
            .expect("destroyed members")
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    }

    /// `raftty drill score --json`, and whether it exited 0.
    fn score(&self) -> (Value, bool) {
        let out = self.lab.raftty(&["drill", "score", "--json"]);
        let score = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("score --json is not JSON ({e}):\n{}", describe(&out)));
        (score, out.status.success())
    }

    /// Polls the score until it passes (the watcher sees health within a second of it).
    fn wait_passed(&self) -> Value {
        let mut last = Value::Null;
        let passed = poll_until(Duration::from_secs(60), || {
            let (score, ok) = self.score();
            assert_eq!(score["passed"].as_bool(), Some(ok), "the exit status follows `passed`: {score}");
            last = score;
            ok
        });
        assert!(passed, "timed out after 60 s waiting for the drill to pass; the last score:\n{last:#}");
        last
    }

    fn helpers_run(&self) -> bool {
        ["workload_pid", "backup_pid"].iter().all(|p| {
            let pid = self.state[p].as_i64().expect("a pid");
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
        })
    }

    /// A score that passed: in the allowance, hashes equal, timed; the helpers are stopped
    /// and the attempt is kept.
    fn check_passed(&self, score: &Value) {
        let lost = score["keys_lost"].as_u64().expect("keys were read back");
        let allowed = score["keys_lost_allowed"].as_u64().unwrap();
        assert!(lost <= allowed, "{lost} writes lost, {allowed} allowed: {score:#}");
        assert!(score["keys_acknowledged"].as_u64().unwrap() >= 20, "writes before the strike: {score:#}");
        assert_eq!(score["hashes_agree"], true, "{score:#}");
        assert_eq!(score["healthy"], true, "{score:#}");
        assert!(score["seconds_to_restore"].as_f64().unwrap() > 0.0, "{score:#}");
        assert!(score["reasons"].as_array().unwrap().is_empty(), "{score:#}");
        assert!(score["allowance"].as_str().is_some_and(|a| !a.is_empty()), "the allowance is said: {score:#}");
        wait_for(Duration::from_secs(15), "the drill's workload and backup to stop after the pass", || {
            !self.helpers_run()
        });
        let (again, ok) = self.score();
        assert!(ok && again["seconds_to_restore"] == score["seconds_to_restore"], "the pass is kept: {again:#}");
        let kept = std::fs::read_to_string(self.lab.home.path().join("drills/scores.jsonl")).expect("scores kept");
        assert_eq!(kept.lines().count(), 1, "one attempt kept: {kept}");
        let text = self.lab.raftty_ok(&["drill", "list"]);
        assert!(text.contains("1 attempt, best"), "drill list shows the best time:\n{text}");
    }

    /// A score taken right after the strike: it does not pass, and says why.
    fn check_not_yet(&self, why: &str) {
        let (score, ok) = self.score();
        assert!(!ok && score["passed"] == false, "a score before the recovery passes: {score:#}");
        let reasons = score["reasons"].to_string();
        assert!(reasons.contains(why), "the reasons should say {why:?}: {score:#}");
        assert!(score["seconds_to_restore"].is_null(), "no time before the cluster is back: {score:#}");
        let text = self.lab.raftty(&["drill", "score"]);
        assert!(stdout(&text).contains("NOT YET:"), "{}", describe(&text));
    }
}

/// Deletes a folder outside the test's home when the test ends.
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reasons_contain(score: &Value, text: &str) -> bool {
    score["reasons"].as_array().is_some_and(|r| r.iter().any(|r| r.as_str().unwrap_or_default().contains(text)))
}

#[test]
fn total_loss_is_restored_from_the_continuous_backup() {
    let drill = Drill::start("total-loss");
    assert_eq!(drill.destroyed().len(), 3);
    drill.check_not_yet("n1 is not running");
    let hint = drill.lab.raftty_ok(&["drill", "hint"]);
    assert!(hint.starts_with("hint 1 of 3"), "{hint}");

    // As a learner: find the backup, restore it in the lab's place.
    let backup = drill.state["backup_dir"].as_str().unwrap().to_string();
    let listed = drill.lab.raftty_ok(&["backup", "list"]);
    assert!(listed.contains(&backup), "backup list shows the drill's backup {backup}:\n{listed}");
    drill.lab.raftty_ok(&["restore", &backup, "--replace"]);

    let score = drill.wait_passed();
    drill.check_passed(&score);
    assert_eq!(score["hints_used"], 1, "{score:#}");
    assert!(score["allowance"].as_str().unwrap().contains("backup had not copied"), "{score:#}");
}

#[test]
fn quorum_loss_is_recovered_around_the_survivor() {
    let drill = Drill::start("quorum-loss");
    let survivor = drill.state["strike"]["survivor"].as_str().expect("a survivor").to_string();
    assert_eq!(drill.destroyed().len(), 2);
    assert!(!drill.destroyed().contains(&survivor));
    // (Not "no member leads": a survivor that led goes on believing it for up to an election timeout.)
    drill.check_not_yet(&format!("{} is not running", drill.destroyed()[0]));

    drill.lab.raftty_ok(&["recover", &survivor]);
    let score = drill.wait_passed();
    drill.check_passed(&score);
    assert!(score["allowance"].as_str().unwrap().contains(&format!("{survivor} had not applied")), "{score:#}");
}

#[test]
fn a_lost_member_disk_is_replaced_by_a_new_member() {
    let elsewhere = std::env::temp_dir().join(format!("raftty-drill-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&elsewhere);
    // Declared before the drill, so it is deleted after the drill's backup has stopped.
    let _cleanup = RemoveDir(elsewhere.clone());
    let drill = Drill::start_with("member-disk-loss", &["--backup-dir", &path_str(&elsewhere)]);
    assert_eq!(drill.state["backup_dir"], path_str(&elsewhere), "{}", drill.state);
    let victim = drill.destroyed().pop().expect("a victim");
    drill.check_not_yet(&format!("{victim} is not running"));
    // The cluster kept its quorum: the learner's writes still work.
    drill.lab.etcdctl_ok(&["put", "/learner/was-here", "yes"]);

    drill.lab.raftty_ok(&["member", "remove", &victim]);
    drill.lab.raftty_ok(&["member", "add"]);
    let score = drill.wait_passed();
    drill.check_passed(&score);
    assert_eq!(score["keys_lost"], 0, "{score:#}");
    assert_eq!(score["keys_lost_allowed"], 0, "{score:#}");
}

#[test]
fn nospace_is_cleared_by_compact_defrag_and_disarm() {
    let drill = Drill::start("nospace");
    drill.check_not_yet("alarm NOSPACE");
    let refused = drill.lab.etcdctl(&["put", "/learner/tries", "1"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains(NO_SPACE), "{}", describe(&refused));

    let status: Value = serde_json::from_str(&drill.lab.etcdctl_ok(&["endpoint", "status", "-w", "json"])).unwrap();
    let revision = status[0]["Status"]["header"]["revision"].as_i64().expect("a revision");
    drill.lab.etcdctl_ok(&["compact", &revision.to_string()]);
    drill.lab.etcdctl_ok(&["defrag", "--cluster"]);
    let (score, _) = drill.score();
    assert!(reasons_contain(&score, "alarm NOSPACE"), "the alarm holds until disarmed: {score:#}");
    drill.lab.etcdctl_ok(&["alarm", "disarm"]);

    let score = drill.wait_passed();
    drill.check_passed(&score);
    assert_eq!(score["keys_lost"], 0, "{score:#}");
}

#[test]
fn bad_drill_commands_say_what_is_wrong() {
    let lab = TestLab { home: tempfile::tempdir().expect("temp home"), name: "drill".into() };
    let out = lab.raftty(&["drill", "start", "fire"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("total-loss, quorum-loss, member-disk-loss, nospace"), "{err}");
    for args in [&["drill", "score"][..], &["drill", "hint"], &["drill", "stop"], &["drill", "status"]] {
        let out = lab.raftty(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("there is no drill on lab \"drill\""), "{args:?}: {err}");
    }
    let out = std::process::Command::new(RAFTTY)
        .args(["--lab", "../up", "drill", "start", "nospace"])
        .env("RAFTTY_HOME", lab.home.path())
        .output()
        .expect("running raftty");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a lab name may hold only"), "{}", describe(&out));

    let inside = lab.dir().join("backup");
    let out = lab.raftty(&["drill", "start", "nospace", "--backup-dir", &path_str(&inside)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("on the members' disks"), "{}", describe(&out));
    let used = lab.home.path().join("used");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("full-000000000001.db"), b"an old backup").unwrap();
    let out = lab.raftty(&["drill", "start", "nospace", "--backup-dir", &path_str(&used)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{}", describe(&out));

    lab.raftty_ok(&["up", "--nodes", "1"]);
    let out = lab.raftty(&["drill", "start", "total-loss"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("give --yes to replace it"),
        "an existing lab is not replaced unasked: {err}"
    );
    assert!(lab.etcdctl(&["put", "k", "v"]).status.success(), "and it still serves");
    let listed: Value = serde_json::from_str(&lab.raftty_ok(&["drill", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
}

#[test]
fn a_new_start_and_stop_end_the_last_drill_and_keep_it_as_stopped() {
    let mut drill = Drill::start("member-disk-loss");
    // The learner gives up and starts over: the lab is the drill's own, so --yes replaces it.
    let again = drill.lab.raftty_ok(&["drill", "start", "nospace", "--yes"]);
    assert!(again.contains("DISASTER (nospace)"), "{again}");
    assert!(!drill.helpers_run(), "the first drill's workload and backup were stopped: {}", drill.state);
    let first = std::mem::take(&mut drill.state);
    drill.state = serde_json::from_str(&drill.lab.raftty_ok(&["drill", "status", "--json"])).unwrap();
    assert!(drill.helpers_run(), "the new drill's helpers run: {}", drill.state);

    let said = drill.lab.raftty_ok(&["drill", "stop"]);
    assert!(said.contains("kept as stopped"), "{said}");
    assert!(!drill.helpers_run(), "drill stop ends the helpers: {}", drill.state);
    let (score, ok) = drill.score();
    assert!(!ok && score["stopped"] == true, "{score:#}");
    assert_ne!(first["started_unix_ms"], drill.state["started_unix_ms"], "a new drill began");
    let kinds: Vec<&str> = score["earlier"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["member-disk-loss"], "the given-up attempt is kept: {score:#}");
    let text = drill.lab.raftty_ok(&["drill", "list"]);
    assert!(text.contains("1 attempt, none passed yet"), "{text}");
}

#[test]
fn a_wiped_member_restarted_under_its_old_identity_does_not_pass() {
    let drill = Drill::start("member-disk-loss");
    let victim = drill.destroyed().pop().expect("a victim");
    let started = drill.lab.raftty(&["start", &victim]);
    if !started.status.success() {
        // A member that refuses to start on an empty disk in a running cluster is right too.
        return;
    }
    let mut last = Value::Null;
    let said = poll_until(Duration::from_secs(30), || {
        let (score, ok) = drill.score();
        assert!(!ok, "an empty-disk member back under its old identity passed: {score:#}");
        last = score;
        reasons_contain(&last, &format!("{victim} is back under its old identity with an empty disk"))
    });
    assert!(said, "the score should say why the member cannot come back as it was: {last:#}");
}
