//! `raftty restore`: a new lab from a snapshot, with every key, revision, tombstone and
//! lease; as of an earlier revision; refusing damage and never overwriting a lab unasked.

mod common;

use std::process::Command;

use serde_json::Value;

use common::TestLab;
use common::describe;

/// Runs raftty in `lab`'s home (another lab name with `--lab`).
fn raftty_in(lab: &TestLab, args: &[&str]) -> std::process::Output {
    Command::new(common::RAFTTY).args(args).env("RAFTTY_HOME", lab.home.path()).output().expect("running raftty")
}

/// What `raftty env` exports for the lab `name` in the same home (one member's only with
/// `member`).
fn env_in(lab: &TestLab, name: &str, member: Option<&str>) -> Vec<(String, String)> {
    let mut args = vec!["env", "--lab", name];
    if let Some(m) = member {
        args.extend(["--member", m]);
    }
    let env = raftty_in(lab, &args);
    String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// etcdctl against the lab `name` in the same home.
fn etcdctl_in(lab: &TestLab, name: &str, args: &[&str]) -> String {
    let env = env_in(lab, name, None);
    let out = common::etcdctl_with_env(&env, args);
    assert!(out.status.success(), "etcdctl {args:?} on lab {name}:\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the labs a test made besides its own, even when the test fails.
struct StopLabs<'a>(&'a TestLab, &'a [&'a str]);

impl Drop for StopLabs<'_> {
    fn drop(&mut self) {
        for name in self.1 {
            let _ = raftty_in(self.0, &["down", "--lab", name]);
        }
    }
}

fn kvs(json: &str) -> (Value, i64) {
    let v: Value = serde_json::from_str(json).expect("etcdctl's JSON");
    (v["kvs"].clone(), v["header"]["revision"].as_i64().expect("a revision"))
}

#[test]
fn a_snapshot_restores_into_a_new_lab_with_every_revision_and_as_of_earlier_ones() {
    let lab = TestLab::up(1);
    let _stop = StopLabs(&lab, &["copy", "past", "never"]);
    for i in 0..40 {
        lab.etcdctl_ok(&["put", &format!("/k{}", i % 9), &format!("v{i}")]);
        if i % 7 == 3 {
            lab.etcdctl_ok(&["del", &format!("/k{}", (i + 4) % 9)]);
        }
    }
    lab.etcdctl_ok(&["compact", "10"]);
    let lease = lab.etcdctl_ok(&["lease", "grant", "900"]);
    let lease = lease.split_whitespace().nth(1).expect("a lease id").to_string();
    lab.etcdctl_ok(&["put", "/leased", "v", "--lease", &lease]);
    let (original, revision) = kvs(&lab.etcdctl_ok(&["get", "", "--prefix", "-w", "json"]));
    let file = lab.home.path().join("backup.db");
    lab.raftty_ok(&["snapshot", "save", &file.display().to_string()]);
    let file = file.display().to_string();

    let out = raftty_in(&lab, &["restore", &file, "--lab", "copy", "--nodes", "3"]);
    assert!(out.status.success(), "restore:\n{}", describe(&out));
    let (restored, restored_revision) = kvs(&etcdctl_in(&lab, "copy", &["get", "", "--prefix", "-w", "json"]));
    assert_eq!(restored, original, "every key with its value, revisions, version and lease");
    assert_eq!(restored_revision, revision);
    for r in [10, 17, 25, revision - 1] {
        let then = lab.etcdctl_ok(&["get", "", "--prefix", "--rev", &r.to_string(), "-w", "json"]);
        let again = etcdctl_in(&lab, "copy", &["get", "", "--prefix", "--rev", &r.to_string(), "-w", "json"]);
        assert_eq!(kvs(&again).0, kvs(&then).0, "history at revision {r} came along");
    }
    assert!(etcdctl_in(&lab, "copy", &["lease", "list"]).contains(&lease), "the lease came along");
    // A member that joins later is sent the restored state, which no log entry holds.
    let out = raftty_in(&lab, &["member", "add", "--lab", "copy"]);
    assert!(out.status.success(), "member add to the restored lab:\n{}", describe(&out));
    let on_n4 = env_in(&lab, "copy", Some("n4"));
    let got = common::etcdctl_with_env(&on_n4, &["get", "", "--prefix", "-w", "json", "--consistency", "s"]);
    assert_eq!(kvs(&String::from_utf8_lossy(&got.stdout)).0, original, "the new member n4 holds every key");
    let ids = |name: &str| -> Vec<String> {
        etcdctl_in(&lab, name, &["member", "list"])
            .lines()
            .filter_map(|l| l.split(',').next())
            .map(str::to_string)
            .collect()
    };
    let (old_ids, new_ids) = (ids("test"), ids("copy"));
    assert_eq!(new_ids.len(), 4, "three restored members and the one added");
    assert!(new_ids.iter().all(|id| !old_ids.contains(id)), "a restore makes new member ids: {old_ids:?} {new_ids:?}");

    let r = 20;
    let out = raftty_in(&lab, &["restore", &file, "--lab", "past", "--nodes", "1", "--to-revision", &r.to_string()]);
    assert!(out.status.success(), "restore --to-revision:\n{}", describe(&out));
    let then = kvs(&lab.etcdctl_ok(&["get", "", "--prefix", "--rev", &r.to_string(), "-w", "json"])).0;
    let (past, past_revision) = kvs(&etcdctl_in(&lab, "past", &["get", "", "--prefix", "-w", "json"]));
    assert_eq!(past, then, "the state as of revision {r}");
    assert_eq!(past_revision, r);

    let out = raftty_in(&lab, &["restore", &file, "--lab", "never", "--to-revision", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("revisions 10 to {revision}")), "{err}");
}

