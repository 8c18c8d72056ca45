//! The Raft log of one member: its entries, its vote, its purge point and its last known
//! committed log id, kept in `<data dir>/raft-log.redb` behind a journal,
//! `<data dir>/raft-log.journal`.
//!
//! # Group commit
//!
//! Write throughput comes from sharing fsyncs. `LogStore::append` puts the new entries in an
//! in-memory cache, where every log reader sees them at once (openraft requires it), and queues
//! them for a dedicated writer thread. The writer takes everything that is queued, appends it
//! to the journal, syncs the journal once, and only then tells each append of the batch that
//! its entries are durable; redb receives the writes of many batches in one commit at the
//! next checkpoint. While a sync runs new appends pile up in the queue and share the next one, so N
//! appends that arrive during a sync cost one sync, not N. [`LogStoreStats`] counts syncs and
//! entries per sync, so this can be seen in metrics. Why a journal, and how a crash is
//! recovered from it, is in [`crate::node::raft::journal`].
//!
//! # Write-through on a follower
//!
//! A follower's append is on the write's critical path: the leader waits for its answer. Its
//! leader sends it one append at a time, so there is nothing for a group commit to share, and
//! the handoff to the writer thread and back to openraft's core would be two thread wake-ups
//! on that path. So when this member's vote is for another member and nothing is queued, the
//! append is journaled and synced right in the call (the callback fires before it returns,
//! which openraft allows). The leader's own appends still go to the writer thread: the leader
//! sends them to followers while its own sync runs, and many clients share its syncs.
//!
//! Every write (append, vote, truncation, purge, committed log id) goes through the same
//! queue, so the journal receives them in call order, as openraft requires. Votes,
//! truncations and purges wait for their sync before they return.
//!
//! # What readers see
//!
//! The log as openraft knows it lives in memory (`LogView`): the vote, the purge point, the
//! last log id and a cache of the newest entries, which always holds every entry not yet
//! written to redb. Truncations and purges change that view before they reach the disk, so
//! a reader never sees a removed entry. A read takes what it can from the cache and the older
//! part of the range from a redb read transaction begun under the same lock as the view; see
//! `Core::plan_read` for why that snapshot always holds the older part.
//!
//! Entries redb holds are dropped from the cache, oldest first, beyond a budget
//! ([`LogStoreConfig`]); entries redb does not hold yet are bounded by the checkpoint budget,
//! and entries not yet durable by making `append` wait when too many bytes are queued, so
//! memory stays bounded however long the log grows.
//!
//! # On disk
//!
//! - `raft-log.journal`: every write since the last checkpoint, see
//!   [`crate::node::raft::journal`]. The writes reach `raft-log.redb` at the checkpoint.
//! - table `log`: log index (`u64`) → `rafttypb.Entry`, protobuf-encoded.
//! - table `meta`: `identity` → cluster id and member id, 8 bytes each, big-endian;
//!   `format` → layout version, `u32` big-endian; `vote` → `rafttypb.Vote`;
//!   `last_purged` → `rafttypb.LogId`; `committed` → `rafttypb.LogId` (absent: none).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::ops::Range;
use std::ops::RangeBounds;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use prost::Message;
use redb::Database;
use redb::ReadTransaction;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::ReadableTableMetadata;
use redb::TableDefinition;
use tokio::sync::Notify;
use tokio::sync::oneshot;

use crate::node::metrics::histogram::Histogram;
use crate::node::metrics::histogram::HistogramSnapshot;
use crate::node::raft::codec::entry_from_pb;
use crate::node::raft::codec::entry_to_pb;
use crate::node::raft::codec::log_id_from_pb;
use crate::node::raft::codec::log_id_to_pb;
use crate::node::raft::codec::vote_from_pb;
use crate::node::raft::codec::vote_to_pb;
use crate::node::raft::journal::Journal;
use crate::node::raft::journal::JournalError;
use crate::node::raft::journal::Record;
use crate::node::raft::journal::RecordRef;
use crate::node::raft::types::Entry;
use crate::node::raft::types::IOFlushed;
use crate::node::raft::types::LogId;
use crate::node::raft::types::LogState;
use crate::node::raft::types::NodeId;
use crate::node::raft::types::StoreIdentity;
use crate::node::raft::types::TypeConfig;
use crate::node::raft::types::Vote;
use crate::node::write_stages;
use crate::node::write_stages::Point;
use crate::proto::rafttypb as pb;

/// The log's file name inside a member's data directory.
pub const LOG_FILE_NAME: &str = "raft-log.redb";

/// Bumped when the layout of the file changes incompatibly.
const FORMAT_VERSION: u32 = 1;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const IDENTITY_KEY: &str = "identity";
const FORMAT_KEY: &str = "format";
const VOTE_KEY: &str = "vote";
const LAST_PURGED_KEY: &str = "last_purged";
const COMMITTED_KEY: &str = "committed";

/// How much memory the log store may use.
#[derive(Debug, Clone)]
pub struct LogStoreConfig {
    /// Durable entries kept in memory for fast reads (replication mostly reads the newest).
    pub cache_max_entries: usize,
    /// The same budget in encoded bytes; whichever is reached first applies.
    pub cache_max_bytes: usize,
    /// `append` waits while more than this many encoded bytes wait for their fsync.
    pub max_unflushed_bytes: usize,
    /// redb's own page cache.
    pub redb_cache_bytes: usize,
    /// A checkpoint (one durable redb commit, then an empty journal) is made once the journal
    /// holds this many bytes of records...
    pub journal_checkpoint_bytes: u64,
    /// ...or this many batches: redb reuses the pages an fsync-less commit frees only after
    /// the next durable one, so this bounds how far `raft-log.redb` grows between them.
    pub journal_checkpoint_batches: u64,
    /// Whether a follower's appends are written in the call rather than by the writer thread
    /// (see the module's docs).
    pub write_through: bool,
}

impl Default for LogStoreConfig {
    /// Sized by the member's [`crate::node::memory`] budget.
    fn default() -> Self {
        let cache_bytes = crate::node::memory::budget().log_cache_bytes;
        LogStoreConfig {
            cache_max_entries: 4096,
            cache_max_bytes: cache_bytes,
            max_unflushed_bytes: 64 << 20,
            redb_cache_bytes: cache_bytes,
            journal_checkpoint_bytes: 512 << 10,
            journal_checkpoint_batches: 500,
            write_through: true,
        }
    }
}

/// Why a log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the Raft log {}: {reason}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    pub reason: OpenFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenFailure {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("{0}")]
    Storage(#[source] redb::Error),
    #[error("it belongs to {found}, not to {expected}")]
    OtherOwner { found: StoreIdentity, expected: StoreIdentity },
    #[error("it is in layout version {found}, and this raftty reads only version {FORMAT_VERSION}")]
    UnknownFormat { found: String },
    #[error("it is damaged: {0}")]
    Damaged(String),
}

impl From<JournalError> for OpenFailure {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Io(e) => OpenFailure::Io(e),
            JournalError::OtherOwner { found, expected } => OpenFailure::OtherOwner { found, expected },
            JournalError::UnknownFormat(found) => OpenFailure::UnknownFormat { found: found.to_string() },
            JournalError::Damaged(why) => OpenFailure::Damaged(why),
        }
    }
}

/// What the log store has done, for metrics. Cheap to share: hold the `Arc` and read it
/// whenever Prometheus scrapes.
#[derive(Debug)]
pub struct LogStoreStats {
    durable_commits: AtomicU64,
    durable_appends: AtomicU64,
    written_through: AtomicU64,
    entries_written: AtomicU64,
    bytes_written: AtomicU64,
    commit_seconds: Histogram,
    entries_per_commit: Histogram,
}

impl Default for LogStoreStats {
    fn default() -> Self {
        LogStoreStats {
            durable_commits: AtomicU64::new(0),
            durable_appends: AtomicU64::new(0),
            written_through: AtomicU64::new(0),
            entries_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            // etcd's etcd_disk_wal_fsync_duration_seconds buckets: 1 ms to about 8 s.
            commit_seconds: Histogram::exponential(0.001, 2.0, 14),
            entries_per_commit: Histogram::exponential(1.0, 2.0, 14),
        }
    }
}

impl LogStoreStats {
    /// Commits made durable with an fsync.
    pub fn durable_commits(&self) -> u64 {
        self.durable_commits.load(Ordering::Relaxed)
    }

    /// `append` calls whose entries reached the disk; divided by [`Self::durable_commits`],
    /// the number of appends that shared one fsync.
    pub fn durable_appends(&self) -> u64 {
        self.durable_appends.load(Ordering::Relaxed)
    }

    /// Appends written in openraft's call rather than by the writer thread (see the module's
    /// docs): a follower's, when nothing else was queued.
    pub fn appends_written_through(&self) -> u64 {
        self.written_through.load(Ordering::Relaxed)
    }

    pub fn entries_written(&self) -> u64 {
        self.entries_written.load(Ordering::Relaxed)
    }

    /// Encoded bytes of the entries written.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// How long each durable commit took, fsync included: raftty's
    /// `etcd_disk_wal_fsync_duration_seconds`.
    pub fn commit_seconds(&self) -> HistogramSnapshot {
        self.commit_seconds.snapshot()
    }

