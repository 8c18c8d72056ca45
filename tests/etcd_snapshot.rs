//! Snapshots that real etcd accepts, proven with the real etcdctl and the real etcd 3.4
//! (Debian packages etcd-client and etcd-server; `make test` installs them): a lab's
//! snapshot restored by etcdctl into an etcd that then serves every key at its revisions,
//! and a real etcd's snapshot read by raftty.

mod common;

use std::path::Path;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use common::TestLab;
use common::describe;
use common::wait_for;

/// A plain-HTTP one-member etcd on free ports, killed when dropped.
struct RealEtcd {
    process: Child,
    client_url: String,
}

impl RealEtcd {
    /// Starts etcd on `data_dir` (restored or new) as member `name`.
    fn start(data_dir: &Path, name: &str, peer_port: u16, client_port: u16) -> RealEtcd {
        let found = Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(found, "these tests need the real etcd: `make test` installs it (Debian package etcd-server)");
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(data_dir.with_extension("log")).expect("etcd's log");
        let process = Command::new("etcd")
            .args(["--name", name, "--data-dir"])
            .arg(data_dir)
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{name}={peer_url}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        let etcd = RealEtcd { process, client_url };
        wait_for(Duration::from_secs(30), "the real etcd to answer", || {
            etcd.etcdctl(&["get", "health"]).status.success()
        });
        etcd
    }

    fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_url, "--dial-timeout", "2s", "--command-timeout", "5s"])
            .args(args)
            .output()
            .expect("running etcdctl")
    }

    fn etcdctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(out.status.success(), "etcdctl {args:?} on the real etcd:\n{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl RealEtcd {
    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for RealEtcd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    raftty::lab::ports::pick_free_ports(n, &Default::default()).expect("free ports")
}

/// etcdctl with no lab settings: for commands on files.
fn etcdctl_files(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("etcdctl").env("ETCDCTL_API", "3").current_dir(dir).args(args).output().expect("running etcdctl")
}

/// A key as `get -w json` shows it: key, value, create and mod revision, version, and
/// whether it has a lease.
type Shown = (String, String, i64, i64, i64, bool);

