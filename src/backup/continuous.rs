//! `raftty backup DIR`: a full snapshot, then every change after it, recorded from a Watch
//! (so revisions are kept) into an append-only change log; a new full snapshot every so
//! often. `raftty restore DIR --to-revision R` starts from the newest full snapshot at or
//! below R and replays the log up to R: the incremental backup of the etcd literature,
//! turned into point-in-time recovery.
//!
//! ```text
//! DIR/full-000000000042.db      etcd snapshots, named by their revision
//! DIR/changes-000000000042.log  what happened after it (see change_log.rs)
//! ```
//!
//! Records go to the newest log; a restore reads every log and takes each revision once, so
//! a revision recorded just before a new full snapshot is never lost between two files.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;
use tokio_stream::StreamExt;

use crate::backup::change_log;
use crate::backup::change_log::ChangeRecord;
use crate::backup::etcd_db::Backend;
use crate::backup::etcd_db::Change;
use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::WatchProgressRequest;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::mvccpb::KeyValue;
use crate::proto::mvccpb::event::EventType;

pub struct BackupOptions {
    pub every: Duration,
    /// A new full snapshot once the current log grows past this.
    pub max_log_bytes: u64,
    pub progress_every: Duration,
}

fn full_name(revision: i64) -> String {
    format!("full-{revision:012}.db")
}

fn log_name(base: i64) -> String {
    format!("changes-{base:012}.log")
}

fn numbered(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(n) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(suffix)).and_then(|n| n.parse().ok()) {
            out.push((n, path));
        }
    }
    out.sort();
    Ok(out)
}

pub fn fulls(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    numbered(dir, "full-", ".db")
}

pub fn logs(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    numbered(dir, "changes-", ".log")
}

pub fn is_backup_dir(dir: &Path) -> bool {
    fulls(dir).is_ok_and(|f| !f.is_empty())
}

/// Every recorded revision, from every log, each once.
fn all_records(dir: &Path) -> Result<BTreeMap<i64, ChangeRecord>> {
    let mut out = BTreeMap::new();
    for (_, path) in logs(dir)? {
        let (records, _) = change_log::read(&path)?;
        for r in records {
            out.entry(r.revision).or_insert(r);
        }
    }
    Ok(out)
}

/// The backend as of `to` (the last recorded revision when None): the newest full snapshot
/// at or below it, with the recorded changes replayed on top.
pub fn backend_at(dir: &Path, to: Option<i64>) -> Result<Backend> {
    let fulls = fulls(dir)?;
    anyhow::ensure!(!fulls.is_empty(), "{} holds no full snapshot: it is no raftty backup", dir.display());
    let records = all_records(dir)?;
    let last = records.keys().next_back().copied().unwrap_or(0).max(fulls.last().map_or(0, |f| f.0));
    let target = to.unwrap_or(last);
    anyhow::ensure!(target <= last, "revision {target} is past what the backup recorded: it reaches revision {last}");
    // The newest full snapshot at or below the target, with the log replayed on top; for a
    // target older than every full snapshot, the oldest one, whose own history reaches back to
    // its compaction floor (the caller then cuts it back to the target).
    let (full_rev, full_path) = fulls.iter().rev().find(|(r, _)| *r <= target).unwrap_or(&fulls[0]).clone();
    let replay = (std::ops::Bound::Excluded(full_rev), std::ops::Bound::Included(target.max(full_rev)));
    let file = std::fs::read(&full_path).with_context(|| format!("reading {}", full_path.display()))?;
    let db = crate::backup::snapshot_file::db_of(&file, false)
        .with_context(|| format!("{} is damaged", full_path.display()))?;
    let mut backend = Backend::from_bolt(db)?;
    for (expected, (revision, record)) in (full_rev + 1..).zip(records.range(replay)) {
        anyhow::ensure!(
            *revision == expected,
            "the backup lacks revisions {expected} to {}: it cannot restore past {}",
            revision - 1,
            expected - 1
        );
        for (sub, e) in record.events.iter().enumerate() {
            let kv = e.kv.clone().unwrap_or_default();
            let tombstone = e.r#type == EventType::Delete as i32;
            let kv = if tombstone { KeyValue { key: kv.key, ..Default::default() } } else { kv };
            backend.changes.push(Change { main: *revision, sub: sub as i64, tombstone, kv });
        }
    }
    if target > full_rev {
        let reached = backend.revision();
        anyhow::ensure!(
            reached == target,
            "the backup lacks revisions {} to {target}: it cannot restore past {reached}",
            reached + 1
        );
    }
    Ok(backend)
}

