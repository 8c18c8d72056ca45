//! etcd's snapshot file: the backend's bbolt file followed by the 32-byte SHA-256 of it, as
//! `etcdctl snapshot save` writes what Maintenance.Snapshot streams; and what
//! `etcdctl snapshot status` says of one (hash, revision, total keys, size), plus what
//! raftty adds (compaction floor, leases, the largest prefixes).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use anyhow::Result;
use serde::Serialize;
use sha2::Digest;
use sha2::Sha256;

use crate::backup::etcd_db::Backend;
use crate::backup::etcd_db::parse_revision_key;

pub const TRAILER: usize = 32;

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The bbolt part of a snapshot file, after checking its SHA-256 trailer. A file without a
/// trailer (a member's `member/snap/db`) is taken whole only with `skip_hash_check`, as
/// etcdctl does.
pub fn db_of(file: &[u8], skip_hash_check: bool) -> Result<&[u8]> {
    // bbolt files are whole pages; a trailer makes the size 32 more than a multiple of 512.
    let has_trailer = file.len() % 512 == TRAILER;
    if !has_trailer {
        anyhow::ensure!(
            skip_hash_check,
            "the snapshot has no SHA-256 trailer ({} bytes is not pages plus 32): it was cut short, or it is a \
             member's db file (then pass --skip-hash-check, as etcdctl wants)",
            file.len()
        );
        return Ok(file);
    }
    let (db, trailer) = file.split_at(file.len() - TRAILER);
    if !skip_hash_check {
        anyhow::ensure!(
            sha256(db) == trailer,
            "the snapshot is damaged: the SHA-256 of its {} bytes does not match the one recorded at its end",
            db.len()
        );
    }
    Ok(db)
}

/// Writes `bytes` to `path` the way etcdctl does: into `path.part`, synced, then renamed,
/// so a save that dies half-way never leaves a file that looks whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let part = path.with_file_name(format!(
        "{}.part",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "snapshot".into())
    ));
    let write = || -> Result<()> {
        let mut f = std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&part, path).with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&part);
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// CRC-32C over every bucket name, key and value, as etcdctl computes it.
    pub hash: u32,
    pub revision: i64,
    pub total_keys: usize,
    pub total_size: usize,
    pub compact_revision: i64,
    pub leases: usize,
    /// Keys alive at the snapshot's revision.
    pub live_keys: usize,
    /// The prefixes holding the most live keys (down to two levels), with their counts.
    pub largest_prefixes: Vec<(String, usize)>,
    /// The alarms active when the snapshot was taken, as etcd's Status words them.
    pub alarms: Vec<String>,
}

/// What etcdctl's `snapshot status` reads from a file, and more.
pub fn status(file: &[u8]) -> Result<Status> {
    let db = db_of(file, true)?;
    let buckets = crate::bolt::BoltFile::open(db)?.buckets()?;
    let mut hash = 0u32;
    let mut total_keys = 0;
    let mut revision = 0;
    for (name, entries) in &buckets {
        hash = crc32c::crc32c_append(hash, name);
        for (k, v) in entries {
            hash = crc32c::crc32c_append(hash, k);
            hash = crc32c::crc32c_append(hash, v);
            total_keys += 1;
            if name == b"key" {
                revision = parse_revision_key(k)?.0;
            }
        }
    }
    let backend = Backend::from_bolt(db)?;
    let mut live: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
    for c in &backend.changes {
        live.insert(c.kv.key.to_vec(), !c.tombstone);
    }
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for key in live.iter().filter(|(_, alive)| **alive).map(|(k, _)| String::from_utf8_lossy(k).into_owned()) {
        let cut: Vec<&str> = key.split_inclusive('/').take(3).collect();
        let prefix = if cut.len() < 3 { "(top level)".to_string() } else { cut.concat() };
        *prefixes.entry(prefix).or_default() += 1;
    }
    let mut largest: Vec<(String, usize)> = prefixes.into_iter().collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    largest.truncate(5);
    Ok(Status {
        hash,
        revision,
        total_keys,
        total_size: db.len(),
        compact_revision: backend.compact_revision,
        leases: backend.leases.len(),
        live_keys: live.values().filter(|a| **a).count(),
        largest_prefixes: largest,
        alarms: backend
            .alarms
            .iter()
            .map(|&(member_id, alarm)| {
                crate::node::mvcc::alarm::describe(&crate::proto::etcdserverpb::AlarmMember { member_id, alarm })
                    .trim_end()
                    .to_string()
            })
            .collect(),
    })
}

impl Status {
    /// etcdctl's table, then raftty's additions.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("+----------+----------+------------+------------+\n");
        out.push_str("|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n");
        out.push_str("+----------+----------+------------+------------+\n");
        out.push_str(&format!(
            "| {:08x} | {:>8} | {:>10} | {:>10} |\n",
            self.hash,
            self.revision,
            self.total_keys,
            human_size(self.total_size)
        ));
        out.push_str("+----------+----------+------------+------------+\n");
        out.push_str(&format!(
            "compaction floor: {}   leases: {}   live keys: {}\n",
            self.compact_revision, self.leases, self.live_keys
        ));
        if !self.largest_prefixes.is_empty() {
            let list: Vec<String> = self.largest_prefixes.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            out.push_str(&format!("largest prefixes: {}\n", list.join(", ")));
        }
        if !self.alarms.is_empty() {
            out.push_str(&format!("alarms: {}\n", self.alarms.join(", ")));
        }
        out
    }
}

/// Sizes as etcdctl prints them (go-humanize: powers of 1000).
fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1000 => format!("{} kB", (b as f64 / 1e3).round()),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etcd-3.4.23.snapshot")).unwrap()
    }

    #[test]
    fn status_says_what_etcdctl_says_of_etcds_own_file() {
        let s = status(&fixture()).unwrap();
        // etcdctl snapshot status: 7af85d3f, revision 7, 12 keys, 20 kB.
        assert_eq!(format!("{:08x}", s.hash), "7af85d3f");
        assert_eq!((s.revision, s.total_keys), (7, 12));
        assert_eq!(human_size(s.total_size), "20 kB");
        assert_eq!((s.compact_revision, s.leases, s.live_keys), (3, 1, 3));
    }

    #[test]
    fn a_damaged_or_cut_snapshot_is_refused_with_the_reason() {
        let good = fixture();
        assert!(db_of(&good, false).is_ok());
        let mut flipped = good.clone();
        flipped[5000] ^= 1;
        let e = db_of(&flipped, false).unwrap_err().to_string();
        assert!(e.contains("SHA-256") && e.contains("does not match"), "{e}");
        let e = db_of(&good[..good.len() - 100], false).unwrap_err().to_string();
        assert!(e.contains("no SHA-256 trailer"), "{e}");
        assert_eq!(db_of(&good[..good.len() - 32], true).unwrap().len(), good.len() - 32);
    }
}
