//! `raftty drill workload DIR` (hidden): the drill's client and its watcher, one detached
//! process started by `raftty drill start`.
//!
//! The client writes a new key under `/drill/writes/` every few tens of milliseconds, to
//! whichever member answers, and records each write the cluster acknowledged in
//! `acked.jsonl`, synced to disk before the next: that file is what the score holds the
//! recovered cluster to. Through the outage it keeps trying, so it also shows when writes
//! resume.
//!
//! The watcher looks at the cluster twice a second and notes each change of its health in
//! `health.jsonl`: the score's clock stops at the last time it became healthy. It also ends
//! the drill's processes when the drill itself is gone (its folder deleted, or another drill
//! started), or after four hours, so nothing is left running behind a forgotten drill.

use std::io::BufRead;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::watch;

use crate::client::EtcdClient;
use crate::course::drill::ACKS_FILE;
use crate::course::drill::DrillState;
use crate::course::drill::HEALTH_FILE;
use crate::course::drill::WRITES_PREFIX;
use crate::course::drill::clock;
use crate::course::drill::health;
use crate::course::drill::helpers;
use crate::course::drill::now_ms;
use crate::lab::Lab;
use crate::proto::etcdserverpb::PutRequest;

/// The pause between two writes: enough writes to lose, little load on a small machine.
const WRITE_GAP: Duration = Duration::from_millis(40);
/// The pause before trying again after a failed write.
const RETRY_GAP: Duration = Duration::from_millis(200);
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// A drill nobody scored or stopped ends here, so its helpers never run on for days.
const LONGEST_DRILL: Duration = Duration::from_secs(4 * 3600);

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub seq: u64,
    pub key: String,
    pub value: String,
    /// The revision the cluster gave it.
    pub revision: i64,
    pub at_ms: i64,
}

/// One change in the cluster's health, as the watcher saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthNote {
    /// When the look began: what it saw was true no earlier than this.
    pub at_ms: i64,
    pub healthy: bool,
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Reads a JSON-lines file; a torn last line (the writer killed half-way) is left out.
fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<String> = std::io::BufReader::new(file).lines().collect::<Result<_, _>>()?;
    let last = lines.len().saturating_sub(1);
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i == last => {}
            Err(e) => anyhow::bail!("line {} of {} is damaged: {e}", i + 1, path.display()),
        }
    }
    Ok(out)
}

pub fn read_acks(dir: &Path) -> Result<Vec<Ack>> {
    read_lines(&dir.join(ACKS_FILE))
}

pub fn read_health(dir: &Path) -> Result<Vec<HealthNote>> {
    read_lines(&dir.join(HEALTH_FILE))
}

/// Appends one line and syncs it: once this returns, the line survives a crash.
fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

pub async fn run(home: &Path, lab_name: &str, dir: &Path) -> Result<()> {
    let state = DrillState::load_from(dir)?.with_context(|| format!("there is no drill in {}", dir.display()))?;
    let lab_dir = Lab::dir_for(home, lab_name);
    let last_ack = Arc::new(AtomicI64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let writer =
        tokio::spawn(write(lab_dir.clone(), dir.to_path_buf(), state.clone(), last_ack.clone(), stop_rx.clone()));
    let mut watcher = tokio::spawn(look(lab_dir, dir.to_path_buf(), state, last_ack, stop_rx));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let gone = tokio::select! {
        _ = term.recv() => false,
        _ = tokio::signal::ctrl_c() => false,
        _ = &mut watcher => true,
    };
    let _ = stop_tx.send(true);
    writer.await.context("the writer")??;
    if !gone {
        watcher.await.context("the watcher")??;
    }
    eprintln!("{}  the workload stops", clock(now_ms()));
    Ok(())
}

async fn write(
    lab_dir: PathBuf,
    dir: PathBuf,
    state: DrillState,
    last_ack: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let acks_path = dir.join(ACKS_FILE);
    let mut seq = read_lines::<Ack>(&acks_path)?.last().map_or(1, |a| a.seq + 1);
    let mut client: Option<EtcdClient> = None;
    let mut attempt = 0usize;
    let mut failing: Option<(String, u32)> = None;
    while !*stop.borrow() {
        let Some(c) = client.as_mut() else {
            client = connect(&lab_dir, attempt).await;
            if client.is_none() {
                attempt += 1;
                note_failure(&mut failing, "no member accepts connections".to_string());
                pause(&mut stop, RETRY_GAP).await;
            }
            continue;
        };
        let key = format!("{WRITES_PREFIX}{seq:08}");
        let value = format!("write {seq} of the drill begun at {}", state.started_unix_ms);
        let put = PutRequest { key: key.clone().into(), value: value.clone().into(), ..Default::default() };
        let answer = tokio::select! {
            a = tokio::time::timeout(WRITE_TIMEOUT, c.kv.put(put)) => a,
            _ = stop.changed() => break,
        };
        match answer {
            Ok(Ok(resp)) => {
                let revision = resp.into_inner().header.map_or(0, |h| h.revision);
                let at_ms = now_ms();
                append_line(&acks_path, &Ack { seq, key, value, revision, at_ms })?;
                last_ack.store(at_ms, Ordering::SeqCst);
                if let Some((why, times)) = failing.take() {
                    eprintln!("{}  writes commit again (after {times} failures; the last: {why})", clock(at_ms));
                }
                seq += 1;
                pause(&mut stop, WRITE_GAP).await;
            }
            failed => {
                let why = match failed {
                    Ok(Err(s)) => s.message().to_string(),
                    _ => format!("no answer within {WRITE_TIMEOUT:?}"),
                };
                note_failure(&mut failing, format!("{}: {why}", c.endpoint));
                client = None;
                attempt += 1;
                pause(&mut stop, RETRY_GAP).await;
            }
        }
    }
    Ok(())
}

/// Prints a failure the first time it happens, not at every retry.
fn note_failure(failing: &mut Option<(String, u32)>, why: String) {
    match failing {
        Some((last, times)) => {
            *times += 1;
            if *last != why {
                eprintln!("{}  a write failed: {why}", clock(now_ms()));
                *last = why;
            }
        }
        None => {
            eprintln!("{}  a write failed: {why}", clock(now_ms()));
            *failing = Some((why, 1));
        }
    }
}

/// A client of one of the lab's members, taking them in turn: the lab is read afresh each
/// time, since a restore, a recovery or a membership change gives it other members.
async fn connect(lab_dir: &Path, attempt: usize) -> Option<EtcdClient> {
    let lab = Lab::open_dir(lab_dir).ok()?;
    let endpoints = lab.endpoints();
    let url = endpoints.get(attempt % endpoints.len().max(1))?;
    EtcdClient::connect(url, &lab.root_cert(), Duration::from_secs(2)).await.ok()
}

async fn pause(stop: &mut watch::Receiver<bool>, how_long: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => {}
        _ = stop.changed() => {}
    }
}

