//! Member processes: starting them detached, finding them again, signalling them.
//!
//! A member outlives the command that started it (so `etcdctl` keeps working after `raftty
//! up` returns), so the supervisor knows its members only through pid files. A pid is
//! trusted only if `/proc/<pid>/cmdline` shows that very member of that very lab: pids get
//! reused.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use nix::sys::signal::Signal;
use nix::sys::signal::{self};
use nix::unistd::Pid;
use serde::Serialize;

use crate::lab::Lab;

/// How a member finds the listeners its supervisor reserved: the file descriptor numbers,
/// in the order client, peer, metrics, named in this variable.
pub const LISTEN_FDS_ENV: &str = "RAFTTY_LISTEN_FDS";

/// Written to a member's log each time it is started, so each run's lines can be told apart.
const START_MARK: &str = "--- raftty starting";

/// What the operating system says about a member's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    Running,
    /// Stopped by SIGSTOP: frozen like a VM stall or a long GC pause.
    Paused,
    Exited,
}

impl std::fmt::Display for ProcessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessState::Running => "running",
            ProcessState::Paused => "paused",
            ProcessState::Exited => "exited",
        })
    }
}

/// The process of one member, as found on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberProcess {
    pub pid: Option<i32>,
    pub state: ProcessState,
}

impl Lab {
    fn pid_file(&self, member: &str) -> PathBuf {
        self.run_dir().join(format!("{member}.pid"))
    }

    pub fn log_file(&self, member: &str) -> PathBuf {
        self.logs_dir().join(format!("{member}.log"))
    }