    /// How many entries each durable commit carried: high values mean group commit is working.
    pub fn entries_per_commit(&self) -> HistogramSnapshot {
        self.entries_per_commit.snapshot()
    }
}

/// One member's Raft log. Cheap handles for reading it come from `get_log_reader`.
///
/// Dropping the last handle (store or reader) waits for the writer to commit what is
/// queued and closes the file, so it can be opened again right after.
pub struct LogStore {
    handle: Arc<Handle>,
}

/// Reads the log while the [`LogStore`] keeps writing it; used by openraft's replication tasks.
#[derive(Clone)]
pub struct LogReader {
    handle: Arc<Handle>,
}

/// Owns the writer thread: when the last store or reader handle goes, the queue closes, the
/// writer commits what is left and the thread is joined, so the file is closed (and may be
/// opened again) by the time the drop returns.
struct Handle {
    core: Arc<Core>,
    queue: Option<mpsc::Sender<WriteOp>>,
    writer: Option<JoinHandle<()>>,
}

/// State shared by the handles and the writer thread.
struct Core {
    path: PathBuf,
    db: Database,
    /// Whose log this is: appends are written through while the vote is for another member.
    member_id: NodeId,
    view: Mutex<LogView>,
    /// The journal and what it holds that redb does not: used by the writer thread, and by
    /// a write-through append when the writer is idle. Locked after `view`, never before.
    writer: Mutex<WriterState>,
    /// Signalled after every batch, for appends waiting for the unflushed bytes to shrink.
    batch_done: Notify,
    stats: Arc<LogStoreStats>,
    config: LogStoreConfig,
    /// Tests hold this to keep the writer from committing, to observe writes in flight.
    #[cfg(test)]
    commit_gate: Mutex<()>,
}

/// The log as openraft must see it, including writes not yet on disk.
struct LogView {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// The last entry's id, or `last_purged` when there is no entry.
    last_log_id: Option<LogId>,
    /// The first entry's index, while there are entries: `last_purged` + 1 once something
    /// was purged, otherwise wherever the first append started.
    first_present: u64,
    /// Consecutive entries ending at `last_log_id`: every entry redb does not hold yet, plus
    /// the newest ones it holds, within the cache budget.
    cache: VecDeque<CachedEntry>,
    cache_bytes: usize,
    /// Encoded bytes queued for the writer and not yet committed.
    unflushed_bytes: usize,
    /// Every write is numbered in queue order; the writer reports the last one redb holds
    /// (at each checkpoint), which tells which cached entries may be evicted.
    next_seq: u64,
    stored_seq: u64,
    /// Set when a commit failed: later writes are refused rather than risk a hole in the file.
    failure: Option<String>,
    /// Writes queued for the writer thread and not finished: a write-through append must not
    /// overtake them.
    queued: usize,
}

struct CachedEntry {
    entry: Entry,
    encoded_len: usize,
    seq: u64,
}

enum WriteOp {
    Append {
        seq: u64,
        /// Set when the entries replace existing ones: the file drops everything from here.
        replace_from: Option<u64>,
        entries: Vec<(u64, Vec<u8>)>,
        bytes: usize,
        callback: IOFlushed,
    },
    TruncateFrom {
        seq: u64,
        first_removed: u64,
        done: oneshot::Sender<io::Result<()>>,
    },
    Purge {
        seq: u64,
        last_removed: u64,
        record: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    SaveVote {
        seq: u64,
        record: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    SaveCommitted {
        seq: u64,
        record: Option<Vec<u8>>,
    },
    /// Writes nothing: wakes the writer for a checkpoint that write-through appends made due.
    Checkpoint {
        seq: u64,
    },
}

/// How much a write asks of a commit. Ordered: a batch needs the most any of its writes needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    Nothing,
    /// May reach the disk with the next durable commit.
    Lazy,
    Durable,
}

impl WriteOp {
    fn seq(&self) -> u64 {
        match self {
            WriteOp::Append { seq, .. }
            | WriteOp::TruncateFrom { seq, .. }
            | WriteOp::Purge { seq, .. }
            | WriteOp::SaveVote { seq, .. }
            | WriteOp::SaveCommitted { seq, .. }
            | WriteOp::Checkpoint { seq } => *seq,
        }
    }

    fn effect(&self) -> Effect {
        match self {
            WriteOp::Append { entries, replace_from: None, .. } if entries.is_empty() => Effect::Nothing,
            WriteOp::Checkpoint { .. } => Effect::Nothing,
            WriteOp::SaveCommitted { .. } => Effect::Lazy,
            _ => Effect::Durable,
        }
    }

    /// What the write changes in the file, as journaled; `None` for an empty append.
    fn record(&self) -> Option<RecordRef<'_>> {
        Some(match self {
            WriteOp::Append { replace_from: None, entries, .. } if entries.is_empty() => return None,
            WriteOp::Checkpoint { .. } => return None,
            WriteOp::Append { replace_from, entries, .. } => {
                RecordRef::Append { replace_from: *replace_from, entries: entries.as_slice() }
            }
            WriteOp::TruncateFrom { first_removed, .. } => RecordRef::TruncateFrom(*first_removed),
            WriteOp::Purge { last_removed, record, .. } => {
                RecordRef::Purge { last_removed: *last_removed, record: record.as_slice() }
            }
            WriteOp::SaveVote { record, .. } => RecordRef::Vote(record.as_slice()),
            WriteOp::SaveCommitted { record, .. } => RecordRef::Committed(record.as_deref()),
        })
    }

    fn complete(self, result: &Result<(), String>) {
        let outcome = || result.clone().map_err(io::Error::other);
        match self {
            WriteOp::Append { callback, entries, .. } => {
                if let (Ok(()), Some((first, _)), Some((last, _))) = (result, entries.first(), entries.last()) {
                    write_stages::stamp(*first, *last, Point::Durable);
                }
                callback.io_completed(outcome())
            }
            WriteOp::TruncateFrom { done, .. } | WriteOp::Purge { done, .. } | WriteOp::SaveVote { done, .. } => {
                // The caller may have given up waiting; nothing is lost, the write happened.
                let _ = done.send(outcome());
            }
            WriteOp::SaveCommitted { .. } | WriteOp::Checkpoint { .. } => {}
        }
    }
}

struct WriterState {
    journal: Journal,
    unstored: Unstored,
}

/// What the writer journaled since the last checkpoint and redb does not hold yet.
#[derive(Default)]
struct Unstored {
    records: Vec<Record>,
    batches: u64,
    last_seq: u64,
}

#[derive(Default)]
struct BatchReport {
    appends: u64,
    entries: u64,
    bytes: u64,
}

impl LogStore {
    /// Opens `<data_dir>/raft-log.redb`, creating it for `identity` if there is none.
    ///
    /// A file recorded for another member or cluster, or whose records do not decode, is
    /// refused and left as it is.
    pub fn open(data_dir: &Path, identity: StoreIdentity) -> Result<LogStore, OpenError> {
        LogStore::open_with(data_dir, identity, LogStoreConfig::default())
    }

    pub fn open_with(data_dir: &Path, identity: StoreIdentity, config: LogStoreConfig) -> Result<LogStore, OpenError> {
        let path = data_dir.join(LOG_FILE_NAME);
        let journal_path = Journal::path_in(data_dir);
        let fail = |reason| OpenError { path: path.clone(), reason };
        let journal_failed = |e: JournalError| OpenError { path: journal_path.clone(), reason: e.into() };
        std::fs::create_dir_all(data_dir).map_err(|e| fail(OpenFailure::Io(e)))?;
        let existed = path.exists();
        if existed {
            check_owner_without_writing(&path, identity).map_err(fail)?;
        }
        // Checked before anything is written, so refused data is left byte for byte.
        let journaled = Journal::read(&journal_path, identity).map_err(journal_failed)?;
        if !existed && journaled.as_ref().is_some_and(|contents| !contents.records.is_empty()) {
            return Err(journal_failed(JournalError::Damaged(format!(
                "it holds writes, but {LOG_FILE_NAME}, which holds everything before them, is missing"
            ))));
        }
        // The integrity check reads the whole file at every open; the log is purged after
        // every snapshot so it stays small, and without it a damaged file may panic redb.
        let db = Database::builder()
            .set_cache_size(config.redb_cache_bytes)
            .set_check_integrity_on_open(true)
            .create(&path)
            .map_err(|e| fail(OpenFailure::Storage(e.into())))?;
        let mut recovered = recover(&db, identity).map_err(fail)?;
        let (mut journal, replay) = Journal::resume(&journal_path, identity, journaled).map_err(journal_failed)?;
        if !replay.is_empty() {
            replay_journal(&db, &replay).map_err(|e| fail(OpenFailure::Storage(e)))?;
            recovered = recover(&db, identity).map_err(fail)?;
        }
        journal.checkpoint().map_err(|e| journal_failed(e.into()))?;
        tracing::info!(
            path = %path.display(),
            last_purged = ?recovered.last_purged,
            last_log_id = ?recovered.last_log_id,
            vote = ?recovered.vote,
            replayed = replay.len(),
            "opened the Raft log"
        );

        let core = Arc::new(Core {
            path: path.clone(),
            db,
            member_id: identity.member_id,
            writer: Mutex::new(WriterState { journal, unstored: Unstored::default() }),
            view: Mutex::new(LogView {
                vote: recovered.vote,
                committed: recovered.committed,
                last_purged: recovered.last_purged,
                last_log_id: recovered.last_log_id,
                first_present: recovered.first_present,
                cache: VecDeque::new(),
                cache_bytes: 0,
                unflushed_bytes: 0,
                next_seq: 1,
                stored_seq: 0,
                failure: None,
                queued: 0,
            }),
            batch_done: Notify::new(),
            stats: Arc::new(LogStoreStats::default()),
            config,
            #[cfg(test)]
            commit_gate: Mutex::new(()),
        });
        let (queue, queued) = mpsc::channel();
        let writer_core = core.clone();
        let writer = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_core.run_writer(queued))
            .map_err(|e| fail(OpenFailure::Io(e)))?;
        Ok(LogStore { handle: Arc::new(Handle { core, queue: Some(queue), writer: Some(writer) }) })
    }

    /// Counters and histograms for metrics; they keep counting as long as the store lives.
    pub fn stats(&self) -> Arc<LogStoreStats> {
        self.handle.core.stats.clone()
    }

    pub fn path(&self) -> &Path {
        &self.handle.core.path
    }

    /// Waits until the writer has room for `incoming` more bytes, so a slow disk slows
    /// appends down instead of letting unflushed entries fill the memory.
    async fn wait_for_room(&self, incoming: usize) -> io::Result<()> {
        let core = &self.handle.core;
        loop {
            let batch_done = core.batch_done.notified();
            tokio::pin!(batch_done);
            // Registered before looking, so a batch finishing in between still wakes us.
            batch_done.as_mut().enable();
            {
                let view = core.lock_view()?;
                core.check_writable(&view)?;
                if view.unflushed_bytes == 0 || view.unflushed_bytes + incoming <= core.config.max_unflushed_bytes {
                    return Ok(());
                }
            }
            batch_done.await;
        }
    }
}

