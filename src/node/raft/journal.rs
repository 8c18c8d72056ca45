//! The Raft log's journal: a file in front of `raft-log.redb` that makes each write durable
//! with one sequential write and one `fdatasync`.
//!
//! # Why it exists
//!
//! A durable redb commit rewrites a dozen scattered pages (the B-tree path, the table tree,
//! the allocator state, the header) before its fsync. On the 2-core VMs raftty is measured
//! on, that costs 0.6 ms or more, while writing a few hundred bytes to a file and syncing
//! it costs about 0.1 ms. etcd gets its write latency from exactly this: a WAL first, the
//! b-tree later. So every batch of log writes is committed to redb *without* an fsync (redb
//! readers see it at once) and written to this journal *with* one; only then is it
//! acknowledged. Every so often (when the journal has grown past a budget, and at a clean
//! shutdown) one durable redb commit makes everything the journal holds redundant, and the
//! journal starts a new generation: a checkpoint.
//!
//! # Why the file never grows
//!
//! The file is made [`PREALLOCATED`] bytes long, zeros after the header, and records are
//! written over the zeros. A sync of a write that grew the file must also write the inode
//! (its new size), a second device round trip: on this project's disks an overwrite syncs
//! about a third faster, with a much shorter tail. So a checkpoint does not truncate: it
//! moves the header to the next generation, which makes every older record stale at once,
//! and then zeros what they occupied.
//!
//! # Recovery
//!
//! After a crash, redb comes back at its last durable commit, which is never later than the
//! journal's last checkpoint. Replaying every record of the current generation on top of it
//! gives the log as it was acknowledged: the records only assign (insert entries, remove a
//! range, set the vote, the purge point or the committed id), so replaying records redb
//! already has changes nothing; see [`Record`]. The records end at zeros, or at a record of
//! an older generation (a crash before a checkpoint's zeros reached the disk).
//!
//! A write a crash interrupted before its fsync returned was never acknowledged. It shows as
//! a record that runs past the end of the file, or whose checksum fails while one of the
//! disk sectors it spans still holds only the zeros that were there before; it and anything
//! after it is dropped with a warning, as etcd's WAL does with a torn tail. Any other record
//! whose checksum does not match is damage: the member refuses to start.
//!
//! # Layout
//!
//! - header: `raftty journal\n\0` (16 bytes), layout version `u32`, cluster id and member id
//!   (`u64` each), generation `u32`, all little-endian.
//! - then records: payload length `u32`, crc32c of the generation and the payload `u32`,
//!   generation `u32`, payload. A payload is a kind byte and its fields (see `encode`),
//!   integers little-endian, byte strings prefixed with their `u32` length.
//! - then zeros to the end of the file.
//!
//! Layout version 1 (raftty before the file was preallocated) had no generation and grew
//! with each record; it is still read, and its first checkpoint rewrites it in version 2.

use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::path::PathBuf;

use crate::node::raft::types::StoreIdentity;

/// The journal's file name inside a member's data directory.
pub const JOURNAL_FILE_NAME: &str = "raft-log.journal";
/// How long the file is kept: more than the log store's checkpoint budget, so that the
/// records between two checkpoints fit without growing it.
pub const PREALLOCATED: u64 = 1 << 20;
/// A file grown past this by a burst of big writes gives the space back at its next checkpoint.
const SHRINK_ABOVE: u64 = 4 * PREALLOCATED;
/// The unit a disk writes whole or not at all: a torn write leaves whole sectors unwritten.
const SECTOR: usize = 512;

const MAGIC: &[u8; 16] = b"raftty journal\n\0";
const VERSION: u32 = 2;
const HEADER_LEN: u64 = 16 + 4 + 16 + 4;
const RECORD_HEADER_LEN: usize = 12;
/// Layout version 1: no generation, and the file ended with the last record.
const GROWING_VERSION: u32 = 1;
const GROWING_HEADER_LEN: u64 = 16 + 4 + 16;
const GROWING_RECORD_HEADER_LEN: usize = 8;
/// No single record is anywhere near this; a longer length field is damage, not a record.
const MAX_RECORD_LEN: u32 = 1 << 30;

const KIND_APPEND: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_PURGE: u8 = 3;
const KIND_VOTE: u8 = 4;
const KIND_COMMITTED: u8 = 5;
const KIND_NO_COMMITTED: u8 = 6;

