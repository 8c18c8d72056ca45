//! Snapshot files: the state machine's content at one applied log index, written to disk so
//! it survives restarts and can be streamed to a lagging or new member.
//!
//! ## Layout
//!
//! A snapshot lives in `<data dir>/snapshots/snapshot-<index>-<term>.snap` (both numbers
//! zero-padded to 20 digits, so names sort in log order; only the newest is kept):
//!
//! ```text
//! "RFTYSNP1"                        8 bytes of magic
//! SnapshotHeader                    length-delimited protobuf (proto/raftty/store.proto)
//! SnapshotRecord { revision }  *    every retained revision record, in revision order
//! SnapshotRecord { lease }     *    every lease
//! SnapshotRecord { end }            how many of each came before
//! crc32c                            4 bytes, little-endian, of everything above
//! ```
//!
//! A snapshot is written under a temporary name, fsynced, renamed into place and its
//! directory fsynced, so a crash never leaves a half-written `.snap` behind. A reader checks
//! the checksum over the whole file before believing any of it.

use std::fs::File;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use prost::Message;

use crate::node::mvcc::RestoreItem;
use crate::node::mvcc::Revision;
use crate::node::mvcc::StoreError;
use crate::node::mvcc::StoreSnapshot;
use crate::node::mvcc::store::sync_parent_dir;
use crate::proto::rafttystore::RevisionRecordAt;
use crate::proto::rafttystore::SnapshotEnd;
use crate::proto::rafttystore::SnapshotHeader;
use crate::proto::rafttystore::SnapshotRecord;
use crate::proto::rafttystore::StoreState;
use crate::proto::rafttystore::snapshot_record::Record;

/// A snapshot that lives in a file of the member's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

/// The directory of a member's snapshots, inside its data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Bumped when the snapshot layout changes incompatibly.
pub const SNAPSHOT_FORMAT: u32 = 1;

const MAGIC: &[u8; 8] = b"RFTYSNP1";
const EXTENSION: &str = "snap";
const CHECKSUM_LEN: u64 = 4;

/// No single record comes near this (a request is at most 1.5 MiB); a larger length can
/// only come from a damaged or hostile file, and must not turn into a huge allocation.
const MAX_RECORD_LEN: u64 = 64 << 20;

/// The file name of a snapshot: sorting names sorts snapshots by log position.
pub fn file_name(header: &SnapshotHeader) -> String {
    let last = header.applied.as_ref().and_then(|a| a.last_applied.as_ref());
    let (index, term) = last.map_or((0, 0), |l| (l.index, l.term));
    format!("snapshot-{index:020}-{term:020}.{EXTENSION}")
}