/// The revisions a restore from the backup in `dir` can reach: from the oldest full
/// snapshot's compaction floor to the last change recorded.
pub fn span(dir: &Path) -> Result<(i64, i64)> {
    let fulls = fulls(dir)?;
    anyhow::ensure!(!fulls.is_empty(), "{} holds no full snapshot: it is no raftty backup", dir.display());
    let oldest = std::fs::read(&fulls[0].1).with_context(|| format!("reading {}", fulls[0].1.display()))?;
    let first = Backend::from_bolt(crate::backup::snapshot_file::db_of(&oldest, false)?)?.compact_revision.max(1);
    let last = all_records(dir)?.keys().next_back().copied().unwrap_or(0).max(fulls.last().map_or(0, |f| f.0));
    Ok((first, last))
}

/// What `raftty backup list` prints.
pub fn describe(dir: &Path) -> Result<String> {
    let mut out = String::new();
    let fulls = fulls(dir)?;
    anyhow::ensure!(!fulls.is_empty(), "{} holds no full snapshot: it is no raftty backup", dir.display());
    for (rev, path) in &fulls {
        let when = std::fs::metadata(path).and_then(|m| m.modified()).ok().map(humantime::format_rfc3339_seconds);
        let when = when.map(|w| w.to_string()).unwrap_or_default();
        out.push_str(&format!("full snapshot   revision {rev:>8}   {when}   {}\n", path.display()));
    }
    for (base, path) in logs(dir)? {
        let (records, torn) = change_log::read(&path)?;
        let (first, last) = (records.first(), records.last());
        let span = match (first, last) {
            (Some(f), Some(l)) => format!(
                "revisions {} to {}, {} recorded {} to {}",
                f.revision,
                l.revision,
                records.len(),
                clock(f.recorded_unix_millis),
                clock(l.recorded_unix_millis)
            ),
            _ => "no changes yet".to_string(),
        };
        let torn = if torn > 0 { format!(" ({torn} torn bytes at the end)") } else { String::new() };
        out.push_str(&format!("change log      after {base:>8}   {span}{torn}\n"));
    }
    let (first, last) = span(dir)?;
    out.push_str(&format!(
        "restorable: revisions {first} to {last} (raftty restore {} --to-revision R)\n",
        dir.display()
    ));
    Ok(out)
}

