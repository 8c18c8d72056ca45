//! Test harness: real labs of real `raftty node` processes, each in its own temporary home
//! (so tests run in parallel without sharing ports or folders), driven through the real
//! `raftty` command line and the real `etcdctl`.

#![allow(dead_code)]

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Output;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;

pub const RAFTTY: &str = env!("CARGO_BIN_EXE_raftty");

/// A lab that is stopped and deleted when the test ends, even when it fails.
pub struct TestLab {
    pub home: tempfile::TempDir,
    pub name: String,
}

impl TestLab {
    /// Starts a new lab of `nodes` members and waits until it is ready.
    pub fn up(nodes: usize) -> TestLab {
        TestLab::up_with(nodes, &[])
    }

    pub fn up_with(nodes: usize, extra_args: &[&str]) -> TestLab {
        let lab = TestLab { home: tempfile::tempdir().expect("temp home"), name: "test".into() };
        let nodes = nodes.to_string();
        let mut args = vec!["up", "--nodes", nodes.as_str()];
        args.extend_from_slice(extra_args);
        lab.raftty_ok(&args);
        lab
    }

    pub fn dir(&self) -> PathBuf {
        self.home.path().join("labs").join(&self.name)
    }

    /// Runs `raftty --lab <name> ARGS` against this lab's home.
    pub fn raftty(&self, args: &[&str]) -> Output {
        Command::new(RAFTTY)
            .args(["--lab", &self.name])
            .args(args)
            .env("RAFTTY_HOME", self.home.path())
            .env_remove("RAFTTY_LAB")
            .output()
            .expect("running raftty")
    }