impl Handle {
    /// Queues a write. Called with the view locked, so queue order is the order in which the
    /// view changed.
    fn enqueue(&self, view: &mut LogView, op: WriteOp) -> io::Result<()> {
        let stopped =
            || io::Error::other(format!("the writer of the Raft log {} has stopped", self.core.path.display()));
        self.queue.as_ref().ok_or_else(stopped)?.send(op).map_err(|_| stopped())?;
        view.queued += 1;
        Ok(())
    }

    /// Queues a write that the caller waits for, and waits for it.
    async fn write_and_wait(
        &self,
        prepare: impl FnOnce(&mut LogView, u64, oneshot::Sender<io::Result<()>>) -> WriteOp,
    ) -> io::Result<()> {
        let (done, written) = oneshot::channel();
        {
            let mut view = self.core.lock_view()?;
            self.core.check_writable(&view)?;
            let seq = view.take_seq();
            let op = prepare(&mut view, seq, done);
            self.enqueue(&mut view, op)?;
        }
        written.await.map_err(|_| {
            io::Error::other(format!("the writer of the Raft log {} stopped before writing", self.core.path.display()))
        })?
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.core.path.display(), "the Raft log writer thread panicked");
        }
    }
}

impl LogView {
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Drops cached entries with index `first_removed` and above.
    fn drop_cache_from(&mut self, first_removed: u64) {
        while let Some(last) = self.cache.back() {
            if last.entry.log_id.index < first_removed {
                break;
            }
            self.cache_bytes -= last.encoded_len;
            self.cache.pop_back();
        }
    }

    /// Drops cached entries with index `last_removed` and below.
    fn drop_cache_upto(&mut self, last_removed: u64) {
        while let Some(first) = self.cache.front() {
            if first.entry.log_id.index > last_removed {
                break;
            }
            self.cache_bytes -= first.encoded_len;
            self.cache.pop_front();
        }
    }

    /// Forgets the oldest entries redb holds beyond the budget; they are read from redb instead.
    fn evict_stored(&mut self, config: &LogStoreConfig) {
        while let Some(first) = self.cache.front() {
            let over_budget = self.cache.len() > config.cache_max_entries || self.cache_bytes > config.cache_max_bytes;
            if !over_budget || first.seq > self.stored_seq {
                break;
            }
            self.cache_bytes -= first.encoded_len;
            self.cache.pop_front();
        }
    }

    /// The index the next appended entry must have, if the log has a position yet.
    fn next_index(&self) -> Option<u64> {
        self.last_log_id.as_ref().map(|id| id.index + 1)
    }

    /// The lowest index an entry may have: the one after the purge point.
    fn lowest_allowed(&self) -> u64 {
        self.last_purged.as_ref().map_or(0, |id| id.index + 1)
    }

    fn has_entries(&self) -> bool {
        match (&self.last_log_id, &self.last_purged) {
            (Some(last), Some(purged)) => last.index > purged.index,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The indexes of the entries in the log.
    fn present(&self) -> Range<u64> {
        match &self.last_log_id {
            Some(last) if self.has_entries() => self.first_present..last.index + 1,
            _ => 0..0,
        }
    }
}

/// A read of the older part of a range, from a snapshot of the file.
struct DiskRead {
    txn: ReadTransaction,
    indexes: Range<u64>,
}

impl Core {
    fn lock_view(&self) -> io::Result<MutexGuard<'_, LogView>> {
        self.view.lock().map_err(|_| {
            io::Error::other(format!(
                "the Raft log {} is unusable: a thread panicked while updating it",
                self.path.display()
            ))
        })
    }

    fn check_writable(&self, view: &LogView) -> io::Result<()> {
        match &view.failure {
            None => Ok(()),
            Some(failure) => Err(io::Error::other(format!(
                "the Raft log {} takes no more writes after a failed commit: {failure}",
                self.path.display()
            ))),
        }
    }

    /// The file holds something it should not: an entry that does not decode, or a hole.
    fn read_error(&self, what: impl fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("reading the Raft log {}: {what}", self.path.display()))
    }

    /// redb could not do what was asked.
    fn storage_error(&self, e: impl Into<redb::Error>) -> io::Error {
        io::Error::other(format!("reading the Raft log {}: {}", self.path.display(), e.into()))
    }