/// One write to the log, as journaled and replayed. Each only assigns, so replaying one that
/// redb already holds changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Entries (index, encoded `rafttypb.Entry`); `replace_from` removes that index and all
    /// after it first.
    Append { replace_from: Option<u64>, entries: Vec<(u64, Vec<u8>)> },
    /// Removes the entry at this index and all after it.
    TruncateFrom(u64),
    /// Removes the entries up to this index and saves the encoded purge point.
    Purge { last_removed: u64, record: Vec<u8> },
    /// The encoded vote.
    Vote(Vec<u8>),
    /// The encoded committed log id, or none.
    Committed(Option<Vec<u8>>),
}

/// A borrowed [`Record`], so the writer journals entries without copying them.
#[derive(Debug, Clone, Copy)]
pub enum RecordRef<'a> {
    Append { replace_from: Option<u64>, entries: &'a [(u64, Vec<u8>)] },
    TruncateFrom(u64),
    Purge { last_removed: u64, record: &'a [u8] },
    Vote(&'a [u8]),
    Committed(Option<&'a [u8]>),
}

impl RecordRef<'_> {
    pub fn to_owned(self) -> Record {
        match self {
            RecordRef::Append { replace_from, entries } => Record::Append { replace_from, entries: entries.to_vec() },
            RecordRef::TruncateFrom(first) => Record::TruncateFrom(first),
            RecordRef::Purge { last_removed, record } => Record::Purge { last_removed, record: record.to_vec() },
            RecordRef::Vote(record) => Record::Vote(record.to_vec()),
            RecordRef::Committed(record) => Record::Committed(record.map(<[u8]>::to_vec)),
        }
    }
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        match self {
            Record::Append { replace_from, entries } => RecordRef::Append { replace_from: *replace_from, entries },
            Record::TruncateFrom(first) => RecordRef::TruncateFrom(*first),
            Record::Purge { last_removed, record } => RecordRef::Purge { last_removed: *last_removed, record },
            Record::Vote(record) => RecordRef::Vote(record),
            Record::Committed(record) => RecordRef::Committed(record.as_deref()),
        }
    }
}

/// Why a journal was refused.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it belongs to {found}, not to {expected}")]
    OtherOwner { found: StoreIdentity, expected: StoreIdentity },
    #[error("it is in layout version {0}, and this raftty reads only versions {GROWING_VERSION} and {VERSION}")]
    UnknownFormat(u32),
    #[error("it is damaged: {0}")]
    Damaged(String),
}

/// An open journal. Not shared: only the log's writer thread holds it.
pub struct Journal {
    file: File,
    path: PathBuf,
    identity: StoreIdentity,
    version: u32,
    generation: u32,
    /// Where the records begin: the header's length in this layout version.
    start: u64,
    /// Where the next record goes: the end of the last whole record.
    end: u64,
    /// Up to where the file may hold anything but zeros past `end`: what a checkpoint zeros.
    written: u64,
    len: u64,
    buffer: Vec<u8>,
}

/// What the journal of a member holds, read without changing the file.
pub struct Contents {
    pub records: Vec<Record>,
    /// Bytes of a record cut short at the end, if there was one.
    pub torn_tail: Option<u64>,
    version: u32,
    generation: u32,
    start: u64,
    end: u64,
    written: u64,
    len: u64,
}