/// Every key as `get --prefix -w json` shows it, and the revision.
fn everything(json: &str) -> (Vec<Shown>, i64) {
    let v: Value = serde_json::from_str(json).expect("etcdctl's JSON");
    let kvs = v["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or_default().to_string(),
                        kv["value"].as_str().unwrap_or_default().to_string(),
                        kv["create_revision"].as_i64().unwrap_or(0),
                        kv["mod_revision"].as_i64().unwrap_or(0),
                        kv["version"].as_i64().unwrap_or(0),
                        kv["lease"].as_i64().unwrap_or(0) != 0,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (kvs, v["header"]["revision"].as_i64().expect("a revision"))
}

#[test]
fn a_lab_snapshot_saved_by_etcdctl_restores_into_a_real_etcd_with_every_revision() {
    let lab = TestLab::up(3);
    for (k, v) in [("/a", "1"), ("/a", "2"), ("/b", "gone soon"), ("/c", "3")] {
        lab.etcdctl_ok(&["put", k, v]);
    }
    lab.etcdctl_ok(&["del", "/b"]);
    lab.etcdctl_ok(&["compact", "3"]);
    let lease = lab.etcdctl_ok(&["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).expect("a lease id").to_string();
    lab.etcdctl_ok(&["put", "/leased", "v", "--lease", &lease]);
    for i in 0..100 {
        lab.etcdctl_ok(&["put", &format!("/registry/pods/default/pod-{i:03}"), &format!("{{\"replicas\":{i}}}")]);
    }
    let (before, revision) = everything(&lab.etcdctl_ok(&["get", "", "--prefix", "-w", "json"]));

    let work = tempfile::tempdir().expect("a scratch dir");
    let leader = lab.leader();
    let out = lab.etcdctl_on(&leader, &["snapshot", "save", &work.path().join("lab.db").display().to_string()]);
    assert!(out.status.success(), "etcdctl snapshot save against a member:\n{}", describe(&out));

    let out = etcdctl_files(&["snapshot", "status", "lab.db", "-w", "json"], work.path());
    assert!(out.status.success(), "etcdctl snapshot status:\n{}", describe(&out));
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let ours: Value = serde_json::from_str(&lab.raftty_ok(&[
        "snapshot",
        "status",
        "--json",
        &work.path().join("lab.db").display().to_string(),
    ]))
    .expect("raftty's status JSON");
    assert_eq!(theirs["hash"], ours["hash"], "the same hash from etcdctl and raftty");
    assert_eq!(theirs["revision"], ours["revision"]);
    assert_eq!(theirs["totalKey"], ours["total_keys"]);
    assert_eq!(theirs["revision"].as_i64(), Some(revision));
    assert_eq!(ours["compact_revision"], 3);

    let ports = free_ports(2);
    let peer = format!("http://127.0.0.1:{}", ports[0]);
    let out = etcdctl_files(
        &[
            "snapshot",
            "restore",
            "lab.db",
            "--data-dir",
            "restored",
            "--name",
            "e1",
            "--initial-cluster",
            &format!("e1={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
        work.path(),
    );
    assert!(out.status.success(), "etcdctl snapshot restore:\n{}", describe(&out));
    let etcd = RealEtcd::start(&work.path().join("restored"), "e1", ports[0], ports[1]);
    let (after, etcd_revision) = everything(&etcd.etcdctl_ok(&["get", "", "--prefix", "-w", "json"]));
    assert_eq!(after, before, "the real etcd serves every key with its value, revisions, version and lease");
    assert_eq!(etcd_revision, revision, "and the same current revision");
    let compacted = etcd.etcdctl(&["get", "/a", "--rev", "2"]);
    assert!(
        String::from_utf8_lossy(&compacted.stderr).contains("required revision has been compacted"),
        "the compaction floor came along:\n{}",
        describe(&compacted)
    );
    let old = etcd.etcdctl_ok(&["get", "/a", "--rev", "3", "--print-value-only"]);
    assert_eq!(old.trim(), "2", "history above the floor came along");
}

#[test]
fn raftty_reads_a_real_etcd_snapshot_and_saves_what_etcdctl_reads() {
    let work = tempfile::tempdir().expect("a scratch dir");
    let ports = free_ports(2);
    let mut etcd = RealEtcd::start(&work.path().join("etcd"), "real", ports[0], ports[1]);
    for i in 0..50 {
        etcd.etcdctl_ok(&["put", &format!("/real/k{i:02}"), &format!("v{i}")]);
    }
    etcd.etcdctl_ok(&["del", "/real/k07"]);
    etcd.etcdctl_ok(&["snapshot", "save", &work.path().join("real.db").display().to_string()]);
    let theirs = etcdctl_files(&["snapshot", "status", "real.db", "-w", "json"], work.path());
    let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("status JSON");
    let ours = Command::new(common::RAFTTY)
        .args(["snapshot", "status", "--json"])
        .arg(work.path().join("real.db"))
        .output()
        .expect("raftty snapshot status");
    assert!(ours.status.success(), "raftty reads etcd's snapshot:\n{}", describe(&ours));
    let ours: Value = serde_json::from_slice(&ours.stdout).expect("raftty's status JSON");
    assert_eq!(theirs["hash"], ours["hash"]);
    assert_eq!(theirs["revision"], ours["revision"]);
    assert_eq!(theirs["totalKey"], ours["total_keys"]);
    assert_eq!(ours["live_keys"], 49);
    let (in_etcd, etcd_revision) = everything(&etcd.etcdctl_ok(&["get", "", "--prefix", "-w", "json"]));

    // Into a lab, from the snapshot and from the data dir itself (no trailer there).
    let home = tempfile::tempdir().expect("a home");
    struct StopLabs<'a>(&'a Path);
    impl Drop for StopLabs<'_> {
        fn drop(&mut self) {
            for lab in ["fromsnap", "fromdir"] {
                let _ = Command::new(common::RAFTTY).args(["down", "--lab", lab]).env("RAFTTY_HOME", self.0).output();
            }
        }
    }
    let _stop = StopLabs(home.path());
    let restore = |args: &[&str]| {
        let out = Command::new(common::RAFTTY).arg("restore").args(args).env("RAFTTY_HOME", home.path()).output();
        let out = out.expect("raftty restore");
        assert!(out.status.success(), "raftty restore {args:?}:\n{}", describe(&out));
    };
    let get_all = |lab: &str| {
        let env = Command::new(common::RAFTTY).args(["env", "--lab", lab]).env("RAFTTY_HOME", home.path()).output();
        let env: Vec<(String, String)> = String::from_utf8_lossy(&env.expect("raftty env").stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let out = common::etcdctl_with_env(&env, &["get", "", "--prefix", "-w", "json"]);
        assert!(out.status.success(), "{}", describe(&out));
        everything(&String::from_utf8_lossy(&out.stdout))
    };
    restore(&[&work.path().join("real.db").display().to_string(), "--lab", "fromsnap", "--nodes", "1"]);
    assert_eq!(get_all("fromsnap"), (in_etcd.clone(), etcd_revision), "a real etcd's snapshot, restored into a lab");
    etcd.stop();
    restore(&[&work.path().join("etcd").display().to_string(), "--lab", "fromdir", "--nodes", "1"]);
    assert_eq!(get_all("fromdir"), (in_etcd, etcd_revision), "a real etcd's data dir, restored into a lab");

    let lab = TestLab::up(1);
    lab.etcdctl_ok(&["put", "/from/raftty", "yes"]);
    let file = work.path().join("raftty.db");
    let saved = lab.raftty_ok(&["snapshot", "save", &file.display().to_string()]);
    assert!(saved.contains("Snapshot saved at"), "{saved}");
    let out = etcdctl_files(&["snapshot", "status", "raftty.db", "-w", "json"], work.path());
    assert!(out.status.success(), "etcdctl reads raftty's own save:\n{}", describe(&out));

    let mut damaged = std::fs::read(&file).expect("the saved file");
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    std::fs::write(work.path().join("damaged.db"), &damaged).expect("writing");
    let out = etcdctl_files(&["snapshot", "restore", "damaged.db", "--data-dir", "never"], work.path());
    assert!(!out.status.success(), "etcdctl refuses a damaged raftty snapshot too");
    assert!(!work.path().join("damaged.db.part").exists());
}
