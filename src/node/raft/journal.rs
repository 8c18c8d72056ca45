//! The Raft log's journal: an append-only file in front of `raft-log.redb` that makes each
//! write durable with one sequential write and one `fdatasync`.
//!
//! # Why it exists
//!
//! A durable redb commit rewrites a dozen scattered pages (the B-tree path, the table tree,
//! the allocator state, the header) before its fsync. On the 2-core VMs raftty is measured
//! on, that costs 0.6 ms or more, while appending a few hundred bytes to a file and syncing
//! it costs about 0.1 ms. etcd gets its write latency from exactly this: a WAL first, the
//! b-tree later. So every batch of log writes is committed to redb *without* an fsync (redb
//! readers see it at once) and appended to this journal *with* one; only then is it
//! acknowledged. Every so often (when the journal has grown past a budget, and at a clean
//! shutdown) one durable redb commit makes everything the journal holds redundant, and the
//! journal is cut back to its header: a checkpoint.
//!
//! # Recovery
//!
//! After a crash, redb comes back at its last durable commit, which is never later than the
//! journal's last checkpoint. Replaying every journal record on top of it gives the log as it
//! was acknowledged: the records only assign (insert entries, remove a range, set the vote,
//! the purge point or the committed id), so replaying records redb already has changes
//! nothing; see [`Record`]. A record cut short at the end of the file is a write the crash
//! interrupted before its fsync returned, so nothing acknowledged it; it is dropped with a
//! warning, as etcd's WAL does. A record whose checksum does not match is damage: the member
//! refuses to start.
//!
//! # Layout
//!
//! - header: `raftty journal\n\0` (16 bytes), layout version `u32`, cluster id and member id
//!   (`u64` each), all little-endian.
//! - then records: payload length `u32`, crc32c of the payload `u32`, payload. A payload is a
//!   kind byte and its fields (see `encode`), integers little-endian, byte strings prefixed
//!   with their `u32` length.

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

const MAGIC: &[u8; 16] = b"raftty journal\n\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16 + 4 + 16;
const RECORD_HEADER_LEN: usize = 8;
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
    #[error("it is in layout version {0}, and this raftty reads only version {VERSION}")]
    UnknownFormat(u32),
    #[error("it is damaged: {0}")]
    Damaged(String),
}

/// An open journal. Not shared: only the log's writer thread holds it.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Where the next record goes: the end of the last whole record.
    end: u64,
    buffer: Vec<u8>,
}

/// What the journal of a member holds, read without changing the file.
pub struct Contents {
    pub records: Vec<Record>,
    /// Bytes of a record cut short at the end, if there was one.
    pub torn_tail: Option<u64>,
    end: u64,
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
    /// looked first (to refuse before writing anything) does not read the file twice. A
    /// record cut short at the end is cut off the file, so the next record follows the last
    /// whole one.
    pub fn resume(
        path: &Path,
        identity: StoreIdentity,
        contents: Option<Contents>,
    ) -> Result<(Journal, Vec<Record>), JournalError> {
        let contents = match contents {
            Some(contents) => contents,
            None => {
                create(path, identity)?;
                Contents { records: Vec::new(), torn_tail: None, end: HEADER_LEN }
            }
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if let Some(bytes) = contents.torn_tail {
            tracing::warn!(
                path = %path.display(),
                bytes,
                "the journal ends in a record cut short by a crash before it was synced; it was never acknowledged and is dropped"
            );
            file.set_len(contents.end)?;
            file.sync_all()?;
        }
        let journal = Journal { file, path: path.to_path_buf(), end: contents.end, buffer: Vec::new() };
        Ok((journal, contents.records))
    }

    /// Bytes of records since the last checkpoint.
    pub fn records_len(&self) -> u64 {
        self.end - HEADER_LEN
    }

    /// Writes the records after the last one, without syncing.
    pub fn append<'a>(&mut self, records: impl IntoIterator<Item = RecordRef<'a>>) -> io::Result<()> {
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
            let crc = crc32c::crc32c(payload);
            self.buffer[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.buffer, self.end)?;
        self.end += self.buffer.len() as u64;
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
        self.file.set_len(HEADER_LEN)?;
        self.file.sync_all()?;
        self.end = HEADER_LEN;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn create(path: &Path, identity: StoreIdentity) -> io::Result<()> {
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&identity.cluster_id.to_le_bytes());
    header.extend_from_slice(&identity.member_id.to_le_bytes());
    // Written under a temporary name and renamed, so a crash never leaves a journal without
    // its header, which would read as damage.
    let creating = path.with_extension("journal.creating");
    let file = File::create(&creating)?;
    file.write_all_at(&header, 0)?;
    file.sync_all()?;
    std::fs::rename(&creating, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn parse(bytes: &[u8], identity: StoreIdentity) -> Result<Contents, JournalError> {
    let damaged = |what: String| JournalError::Damaged(what);
    if bytes.len() < HEADER_LEN as usize || &bytes[..16] != MAGIC {
        return Err(damaged("it does not start with a raftty journal header".into()));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let version = u32_at(16);
    if version != VERSION {
        return Err(JournalError::UnknownFormat(version));
    }
    let found = StoreIdentity { cluster_id: u64_at(20), member_id: u64_at(28) };
    if found != identity {
        return Err(JournalError::OtherOwner { found, expected: identity });
    }
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    while at < bytes.len() {
        let rest = bytes.len() - at;
        let torn = Contents { records: Vec::new(), torn_tail: Some(rest as u64), end: at as u64 };
        if rest < RECORD_HEADER_LEN {
            return Ok(Contents { records, ..torn });
        }
        let len = u32_at(at);
        let crc = u32_at(at + 4);
        if len > MAX_RECORD_LEN {
            return Err(damaged(format!("the record at byte {at} claims {len} bytes")));
        }
        let payload_start = at + RECORD_HEADER_LEN;
        let Some(payload) = bytes.get(payload_start..payload_start + len as usize) else {
            return Ok(Contents { records, ..torn });
        };
        if crc32c::crc32c(payload) != crc {
            return Err(damaged(format!("the record at byte {at} does not match its checksum")));
        }
        let record = decode(payload).map_err(|why| damaged(format!("the record at byte {at} {why}")))?;
        records.push(record);
        at = payload_start + len as usize;
    }
    Ok(Contents { records, torn_tail: None, end: at as u64 })
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

    #[test]
    fn a_record_cut_short_at_the_end_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        // Cut into the last record (Committed(None): 8 bytes of header and 1 of payload).
        File::options().write(true).open(&path).unwrap().set_len(len - 1).unwrap();
        let contents = Journal::read(&path, ME).unwrap().unwrap();
        assert_eq!(contents.torn_tail, Some(8));
        assert_eq!(contents.records, sample()[..sample().len() - 1]);
        // Opening cuts the torn record off, and the next record is written where it began.
        let (mut journal, _) = Journal::open(&path, ME).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len - 9);
        journal.append([RecordRef::TruncateFrom(5)]).unwrap();
        drop(journal);
        let replay = Journal::open(&path, ME).unwrap().1;
        assert_eq!(replay.last(), Some(&Record::TruncateFrom(5)));
        assert_eq!(replay.len(), sample().len());
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