/// The watcher; returns when the drill is gone (the caller then stops the writer).
async fn look(
    lab_dir: PathBuf,
    dir: PathBuf,
    state: DrillState,
    last_ack: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let me = std::process::id() as i32;
    let health_path = dir.join(HEALTH_FILE);
    let mut seen: Option<Vec<String>> = None;
    let mut backup = (state.backup_pid, state.backup_dir.clone());
    while !*stop.borrow() {
        pause(&mut stop, LOOK_EVERY).await;
        if *stop.borrow() {
            break;
        }
        match DrillState::load_from(&dir) {
            Ok(Some(s)) if s.workload_pid.is_none_or(|p| p == me) && s.finished.is_none() => {
                backup = (s.backup_pid.or(backup.0), s.backup_dir);
            }
            Ok(Some(s)) if s.finished.is_some() => {
                eprintln!("{}  the drill is over", clock(now_ms()));
                return Ok(());
            }
            _ => {
                eprintln!("{}  the drill is gone; stopping its backup too", clock(now_ms()));
                helpers::stop(backup.0, &helpers::backup_args(&state.lab, &backup.1), Duration::from_secs(10));
                return Ok(());
            }
        }
        if now_ms() - state.started_unix_ms > LONGEST_DRILL.as_millis() as i64 {
            eprintln!("{}  the drill has run for {LONGEST_DRILL:?}: stopping it and its backup", clock(now_ms()));
            helpers::stop(backup.0, &helpers::backup_args(&state.lab, &backup.1), Duration::from_secs(10));
            return Ok(());
        }
        let at_ms = now_ms();
        let mut problems = match Lab::open_dir(&lab_dir) {
            Ok(lab) => health::look(&lab, state.members).await.problems,
            Err(e) => vec![format!("the lab cannot be opened: {e:#}")],
        };
        if at_ms - last_ack.load(Ordering::SeqCst) > health::WRITES_RECENT.as_millis() as i64 {
            problems.push("writes do not commit".to_string());
        }
        if seen.as_ref() != Some(&problems) {
            let note = HealthNote { at_ms, healthy: problems.is_empty(), problems: problems.clone() };
            append_line(&health_path, &note)?;
            seen = Some(problems);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_read_back_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let ack = |seq| Ack { seq, key: format!("k{seq}"), value: "v".into(), revision: seq as i64 + 1, at_ms: 5 };
        append_line(&dir.path().join(ACKS_FILE), &ack(1)).unwrap();
        append_line(&dir.path().join(ACKS_FILE), &ack(2)).unwrap();
        assert_eq!(read_acks(dir.path()).unwrap(), vec![ack(1), ack(2)]);
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join(ACKS_FILE)).unwrap();
        f.write_all(b"{\"seq\":3,\"ke").unwrap();
        assert_eq!(read_acks(dir.path()).unwrap().len(), 2, "a half-written line was never acknowledged");
        std::fs::write(dir.path().join(ACKS_FILE), "garbage\n{\"seq\":1}\n").unwrap();
        assert!(read_acks(dir.path()).unwrap_err().to_string().contains("line 1"), "damage before the end is an error");
        assert!(read_health(dir.path()).unwrap().is_empty(), "no file yet: nothing seen");
    }
}