    /// Splits a read into the entries the cache holds and a read of older ones from disk.
    ///
    /// The redb snapshot is taken under the view's lock, and it holds every entry of the log
    /// below the cache: an entry leaves the cache only after the commit that wrote it (so
    /// any snapshot begun later has it), and a truncation or purge that could remove it from
    /// the file changes the view first, under this lock, so it cannot have reached the file
    /// yet unless the view already excludes the entry. Newer entries the snapshot may also
    /// hold, or older versions of them, are never used: those indexes come from the cache.
    fn plan_read(&self, range: &impl RangeBounds<u64>) -> io::Result<(Vec<Entry>, Option<DiskRead>)> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        let view = self.lock_view()?;
        let present = view.present();
        let (start, end) = (start.max(present.start), end.min(present.end));
        if start >= end {
            return Ok((Vec::new(), None));
        }
        let cache_front = view.cache.front().map_or(end, |c| c.entry.log_id.index);
        let cache_start = cache_front.clamp(start, end);
        // The cache's entries are consecutive, so the range is found by position, not by a
        // scan (replication reads the newest entries of a cache of thousands on every write).
        let skip = usize::try_from(cache_start - cache_front.min(cache_start)).unwrap_or(usize::MAX);
        let take = usize::try_from(end - cache_start).unwrap_or(usize::MAX);
        let cached = view.cache.iter().skip(skip).take(take).map(|c| c.entry.clone()).collect();
        let disk = if start < cache_start {
            let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
            Some(DiskRead { txn, indexes: start..cache_start })
        } else {
            None
        };
        Ok((cached, disk))
    }

    fn read_from_disk(&self, read: DiskRead) -> io::Result<Vec<Entry>> {
        let DiskRead { txn, indexes } = read;
        let table = txn.open_table(LOG).map_err(|e| self.storage_error(e))?;
        let mut entries = Vec::with_capacity(usize::try_from(indexes.end - indexes.start).unwrap_or(0));
        let mut expected = indexes.start;
        for item in table.range(indexes.clone()).map_err(|e| self.storage_error(e))? {
            let (key, value) = item.map_err(|e| self.storage_error(e))?;
            let index = key.value();
            if index != expected {
                return Err(self.read_error(format_args!("entry {expected} is missing")));
            }
            let entry = decode_entry(index, value.value()).map_err(|e| self.read_error(e))?;
            entries.push(entry);
            expected += 1;
        }
        if expected != indexes.end {
            return Err(self.read_error(format_args!("entry {expected} is missing")));
        }
        Ok(entries)
    }

    async fn read_entries(self: &Arc<Self>, range: impl RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        let (cached, disk) = self.plan_read(&range)?;
        let Some(disk) = disk else {
            return Ok(cached);
        };
        let core = self.clone();
        let mut entries = tokio::task::spawn_blocking(move || core.read_from_disk(disk)).await.map_err(|e| {
            io::Error::other(format!("reading the Raft log {}: the read task failed: {e}", self.path.display()))
        })??;
        entries.extend(cached);
        Ok(entries)
    }

    /// The newest entry a crash would keep: in redb or in the journal.
    #[cfg(test)]
    fn last_index_on_disk(&self, identity: StoreIdentity) -> io::Result<Option<u64>> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(LOG).map_err(|e| self.storage_error(e))?;
        let in_redb = table.last().map_err(|e| self.storage_error(e))?.map(|(key, _)| key.value());
        let journal_path = self.path.with_file_name(crate::node::raft::journal::JOURNAL_FILE_NAME);
        let journaled = Journal::read(&journal_path, identity).map_err(io::Error::other)?;
        let in_journal =
            journaled.into_iter().flat_map(|contents| contents.records).filter_map(|record| match record {
                Record::Append { entries, .. } => entries.last().map(|(index, _)| *index),
                _ => None,
            });
        Ok(in_journal.max().max(in_redb))
    }

    /// The writer thread: per batch of whatever is queued, one journal append and one sync;
    /// redb gets the writes at the next checkpoint, many batches in one commit.
    fn run_writer(&self, queued: mpsc::Receiver<WriteOp>) {
        while let Ok(first) = queued.recv() {
            let mut batch = vec![first];
            batch.extend(queued.try_iter());
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let count = batch.len();
            self.write(batch, &mut writer);
            {
                let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
                view.queued = view.queued.saturating_sub(count);
            }
            if self.checkpoint_due(&writer) {
                let WriterState { journal, unstored } = &mut *writer;
                self.checkpoint(journal, unstored);
            }
        }
        // A clean shutdown leaves nothing to replay.
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let WriterState { journal, unstored } = &mut *writer;
        self.checkpoint(journal, unstored);
    }

    /// Journals one batch, syncs it if it needs to be durable, and tells its callers.
    fn write(&self, batch: Vec<WriteOp>, writer: &mut WriterState) {
        #[cfg(test)]
        let gate = self.commit_gate.lock().unwrap_or_else(PoisonError::into_inner);
        let failure = self.view.lock().unwrap_or_else(PoisonError::into_inner).failure.clone();
        let result = match failure {
            Some(failure) => Err(failure),
            None => self.write_batch(&batch, &mut writer.journal, &mut writer.unstored).map_err(|e| e.to_string()),
        };
        #[cfg(test)]
        drop(gate);
        self.finish_batch(batch, result);
    }

    fn checkpoint_due(&self, writer: &WriterState) -> bool {
        writer.journal.records_len() >= self.config.journal_checkpoint_bytes
            || writer.unstored.batches >= self.config.journal_checkpoint_batches
    }

    /// Whether an append may be written in the caller (see the module's docs): this member
    /// follows another, and nothing queued may be overtaken.
    fn writes_through(&self, view: &LogView) -> bool {
        #[cfg(test)]
        if self.commit_gate.try_lock().is_err() {
            // A test is holding writes back to look at them in flight.
            return false;
        }
        self.config.write_through
            && view.queued == 0
            && view.failure.is_none()
            && view.vote.is_some_and(|vote| vote.leader_id.voted_for != self.member_id)
    }

    /// Writes everything journaled since the last checkpoint into redb in one durable commit,
    /// so the journal may start again empty and the cache may let go of those entries.
    fn checkpoint(&self, journal: &mut Journal, unstored: &mut Unstored) {
        if unstored.records.is_empty() || self.view.lock().unwrap_or_else(PoisonError::into_inner).failure.is_some() {
            return;
        }
        let result = replay_journal(&self.db, &unstored.records)
            .map_err(|e| e.to_string())
            .and_then(|()| journal.checkpoint().map_err(|e| format!("emptying {}: {e}", journal.path().display())));
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                view.stored_seq = unstored.last_seq;
                view.evict_stored(&self.config);
                *unstored = Unstored::default();
            }
            Err(failure) => {
                // The journal still holds every acknowledged write; but without a checkpoint
                // the cache cannot shrink, so take no more writes.
                tracing::error!(path = %self.path.display(), error = %failure, "checkpointing the Raft log failed");
                view.failure.get_or_insert(failure);
            }
        }
    }

    fn write_batch(
        &self,
        batch: &[WriteOp],
        journal: &mut Journal,
        unstored: &mut Unstored,
    ) -> Result<BatchReport, io::Error> {
        let mut report = BatchReport::default();
        let effect = batch.iter().map(WriteOp::effect).max().unwrap_or(Effect::Nothing);
        if effect == Effect::Nothing {
            // Everything queued before this batch is durable already: nothing to wait for.
            return Ok(report);
        }
        for op in batch {
            if let WriteOp::Append { entries, bytes, .. } = op
                && !entries.is_empty()
            {
                report.appends += 1;
                report.entries += entries.len() as u64;
                report.bytes += *bytes as u64;
            }
        }
        let journal_path = journal.path().to_path_buf();
        let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", journal_path.display()));
        let records = batch.iter().filter_map(WriteOp::record);
        journal.append(records.clone()).map_err(with_path)?;
        // Why the committed log id alone may skip the sync: it is only a hint that lets a
        // restart re-apply entries known to be committed. Losing its latest value costs a
        // slower catch-up, never safety: any persisted value is a true committed id, and
        // since writes reach the journal in call order, the entries it covers are on disk too.
        if effect == Effect::Durable {
            let started = Instant::now();
            journal.sync().map_err(with_path)?;
            let stats = &self.stats;
            stats.commit_seconds.observe(started.elapsed().as_secs_f64());
            stats.durable_commits.fetch_add(1, Ordering::Relaxed);
            stats.durable_appends.fetch_add(report.appends, Ordering::Relaxed);
            stats.entries_written.fetch_add(report.entries, Ordering::Relaxed);
            stats.bytes_written.fetch_add(report.bytes, Ordering::Relaxed);
            stats.entries_per_commit.observe(report.entries as f64);
        }
        unstored.records.extend(records.map(|record| record.to_owned()));
        unstored.batches += 1;
        unstored.last_seq = batch.last().map_or(unstored.last_seq, WriteOp::seq);
        Ok(report)
    }

    /// Publishes a batch's outcome: first to the view (so readers and waiting appends see
    /// it), then to each write's caller, in queue order.
    fn finish_batch(&self, batch: Vec<WriteOp>, result: Result<BatchReport, String>) {
        {
            let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
            let flushed: usize =
                batch.iter().map(|op| if let WriteOp::Append { bytes, .. } = op { *bytes } else { 0 }).sum();
            view.unflushed_bytes = view.unflushed_bytes.saturating_sub(flushed);
            match &result {
                Ok(_) => {}
                Err(failure) if view.failure.is_none() => {
                    tracing::error!(path = %self.path.display(), error = %failure, "writing the Raft log failed");
                    view.failure = Some(failure.clone());
                }
                Err(_) => {}
            }
        }
        self.batch_done.notify_waiters();
        let outcome =
            result.map(|_| ()).map_err(|failure| format!("writing the Raft log {}: {failure}", self.path.display()));
        for op in batch {
            op.complete(&outcome);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.handle.core.read_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.handle.core.lock_view()?.vote)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.handle.core.read_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.handle.core.lock_view()?.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState, io::Error> {
        let view = self.handle.core.lock_view()?;
        Ok(LogState { last_purged_log_id: view.last_purged, last_log_id: view.last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader { handle: self.handle.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let record = vote_to_pb(vote).encode_to_vec();
        self.handle.write_and_wait(|_, seq, done| WriteOp::SaveVote { seq, record, done }).await?;
        // Readers see the vote only once it is durable: a vote is a promise to other members.
        self.handle.core.lock_view()?.vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let record = committed.as_ref().map(|id| log_id_to_pb(id).encode_to_vec());
        let mut view = self.handle.core.lock_view()?;
        self.handle.core.check_writable(&view)?;
        view.committed = committed;
        let seq = view.take_seq();
        self.handle.enqueue(&mut view, WriteOp::SaveCommitted { seq, record })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.handle.core.lock_view()?.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let core = &self.handle.core;
        let entries: Vec<Entry> = entries.into_iter().collect();
        let invalid = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("appending to the Raft log {}: {why}", core.path.display()),
            )
        };
        if let Some(pair) = entries.windows(2).find(|pair| pair[1].log_id.index != pair[0].log_id.index + 1) {
            return Err(invalid(format!("entry {} follows entry {}", pair[1].log_id, pair[0].log_id)));
        }
        let encoded: Vec<(u64, Vec<u8>)> =
            entries.iter().map(|entry| (entry.log_id.index, entry_to_pb(entry).encode_to_vec())).collect();
        let bytes = encoded.iter().map(|(_, record)| record.len()).sum();
        self.wait_for_room(bytes).await?;

        let mut view = core.lock_view()?;
        core.check_writable(&view)?;
        let mut replace_from = None;
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            let first_index = first.log_id.index;
            if first_index < view.lowest_allowed() {
                return Err(invalid(format!(
                    "entry {} was purged already (up to {:?})",
                    first.log_id, view.last_purged
                )));
            }
            if let Some(next) = view.next_index() {
                if first_index > next {
                    return Err(invalid(format!(
                        "entry {} would leave a hole after {:?}",
                        first.log_id, view.last_log_id
                    )));
                }
                if first_index < next {
                    // openraft truncates before it overwrites, but if it did not, the entries
                    // after the replaced ones must go too, or the log would mix two leaders'.
                    view.drop_cache_from(first_index);
                    replace_from = Some(first_index);
                }
            }
            if !view.has_entries() || first_index < view.first_present {
                view.first_present = first_index;
            }
            view.last_log_id = Some(last.log_id);
        }
        if let (Some((first, _)), Some((last, _))) = (encoded.first(), encoded.last()) {
            write_stages::stamp(*first, *last, Point::Appended);
        }
        let seq = view.take_seq();
        for (entry, (_, record)) in entries.into_iter().zip(&encoded) {
            view.cache_bytes += record.len();
            view.cache.push_back(CachedEntry { entry: detached(entry, record), encoded_len: record.len(), seq });
        }
        view.unflushed_bytes += bytes;
        let op = WriteOp::Append { seq, replace_from, entries: encoded, bytes, callback };
        if core.writes_through(&view)
            && let Ok(mut writer) = core.writer.try_lock()
        {
            drop(view);
            core.write(vec![op], &mut writer);
            core.stats.written_through.fetch_add(1, Ordering::Relaxed);
            let checkpoint_due = core.checkpoint_due(&writer);
            drop(writer);
            if checkpoint_due {
                let mut view = core.lock_view()?;
                let seq = view.take_seq();
                self.handle.enqueue(&mut view, WriteOp::Checkpoint { seq })?;
            }
            return Ok(());
        }
        self.handle.enqueue(&mut view, op)
    }

    async fn truncate_after(&mut self, last_kept: Option<LogId>) -> Result<(), io::Error> {
        let first_removed = last_kept.as_ref().map_or(0, |id| id.index + 1);
        self.handle
            .write_and_wait(|view, seq, done| {
                view.drop_cache_from(first_removed);
                if let Some(next) = view.next_index().filter(|next| *next > first_removed) {
                    // Only a follower whose log diverged from the leader's loses entries.
                    crate::node::events::emit(
                        "log_truncated",
                        &[("from", first_removed.to_string()), ("to", (next - 1).to_string())],
                    );
                    // Entries at or below the purge point are gone already; the log then
                    // ends at the purge point.
                    view.last_log_id = last_kept.max(view.last_purged);
                }
                WriteOp::TruncateFrom { seq, first_removed, done }
            })
            .await
    }

    async fn purge(&mut self, last_removed: LogId) -> Result<(), io::Error> {
        // Only this handle moves the purge point, so it cannot change between here and the
        // write. Purging again up to an older point must not write that point back.
        let purged = self.handle.core.lock_view()?.last_purged;
        if purged.is_some_and(|purged| purged.index >= last_removed.index) {
            return Ok(());
        }
        let record = log_id_to_pb(&last_removed).encode_to_vec();
        self.handle
            .write_and_wait(|view, seq, done| {
                view.drop_cache_upto(last_removed.index);
                view.last_purged = Some(last_removed);
                view.first_present = view.first_present.max(last_removed.index + 1);
                if view.last_log_id.is_none_or(|last| last.index < last_removed.index) {
                    view.last_log_id = Some(last_removed);
                }
                WriteOp::Purge { seq, last_removed: last_removed.index, record, done }
            })
            .await
    }
}