fn clock(unix_millis: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(unix_millis.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A client of some running member of the lab, trying each in turn.
async fn any_member(lab_dir: &Path, attempt: usize) -> Result<EtcdClient> {
    let lab = Lab::open_dir(lab_dir)?;
    let endpoints = lab.endpoints();
    anyhow::ensure!(!endpoints.is_empty(), "the lab has no members");
    let url = &endpoints[attempt % endpoints.len()];
    EtcdClient::connect(url, &lab.root_cert(), Duration::from_secs(3600)).await
}

struct Recorder {
    dir: PathBuf,
    log: std::fs::File,
    log_base: i64,
    last: i64,
    synced_at: Instant,
}

impl Recorder {
    fn record(&mut self, record: &ChangeRecord) -> Result<()> {
        change_log::append(&mut self.log, record)?;
        self.last = self.last.max(record.revision);
        if self.synced_at.elapsed() >= Duration::from_secs(1) {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.log.sync_data()?;
        self.synced_at = Instant::now();
        Ok(())
    }

    fn log_len(&self) -> u64 {
        self.log.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// A new full snapshot, and a new log after it.
    async fn full_snapshot(&mut self, lab_dir: &Path, say: &mut impl FnMut(String)) -> Result<()> {
        let mut client = any_member(lab_dir, 0).await?;
        let pending = self.dir.join("full-pending.db");
        let saved = crate::backup::stream::save(&mut client, &pending, |_| {}).await?;
        let path = self.dir.join(full_name(saved.revision));
        std::fs::rename(&pending, &path)?;
        self.sync()?;
        let (log, _, _) = change_log::open_for_append(&self.dir.join(log_name(saved.revision)))?;
        self.log = log;
        self.log_base = saved.revision;
        self.last = self.last.max(saved.revision);
        say(format!("full snapshot at revision {} ({} bytes): {}", saved.revision, saved.bytes, path.display()));
        Ok(())
    }
}

/// Runs until `stop` resolves: records every change of the lab in `lab_dir` into `dir`.
pub async fn run(
    lab_dir: &Path,
    dir: &Path,
    options: &BackupOptions,
    stop: impl std::future::Future<Output = ()>,
    mut say: impl FnMut(String),
) -> Result<()> {
    crate::pki::create_private_dir(dir)?;
    let _ = std::fs::remove_file(dir.join("full-pending.db"));
    let mut recorder = match fulls(dir)?.last().cloned() {
        Some((base, _)) => {
            let (log, records, torn) = change_log::open_for_append(&dir.join(log_name(base)))?;
            if torn > 0 {
                say(format!(
                    "cut a torn tail of {torn} bytes off the end of {} (a record half-written when the backup was killed)",
                    log_name(base)
                ));
            }
            let last = all_records(dir)?.keys().next_back().copied().unwrap_or(base).max(base);
            say(format!("resuming the backup in {} after revision {last}", dir.display()));
            let _ = records;
            Recorder { dir: dir.to_path_buf(), log, log_base: base, last, synced_at: Instant::now() }
        }
        None => {
            let placeholder = tempfile::tempfile()?;
            let mut r =
                Recorder { dir: dir.to_path_buf(), log: placeholder, log_base: 0, last: 0, synced_at: Instant::now() };
            r.full_snapshot(lab_dir, &mut say).await?;
            r
        }
    };
    let mut last_full = Instant::now();
    tokio::pin!(stop);
    let mut attempt = 0;
    let mut cluster_revision = recorder.last;
    let mut progress = tokio::time::interval(options.progress_every);
    progress.tick().await;
    'connections: loop {
        let connected = any_member(lab_dir, attempt).await;
        attempt += 1;
        let Ok(mut client) = connected else {
            tokio::select! {
                _ = &mut stop => break 'connections,
                _ = tokio::time::sleep(Duration::from_millis(500)) => continue 'connections,
            }
        };
        let create = WatchCreateRequest {
            key: Bytes::from_static(b"\0"),
            range_end: Bytes::from_static(b"\0"),
            start_revision: recorder.last + 1,
            progress_notify: true,
            ..Default::default()
        };
        let Ok((requests, mut stream)) = client.open_watch(create, false).await else { continue 'connections };
        loop {
            tokio::select! {
                _ = &mut stop => break 'connections,
                _ = progress.tick() => {
                    // Records written since the last sync reach the disk even when writes stop.
                    recorder.sync()?;
                    let _ = requests.try_send(WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) });
                    say(format!(
                        "at revision {} (the cluster is at {}, {} behind); log after {}: {} bytes",
                        recorder.last, cluster_revision, (cluster_revision - recorder.last).max(0), recorder.log_base, recorder.log_len()
                    ));
                }
                next = stream.next() => {
                    let Some(Ok(answer)) = next else {
                        say(format!("the watch ended; reconnecting from revision {}", recorder.last + 1));
                        continue 'connections;
                    };
                    if let Some(h) = &answer.header {
                        cluster_revision = cluster_revision.max(h.revision);
                    }
                    if answer.canceled {
                        if answer.compact_revision > 0 {
                            say(format!(
                                "revision {} was compacted before it was recorded: taking a new full snapshot",
                                recorder.last + 1
                            ));
                            recorder.full_snapshot(lab_dir, &mut say).await?;
                            last_full = Instant::now();
                        }
                        continue 'connections;
                    }
                    let mut by_revision: BTreeMap<i64, Vec<crate::proto::mvccpb::Event>> = BTreeMap::new();
                    for e in answer.events {
                        let rev = e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                        by_revision.entry(rev).or_default().push(e);
                    }
                    for (revision, events) in by_revision {
                        if revision > recorder.last {
                            recorder.record(&ChangeRecord { revision, events, recorded_unix_millis: now_millis() })?;
                        }
                    }
                    if last_full.elapsed() >= options.every || recorder.log_len() >= options.max_log_bytes {
                        recorder.full_snapshot(lab_dir, &mut say).await?;
                        last_full = Instant::now();
                    }
                }
            }
        }
    }
    recorder.sync()?;
    say(format!("stopped at revision {}; everything up to it is on disk", recorder.last));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64, key: &str) -> Change {
        let kv = KeyValue {
            key: key.as_bytes().to_vec().into(),
            create_revision: main,
            mod_revision: main,
            version: 1,
            ..Default::default()
        };
        Change { main, sub: 0, tombstone: false, kv }
    }

    #[test]
    fn a_target_at_or_below_the_only_full_snapshot_is_read_from_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend { changes: vec![put(2, "/a"), put(3, "/b"), put(4, "/c")], ..Default::default() };
        let mut file = backend.to_bolt();
        file.extend_from_slice(&crate::backup::snapshot_file::sha256(&file.clone()));
        std::fs::write(dir.path().join(full_name(4)), &file).unwrap();
        assert_eq!(backend_at(dir.path(), Some(4)).unwrap().revision(), 4, "exactly at the snapshot");
        let older = backend_at(dir.path(), Some(3)).unwrap();
        assert_eq!(older.at_revision(3).unwrap().0.revision(), 3, "older than the snapshot, from its history");
        assert!(backend_at(dir.path(), Some(5)).unwrap_err().to_string().contains("reaches revision 4"));
    }
}