    /// Finds the process of `member`, if it is alive.
    pub fn process(&self, member: &str) -> MemberProcess {
        let exited = MemberProcess { pid: None, state: ProcessState::Exited };
        let Some(pid) = fs::read_to_string(self.pid_file(member)).ok().and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return exited;
        };
        if !self.is_member_process(pid, member) {
            // A process on its way out loses its command line before it closes its files:
            // until it has, its ports are still taken, so it has not exited yet.
            if is_exiting(pid) {
                return MemberProcess { pid: Some(pid), state: ProcessState::Running };
            }
            return exited;
        }
        match proc_state(pid) {
            Some('Z') | Some('X') | None if !has_live_thread(pid) => exited,
            Some('Z') | Some('X') | None => MemberProcess { pid: Some(pid), state: ProcessState::Running },
            Some('T') | Some('t') => MemberProcess { pid: Some(pid), state: ProcessState::Paused },
            Some(_) => MemberProcess { pid: Some(pid), state: ProcessState::Running },
        }
    }

    fn is_member_process(&self, pid: i32, member: &str) -> bool {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let has = |s: &str| args.contains(&s.as_bytes());
        has("node") && has(member) && has(&self.dir.display().to_string())
    }

    /// Starts `member` detached from this process: own session, output to its log file.
    pub fn spawn_member(&self, member: &str) -> Result<i32> {
        let exe = std::env::current_exe().context("finding the raftty executable")?;
        fs::create_dir_all(self.run_dir())?;
        fs::create_dir_all(self.logs_dir())?;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(member))
            .with_context(|| format!("opening {}", self.log_file(member).display()))?;
        writeln!(log, "{START_MARK} {member}")?;
        let _ = fs::remove_file(self.killed_marker(member));
        let listeners = self.take_listeners(member)?;
        let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
        let named: Vec<String> = fds.iter().map(i32::to_string).collect();
        let mut cmd = Command::new(exe);
        cmd.env(LISTEN_FDS_ENV, named.join(","));
        cmd.arg("node")
            .arg("--lab-dir")
            .arg(&self.dir)
            .arg("--name")
            .arg(member)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A new session: Ctrl-C in the terminal that ran `raftty up`, or closing it, must not
        // take the cluster down with it.
        let held = stop_signals();
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                // A stop may come before the member has its handler for it (as soon as the pid
                // file names it): blocked signals stay pending across exec, and the member
                // unblocks them once it catches them, so a stop is never a silent death.
                nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&held), None)
                    .map_err(std::io::Error::from)?;
                // The member serves on the listeners the supervisor reserved, under the same
                // numbers. Clearing close-on-exec in place, rather than dup2 onto chosen
                // numbers, cannot clobber a descriptor the child still needs (such as the pipe
                // through which `spawn` learns that exec succeeded).
                for fd in &fds {
                    if nix::libc::fcntl(*fd, nix::libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        // Keeping the handle neither waits for nor kills the member: it runs on its own. It
        // tells, should the member die while this process still runs, how it ended.
        let child = cmd.spawn().with_context(|| format!("starting member {member}"))?;
        // The member holds its own copies now.
        drop(listeners);
        let pid = child.id() as i32;
        fs::write(self.pid_file(member), pid.to_string())?;
        self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(member.to_string(), child);
        Ok(pid)
    }

    /// How `member` ended, if this process started it and it has: its exit code or the
    /// signal that killed it. Said once, and written to the end of its log, where a member
    /// killed by a signal could not write anything itself.
    pub fn how_it_ended(&self, member: &str) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let status = children.get_mut(member)?.try_wait().ok()??;
        children.remove(member);
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => {
                let name = Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| sig.to_string());
                format!("was killed by signal {name}{}", if status.core_dumped() { " (core dumped)" } else { "" })
            }
            _ => "ended".to_string(),
        };
        if let Ok(mut log) = fs::OpenOptions::new().append(true).open(self.log_file(member)) {
            let _ = writeln!(log, "raftty: {member} {how}");
        }
        Some(how)
    }

    fn killed_marker(&self, member: &str) -> PathBuf {
        self.run_dir().join(format!("{member}.killed"))
    }

    /// Remembers that the lab killed `member` on purpose, so it shows as killed rather than
    /// as a member that exited by itself, until it is started again.
    pub fn mark_killed(&self, member: &str) -> Result<()> {
        fs::create_dir_all(self.run_dir())?;
        fs::write(self.killed_marker(member), b"")?;
        Ok(())
    }

    pub fn was_killed(&self, member: &str) -> bool {
        self.killed_marker(member).exists()
    }

    /// Sends `signal` to `member`; false when it is not running.
    pub fn signal_member(&self, member: &str, sig: Signal) -> Result<bool> {
        let Some(pid) = self.process(member).pid else {
            return Ok(false);
        };
        self.signal_if_member(pid, member, sig).with_context(|| format!("sending {sig} to {member} (pid {pid})"))
    }

    /// Stops `member` gracefully (SIGTERM, and SIGKILL if it has not exited within `grace`).
    /// Returns whether it was running.
    pub fn stop_member(&self, member: &str, grace: Duration) -> Result<bool> {
        let proc = self.process(member);
        let Some(pid) = proc.pid else {
            return Ok(false);
        };
        if proc.state == ProcessState::Paused {
            // A stopped process cannot act on SIGTERM until it runs again.
            let _ = self.signal_if_member(pid, member, Signal::SIGCONT);
        }
        let _ = self.signal_if_member(pid, member, Signal::SIGTERM);
        crate::lab::recording::note_process(&self.dir, member, "stopped");
        if !self.wait_exit(member, grace) {
            let _ = self.signal_if_member(pid, member, Signal::SIGKILL);
            self.wait_exit(member, Duration::from_secs(5));
        }
        let _ = fs::remove_file(self.pid_file(member));
        Ok(true)
    }

    /// Signals `pid` only if it is `member`'s process; false if it is not (any more).
    ///
    /// A pid file outlives a member that was killed, and this machine hands out pids again
    /// within one test run (pid_max is 32768): the pid may by now belong to any process,
    /// including a member of another lab that is just starting, which a stray SIGTERM kills
    /// without a word. A member on its way out (see [`Lab::process`]) can no longer be told
    /// apart either, and needs no signal to finish. The pidfd pins the process that was
    /// checked: should it exit and its pid be reused before the signal, the signal fails
    /// instead of reaching the newcomer.
    fn signal_if_member(&self, pid: i32, member: &str, sig: Signal) -> std::io::Result<bool> {
        use rustix::io::Errno;
        use rustix::process::PidfdFlags;
        let (Some(raw_pid), Some(raw_sig)) =
            (rustix::process::Pid::from_raw(pid), rustix::process::Signal::from_named_raw(sig as i32))
        else {
            return Ok(false);
        };
        let pidfd = match rustix::process::pidfd_open(raw_pid, PidfdFlags::empty()) {
            Ok(pidfd) => pidfd,
            Err(Errno::SRCH) => return Ok(false),
            // A kernel older than 5.3: check, then signal by pid.
            Err(Errno::NOSYS) if self.is_member_process(pid, member) => {
                return signal::kill(Pid::from_raw(pid), sig).map(|()| true).map_err(std::io::Error::from);
            }
            Err(Errno::NOSYS) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !self.is_member_process(pid, member) {
            return Ok(false);
        }
        match rustix::process::pidfd_send_signal(&pidfd, raw_sig) {
            Ok(()) => Ok(true),
            Err(Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until `member` is no longer running; false on timeout.
    pub fn wait_exit(&self, member: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.process(member).state == ProcessState::Exited {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Why `member` stopped, if its last run ended with an error (a member that refuses its
    /// data says why before exiting); None for a member that was killed or stopped.
    pub fn exit_reason(&self, member: &str) -> Option<String> {
        let text = fs::read_to_string(self.log_file(member)).ok()?;
        let last_run = text.rsplit(START_MARK).next()?;
        last_run.lines().rev().find_map(|l| l.strip_prefix("Error: ").map(str::to_string))
    }

    /// The last lines a member wrote to its log: what to show when it fails to start.
    pub fn log_tail(&self, member: &str, lines: usize) -> String {
        let text = fs::read_to_string(self.log_file(member)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The one-letter state in `/proc/<pid>/stat` (R, S, D, T, Z, ...).
/// A live process (not yet a zombie) whose command line is already gone: one that is exiting.
fn is_exiting(pid: i32) -> bool {
    let cmdline_gone = fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty());
    // Kernel threads have no command line either; their parent is kthreadd (pid 2).
    let kernel_thread = pid == 2 || parent_pid(pid) == Some(2);
    cmdline_gone && !kernel_thread && has_live_thread(pid)
}

/// Whether any thread of `pid` has yet to finish exiting. When a multi-threaded process is
/// killed its main thread can be a zombie while the others still hold its files (and so its
/// ports): the process is gone only once every thread is.
fn has_live_thread(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| !matches!(stat_state(&task.path().join("stat")), Some('Z') | Some('X') | None))
}

fn parent_pid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

fn proc_state(pid: i32) -> Option<char> {
    stat_state(Path::new(&format!("/proc/{pid}/stat")))
}

fn stat_state(stat_file: &Path) -> Option<char> {
    let stat = fs::read_to_string(stat_file).ok()?;
    // The command name is in parentheses and may contain spaces; the state follows it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// The signals that ask a member to stop (see `node::StopSignal`).
pub fn stop_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}