/// Writes one journaled change into the tables: the same code writes a batch and replays
/// the journal at open, so both mean the same.
fn apply_record(
    log: &mut redb::Table<u64, &[u8]>,
    meta: &mut redb::Table<&str, &[u8]>,
    record: RecordRef<'_>,
) -> Result<(), redb::Error> {
    match record {
        RecordRef::Append { replace_from, entries } => {
            if let Some(first_replaced) = replace_from {
                log.retain_in(first_replaced.., |_, _| false)?;
            }
            for (index, encoded) in entries {
                log.insert(*index, encoded.as_slice())?;
            }
        }
        RecordRef::TruncateFrom(first_removed) => log.retain_in(first_removed.., |_, _| false)?,
        RecordRef::Purge { last_removed, record } => {
            meta.insert(LAST_PURGED_KEY, record)?;
            log.retain_in(..=last_removed, |_, _| false)?;
        }
        RecordRef::Vote(record) => {
            meta.insert(VOTE_KEY, record)?;
        }
        RecordRef::Committed(Some(record)) => {
            meta.insert(COMMITTED_KEY, record)?;
        }
        RecordRef::Committed(None) => {
            meta.remove(COMMITTED_KEY)?;
        }
    }
    Ok(())
}

/// Brings redb up to what the journal says was acknowledged, in one durable commit.
fn replay_journal(db: &Database, records: &[Record]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut log = txn.open_table(LOG)?;
        let mut meta = txn.open_table(META)?;
        for record in records {
            apply_record(&mut log, &mut meta, record.as_ref())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// What a log file says at open.
struct Recovered {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    last_log_id: Option<LogId>,
    first_present: u64,
}

/// Opening a redb file read-write rewrites its header, so a file that may be someone else's is
/// first looked at read-only and, if it is, left byte for byte as it was. (A file that was
/// not closed cleanly cannot be opened read-only; `recover` checks its owner after redb's
/// repair, which only ever rolls back to the last durable commit.)
fn check_owner_without_writing(path: &Path, identity: StoreIdentity) -> Result<(), OpenFailure> {
    let storage = |e: redb::Error| OpenFailure::Storage(e);
    let db = match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::RepairAborted) => return Ok(()),
        Err(e) => return Err(storage(e.into())),
    };
    let txn = db.begin_read().map_err(|e| storage(e.into()))?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        // A file without the table is checked (and refused) by `recover`.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(storage(e.into())),
    };
    if let Some(record) = meta.get(IDENTITY_KEY).map_err(|e| storage(e.into()))? {
        let found = decode_identity(record.value()).map_err(OpenFailure::Damaged)?;
        if found != identity {
            return Err(OpenFailure::OtherOwner { found, expected: identity });
        }
    }
    Ok(())
}

fn recover(db: &Database, identity: StoreIdentity) -> Result<Recovered, OpenFailure> {
    let storage = |e: redb::Error| OpenFailure::Storage(e);
    // A write transaction, so a new file gets its tables and identity in the same commit.
    let txn = db.begin_write().map_err(|e| storage(e.into()))?;
    let recovered = {
        let mut meta = txn.open_table(META).map_err(|e| storage(e.into()))?;
        let log = txn.open_table(LOG).map_err(|e| storage(e.into()))?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, OpenFailure> {
            Ok(meta.get(key).map_err(|e| storage(e.into()))?.map(|v| v.value().to_vec()))
        };
        match get(IDENTITY_KEY)? {
            Some(record) => {
                let found = decode_identity(&record).map_err(OpenFailure::Damaged)?;
                if found != identity {
                    return Err(OpenFailure::OtherOwner { found, expected: identity });
                }
                let format = get(FORMAT_KEY)?;
                let format = format.as_deref().and_then(|f| <[u8; 4]>::try_from(f).ok()).map(u32::from_be_bytes);
                if format != Some(FORMAT_VERSION) {
                    return Err(OpenFailure::UnknownFormat {
                        found: format.map_or_else(|| "unknown".to_string(), |f| f.to_string()),
                    });
                }
            }
            None => {
                let meta_len = meta.len().map_err(|e| storage(e.into()))?;
                let log_len = log.len().map_err(|e| storage(e.into()))?;
                if meta_len > 0 || log_len > 0 {
                    return Err(OpenFailure::Damaged("it holds records but no identity record".into()));
                }
                meta.insert(IDENTITY_KEY, encode_identity(identity).as_slice()).map_err(|e| storage(e.into()))?;
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes().as_slice()).map_err(|e| storage(e.into()))?;
            }
        }
        let record = |key: &str| -> Result<Option<Vec<u8>>, OpenFailure> {
            Ok(meta.get(key).map_err(|e| storage(e.into()))?.map(|v| v.value().to_vec()))
        };
        let damaged =
            |what: &str, e: prost::DecodeError| OpenFailure::Damaged(format!("the {what} record does not decode: {e}"));
        let vote = match record(VOTE_KEY)? {
            Some(r) => Some(vote_from_pb(&pb::Vote::decode(r.as_slice()).map_err(|e| damaged("vote", e))?)),
            None => None,
        };
        let log_id = |key: &str| -> Result<Option<LogId>, OpenFailure> {
            match record(key)? {
                Some(r) => Ok(Some(log_id_from_pb(&pb::LogId::decode(r.as_slice()).map_err(|e| damaged(key, e))?))),
                None => Ok(None),
            }
        };
        let last_purged = log_id(LAST_PURGED_KEY)?;
        let committed = log_id(COMMITTED_KEY)?;

        // Decoding the ends and counting proves the entries are consecutive without reading
        // them all; an entry damaged in between is reported when it is read.
        let first = log.first().map_err(|e| storage(e.into()))?.map(|(k, v)| (k.value(), v.value().to_vec()));
        let last = log.last().map_err(|e| storage(e.into()))?.map(|(k, v)| (k.value(), v.value().to_vec()));
        let first_present = first.as_ref().map_or(last_purged.map_or(0, |p| p.index + 1), |(index, _)| *index);
        let last_log_id = match (first, last) {
            (Some((first_index, first_record)), Some((last_index, last_record))) => {
                decode_entry(first_index, &first_record).map_err(OpenFailure::Damaged)?;
                let last_entry = decode_entry(last_index, &last_record).map_err(OpenFailure::Damaged)?;
                let count = log.len().map_err(|e| storage(e.into()))?;
                if count != last_index - first_index + 1 {
                    return Err(OpenFailure::Damaged(format!(
                        "it holds {count} entries from {first_index} to {last_index}: some are missing"
                    )));
                }
                if let Some(purged) = last_purged.filter(|p| p.index >= first_index) {
                    return Err(OpenFailure::Damaged(format!(
                        "it holds entry {first_index} although entries up to {purged} were purged"
                    )));
                }
                Some(last_entry.log_id)
            }
            _ => last_purged,
        };
        Recovered { vote, committed, last_purged, last_log_id, first_present }
    };
    txn.commit().map_err(|e| storage(e.into()))?;
    Ok(recovered)
}