    /// Like `raftty`, but the command must succeed; returns its stdout.
    pub fn raftty_ok(&self, args: &[&str]) -> String {
        let out = self.raftty(args);
        assert!(out.status.success(), "raftty {args:?} failed:\n{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The variables `raftty env` exports, as (name, value) pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        let text = self.raftty_ok(&["env"]);
        text.lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    /// Runs etcdctl with the environment `raftty env` gives (endpoints: every member).
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        etcdctl_with_env(&self.env(), args)
    }

    /// Runs etcdctl against one member only.
    pub fn etcdctl_on(&self, member: &str, args: &[&str]) -> Output {
        let env: Vec<_> = self
            .env()
            .into_iter()
            .map(|(k, v)| if k == "ETCDCTL_ENDPOINTS" { (k, self.client_url(member)) } else { (k, v) })
            .collect();
        etcdctl_with_env(&env, args)
    }

    /// etcdctl must succeed; returns its stdout.
    pub fn etcdctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(out.status.success(), "etcdctl {args:?} failed:\n{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// etcdctl must fail; returns its stderr.
    pub fn etcdctl_err(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(!out.status.success(), "etcdctl {args:?} should have failed:\n{}", describe(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.raftty_ok(&["status", "--json"])).expect("status --json is JSON")
    }

    pub fn node(&self, member: &str) -> Value {
        let status = self.status();
        status["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["name"] == member)
            .unwrap_or_else(|| panic!("no member {member} in status {status}"))
            .clone()
    }

    pub fn client_url(&self, member: &str) -> String {
        self.node(member)["client_url"].as_str().expect("client_url").to_string()
    }

    /// The name of the member every running member agrees leads, waiting for one.
    pub fn leader(&self) -> String {
        let mut found = None;
        wait_for(Duration::from_secs(20), "the members to agree on a leader", || {
            let status = self.status();
            let leaders: Vec<Option<&str>> = status["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["state"] == "running")
                .map(|n| n["leader"].as_str())
                .collect();
            if let Some(Some(first)) = leaders.first()
                && leaders.iter().all(|l| l == &Some(*first))
            {
                found = Some(first.to_string());
                return true;
            }
            false
        });
        found.unwrap()
    }

    /// Members whose role is `leader` right now (a leader that lost its quorum is not one).
    pub fn leaders(&self) -> Vec<String> {
        let status = self.status();
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == "leader")
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until exactly one member leads, other than `not`; returns its name.
    pub fn wait_new_leader(&self, not: &str) -> String {
        let mut found = String::new();
        wait_for(Duration::from_secs(20), &format!("a leader other than {not}"), || {
            let leaders = self.leaders();
            if leaders.len() == 1 && leaders[0] != not {
                found = leaders[0].clone();
                return true;
            }
            false
        });
        found
    }

    /// Runs etcdctl against one member with a short command timeout, for requests expected
    /// to fail or hang.
    pub fn etcdctl_on_quick(&self, member: &str, args: &[&str]) -> Output {
        let mut full = vec!["--command-timeout", "3s"];
        full.extend_from_slice(args);
        self.etcdctl_on(member, &full)
    }

    pub fn pki(&self) -> PathBuf {
        self.dir().join("pki")
    }
}

/// `raftty events --json` running in the background, recording the lab's Raft timeline.
pub struct EventRecorder {
    child: std::process::Child,
    file: tempfile::NamedTempFile,
}

impl TestLab {
    pub fn record_events(&self) -> EventRecorder {
        let file = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(RAFTTY)
            .args(["--lab", &self.name, "events", "--json"])
            .env("RAFTTY_HOME", self.home.path())
            .stdout(file.reopen().unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("raftty events");
        EventRecorder { child, file }
    }
}

impl EventRecorder {
    /// Every event recorded so far.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until an event matching `what` has been recorded; returns it.
    pub fn wait_for_event(&self, description: &str, what: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait_for(Duration::from_secs(20), description, || {
            found = self.events().into_iter().find(|e| what(e));
            found.is_some()
        });
        found.unwrap()
    }
}

impl Drop for EventRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.raftty(&["down", "--purge"]);
    }
}

/// The lab's `root` client certificate, for tests that talk gRPC directly.
pub fn root_cert(lab: &TestLab) -> raftty::pki::CertFiles {
    raftty::pki::Pki::at(&lab.pki()).files(raftty::pki::ROOT_NAME)
}

/// What `member` logged since it was last started (the lab marks each start in its log).
pub fn log_since_start(lab: &TestLab, member: &str) -> String {
    let log = std::fs::read_to_string(lab.dir().join("logs").join(format!("{member}.log"))).unwrap_or_default();
    log.rsplit("--- raftty starting").next().unwrap_or_default().to_string()
}

/// Kills `member` with SIGKILL, as a power cut would, and waits until it is gone.
pub fn kill9(lab: &TestLab, member: &str) {
    use nix::sys::signal::Signal;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let pid = lab.node(member)["pid"].as_i64().expect("a running member has a pid");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    wait_for(Duration::from_secs(10), &format!("{member} to exit"), || lab.node(member)["state"] == "exited");
}

pub fn etcdctl_with_env(env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(etcdctl_path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if !args.contains(&"--command-timeout") {
        cmd.args(["--command-timeout", "10s"]);
    }
    cmd.args(["--dial-timeout", "3s"]).args(args);
    cmd.output().expect("running etcdctl")
}

fn etcdctl_path() -> &'static str {
    static CHECK: std::sync::Once = std::sync::Once::new();
    CHECK.call_once(|| {
        let found = Command::new("etcdctl").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
        assert!(found, "etcdctl is not installed: `make test` installs it (Debian package etcd-client)");
    });
    "etcdctl"
}

/// Runs `raftty bench` with `args` in its own home (its lab and etcd's data stay in there)
/// and returns its stdout, having asserted it succeeded.
pub fn bench(home: &Path, args: &[&str]) -> String {
    let out = Command::new(RAFTTY)
        .arg("bench")
        .args(args)
        .env("RAFTTY_HOME", home)
        .env("TMPDIR", home)
        .output()
        .expect("running raftty bench");
    assert!(out.status.success(), "raftty bench {args:?} failed:\n{}", describe(&out));
    stdout(&out)
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `condition` until it holds; panics naming `what` was awaited if `timeout` passes.
pub fn wait_for(timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
    assert!(poll_until(timeout, condition), "timed out after {timeout:?} waiting for {what}");
}

/// Polls `condition` until it holds or `timeout` passes; whether it held.
pub fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50)); // poll
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The store's current revision, as the member `client` talks to reports it.
pub async fn current_revision(client: &raftty::client::EtcdClient) -> i64 {
    let mut c = client.clone();
    let request = raftty::proto::etcdserverpb::RangeRequest { key: "revision-probe".into(), ..Default::default() };
    c.kv.range(request).await.expect("a range to read the revision").into_inner().header.expect("a header").revision
}
