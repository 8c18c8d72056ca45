//! The drill's two helpers, the workload and the continuous backup: raftty processes that
//! outlive `raftty drill start` (the learner works in between), known only by the pids in
//! `drill.json`. A pid is trusted only while `/proc/<pid>/cmdline` still shows that helper
//! of that drill: pids get reused.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The arguments of the workload of the drill in `dir`.
pub fn workload_args(lab: &str, dir: &Path) -> Vec<OsString> {
    ["--lab".into(), lab.into(), "drill".into(), "workload".into(), dir.as_os_str().to_owned()].into()
}

/// The arguments of the continuous backup into `dir`.
pub fn backup_args(lab: &str, dir: &Path) -> Vec<OsString> {
    ["--lab".into(), lab.into(), "backup".into(), dir.as_os_str().to_owned(), "--progress-every".into(), "5s".into()]
        .into()
}

/// Starts `raftty ARGS` in a session of its own (closing the learner's terminal must not end
/// it), printing to `log`, with the data dir `home`. Returns its pid.
pub fn spawn(home: &Path, args: &[OsString], log: &Path) -> Result<i32> {
    let exe = std::env::current_exe().context("finding the raftty executable")?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("RAFTTY_HOME", home)
        .env_remove("RAFTTY_LAB")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let child = cmd.spawn().with_context(|| format!("starting raftty {}", shown(args)))?;
    Ok(child.id() as i32)
}

fn shown(args: &[OsString]) -> String {
    args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

/// Whether `pid` is alive and is `raftty ARGS` (the helper it was started as).
pub fn is_helper(pid: i32, args: &[OsString]) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let seen: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).filter(|a| !a.is_empty()).collect();
    let wanted: Vec<&[u8]> = args.iter().map(|a| a.as_encoded_bytes()).collect();
    seen == wanted && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
    matches!(state, Some('Z') | Some('X') | None)
}

/// Stops the helper: SIGTERM (both helpers finish their files on it), SIGKILL if it has not
/// gone within `grace`. Returns whether it was running.
pub fn stop(pid: Option<i32>, args: &[OsString], grace: Duration) -> bool {
    let Some(pid) = pid.filter(|p| is_helper(*p, args)) else { return false };
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    if !wait_gone(pid, args, grace) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        wait_gone(pid, args, Duration::from_secs(5));
    }
    true
}

fn wait_gone(pid: i32, args: &[OsString], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_helper(pid, args) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_counts_only_while_its_command_line_is_the_helpers() {
        let me = std::process::id() as i32;
        assert!(!is_helper(me, &workload_args("lab", Path::new("/nowhere"))), "the test runner is no helper");
        assert!(!is_helper(i32::MAX, &[]), "no such process");
        assert!(!stop(Some(i32::MAX), &[], Duration::from_millis(10)));
        assert!(!stop(None, &[], Duration::from_millis(10)));
    }
}