impl Journal {
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(JOURNAL_FILE_NAME)
    }

    /// Reads the journal at `path` without writing it: `None` if there is no file.
    pub fn read(path: &Path, identity: StoreIdentity) -> Result<Option<Contents>, JournalError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        parse(&bytes, identity).map(Some)
    }

    /// Opens the journal at `path`, creating it for `identity` if there is none, and returns
    /// what it holds for replay.
    pub fn open(path: &Path, identity: StoreIdentity) -> Result<(Journal, Vec<Record>), JournalError> {
        let contents = Journal::read(path, identity)?;
        Journal::resume(path, identity, contents)
    }

    /// [`Journal::open`] with what [`Journal::read`] found there already, so a caller that
    /// looked first (to refuse before writing anything) does not read the file twice. What a
    /// crash left after the last whole record (a torn record, stale ones) is zeroed, so the
    /// next record follows the last whole one and nothing but zeros comes after it.
    pub fn resume(
        path: &Path,
        identity: StoreIdentity,
        contents: Option<Contents>,
    ) -> Result<(Journal, Vec<Record>), JournalError> {
        let contents = match contents {
            Some(contents) => contents,
            None => {
                create(path, identity, 1)?;
                Contents {
                    records: Vec::new(),
                    torn_tail: None,
                    version: VERSION,
                    generation: 1,
                    start: HEADER_LEN,
                    end: HEADER_LEN,
                    written: HEADER_LEN,
                    len: PREALLOCATED,
                }
            }
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if let Some(bytes) = contents.torn_tail {
            tracing::warn!(
                path = %path.display(),
                bytes,
                "the journal ends in a record cut short by a crash before it was synced; it was never acknowledged and is dropped"
            );
        }
        let mut journal = Journal {
            file,
            path: path.to_path_buf(),
            identity,
            version: contents.version,
            generation: contents.generation,
            start: contents.start,
            end: contents.end,
            written: contents.written,
            len: contents.len,
            buffer: Vec::new(),
        };
        if journal.version == VERSION && journal.written > journal.end {
            journal.zero(journal.end, journal.written)?;
            journal.file.sync_data()?;
            journal.written = journal.end;
        }
        Ok((journal, contents.records))
    }

    /// Bytes of records since the last checkpoint.
    pub fn records_len(&self) -> u64 {
        self.end - self.start
    }

    /// Writes the records after the last one, without syncing.
    pub fn append<'a>(&mut self, records: impl IntoIterator<Item = RecordRef<'a>>) -> io::Result<()> {
        if self.version != VERSION {
            return Err(io::Error::other(format!(
                "the journal is in layout version {}: it takes records only after a checkpoint",
                self.version
            )));
        }
        let generation = self.generation.to_le_bytes();
        let seed = crc32c::crc32c(&generation);
        self.buffer.clear();
        for record in records {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&[0; RECORD_HEADER_LEN]);
            encode(record, &mut self.buffer);
            let payload = &self.buffer[start + RECORD_HEADER_LEN..];
            let len = u32::try_from(payload.len())
                .ok()
                .filter(|len| *len <= MAX_RECORD_LEN)
                .ok_or_else(|| io::Error::other(format!("a journal record of {} bytes is too big", payload.len())))?;
            let crc = crc32c::crc32c_append(seed, payload);
            self.buffer[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            self.buffer[start + 8..start + 12].copy_from_slice(&generation);
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.buffer, self.end)?;
        self.end += self.buffer.len() as u64;
        self.written = self.written.max(self.end);
        self.len = self.len.max(self.end);
        // A burst of big appends must not keep its buffer for the member's lifetime.
        if self.buffer.capacity() > 1 << 20 {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Makes everything appended durable: one `fdatasync`.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Drops every record: called once redb holds all of them durably.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        if self.version != VERSION {
            // Rewritten whole in the current layout; the rename makes the switch atomic.
            create(&self.path, self.identity, 1)?;
            self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
            (self.version, self.generation, self.start) = (VERSION, 1, HEADER_LEN);
            (self.end, self.written, self.len) = (HEADER_LEN, HEADER_LEN, PREALLOCATED);
            return Ok(());
        }
        // First the new generation, durably: from then on every record in the file is stale,
        // whatever a crash leaves of the zeroing that follows.
        let generation = self.generation.wrapping_add(1).max(1);
        self.file.write_all_at(&header(self.identity, generation), 0)?;
        self.file.sync_data()?;
        self.generation = generation;
        // Then zeros where the stale records were, so that the sectors a torn write of the new
        // generation leaves unwritten read as zeros.
        let zero_to = if self.len > SHRINK_ABOVE {
            self.file.set_len(PREALLOCATED)?;
            self.len = PREALLOCATED;
            PREALLOCATED
        } else {
            self.written.min(self.len)
        };
        self.zero(HEADER_LEN, zero_to)?;
        self.file.sync_data()?;
        self.end = HEADER_LEN;
        self.written = HEADER_LEN;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn zero(&self, from: u64, to: u64) -> io::Result<()> {
        write_zeros(&self.file, from, to)
    }
}

fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

fn header(identity: StoreIdentity, generation: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&identity.cluster_id.to_le_bytes());
    header.extend_from_slice(&identity.member_id.to_le_bytes());
    header.extend_from_slice(&generation.to_le_bytes());
    header
}

