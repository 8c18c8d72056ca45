//! The backups of a lab, as the app's backups view and `raftty backup list` with no folder
//! show them: everything in the lab's backup folder, plus the files and folders saved
//! elsewhere through raftty, which it remembers.
//!
//! The folder is `$RAFTTY_HOME/backups/<lab>/`, beside the lab rather than inside it: a
//! disaster-recovery drill deletes or replaces the lab, and its backups must outlive it.

use std::path::Path;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use anyhow::Result;

use crate::backup::continuous;
use crate::backup::etcd_db::Backend;
use crate::backup::snapshot_file;

const REMEMBERED: &str = "elsewhere.json";

/// Where a lab's backups go unless told otherwise.
pub fn folder(home: &Path, lab: &str) -> PathBuf {
    home.join("backups").join(lab)
}

/// A new name for a snapshot in the lab's folder, by time: `snapshot-20261201-104500.db`.
pub fn new_snapshot_path(home: &Path, lab: &str) -> PathBuf {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_digit()).collect();
    let (date, time) = stamp.split_at(8.min(stamp.len()));
    folder(home, lab).join(format!("snapshot-{date}-{time}.db"))
}

/// The folder of the lab's continuous backup, unless told otherwise.
pub fn continuous_folder(home: &Path, lab: &str) -> PathBuf {
    folder(home, lab).join("continuous")
}

/// Remembers a backup made outside the lab's folder, so the backups view lists it too.
pub fn remember(home: &Path, lab: &str, path: &Path) -> Result<()> {
    let dir = folder(home, lab);
    let path = std::path::absolute(path).with_context(|| format!("finding {}", path.display()))?;
    if path.starts_with(&dir) {
        return Ok(());
    }
    crate::pki::create_private_dir(&dir)?;
    let mut known = remembered(&dir);
    if !known.contains(&path) {
        known.push(path);
        let tmp = dir.join(format!("{REMEMBERED}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&known)?)?;
        std::fs::rename(&tmp, dir.join(REMEMBERED))?;
    }
    Ok(())
}

fn remembered(dir: &Path) -> Vec<PathBuf> {
    std::fs::read(dir.join(REMEMBERED)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One etcd snapshot file.
    Snapshot,
    /// A `raftty backup` folder: full snapshots and the changes after them.
    Continuous,
}

/// One backup, and the revisions a restore from it can reach.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    pub path: PathBuf,
    /// The oldest revision it can restore (its compaction floor, 1 when never compacted).
    pub first: i64,
    /// The newest.
    pub last: i64,
    pub bytes: u64,
    pub modified: Option<SystemTime>,
    /// Why it cannot be restored, when it cannot.
    pub problem: Option<String>,
}

/// Every backup of the lab, newest first.
pub fn list(home: &Path, lab: &str) -> Vec<Entry> {
    let dir = folder(home, lab);
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|entries| entries.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    paths.retain(|p| p.is_dir() || p.extension().is_some_and(|e| e == "db"));
    paths.extend(remembered(&dir));
    paths.sort();
    paths.dedup();
    let mut entries: Vec<Entry> = paths.iter().map(|p| look_at(p)).collect();
    entries.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.path.cmp(&b.path)));
    entries
}

/// What one backup holds; a missing or damaged one says why instead.
pub fn look_at(path: &Path) -> Entry {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut entry = Entry {
        kind: if path.is_dir() { Kind::Continuous } else { Kind::Snapshot },
        path: path.to_path_buf(),
        first: 0,
        last: 0,
        bytes: 0,
        modified,
        problem: None,
    };
    let looked = match entry.kind {
        Kind::Snapshot => snapshot_span(path),
        Kind::Continuous => continuous_span(path),
    };
    match looked {
        Ok((first, last, bytes)) => (entry.first, entry.last, entry.bytes) = (first, last, bytes),
        Err(e) => entry.problem = Some(format!("{e:#}")),
    }
    entry
}

/// One line for a terminal: kind, revisions, size, age, path, and any problem.
pub fn one_line(e: &Entry) -> String {
    let kind = match e.kind {
        Kind::Snapshot => "snapshot  ",
        Kind::Continuous => "continuous",
    };
    let when = e.modified.map(|m| humantime::format_rfc3339_seconds(m).to_string()).unwrap_or_default();
    match &e.problem {
        Some(why) => format!("{kind}  {}  cannot be restored: {why}", e.path.display()),
        None => format!(
            "{kind}  revisions {:>6} to {:<6}  {:>8}  {when}  {}",
            e.first,
            e.last,
            crate::progress::human_bytes(e.bytes),
            e.path.display()
        ),
    }
}

fn snapshot_span(path: &Path) -> Result<(i64, i64, u64)> {
    anyhow::ensure!(path.exists(), "missing");
    let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let backend = Backend::from_bolt(snapshot_file::db_of(&file, false)?)?;
    Ok((backend.compact_revision.max(1), backend.revision(), file.len() as u64))
}

fn continuous_span(dir: &Path) -> Result<(i64, i64, u64)> {
    let (first, last) = continuous::span(dir)?;
    let bytes = std::fs::read_dir(dir)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    Ok((first, last, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_backups_are_listed_with_what_is_wrong_with_them() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = home.path().join("elsewhere.db");
        std::fs::write(&elsewhere, b"not a snapshot").unwrap();
        remember(home.path(), "lab", &elsewhere).unwrap();
        remember(home.path(), "lab", &elsewhere).unwrap();
        let listed = list(home.path(), "lab");
        assert_eq!(listed.len(), 1, "remembered once: {listed:?}");
        assert_eq!(listed[0].path, elsewhere);
        assert!(listed[0].problem.is_some(), "a file that is no snapshot says so");
        std::fs::remove_file(&elsewhere).unwrap();
        assert_eq!(list(home.path(), "lab")[0].problem.as_deref(), Some("missing"));
    }

    #[test]
    fn new_snapshots_are_named_by_time_in_the_labs_folder() {
        let path = new_snapshot_path(Path::new("/h"), "demo");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(path.starts_with("/h/backups/demo"));
        assert!(
            name.starts_with("snapshot-2")
                && name.ends_with(".db")
                && name.len() == "snapshot-20261201-104500.db".len(),
            "{name}"
        );
    }
}