#[test]
fn restore_refuses_damage_and_an_existing_lab_and_replace_keeps_the_certificates() {
    let lab = TestLab::up(1);
    let _stop = StopLabs(&lab, &["broken"]);
    lab.etcdctl_ok(&["put", "/dr/drill", "before the disaster"]);
    let file = lab.home.path().join("backup.db");
    lab.raftty_ok(&["snapshot", "save", &file.display().to_string()]);

    let mut bytes = std::fs::read(&file).expect("the backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let damaged = lab.home.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).expect("writing");
    let out = raftty_in(&lab, &["restore", &damaged.display().to_string(), "--lab", "broken"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("SHA-256"), "a damaged file is refused, saying why: {err}");
    assert!(!lab.home.path().join("labs/broken").exists(), "and no lab is left behind");
    let out = raftty_in(&lab, &["restore", &file.display().to_string()[..10], "--lab", "broken"]);
    assert!(!out.status.success(), "a missing file is refused");

    let out = raftty_in(&lab, &["restore", &file.display().to_string(), "--lab", "test"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already exists") && err.contains("--replace"), "{err}");

    let root_cert = std::fs::read(lab.pki().join("root.crt")).expect("the root certificate");
    lab.etcdctl_ok(&["put", "/dr/drill", "after the disaster"]);
    let out = raftty_in(&lab, &["restore", &file.display().to_string(), "--lab", "test", "--replace", "--nodes", "1"]);
    assert!(out.status.success(), "restore --replace:\n{}", describe(&out));
    assert_eq!(
        std::fs::read(lab.pki().join("root.crt")).expect("the root certificate"),
        root_cert,
        "certificates kept"
    );
    let value = lab.etcdctl_ok(&["get", "/dr/drill", "--print-value-only"]);
    assert_eq!(value.trim(), "before the disaster", "the backup's data, with the old client certificate");
    let kept = std::fs::read_dir(lab.home.path().join("replaced")).expect("the replaced lab is kept").count();
    assert_eq!(kept, 1);
}

#[test]
fn a_restore_killed_half_way_leaves_no_lab_and_the_next_one_succeeds() {
    let lab = TestLab::up(1);
    let _stop = StopLabs(&lab, &["halfway"]);
    for i in 0..30 {
        lab.etcdctl_ok(&["put", &format!("/k{i}"), "v"]);
    }
    let file = lab.home.path().join("backup.db");
    lab.raftty_ok(&["snapshot", "save", &file.display().to_string()]);
    let staging = lab.home.path().join("restoring");
    let mut child = Command::new(common::RAFTTY)
        .args(["restore", &file.display().to_string(), "--lab", "halfway", "--nodes", "5"])
        .env("RAFTTY_HOME", lab.home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("raftty restore");
    // Kill it while it stages the lab (five members' certificates and state files take a while).
    common::wait_for(std::time::Duration::from_secs(30), "the restore to start staging", || {
        std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some())
    });
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(
        !lab.home.path().join("labs/halfway").exists() || lab.home.path().join("labs/halfway/lab.json").exists(),
        "no half-made lab"
    );
    let half_made = !lab.home.path().join("labs/halfway").exists();
    if half_made {
        let out = lab.raftty(&["status", "--lab", "halfway"]);
        assert!(!out.status.success(), "nothing named halfway looks like a lab");
    }
    let out =
        raftty_in(&lab, &["restore", &file.display().to_string(), "--lab", "halfway", "--nodes", "1", "--replace"]);
    assert!(out.status.success(), "the next restore succeeds:\n{}", describe(&out));
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the abandoned staging folder is gone");
    assert_eq!(
        etcdctl_in(&lab, "halfway", &["get", "/k", "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        30
    );
}
