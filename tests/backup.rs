//! `raftty backup`: a full snapshot and every change after it, through a member's restart,
//! with new full snapshots on the way; point-in-time restores checked against `get --rev`
//! on the original; a kill -9 leaves a torn tail that the next run cuts back.

mod common;

use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use common::TestLab;
use common::describe;
use common::wait_for;

struct Backup(Child);

impl Drop for Backup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_backup(lab: &TestLab, dir: &std::path::Path, every: &str) -> Backup {
    let child = Command::new(common::RAFTTY)
        .args(["backup", &dir.display().to_string(), "--every", every, "--progress-every", "1s", "--lab", &lab.name])
        .env("RAFTTY_HOME", lab.home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting raftty backup");
    Backup(child)
}

/// The change log the backup started first, once it is there.
fn first_log(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("changes-")))
        .collect();
    logs.sort();
    logs.into_iter().next()
}

fn list(lab: &TestLab, dir: &std::path::Path) -> String {
    lab.raftty_ok(&["backup", "list", &dir.display().to_string()])
}

/// The last revision `backup list` says it can restore.
fn restorable_to(listing: &str) -> i64 {
    listing
        .lines()
        .find_map(|l| l.strip_prefix("restorable: revisions "))
        .and_then(|rest| rest.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn revision(lab: &TestLab) -> i64 {
    let v: Value = serde_json::from_str(&lab.etcdctl_ok(&["get", "health", "-w", "json"])).expect("JSON");
    v["header"]["revision"].as_i64().expect("a revision")
}

fn kvs(json: &str) -> Value {
    serde_json::from_str::<Value>(json).expect("etcdctl's JSON")["kvs"].clone()
}

#[test]
fn a_continuous_backup_restores_any_revision_through_restarts_and_new_full_snapshots() {
    let lab = TestLab::up(1);
    lab.etcdctl_ok(&["put", "/before", "the backup"]);
    let dir = lab.home.path().join("backups");
    let mut backup = start_backup(&lab, &dir, "2s");
    wait_for(Duration::from_secs(30), "the first full snapshot", || first_log(&dir).is_some());
    for i in 0..60 {
        lab.etcdctl_ok(&["put", &format!("/k{}", i % 11), &format!("v{i}")]);
        if i % 9 == 4 {
            lab.etcdctl_ok(&["del", &format!("/k{}", (i + 3) % 11)]);
        }
        if i == 30 {
            // The member restarts: the backup reconnects and goes on from where it was.
            common::kill9(&lab, "n1");
            lab.raftty_ok(&["start", "n1"]);
        }
    }
    // A new full snapshot falls due every 2 s; writes go on until one was taken.
    let mut more = 0;
    wait_for(Duration::from_secs(30), "a second full snapshot", || {
        more += 1;
        lab.etcdctl_ok(&["put", "/more", &more.to_string()]);
        list(&lab, &dir).matches("full snapshot").count() >= 2
    });
    let last = revision(&lab);
    wait_for(Duration::from_secs(30), "the backup to record the last revision", || {
        restorable_to(&list(&lab, &dir)) >= last
    });

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(backup.0.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let status = backup.0.wait().expect("the backup exits");
    assert!(status.success(), "SIGTERM stops the backup cleanly");
    let mut out = String::new();
    std::io::Read::read_to_string(backup.0.stdout.as_mut().expect("stdout"), &mut out).expect("its output");
    assert!(out.contains("full snapshot at revision") && out.contains("stopped at revision"), "{out}");

    for r in [3, 17, last / 2, last - 3, last] {
        let name = format!("at{r}");
        let out = Command::new(common::RAFTTY)
            .args([
                "restore",
                &dir.display().to_string(),
                "--to-revision",
                &r.to_string(),
                "--nodes",
                "1",
                "--lab",
                &name,
            ])
            .env("RAFTTY_HOME", lab.home.path())
            .output()
            .expect("raftty restore");
        assert!(out.status.success(), "restore to revision {r}:\n{}", describe(&out));
        let then = kvs(&lab.etcdctl_ok(&["get", "", "--prefix", "--rev", &r.to_string(), "-w", "json"]));
        let env: Vec<(String, String)> = lab
            .raftty_ok(&["env", "--lab", &name])
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let got = common::etcdctl_with_env(&env, &["get", "", "--prefix", "-w", "json"]);
        let _ =
            Command::new(common::RAFTTY).args(["down", "--lab", &name]).env("RAFTTY_HOME", lab.home.path()).output();
        assert_eq!(kvs(&String::from_utf8_lossy(&got.stdout)), then, "the lab restored to revision {r}");
    }
    let out = Command::new(common::RAFTTY)
        .args(["restore", &dir.display().to_string(), "--to-revision", &(last + 5).to_string(), "--lab", "never"])
        .env("RAFTTY_HOME", lab.home.path())
        .output()
        .expect("raftty restore");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("reaches revision {last}")), "{err}");
}

#[test]
fn a_killed_backup_leaves_a_torn_tail_that_the_next_run_cuts_back() {
    let lab = TestLab::up(1);
    let dir = lab.home.path().join("backups");
    let mut backup = start_backup(&lab, &dir, "1h");
    wait_for(Duration::from_secs(30), "the first full snapshot", || first_log(&dir).is_some());
    for i in 0..10 {
        lab.etcdctl_ok(&["put", "/k", &format!("v{i}")]);
    }
    let last = revision(&lab);
    wait_for(Duration::from_secs(30), "the changes recorded", || restorable_to(&list(&lab, &dir)) >= last);
    backup.0.kill().expect("kill -9");
    let _ = backup.0.wait();
    // Half a record, as a kill in the middle of a write leaves it.
    let log = first_log(&dir).expect("the change log");
    let mut bytes = std::fs::read(&log).expect("the log");
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&log, &bytes).expect("writing");
    assert!(list(&lab, &dir).contains("torn bytes"), "backup list tells of the torn tail");

    lab.etcdctl_ok(&["put", "/k", "after the kill"]);
    let backup = start_backup(&lab, &dir, "1h");
    let last = revision(&lab);
    wait_for(Duration::from_secs(30), "the resumed backup to catch up", || restorable_to(&list(&lab, &dir)) >= last);
    drop(backup);
    let listing = list(&lab, &dir);
    assert!(!listing.contains("torn bytes"), "the torn tail was cut back:\n{listing}");
    let out = Command::new(common::RAFTTY)
        .args(["restore", &dir.display().to_string(), "--nodes", "1", "--lab", "resumed"])
        .env("RAFTTY_HOME", lab.home.path())
        .output()
        .expect("raftty restore");
    let _ =
        Command::new(common::RAFTTY).args(["down", "--lab", "resumed"]).env("RAFTTY_HOME", lab.home.path()).output();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revision {last}")), "{}", describe(&out));
}