/// The entry again, its bytes in one buffer of its own size. A decoded entry's keys and values
/// are slices of the buffer they arrived in (a whole gRPC frame from the leader, a client's
/// request): kept in the cache, each would pin that buffer, ~6 KB per 256-byte put, ~25 MB per
/// member at the cache's 4096 entries (found with heaptrack). Decoding its own record instead
/// costs one small copy.
fn detached(entry: Entry, record: &[u8]) -> Entry {
    if !matches!(entry.payload, openraft::EntryPayload::Normal(_)) {
        return entry;
    }
    match pb::Entry::decode(bytes::Bytes::copy_from_slice(record)).map(entry_from_pb) {
        Ok(Ok(copy)) => copy,
        _ => entry,
    }
}

fn encode_identity(identity: StoreIdentity) -> [u8; 16] {
    let mut record = [0; 16];
    record[..8].copy_from_slice(&identity.cluster_id.to_be_bytes());
    record[8..].copy_from_slice(&identity.member_id.to_be_bytes());
    record
}

fn decode_identity(record: &[u8]) -> Result<StoreIdentity, String> {
    let record = <[u8; 16]>::try_from(record)
        .map_err(|_| format!("the identity record has {} bytes instead of 16", record.len()))?;
    let (cluster, member) = record.split_at(8);
    let number = |bytes: &[u8]| bytes.try_into().map(u64::from_be_bytes).unwrap_or_default();
    Ok(StoreIdentity { cluster_id: number(cluster), member_id: number(member) })
}

