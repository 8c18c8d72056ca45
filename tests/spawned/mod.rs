//! Long-running etcdctl commands (`watch`, `lease keep-alive`) for tests: started in the
//! background with the lab's environment, their output read line by line as it comes.

#![allow(dead_code)]

use std::io::BufRead;
use std::io::BufReader;
use std::io::Write;
use std::process::Child;
use std::process::ChildStdin;
use std::process::Command;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;
use std::time::Instant;

use crate::common::RAFTTY;
use crate::common::TestLab;
use crate::common::describe;

/// A line of output, from stdout or stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Out(String),
    Err(String),
}

pub struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    /// Everything read so far, for failure messages.
    seen: Vec<Line>,
}

impl Spawned {
    /// Starts `etcdctl ARGS` against every member of the lab, or against `member` only.
    pub fn etcdctl(lab: &TestLab, member: Option<&str>, args: &[&str]) -> Spawned {
        let mut env = lab.env();
        if let Some(member) = member {
            let url = lab.client_url(member);
            for (k, v) in env.iter_mut() {
                if k == "ETCDCTL_ENDPOINTS" {
                    *v = url.clone();
                }
            }
        }
        let mut cmd = Command::new("etcdctl");
        cmd.envs(env).args(["--dial-timeout", "3s"]).args(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting etcdctl");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if out_tx.send(Line::Out(line)).is_err() {
                    return;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(Line::Err(line)).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Spawned { child, stdin, lines, seen: Vec::new() }
    }

    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("writing to etcdctl");
        stdin.flush().expect("flushing etcdctl's stdin");
    }

    /// The next `count` lines of standard output (standard error is kept for messages).
    pub fn stdout_lines(&mut self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < count {
            match self.next(deadline) {
                Some(Line::Out(line)) => out.push(line),
                Some(Line::Err(_)) => {}
                None => {
                    panic!("timed out waiting for {count} lines of etcdctl output; got {out:?}; all: {:?}", self.seen)
                }
            }
        }
        out
    }

    /// Reads until a line (of either stream) contains `needle`; returns that line.
    pub fn wait_for_text(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline) {
                Some(Line::Out(line)) | Some(Line::Err(line)) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!("timed out waiting for {needle:?} from etcdctl; got {:?}", self.seen),
            }
        }
    }

    /// Whatever output arrives within `wait`.
    pub fn drain(&mut self, wait: Duration) -> Vec<Line> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(line) = self.next(deadline) {
            out.push(line);
        }
        out
    }

    fn next(&mut self, deadline: Instant) -> Option<Line> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(wait).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Waits for the command to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "etcdctl did not exit; output so far: {:?}", self.seen);
            std::thread::sleep(Duration::from_millis(20)); // poll
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lab whose members run with extra environment variables (the settings tests shorten,
/// such as the progress notification interval). Members inherit `raftty up`'s environment;
/// a member restarted later by another command does not get them.
pub fn lab_with_env(nodes: usize, env: &[(&str, &str)]) -> TestLab {
    let lab = TestLab { home: tempfile::tempdir().expect("temp home"), name: "test".into() };
    let out = Command::new(RAFTTY)
        .args(["--lab", &lab.name, "up", "--nodes", &nodes.to_string()])
        .env("RAFTTY_HOME", lab.home.path())
        .env_remove("RAFTTY_LAB")
        .envs(env.iter().copied())
        .output()
        .expect("running raftty up");
    assert!(out.status.success(), "raftty up failed:\n{}", describe(&out));
    lab
}