/// The finished snapshot files in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        let is_snapshot = path.extension().is_some_and(|e| e == EXTENSION)
            && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("snapshot-"));
        if is_snapshot {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The store state a snapshot describes.
pub fn store_state(header: &SnapshotHeader) -> StoreState {
    StoreState {
        format: crate::node::mvcc::store::STATE_FORMAT,
        revision: header.revision,
        compact_revision: header.compact_revision,
        applied: header.applied.clone(),
        alarms: header.alarms.clone(),
        auth: header.auth.clone(),
    }
}

/// Feeds everything written through it to a crc32c.
struct Checksummed<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_message(out: &mut impl Write, message: &impl Message) -> std::io::Result<()> {
    out.write_all(&message.encode_length_delimited_to_vec())
}

/// Writes a snapshot of `view` into `dir`; returns its path and header.
pub fn write(dir: &Path, cluster_id: u64, view: &StoreSnapshot) -> Result<(PathBuf, SnapshotHeader), StoreError> {
    let state = view.state();
    let header = SnapshotHeader {
        format: SNAPSHOT_FORMAT,
        cluster_id,
        revision: state.revision,
        compact_revision: state.compact_revision,
        applied: state.applied.clone(),
        alarms: state.alarms.clone(),
        auth: state.auth.clone(),
    };
    let tmp = dir.join(format!("building-{:016x}.tmp", rand::random::<u64>()));
    let result = write_to(&tmp, &header, view).and_then(|()| {
        let path = dir.join(file_name(&header));
        std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        sync_parent_dir(&path)?;
        Ok(path)
    });
    match result {
        Ok(path) => Ok((path, header)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_to(tmp: &Path, header: &SnapshotHeader, view: &StoreSnapshot) -> Result<(), StoreError> {
    let io = |e| StoreError::io(tmp, e);
    let file = File::create_new(tmp).map_err(io)?;
    let mut out = Checksummed { inner: BufWriter::new(file), crc: 0 };
    out.write_all(MAGIC).map_err(io)?;
    write_message(&mut out, header).map_err(io)?;
    let mut end = SnapshotEnd::default();
    view.for_each_revision::<StoreError>(|rev, record| {
        let at = RevisionRecordAt { main: rev.main, sub: rev.sub, record: Some(record) };
        write_message(&mut out, &SnapshotRecord { record: Some(Record::Revision(at)) }).map_err(io)?;
        end.revisions += 1;
        Ok(())
    })?;
    for lease in view.leases()? {
        write_message(&mut out, &SnapshotRecord { record: Some(Record::Lease(lease)) }).map_err(io)?;
        end.leases += 1;
    }
    write_message(&mut out, &SnapshotRecord { record: Some(Record::End(end)) }).map_err(io)?;
    let crc = out.crc;
    let mut inner = out.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(io)?;
    let file = inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// Checks a snapshot file before anything in it is used: its checksum, its layout version
/// and that it belongs to this cluster. Returns its header.
pub fn verify(path: &Path, cluster_id: u64) -> Result<SnapshotHeader, StoreError> {
    let io = |e| StoreError::io(path, e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len < MAGIC.len() as u64 + CHECKSUM_LEN {
        return Err(StoreError::damaged(path, format!("snapshot is only {len} bytes long")));
    }
    let mut input = BufReader::new(File::open(path).map_err(io)?);
    let mut crc = 0u32;
    let mut remaining = len - CHECKSUM_LEN;
    let mut buf = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        input.read_exact(&mut buf[..want]).map_err(io)?;
        crc = crc32c::crc32c_append(crc, &buf[..want]);
        remaining -= want as u64;
    }
    let mut stored = [0u8; 4];
    input.read_exact(&mut stored).map_err(io)?;
    if u32::from_le_bytes(stored) != crc {
        return Err(StoreError::damaged(path, "snapshot checksum mismatch (the file is damaged or incomplete)"));
    }
    let header = read_header(path)?;
    if header.cluster_id != cluster_id {
        return Err(StoreError::OtherCluster {
            path: path.to_path_buf(),
            found: header.cluster_id,
            expected: cluster_id,
        });
    }
    Ok(header)
}

/// Reads only the header of a snapshot file (its checksum is not checked).
pub fn read_header(path: &Path) -> Result<SnapshotHeader, StoreError> {
    Ok(SnapshotReader::open(path)?.1)
}

/// The records of a snapshot file, in order, as a restore consumes them. Use only on a file
/// [`verify`] accepted.
pub struct SnapshotReader {
    path: PathBuf,
    input: BufReader<File>,
    /// bytes left before the checksum
    remaining: u64,
    seen: SnapshotEnd,
    finished: bool,
}

impl SnapshotReader {
    pub fn open(path: &Path) -> Result<(Self, SnapshotHeader), StoreError> {
        let io = |e| StoreError::io(path, e);
        let len = std::fs::metadata(path).map_err(io)?.len();
        let mut reader = SnapshotReader {
            path: path.to_path_buf(),
            input: BufReader::new(File::open(path).map_err(io)?),
            remaining: len.saturating_sub(CHECKSUM_LEN),
            seen: SnapshotEnd::default(),
            finished: false,
        };
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(StoreError::damaged(path, "not a raftty snapshot (bad magic)"));
        }
        let header: SnapshotHeader = reader.read_message()?;
        if header.format != SNAPSHOT_FORMAT {
            return Err(StoreError::damaged(
                path,
                format!(
                    "snapshot layout version {} is not the one this build reads ({SNAPSHOT_FORMAT})",
                    header.format
                ),
            ));
        }
        Ok((reader, header))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        if (buf.len() as u64) > self.remaining {
            return Err(StoreError::damaged(&self.path, "snapshot ends in the middle of a record"));
        }
        self.input.read_exact(buf).map_err(|e| StoreError::io(&self.path, e))?;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    fn read_length(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            self.read_exact(&mut byte)?;
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(StoreError::damaged(&self.path, "snapshot record length is not a valid varint"))
    }

    fn read_message<M: Message + Default>(&mut self) -> Result<M, StoreError> {
        let len = self.read_length()?;
        if len > MAX_RECORD_LEN {
            return Err(StoreError::damaged(&self.path, format!("snapshot record of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact(&mut buf)?;
        M::decode(buf.as_slice()).map_err(|e| StoreError::damaged(&self.path, format!("snapshot record: {e}")))
    }

    fn next_item(&mut self) -> Result<Option<RestoreItem>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        let record: SnapshotRecord = self.read_message()?;
        match record.record {
            Some(Record::Revision(at)) => {
                let record = at.record.ok_or_else(|| StoreError::damaged(&self.path, "revision without a record"))?;
                self.seen.revisions += 1;
                Ok(Some(RestoreItem::Revision(Revision::new(at.main, at.sub), record)))
            }
            Some(Record::Lease(lease)) => {
                self.seen.leases += 1;
                Ok(Some(RestoreItem::Lease(lease)))
            }
            Some(Record::End(end)) => {
                if end != self.seen {
                    return Err(StoreError::damaged(
                        &self.path,
                        format!(
                            "snapshot announces {} revisions and {} leases but holds {} and {}",
                            end.revisions, end.leases, self.seen.revisions, self.seen.leases
                        ),
                    ));
                }
                if self.remaining != 0 {
                    return Err(StoreError::damaged(&self.path, "snapshot has bytes after its end record"));
                }
                self.finished = true;
                Ok(None)
            }
            None => Err(StoreError::damaged(&self.path, "empty snapshot record")),
        }
    }
}

impl Iterator for SnapshotReader {
    type Item = Result<RestoreItem, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}