fn decode_entry(index: u64, record: &[u8]) -> Result<Entry, String> {
    let entry = pb::Entry::decode(record).map_err(|e| format!("entry {index} does not decode: {e}"))?;
    let entry = entry_from_pb(entry).map_err(|e| format!("entry {index}: {e}"))?;
    if entry.log_id.index != index {
        return Err(format!("the entry stored at index {index} says it is entry {}", entry.log_id));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::io::BufReader;
    use std::process::Stdio;
    use std::time::Duration;

    use openraft::EntryPayload;
    use openraft::alias::OneshotReceiverOf;
    use openraft::type_config::TypeConfigExt;
    use openraft::vote::RaftLeaderId;
    use tokio::time::timeout;

    use super::*;
    use crate::node::raft::types::Command;
    use crate::node::raft::types::CommittedLeaderId;
    use crate::node::raft::types::LeaderId;
    use crate::proto::etcdserverpb::PutRequest;
    use crate::proto::rafttypb::command::Op;

    /// Generous: the machine is shared, and a timeout here means a bug, not slowness.
    const PATIENCE: Duration = Duration::from_secs(30);

    fn me() -> StoreIdentity {
        StoreIdentity { cluster_id: 0xc1, member_id: 0xa1 }
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term), index)
    }

    fn vote(term: u64) -> Vote {
        Vote { leader_id: LeaderId::new(term, 7), committed: false }
    }

    fn put(term: u64, index: u64) -> Entry {
        let request = PutRequest {
            key: format!("/registry/pods/{index}").into(),
            value: b"nginx".as_slice().into(),
            ..Default::default()
        };
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(Command { op: Some(Op::Put(request)), user: String::new() }),
        }
    }

    fn puts(term: u64, indexes: impl IntoIterator<Item = u64>) -> Vec<Entry> {
        indexes.into_iter().map(|i| put(term, i)).collect()
    }

    fn flush_signal() -> (IOFlushed, OneshotReceiverOf<TypeConfig, io::Result<()>>) {
        let (tx, rx) = TypeConfig::oneshot();
        (IOFlushed::signal(tx), rx)
    }

    async fn wait_durable(flushed: OneshotReceiverOf<TypeConfig, io::Result<()>>, what: &str) {
        timeout(PATIENCE, flushed)
            .await
            .unwrap_or_else(|_| panic!("{what}: the flush callback did not fire within {PATIENCE:?}"))
            .unwrap_or_else(|_| panic!("{what}: the flush callback was dropped without being called"))
            .unwrap_or_else(|e| panic!("{what}: the append failed: {e}"));
    }

    async fn append_durably(store: &mut LogStore, entries: Vec<Entry>) {
        let (callback, flushed) = flush_signal();
        store.append(entries, callback).await.expect("append");
        wait_durable(flushed, "append").await;
    }

    async fn read_all(reader: &mut impl RaftLogReader<TypeConfig>) -> Vec<Entry> {
        reader.try_get_log_entries(..).await.expect("read the log")
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn cached_entries_do_not_pin_the_buffer_they_arrived_in() {
        // As the peer service decodes an append: every value is a slice of one received frame.
        let frame = bytes::Bytes::from(vec![b'v'; 64 * 1024]);
        let frame_addresses = frame.as_ptr_range();
        let arrived: Vec<Entry> = (1..=3u64)
            .map(|index| {
                let mut entry = put(1, index);
                if let EntryPayload::Normal(Command { op: Some(Op::Put(request)), .. }) = &mut entry.payload {
                    request.value = frame.slice(index as usize * 256..(index as usize + 1) * 256);
                }
                entry
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, arrived.clone()).await;
        drop(frame);

        let cached = read_all(&mut store.get_log_reader().await).await;
        assert_eq!(cached, arrived, "the cache must give back the entries as appended");
        for entry in &cached {
            let EntryPayload::Normal(Command { op: Some(Op::Put(request)), .. }) = &entry.payload else {
                panic!("entry {} is no longer a put", entry.log_id);
            };
            assert!(
                !frame_addresses.contains(&request.value.as_ptr()),
                "entry {}'s value still points into the 64 KiB frame it arrived in",
                entry.log_id
            );
        }
    }

    #[tokio::test]
    async fn concurrent_appends_share_fsyncs_and_are_durable_when_acknowledged() {
        const APPENDS: u64 = 2000;
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        let stats = store.stats();

        // Like openraft under load: each append returns at once and the next follows
        // without waiting for the previous one to be durable.
        let mut pending = Vec::new();
        for index in 1..=APPENDS {
            let (callback, flushed) = flush_signal();
            store.append([put(1, index)], callback).await.unwrap();
            pending.push((index, flushed));
        }
        for (index, flushed) in pending {
            wait_durable(flushed, &format!("entry {index}")).await;
            // Reading the whole journal each time would make this quadratic: look now and then.
            if index % 97 == 0 || index == APPENDS {
                let on_disk = store.handle.core.last_index_on_disk(me()).unwrap();
                assert!(on_disk >= Some(index), "entry {index} was acknowledged while the files end at {on_disk:?}");
            }
        }

        let commits = stats.durable_commits();
        let fsyncs = stats.commit_seconds();
        eprintln!(
            "{APPENDS} appends took {commits} fsyncs: {:.1} appends per fsync, {:.2} ms per fsync",
            APPENDS as f64 / commits as f64,
            fsyncs.sum * 1000.0 / fsyncs.count as f64
        );
        assert_eq!(stats.durable_appends(), APPENDS);
        assert_eq!(stats.entries_written(), APPENDS);
        assert!(stats.bytes_written() > APPENDS * 20, "bytes written: {}", stats.bytes_written());
        assert!(commits * 4 <= APPENDS, "group commit is not grouping: {APPENDS} appends took {commits} fsyncs");
        let per_commit = stats.entries_per_commit();
        assert_eq!(per_commit.count, commits);
        assert_eq!(per_commit.sum, APPENDS as f64);
        assert_eq!(fsyncs.count, commits);
        assert_eq!(fsyncs.buckets.len(), 14);
        assert_eq!(fsyncs.buckets[0].0, 0.001);
        assert_eq!(fsyncs.buckets[13].0, 8.192);

        drop(store);
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        let entries = read_all(&mut reopened).await;
        assert_eq!(entries, puts(1, 1..=APPENDS), "the reopened log differs from what was appended");
    }

    // Holding the commit gate across awaits is the point: it keeps writes in flight.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn readers_see_writes_in_flight_but_never_removed_entries() {
        let dir = tempfile::tempdir().unwrap();
        // A tiny cache, so reads combine entries on disk with entries in memory.
        let config = LogStoreConfig { cache_max_entries: 2, ..LogStoreConfig::default() };
        let mut store = LogStore::open_with(dir.path(), me(), config).unwrap();
        let mut reader = store.get_log_reader().await;
        let stats = store.stats();
        append_durably(&mut store, puts(1, 1..=5)).await;
        assert_eq!(read_all(&mut reader).await, puts(1, 1..=5));

        let core = store.handle.core.clone();
        let gate = core.commit_gate.lock().unwrap();
        let commits_before = stats.durable_commits();
        let (callback, mut flushed) = flush_signal();
        store.append(puts(2, 6..=8), callback).await.unwrap();
        assert_eq!(
            indexes(&read_all(&mut reader).await),
            [1, 2, 3, 4, 5, 6, 7, 8],
            "appended entries must be readable at once"
        );
        assert!(flushed.try_recv().is_err(), "the flush callback fired before any commit");
        assert_eq!(stats.durable_commits(), commits_before);

        {
            let truncation = store.truncate_after(Some(log_id(2, 6)));
            tokio::pin!(truncation);
            assert!(futures::poll!(truncation.as_mut()).is_pending(), "truncate_after returned before its commit");
            assert_eq!(
                indexes(&read_all(&mut reader).await),
                [1, 2, 3, 4, 5, 6],
                "truncated entries must vanish at once"
            );
            assert_eq!(reader.try_get_log_entries(7..).await.unwrap(), []);
            drop(gate);
            timeout(PATIENCE, truncation).await.expect("truncate_after did not finish").unwrap();
        }
        wait_durable(flushed, "entries 6 to 8").await;

        let gate = core.commit_gate.lock().unwrap();
        {
            let purge = store.purge(log_id(1, 3));
            tokio::pin!(purge);
            assert!(futures::poll!(purge.as_mut()).is_pending(), "purge returned before its commit");
            assert_eq!(indexes(&read_all(&mut reader).await), [4, 5, 6], "purged entries must vanish at once");
            assert_eq!(reader.try_get_log_entries(0..=3).await.unwrap(), []);
            drop(gate);
            timeout(PATIENCE, purge).await.expect("purge did not finish").unwrap();
        }
        let expected_state = LogState { last_purged_log_id: Some(log_id(1, 3)), last_log_id: Some(log_id(2, 6)) };
        assert_eq!(store.get_log_state().await.unwrap(), expected_state);

        drop((reader, store, core));
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(reopened.get_log_state().await.unwrap(), expected_state);
        let mut expected = puts(1, 4..=5);
        expected.push(put(2, 6));
        assert_eq!(read_all(&mut reopened).await, expected);
    }

    #[tokio::test]
    async fn a_follower_writes_appends_through_and_a_leader_hands_them_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        let stats = store.stats();

        // Following member 7: the append is durable by the time the call returns.
        store.save_vote(&vote(2)).await.unwrap();
        // The writer thread tells save_vote before it lets go of the writer; until then an
        // append waits in the queue, behind it, so that its callers hear in order.
        let core = &store.handle.core;
        let idle = || core.writer.try_lock().is_ok() && core.lock_view().is_ok_and(|view| view.queued == 0);
        let deadline = std::time::Instant::now() + PATIENCE;
        while !idle() {
            assert!(std::time::Instant::now() < deadline, "the writer thread never went idle after saving the vote");
            tokio::task::yield_now().await;
        }
        let (callback, mut flushed) = flush_signal();
        store.append(puts(2, 1..=3), callback).await.unwrap();
        match flushed.try_recv() {
            Ok(Ok(())) => {}
            other => panic!("a follower's append returned before its flush callback fired: {other:?}"),
        }
        assert_eq!(stats.appends_written_through(), 1);
        assert_eq!(stats.durable_appends(), 1, "the append written through must be counted as durable");
        let on_disk = store.handle.core.last_index_on_disk(me()).unwrap();
        assert_eq!(on_disk, Some(3), "entries 1 to 3 were acknowledged while the files end at {on_disk:?}");

        // Leading: the writer thread takes the append, so followers get it while it syncs.
        let leading = Vote { leader_id: LeaderId::new(3, me().member_id), committed: true };
        store.save_vote(&leading).await.unwrap();
        append_durably(&mut store, puts(3, 4..=5)).await;
        assert_eq!(stats.appends_written_through(), 1, "a leader's append was written through");
        assert_eq!(stats.durable_appends(), 2);

        drop(store);
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        let mut expected = puts(2, 1..=3);
        expected.extend(puts(3, 4..=5));
        assert_eq!(read_all(&mut reopened).await, expected, "the reopened log differs from what was appended");
        assert_eq!(reopened.read_vote().await.unwrap(), Some(leading));
    }

    #[tokio::test]
    async fn write_through_appends_make_checkpoints_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogStoreConfig { journal_checkpoint_batches: 4, ..LogStoreConfig::default() };
        let mut store = LogStore::open_with(dir.path(), me(), config).unwrap();
        let stats = store.stats();
        store.save_vote(&vote(2)).await.unwrap();
        for index in 1..=50 {
            let (callback, mut flushed) = flush_signal();
            store.append([put(2, index)], callback).await.unwrap();
            // While the writer runs a checkpoint the append goes to it instead: either way,
            // the callback fires once it is durable.
            if flushed.try_recv().is_err() {
                wait_durable(flushed, &format!("entry {index}")).await;
            }
        }
        assert!(stats.appends_written_through() > 0, "no append of a follower was written through");
        assert_eq!(stats.durable_appends(), 50);
        let journal_len = store.handle.core.writer.lock().unwrap().journal.records_len();
        let written = stats.bytes_written();
        assert!(
            journal_len < written / 2,
            "checkpoints did not keep up with appends written through: the journal holds {journal_len} of the \
             {written} bytes written"
        );

        drop(store);
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(read_all(&mut reopened).await, puts(2, 1..=50));
    }

    #[tokio::test]
    async fn vote_and_committed_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, puts(3, 1..=4)).await;
        store.save_vote(&vote(3)).await.unwrap();
        store.save_committed(Some(log_id(3, 4))).await.unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(vote(3)));
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(3, 4)));
        drop(store);

        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(reopened.read_vote().await.unwrap(), Some(vote(3)));
        assert_eq!(reopened.read_committed().await.unwrap(), Some(log_id(3, 4)));
    }

    #[tokio::test]
    async fn appends_that_would_leave_a_hole_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, puts(1, 1..=3)).await;

        let (callback, _) = flush_signal();
        let err = store.append([put(1, 5)], callback).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("would leave a hole"), "{err}");
        let (callback, _) = flush_signal();
        let err = store.append([put(1, 4), put(1, 6)], callback).await.unwrap_err();
        assert!(err.to_string().contains("follows entry"), "{err}");

        store.purge(log_id(1, 9)).await.unwrap();
        store.purge(log_id(1, 2)).await.unwrap();
        assert_eq!(store.get_log_state().await.unwrap().last_purged_log_id, Some(log_id(1, 9)));
        let (callback, _) = flush_signal();
        let err = store.append([put(1, 9)], callback).await.unwrap_err();
        assert!(err.to_string().contains("purged already"), "{err}");
        append_durably(&mut store, puts(2, 10..=11)).await;
        assert_eq!(read_all(&mut store).await, puts(2, 10..=11));
        drop(store);
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        let state = reopened.get_log_state().await.unwrap();
        assert_eq!(state, LogState { last_purged_log_id: Some(log_id(1, 9)), last_log_id: Some(log_id(2, 11)) });
    }

    #[tokio::test]
    async fn an_append_over_existing_entries_replaces_them_and_all_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, puts(1, 1..=5)).await;
        append_durably(&mut store, vec![put(2, 3)]).await;
        let expected = vec![put(1, 1), put(1, 2), put(2, 3)];
        assert_eq!(read_all(&mut store).await, expected);
        drop(store);
        let mut reopened = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(read_all(&mut reopened).await, expected);
        assert_eq!(reopened.get_log_state().await.unwrap().last_log_id, Some(log_id(2, 3)));
    }

    #[tokio::test]
    async fn a_small_unflushed_budget_slows_appends_down_without_losing_any() {
        let dir = tempfile::tempdir().unwrap();
        // Each batch holds at most 200 bytes, three entries; a checkpoint comes every 5 batches.
        let config = LogStoreConfig {
            max_unflushed_bytes: 200,
            cache_max_entries: 10,
            journal_checkpoint_batches: 5,
            ..LogStoreConfig::default()
        };
        let mut store = LogStore::open_with(dir.path(), me(), config).unwrap();
        let mut pending = Vec::new();
        for index in 1..=300 {
            let (callback, flushed) = flush_signal();
            store.append([put(1, index)], callback).await.unwrap();
            pending.push((index, flushed));
        }
        for (index, flushed) in pending {
            wait_durable(flushed, &format!("entry {index}")).await;
        }
        assert_eq!(read_all(&mut store).await, puts(1, 1..=300));
        let view = store.handle.core.lock_view().unwrap();
        // The cache holds its budget plus what redb does not have yet: at most 5 batches, and a
        // batch may pass the byte budget by the entry that crossed it (four entries).
        assert!(
            view.cache.len() <= 10 + 5 * 4,
            "the cache kept {} entries, over its budget of 10 + 20",
            view.cache.len()
        );
    }

    #[tokio::test]
    async fn a_log_of_another_member_or_cluster_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE_NAME).display().to_string();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, puts(1, 1..=3)).await;
        drop(store);

        let other_member = StoreIdentity { member_id: 0xb2, ..me() };
        let err = LogStore::open(dir.path(), other_member).err().expect("another member's log must be refused");
        assert!(matches!(err.reason, OpenFailure::OtherOwner { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path), "the error does not name the file: {message}");
        assert!(message.contains("belongs to member a1 of cluster c1, not to member b2 of cluster c1"), "{message}");

        let other_cluster = StoreIdentity { cluster_id: 0xc2, ..me() };
        let err = LogStore::open(dir.path(), other_cluster).err().expect("another cluster's log must be refused");
        assert!(err.to_string().contains("not to member a1 of cluster c2"), "{err}");

        let mut store = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(read_all(&mut store).await, puts(1, 1..=3), "a refused open must leave the log as it was");
    }

    fn overwrite_record(dir: &Path, write: impl FnOnce(&mut redb::Table<&str, &[u8]>, &mut redb::Table<u64, &[u8]>)) {
        let db = Database::create(dir.join(LOG_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let mut log = txn.open_table(LOG).unwrap();
            write(&mut meta, &mut log);
        }
        txn.commit().unwrap();
    }

    type Records = (Vec<(String, Vec<u8>)>, Vec<(u64, Vec<u8>)>);

    /// Every record of a log file, read with redb directly.
    fn records(dir: &Path) -> Records {
        let db = Database::create(dir.join(LOG_FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        let log = txn.open_table(LOG).unwrap();
        let meta = meta.iter().unwrap().map(|r| r.unwrap()).map(|(k, v)| (k.value().to_string(), v.value().to_vec()));
        let log = log.iter().unwrap().map(|r| r.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec()));
        (meta.collect(), log.collect())
    }

    #[tokio::test]
    async fn damaged_records_are_reported_with_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE_NAME).display().to_string();
        let mut store = LogStore::open(dir.path(), me()).unwrap();
        append_durably(&mut store, puts(1, 1..=3)).await;
        store.save_vote(&vote(1)).await.unwrap();
        drop(store);

        let good_vote = vote_to_pb(&vote(1)).encode_to_vec();
        type Damage = Box<dyn Fn(&mut redb::Table<&str, &[u8]>, &mut redb::Table<u64, &[u8]>)>;
        let cases: Vec<(&str, Damage)> = vec![
            (
                "the vote record does not decode",
                Box::new(|meta, _| {
                    meta.insert(VOTE_KEY, [0xff, 0xff, 0xff].as_slice()).unwrap();
                }),
            ),
            (
                "entry 3 does not decode",
                Box::new(|_, log| {
                    log.insert(3, [0x0a, 0x80].as_slice()).unwrap();
                }),
            ),
            (
                "the entry stored at index 3 says it is entry",
                Box::new(|_, log| {
                    log.insert(3, entry_to_pb(&put(1, 4)).encode_to_vec().as_slice()).unwrap();
                }),
            ),
            (
                "some are missing",
                Box::new(|_, log| {
                    log.remove(2).unwrap();
                }),
            ),
            (
                "the identity record has 3 bytes",
                Box::new(|meta, _| {
                    meta.insert(IDENTITY_KEY, [1, 2, 3].as_slice()).unwrap();
                }),
            ),
            (
                "layout version 9",
                Box::new(|meta, _| {
                    meta.insert(FORMAT_KEY, 9u32.to_be_bytes().as_slice()).unwrap();
                }),
            ),
        ];
        for (reason, damage) in cases {
            let saved = std::fs::read(dir.path().join(LOG_FILE_NAME)).unwrap();
            overwrite_record(dir.path(), |meta, log| damage(meta, log));
            let damaged = records(dir.path());
            let err = LogStore::open(dir.path(), me()).err().unwrap_or_else(|| panic!("opened a log where {reason}"));
            let message = err.to_string();
            assert!(
                message.contains(&path) && message.contains(reason),
                "expected the file and {reason:?} in: {message}"
            );
            assert!(records(dir.path()) == damaged, "a refused open changed the records of the file");
            std::fs::write(dir.path().join(LOG_FILE_NAME), saved).unwrap();
        }

        let mut store = LogStore::open(dir.path(), me()).unwrap();
        assert_eq!(read_all(&mut store).await, puts(1, 1..=3));
        assert_eq!(vote_to_pb(&store.read_vote().await.unwrap().unwrap()).encode_to_vec(), good_vote);
    }

    #[test]
    fn a_file_that_is_not_a_redb_database_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(LOG_FILE_NAME);
        let garbage = b"this is not a redb database, but someone's notes".repeat(100);
        std::fs::write(&file, &garbage).unwrap();
        let err = LogStore::open(dir.path(), me()).err().expect("a file that is not redb must be refused");
        assert!(err.to_string().contains(&file.display().to_string()), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), garbage, "a refused open changed the file");
    }

    const CRASH_DIR_VAR: &str = "RAFTTY_LOG_STORE_CRASH_DIR";
    const CRASH_CHILD_TEST: &str = "node::raft::log_store::tests::crash_child_process";

    /// Not a test by itself: the body of the child process that
    /// `a_killed_process_loses_nothing_it_acknowledged` kills. It appends and votes as fast
    /// as it can and prints what the store acknowledged: `durable <index>` once an append's
    /// callback reported success, `vote <term>` once save_vote returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_child_process() {
        let Some(dir) = std::env::var_os(CRASH_DIR_VAR) else {
            return;
        };
        let mut store = LogStore::open(Path::new(&dir), me()).expect("child: open the log");
        let started = Instant::now();
        // Stop on our own if the parent never kills us.
        for index in 1..=1_000_000u64 {
            if started.elapsed() > Duration::from_secs(60) {
                break;
            }
            let (callback, flushed) = flush_signal();
            store.append([put(1, index)], callback).await.expect("child: append");
            tokio::spawn(async move {
                if let Ok(Ok(())) = flushed.await {
                    println!("durable {index}");
                }
            });
            if index % 50 == 0 {
                // Leading in odd terms and following in even ones: the writer thread and
                // write-through both get killed in the middle of their work.
                let term = index / 50;
                let leader = if term % 2 == 1 { me().member_id } else { 7 };
                let vote = Vote { leader_id: LeaderId::new(term, leader), committed: false };
                store.save_vote(&vote).await.expect("child: save_vote");
                println!("vote {term}");
            }
        }
    }

    /// What the crash child printed.
    #[derive(Default)]
    struct Acknowledged {
        durable: Vec<u64>,
        votes: Vec<u64>,
    }

    impl Acknowledged {
        fn record(&mut self, line: &str) {
            if let Some(index) = line.strip_prefix("durable ").and_then(|i| i.parse().ok()) {
                self.durable.push(index);
            } else if let Some(term) = line.strip_prefix("vote ").and_then(|t| t.parse().ok()) {
                self.votes.push(term);
            }
        }
    }

    #[test]
    fn a_killed_process_loses_nothing_it_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CRASH_CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child process");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut acknowledged = Acknowledged::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.durable.len() < 400 || acknowledged.votes.len() < 3 {
            let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                let _ = child.kill();
                panic!(
                    "within 60 s the child acknowledged only {} appends and {} votes (waited for 400 and 3)",
                    acknowledged.durable.len(),
                    acknowledged.votes.len()
                );
            };
            acknowledged.record(&line);
        }
        // SIGKILL: no destructor runs, the writer may be in the middle of a commit.
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
        // Whatever it printed before dying was acknowledged too.
        reader.join().expect("the stdout reader");
        for line in lines.try_iter() {
            acknowledged.record(&line);
        }
        let Acknowledged { durable, votes } = acknowledged;

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut store = LogStore::open(dir.path(), me()).expect("reopen the log after the crash");
            let entries = read_all(&mut store).await;
            let on_disk = indexes(&entries);
            let last_on_disk = on_disk.last().copied().unwrap_or(0);
            assert_eq!(on_disk, (1..=last_on_disk).collect::<Vec<_>>(), "the log has a hole after the crash");
            let lost: Vec<u64> = durable.iter().copied().filter(|i| *i > last_on_disk).collect();
            assert!(lost.is_empty(), "acknowledged entries lost in the crash: {lost:?} (log ends at {last_on_disk})");
            assert_eq!(entries, puts(1, 1..=last_on_disk));
            let last_vote = votes.iter().copied().max().unwrap_or(0);
            let stored_vote = store.read_vote().await.unwrap().expect("a vote after the crash");
            // A vote saved after the last one printed may be on disk too.
            assert!(stored_vote.leader_id.term >= last_vote, "vote {last_vote} was acknowledged, the log has {stored_vote:?}");
            eprintln!(
                "killed after {} acknowledged appends and vote {last_vote}; reopened with {last_on_disk} entries and vote {}",
                durable.len(),
                stored_vote.leader_id.term
            );
        });
    }
}