fn create(path: &Path, identity: StoreIdentity, generation: u32) -> io::Result<()> {
    // Written under a temporary name and renamed, so a crash never leaves a journal without
    // its header, which would read as damage.
    let creating = path.with_extension("journal.creating");
    let file = File::create(&creating)?;
    file.write_all_at(&header(identity, generation), 0)?;
    // Real zeros, not a hole or fallocate's unwritten extents: overwriting either is a
    // metadata change that the sync of each record would have to write too.
    write_zeros(&file, HEADER_LEN, PREALLOCATED)?;
    file.sync_all()?;
    std::fs::rename(&creating, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn parse(bytes: &[u8], identity: StoreIdentity) -> Result<Contents, JournalError> {
    let damaged = |what: String| JournalError::Damaged(what);
    if bytes.len() < GROWING_HEADER_LEN as usize || &bytes[..16] != MAGIC {
        return Err(damaged("it does not start with a raftty journal header".into()));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let version = u32_at(16);
    let (start, record_header_len, generation) = match version {
        VERSION if bytes.len() >= HEADER_LEN as usize => (HEADER_LEN as usize, RECORD_HEADER_LEN, u32_at(36)),
        VERSION => return Err(damaged("it does not start with a raftty journal header".into())),
        GROWING_VERSION => (GROWING_HEADER_LEN as usize, GROWING_RECORD_HEADER_LEN, 0),
        other => return Err(JournalError::UnknownFormat(other)),
    };
    let found = StoreIdentity { cluster_id: u64_at(20), member_id: u64_at(28) };
    if found != identity {
        return Err(JournalError::OtherOwner { found, expected: identity });
    }
    let written = bytes.iter().rposition(|b| *b != 0).map_or(start, |last| (last + 1).max(start));
    let contents = |records, end: usize, torn_tail| Contents {
        records,
        torn_tail,
        version,
        generation,
        start: start as u64,
        end: end as u64,
        written: written as u64,
        len: bytes.len() as u64,
    };
    let seed = crc32c::crc32c(&generation.to_le_bytes());
    let mut records = Vec::new();
    let mut at = start;
    while at < written {
        let torn = |records, to: usize| Ok(contents(records, at, Some((to - at) as u64)));
        if bytes.len() - at < record_header_len {
            return torn(records, bytes.len());
        }
        let len = u32_at(at);
        let crc = u32_at(at + 4);
        if version == VERSION {
            let record_generation = u32_at(at + 8);
            if record_generation < generation {
                // stale: written before the last checkpoint, zeroed only in part by a crash
                break;
            }
            if record_generation != generation {
                return Err(damaged(format!(
                    "the record at byte {at} is of generation {record_generation}, past the journal's {generation}"
                )));
            }
        }
        if len > MAX_RECORD_LEN {
            return Err(damaged(format!("the record at byte {at} claims {len} bytes")));
        }
        let payload_start = at + record_header_len;
        let payload_end = payload_start + len as usize;
        let Some(payload) = bytes.get(payload_start..payload_end) else {
            return torn(records, bytes.len());
        };
        let expected = if version == VERSION { crc32c::crc32c_append(seed, payload) } else { crc32c::crc32c(payload) };
        if expected != crc {
            if version == VERSION && spans_unwritten_sector(bytes, at, payload_end) {
                return torn(records, payload_end);
            }
            return Err(damaged(format!("the record at byte {at} does not match its checksum")));
        }
        let record = decode(payload).map_err(|why| damaged(format!("the record at byte {at} {why}")))?;
        records.push(record);
        at = payload_end;
    }
    Ok(contents(records, at, None))
}

/// Whether the part of `bytes[from..to]` in some disk sector is all zeros: what a write torn
/// by a crash leaves, since the sectors it did not reach keep the zeros from before.
fn spans_unwritten_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let mut sector = from - from % SECTOR;
    while sector < to {
        let part = &bytes[sector.max(from)..(sector + SECTOR).min(to)];
        if part.iter().all(|b| *b == 0) {
            return true;
        }
        sector += SECTOR;
    }
    false
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Entries are bounded far below 4 GiB by the request size limit; `append` checks the total.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn encode(record: RecordRef<'_>, out: &mut Vec<u8>) {
    match record {
        RecordRef::Append { replace_from, entries } => {
            out.push(KIND_APPEND);
            out.extend_from_slice(&replace_from.unwrap_or(u64::MAX).to_le_bytes());
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (index, entry) in entries {
                out.extend_from_slice(&index.to_le_bytes());
                put_bytes(out, entry);
            }
        }
        RecordRef::TruncateFrom(first) => {
            out.push(KIND_TRUNCATE);
            out.extend_from_slice(&first.to_le_bytes());
        }
        RecordRef::Purge { last_removed, record } => {
            out.push(KIND_PURGE);
            out.extend_from_slice(&last_removed.to_le_bytes());
            put_bytes(out, record);
        }
        RecordRef::Vote(record) => {
            out.push(KIND_VOTE);
            put_bytes(out, record);
        }
        RecordRef::Committed(Some(record)) => {
            out.push(KIND_COMMITTED);
            put_bytes(out, record);
        }
        RecordRef::Committed(None) => out.push(KIND_NO_COMMITTED),
    }
}

/// Reads fields off the front of a payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("ends in the middle of a field".into());
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }
}

fn decode(payload: &[u8]) -> Result<Record, String> {
    let mut fields = Fields(payload);
    let record = match fields.u8()? {
        KIND_APPEND => {
            let replace_from = Some(fields.u64()?).filter(|from| *from != u64::MAX);
            let count = fields.u32()?;
            let mut entries = Vec::new();
            for _ in 0..count {
                entries.push((fields.u64()?, fields.bytes()?));
            }
            Record::Append { replace_from, entries }
        }
        KIND_TRUNCATE => Record::TruncateFrom(fields.u64()?),
        KIND_PURGE => Record::Purge { last_removed: fields.u64()?, record: fields.bytes()? },
        KIND_VOTE => Record::Vote(fields.bytes()?),
        KIND_COMMITTED => Record::Committed(Some(fields.bytes()?)),
        KIND_NO_COMMITTED => Record::Committed(None),
        kind => return Err(format!("is of unknown kind {kind}")),
    };
    if !fields.0.is_empty() {
        return Err(format!("has {} bytes after its fields", fields.0.len()));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: StoreIdentity = StoreIdentity { cluster_id: 7, member_id: 3 };

    fn sample() -> Vec<Record> {
        vec![
            Record::Vote(b"vote".to_vec()),
            Record::Append { replace_from: None, entries: vec![(1, b"one".to_vec()), (2, b"two".to_vec())] },
            Record::Append { replace_from: Some(2), entries: vec![(2, b"TWO".to_vec())] },
            Record::TruncateFrom(3),
            Record::Purge { last_removed: 1, record: b"purged".to_vec() },
            Record::Committed(Some(b"c".to_vec())),
            Record::Committed(None),
        ]
    }

    fn written(dir: &Path) -> PathBuf {
        let path = dir.join(JOURNAL_FILE_NAME);
        let (mut journal, replay) = Journal::open(&path, ME).unwrap();
        assert!(replay.is_empty());
        let records = sample();
        journal.append(records.iter().map(Record::as_ref)).unwrap();
        journal.sync().unwrap();
        path
    }

    #[test]
    fn records_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let (journal, replay) = Journal::open(&path, ME).unwrap();
        assert_eq!(replay, sample());
        assert!(journal.records_len() > 0);
    }

    #[test]
    fn a_checkpoint_empties_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        journal.checkpoint().unwrap();
        journal.append([RecordRef::TruncateFrom(9)]).unwrap();
        drop(journal);
        assert_eq!(Journal::open(&path, ME).unwrap().1, vec![Record::TruncateFrom(9)]);
    }

    /// A record big enough to span several disk sectors.
    fn big_record() -> Record {
        Record::Append { replace_from: None, entries: vec![(3, vec![7; 3 * SECTOR])] }
    }

    #[test]
    fn the_file_is_preallocated_and_keeps_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), PREALLOCATED);
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        journal.checkpoint().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), PREALLOCATED);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[HEADER_LEN as usize..].iter().all(|b| *b == 0), "a checkpoint zeros the old records");
    }

    #[test]
    fn a_record_torn_by_a_crash_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let before = Journal::read(&path, ME).unwrap().unwrap().end;
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        journal.append([big_record().as_ref()]).unwrap();
        journal.sync().unwrap();
        drop(journal);
        // The crash kept the record's first sectors but not its last whole one.
        let mut bytes = std::fs::read(&path).unwrap();
        let last_sector = (before as usize + RECORD_HEADER_LEN + 2 * SECTOR) / SECTOR * SECTOR;
        bytes[last_sector..last_sector + SECTOR].fill(0);
        std::fs::write(&path, &bytes).unwrap();

        let contents = Journal::read(&path, ME).unwrap().unwrap();
        assert!(contents.torn_tail.is_some(), "a record with an unwritten sector is a torn write");
        assert_eq!(contents.records, sample());
        // Opening zeros the torn record, and the next record is written where it began.
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        assert!(std::fs::read(&path).unwrap()[before as usize..].iter().all(|b| *b == 0));
        journal.append([RecordRef::TruncateFrom(5)]).unwrap();
        drop(journal);
        let replay = Journal::open(&path, ME).unwrap().1;
        assert_eq!(replay[..sample().len()], sample());
        assert_eq!(replay[sample().len()..], [Record::TruncateFrom(5)]);
    }

    #[test]
    fn a_record_cut_short_by_the_end_of_the_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let end = Journal::read(&path, ME).unwrap().unwrap().end;
        // Cut into the last record (Committed(None): 12 bytes of header and 1 of payload).
        File::options().write(true).open(&path).unwrap().set_len(end - 1).unwrap();
        let contents = Journal::read(&path, ME).unwrap().unwrap();
        assert_eq!(contents.torn_tail, Some(RECORD_HEADER_LEN as u64));
        assert_eq!(contents.records, sample()[..sample().len() - 1]);
    }

    #[test]
    fn records_from_before_a_checkpoint_are_stale_even_if_not_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let old = std::fs::read(&path).unwrap();
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        journal.checkpoint().unwrap();
        drop(journal);
        // A crash after the new generation's header was synced, before the zeros were.
        let mut crashed = std::fs::read(&path).unwrap();
        crashed[HEADER_LEN as usize..].copy_from_slice(&old[HEADER_LEN as usize..]);
        std::fs::write(&path, &crashed).unwrap();
        let (journal, replay) = Journal::open(&path, ME).unwrap();
        assert!(replay.is_empty(), "stale records must not be replayed: {replay:?}");
        assert_eq!(journal.records_len(), 0);
        assert!(std::fs::read(&path).unwrap()[HEADER_LEN as usize..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_journal_of_layout_version_1_is_replayed_then_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE_NAME);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&GROWING_VERSION.to_le_bytes());
        bytes.extend_from_slice(&ME.cluster_id.to_le_bytes());
        bytes.extend_from_slice(&ME.member_id.to_le_bytes());
        for record in sample() {
            let mut payload = Vec::new();
            encode(record.as_ref(), &mut payload);
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        std::fs::write(&path, &bytes).unwrap();

        let (mut journal, replay) = Journal::open(&path, ME).unwrap();
        assert_eq!(replay, sample());
        assert!(journal.append([RecordRef::TruncateFrom(9)]).is_err(), "no records after version 1 ones");
        journal.checkpoint().unwrap();
        journal.append([RecordRef::TruncateFrom(9)]).unwrap();
        drop(journal);
        assert_eq!(std::fs::read(&path).unwrap()[16..20], VERSION.to_le_bytes());
        assert_eq!(Journal::open(&path, ME).unwrap().1, vec![Record::TruncateFrom(9)]);
    }

    #[test]
    fn a_flipped_byte_is_damage_and_names_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = HEADER_LEN as usize + RECORD_HEADER_LEN + 2;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = Journal::open(&path, ME).err().expect("a damaged journal must be refused").to_string();
        assert_eq!(err, format!("it is damaged: the record at byte {HEADER_LEN} does not match its checksum"));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "a refused journal is left as it was");
    }

    #[test]
    fn another_members_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let other = StoreIdentity { cluster_id: 7, member_id: 4 };
        let err = Journal::open(&path, other).err().expect("refused").to_string();
        assert!(err.starts_with("it belongs to"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE_NAME);
        std::fs::write(&path, b"hello").unwrap();
        let err = Journal::open(&path, ME).err().expect("refused").to_string();
        assert_eq!(err, "it is damaged: it does not start with a raftty journal header");
    }
}
