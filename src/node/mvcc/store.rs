//! [`MvccStore`]: the state file, the in-memory state readers see, and the single writer
//! that moves both forward together.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;
use std::sync::RwLockWriteGuard;
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use redb::Database;
use redb::Durability;
use redb::ReadOnlyTable;
use redb::ReadTransaction;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;
use redb::TableError;
use tokio::sync::broadcast;

use crate::errors::EtcdError;
use crate::node::auth::store::AuthState;
use crate::node::metrics::histogram::Histogram;
use crate::node::metrics::histogram::HistogramSnapshot;
use crate::node::mvcc::apply::apply_command;
use crate::node::mvcc::error::AtPath;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::error::StoreError;
use crate::node::mvcc::events::RevisionEvents;
use crate::node::mvcc::events::WatchFeed;
use crate::node::mvcc::index::IndexEntry;
use crate::node::mvcc::index::KeyIndex;
use crate::node::mvcc::index::Revision;
use crate::node::mvcc::record::decode_record;
use crate::node::mvcc::record::read_record;
use crate::node::mvcc::span::KeySpan;
use crate::node::mvcc::state::Lease;
use crate::node::mvcc::state::State;
use crate::node::mvcc::view::ReadView;
use crate::node::mvcc::view::TxnTarget;
use crate::node::mvcc::write::Writer;
use crate::node::mvcc::{hash, range, txn, validate};
use crate::node::raft::types::StoreIdentity;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RangeResponse;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::TxnResponse;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::CommandResult;
use crate::proto::rafttystore::AppliedState;
use crate::proto::rafttystore::LeaseRecord;
use crate::proto::rafttystore::RevisionRecord;
use crate::proto::rafttystore::StoreIdentityRecord;
use crate::proto::rafttystore::StoreState;

/// The state file's name inside a member's data directory.
pub const STATE_FILE: &str = "state.redb";

/// Bumped when the layout of `state.redb` changes incompatibly.
pub const STATE_FORMAT: u32 = 1;

/// How stale the durable copy of the state may get while applies go on. The Raft log is
/// durable and openraft re-applies it after a crash, so this only bounds replay work.
pub const DURABLE_EVERY: Duration = Duration::from_secs(1);

/// How many committed revisions the live feed buffers for a slow subscriber before it is
/// told it lagged (and has to catch up from history).
const FEED_CAPACITY: usize = 4096;

const REVISIONS: TableDefinition<(i64, i64), &[u8]> = TableDefinition::new("revisions");
const LEASES: TableDefinition<i64, &[u8]> = TableDefinition::new("leases");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const IDENTITY_KEY: &str = "identity";
const STATE_KEY: &str = "state";

/// What the Lease API shows of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: i64,
    /// the TTL granted, in seconds
    pub ttl: i64,
    /// the remaining TTL last checkpointed through Raft, 0 when never
    pub remaining_ttl: i64,
    /// the keys attached, in key order
    pub keys: Vec<Bytes>,
}

/// One item of a state being restored from a snapshot, in the order a snapshot holds them:
/// revisions in increasing order, then leases.
#[derive(Debug, Clone)]
pub enum RestoreItem {
    Revision(Revision, RevisionRecord),
    Lease(LeaseRecord),
}

pub struct MvccStore {
    path: PathBuf,
    identity: StoreIdentity,
    /// Shared by every transaction; taken exclusively only to defragment. Whoever needs both
    /// locks takes `state` first.
    db: RwLock<Database>,
    state: RwLock<State>,
    durability: Mutex<DurableClock>,
    feed: broadcast::Sender<WatchFeed>,
    /// Durations of the commits that reach the disk: raftty's
    /// `etcd_disk_backend_commit_duration_seconds`.
    disk_commit_seconds: Histogram,
}

/// When the last durable commit was, and how long non-durable ones may pile up after it.
struct DurableClock {
    last: Instant,
    every: Duration,
    /// Something was applied since the last durable commit.
    dirty: bool,
}

impl std::fmt::Debug for MvccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvccStore").field("path", &self.path).field("identity", &self.identity).finish()
    }
}

impl MvccStore {
    /// Opens the state file at `path`, creating it for `identity` if there is none. A file of
    /// another member or cluster, or one that cannot be decoded, is refused, never repaired
    /// or replaced.
    pub fn open(path: &Path, identity: StoreIdentity) -> Result<Self, StoreError> {
        let exists = path.try_exists().map_err(|e| StoreError::io(path, e))?;
        if !exists {
            create(path, identity)?;
        } else {
            check_owner_without_writing(path, identity)?;
        }
        // The integrity check reads every page once at start-up: a damaged file is refused
        // here, with a clear error, instead of failing (or worse, being believed) later.
        let db = Database::builder()
            .set_cache_size(crate::node::memory::budget().state_cache_bytes)
            .set_check_integrity_on_open(true)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        let state = load(&db, path, identity)?;
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(MvccStore {
            path: path.to_path_buf(),
            identity,
            db: RwLock::new(db),
            state: RwLock::new(state),
            durability: Mutex::new(DurableClock { last: Instant::now(), every: DURABLE_EVERY, dirty: false }),
            feed,
            // etcd's buckets for backend commits: 1 ms to about 8 s.
            disk_commit_seconds: Histogram::exponential(0.001, 2.0, 14),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn identity(&self) -> StoreIdentity {
        self.identity
    }

    /// The current store revision (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.lock_read().revision
    }

    /// The last compaction's revision, -1 before the first one.
    pub fn compact_revision(&self) -> i64 {
        self.lock_read().compact_revision
    }

    /// Where the state stands in the Raft log.
    pub fn applied_state(&self) -> AppliedState {
        self.lock_read().applied.clone()
    }

    /// The size of the state file in bytes (etcd's `dbSize`); 0 if the file cannot be
    /// looked at (it is open, so that means something else is badly wrong, and is logged).
    pub fn db_size_bytes(&self) -> u64 {
        match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) => {
                tracing::warn!("cannot read the size of {}: {e}", self.path.display());
                0
            }
        }
    }

    /// How long the commits that made applied state durable took, fsync included. Like
    /// etcd's backend, which batches applies and commits them to disk every 100 ms, raftty
    /// applies in memory-only commits and makes them durable in one commit at most every
    /// [`DURABLE_EVERY`]; only those durable commits (and restores) touch the disk, so only
    /// they are timed: the memory-only ones would bury a slow disk under microseconds.
    pub fn disk_commit_seconds(&self) -> HistogramSnapshot {
        self.disk_commit_seconds.snapshot()
    }

    /// The live feed of committed revisions.
    pub fn subscribe(&self) -> broadcast::Receiver<WatchFeed> {
        self.feed.subscribe()
    }

    // ---- reads: any task, any time ----

    /// Serves a Range. Returns the response (header left to the server) and the store
    /// revision it was served at, for the header.
    pub fn range(&self, req: &RangeRequest) -> Result<(RangeResponse, i64), EtcdError> {
        validate::check_range(req)?;
        let reader = self.reader()?;
        let mut response = range::range(&reader, req).map_err(Failure::into_etcd)?;
        response.header = None;
        Ok((response, reader.read_revision()))
    }

    /// Serves a transaction that only reads (see [`txn::is_read_only`]) without Raft, as
    /// etcd does. Returns the response (top-level header left to the server; nested ones
    /// as etcd fills them) and the revision it was served at.
    pub fn txn_read(&self, req: &TxnRequest) -> Result<(TxnResponse, i64), EtcdError> {
        validate::check_txn(req)?;
        if !txn::is_read_only(req) {
            return Err(EtcdError::Internal("a transaction that writes must go through Raft".into()));
        }
        let mut reader = self.reader()?;
        let mut response = txn::execute(&mut reader, req).map_err(Failure::into_etcd)?;
        response.header = None;
        Ok((response, reader.read_revision()))
    }

    /// etcd's HashKV: see [`hash`].
    pub fn hash_kv(&self, revision: i64) -> Result<hash::HashKv, EtcdError> {
        let reader = self.reader()?;
        hash::hash_kv(&reader, revision).map_err(Failure::into_etcd)
    }

    /// The events of revisions `from..=to` from retained history (`to` is capped at the
    /// current revision), for watches that start in the past. A `from` at or below the
    /// compaction point is refused with `Compacted`: part of that revision's history (and
    /// of the `prev_kv`s after it) is gone, so it could not be delivered whole.
    pub fn events(&self, from: i64, to: i64) -> Result<Vec<RevisionEvents>, EtcdError> {
        let reader = self.reader()?;
        history(&reader, from, to).map_err(Failure::into_etcd)
    }

    pub fn lease_ids(&self) -> Vec<i64> {
        self.lock_read().leases.keys().copied().collect()
    }

    pub fn lease(&self, id: i64) -> Option<LeaseInfo> {
        self.lock_read().leases.get(&id).map(|l| LeaseInfo {
            id: l.id,
            ttl: l.ttl,
            remaining_ttl: l.remaining_ttl,
            keys: l.keys.iter().cloned().collect(),
        })
    }

    // ---- writes: the Raft state machine only ----

    /// Applies committed commands in one atomic step and records `applied` (the log position
    /// after them) with them. Readers see all of it or none of it; the live feed hears about
    /// each new revision once it is visible. An `Err` is a storage failure: the store then
    /// refuses all further work.
    pub fn apply<'c>(
        &self,
        commands: impl IntoIterator<Item = &'c Command>,
        applied: &AppliedState,
    ) -> Result<Vec<CommandResult>, StoreError> {
        // The state lock before the write transaction, as everywhere: defragmenting holds it
        // to keep transactions from starting.
        let mut state = self.lock_write()?;
        let mut wtx = self.database().begin_write().at(&self.path)?;
        wtx.set_durability(Durability::None).at(&self.path)?;
        let mut published = Vec::new();
        let outcome = self
            .apply_in(&wtx, &mut state, commands, applied, &mut published)
            .and_then(|results| wtx.commit().at(&self.path).map(|()| results));
        let results = match outcome {
            Ok(results) => results,
            Err(e) => {
                state.failed = Some(e.to_string());
                return Err(e);
            }
        };
        drop(state);
        for revision in published {
            // no subscriber is not an error
            let _ = self.feed.send(WatchFeed::Revision(Arc::new(revision)));
        }
        self.clock().dirty = true;
        Ok(results)
    }

    fn apply_in<'c>(
        &self,
        wtx: &redb::WriteTransaction,
        state: &mut State,
        commands: impl IntoIterator<Item = &'c Command>,
        applied: &AppliedState,
        published: &mut Vec<RevisionEvents>,
    ) -> Result<Vec<CommandResult>, StoreError> {
        let mut records = wtx.open_table(REVISIONS).at(&self.path)?;
        let mut leases = wtx.open_table(LEASES).at(&self.path)?;
        let mut meta = wtx.open_table(META).at(&self.path)?;
        let mut writer = Writer::new(state, &mut records, &mut leases, &self.path);
        let mut results = Vec::new();
        for cmd in commands {
            results.push(apply_command(&mut writer, cmd, published)?);
        }
        state.applied = applied.clone();
        meta.insert(STATE_KEY, stored_state(state).encode_to_vec().as_slice()).at(&self.path)?;
        Ok(results)
    }

    /// Makes everything applied so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut clock = self.clock();
        self.durable_commit()?;
        clock.last = Instant::now();
        clock.dirty = false;
        Ok(())
    }

    /// Changes how long applied batches may stay non-durable ([`DURABLE_EVERY`] by default).
    pub fn set_durable_interval(&self, every: Duration) {
        self.clock().every = every;
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, DurableClock> {
        self.durability.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the applied state durable if [`DURABLE_EVERY`] has passed since it last was.
    /// The member calls it from a background task, so that no client request ever waits
    /// for this fsync: the Raft log is what makes a write durable.
    pub fn flush_if_due(&self) -> Result<(), StoreError> {
        let mut clock = self.clock();
        if clock.dirty && clock.last.elapsed() >= clock.every {
            self.durable_commit()?;
            clock.last = Instant::now();
            clock.dirty = false;
        }
        Ok(())
    }

    /// An empty commit with immediate durability: redb then persists every non-durable commit
    /// before it too.
    fn durable_commit(&self) -> Result<(), StoreError> {
        let mut wtx = self.database().begin_write().at(&self.path)?;
        wtx.set_durability(Durability::Immediate).at(&self.path)?;
        let started = Instant::now();
        wtx.commit().at(&self.path)?;
        self.disk_commit_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A frozen, consistent view of the whole state, for writing a snapshot while applies
    /// go on.
    pub fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        let rtx = {
            let state = self.lock_read();
            if let Some(reason) = &state.failed {
                return Err(StoreError::Failed { path: self.path.clone(), reason: reason.clone() });
            }
            self.database().begin_read().at(&self.path)?
        };
        let state = read_state(&rtx, &self.path)?;
        Ok(StoreSnapshot { path: self.path.clone(), rtx, state })
    }

    /// Replaces the whole state with the given one in a single durable transaction: on any
    /// error nothing changes. Watchers are told with [`WatchFeed::Restored`].
    pub fn restore(
        &self,
        target: &StoreState,
        items: impl IntoIterator<Item = Result<RestoreItem, StoreError>>,
    ) -> Result<(), StoreError> {
        let mut wtx = self.database().begin_write().at(&self.path)?;
        wtx.set_durability(Durability::Immediate).at(&self.path)?;
        wtx.delete_table(REVISIONS).at(&self.path)?;
        wtx.delete_table(LEASES).at(&self.path)?;
        let mut fresh = State::empty();
        fresh.revision = target.revision;
        fresh.compact_revision = target.compact_revision;
        fresh.applied = target.applied.clone().unwrap_or_default();
        fresh.alarms = crate::node::mvcc::alarm::from_members(&target.alarms);
        fresh.auth = target.auth.as_ref().map(AuthState::from_record).unwrap_or_default();
        {
            let mut records = wtx.open_table(REVISIONS).at(&self.path)?;
            let mut leases = wtx.open_table(LEASES).at(&self.path)?;
            let mut loader = Loader::new(&self.path, fresh.revision);
            for item in items {
                match item? {
                    RestoreItem::Revision(rev, record) => {
                        loader.revision(rev, &record)?;
                        records.insert((rev.main, rev.sub), record.encode_to_vec().as_slice()).at(&self.path)?;
                    }
                    RestoreItem::Lease(lease) => {
                        loader.lease(&lease)?;
                        leases.insert(lease.id, lease.encode_to_vec().as_slice()).at(&self.path)?;
                    }
                }
            }
            loader.finish(&mut fresh);
            let mut meta = wtx.open_table(META).at(&self.path)?;
            meta.insert(STATE_KEY, stored_state(&fresh).encode_to_vec().as_slice()).at(&self.path)?;
        }
        let mut state = self.lock_write()?;
        let started = Instant::now();
        if let Err(e) = wtx.commit().at(&self.path) {
            state.failed = Some(e.to_string());
            return Err(e);
        }
        self.disk_commit_seconds.observe(started.elapsed().as_secs_f64());
        let (revision, compact_revision) = (fresh.revision, fresh.compact_revision);
        *state = fresh;
        drop(state);
        self.clock().last = Instant::now();
        let _ = self.feed.send(WatchFeed::Restored { revision, compact_revision });
        Ok(())
    }

    /// Rewrites the state file without its free pages, as etcd's defrag does, so that it
    /// shrinks to what the data needs (history a compaction removed leaves free pages behind,
    /// which the file keeps until then). Reads and applies wait meanwhile. A snapshot being
    /// read keeps the file from being rearranged: then it waits for it, up to `patience`.
    pub fn defragment(&self, patience: Duration) -> Result<Defragmented, StoreError> {
        let before = self.db_size_bytes();
        let started = Instant::now();
        loop {
            let state = self.lock_write()?;
            let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
            match db.compact() {
                Ok(_) => {
                    drop(db);
                    drop(state);
                    self.clock().last = Instant::now();
                    return Ok(Defragmented { before, after: self.db_size_bytes(), took: started.elapsed() });
                }
                Err(redb::CompactionError::TransactionInProgress) if started.elapsed() < patience => {
                    drop(db);
                    drop(state);
                    std::thread::sleep(Duration::from_millis(10)); // poll: redb cannot say when reads end
                }
                Err(redb::CompactionError::TransactionInProgress) => {
                    return Err(StoreError::Busy {
                        path: self.path.clone(),
                        what: format!("a snapshot was still being read after {patience:?}; try again"),
                    });
                }
                Err(e) => return Err(StoreError::Database { path: self.path.clone(), source: redb::Error::from(e) }),
            }
        }
    }

    /// Reads the in-memory state (auth, leases) under the read lock.
    pub(crate) fn read_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock_read())
    }

    /// The active alarms, as this member has applied them.
    pub fn alarms(&self) -> crate::node::mvcc::alarm::Alarms {
        self.lock_read().alarms.clone()
    }

    // ---- locking ----

    fn database(&self) -> RwLockReadGuard<'_, Database> {
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_read(&self) -> RwLockReadGuard<'_, State> {
        // a writer that panicked also marked nothing as failed; the reads that care go
        // through `reader`, which checks `failed`
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_write(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        let guard = self
            .state
            .write()
            .map_err(|_| StoreError::Failed { path: self.path.clone(), reason: "a writer panicked".into() })?;
        if let Some(reason) = &guard.failed {
            return Err(StoreError::Failed { path: self.path.clone(), reason: reason.clone() });
        }
        Ok(guard)
    }

    /// A consistent read view: the in-memory state of the last committed batch and a redb
    /// read transaction of that same commit (the writer commits while holding the write lock,
    /// so no commit can slip in between taking the lock and opening the transaction).
    pub(crate) fn reader(&self) -> Result<Reader<'_>, EtcdError> {
        let state = self
            .state
            .read()
            .map_err(|_| EtcdError::Internal(format!("{}: a writer panicked", self.path.display())))?;
        if let Some(reason) = &state.failed {
            return Err(EtcdError::Internal(format!("{}: {reason}", self.path.display())));
        }
        let internal = |e: StoreError| EtcdError::Internal(e.to_string());
        let rtx = self.database().begin_read().at(&self.path).map_err(internal)?;
        let records = rtx.open_table(REVISIONS).at(&self.path).map_err(internal)?;
        Ok(Reader { state, records, path: &self.path })
    }
}

/// See [`MvccStore::reader`].
pub(crate) struct Reader<'s> {
    state: RwLockReadGuard<'s, State>,
    records: ReadOnlyTable<(i64, i64), &'static [u8]>,
    path: &'s Path,
}

impl Reader<'_> {
    /// Visits the stored records whose main revision is in `mains`, in revision order.
    pub fn for_each_record(
        &self,
        mains: RangeInclusive<i64>,
        mut visit: impl FnMut(Revision, RevisionRecord) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let (first, last) = mains.into_inner();
        if first > last {
            return Ok(());
        }
        let iter = self.records.range((first, i64::MIN)..=(last, i64::MAX)).at(self.path)?;
        for item in iter {
            let (key, value) = item.at(self.path)?;
            let (main, sub) = key.value();
            let rev = Revision::new(main, sub);
            visit(rev, decode_record(value.value(), rev, self.path)?)?;
        }
        Ok(())
    }
}

impl ReadView for Reader<'_> {
    fn read_revision(&self) -> i64 {
        self.state.revision
    }

    fn begin_revision(&self) -> i64 {
        self.state.revision
    }

    fn compact_revision(&self) -> i64 {
        self.state.compact_revision
    }

    fn index(&self) -> &KeyIndex {
        &self.state.index
    }

    fn record(&self, rev: Revision) -> Result<RevisionRecord, StoreError> {
        read_record(&self.records, rev, self.path)
    }

    fn lease_exists(&self, id: i64) -> bool {
        self.state.leases.contains_key(&id)
    }
}

/// Readers never write: a transaction reaches these only if it was wrongly routed here.
impl TxnTarget for Reader<'_> {
    fn has_changes(&self) -> bool {
        false
    }

    fn put_kv(&mut self, _: Bytes, _: Bytes, _: i64) -> Result<i64, Failure> {
        Err(EtcdError::Internal("a read-only view cannot put".into()).into())
    }

    fn delete_span(&mut self, _: KeySpan<'_>) -> Result<i64, Failure> {
        Err(EtcdError::Internal("a read-only view cannot delete".into()).into())
    }
}

/// The events of `from..=to` (see [`MvccStore::events`]).
fn history(reader: &Reader<'_>, from: i64, to: i64) -> Result<Vec<RevisionEvents>, Failure> {
    use crate::node::mvcc::index::live_at;
    use crate::proto::mvccpb::Event;
    use crate::proto::mvccpb::event::EventType;

    if from <= reader.compact_revision() {
        return Err(EtcdError::Compacted.into());
    }
    let to = to.min(reader.read_revision());
    let mut out: Vec<RevisionEvents> = Vec::new();
    reader.for_each_record(from..=to, |rev, record| {
        let kind = if record.tombstone { EventType::Delete } else { EventType::Put };
        let key = record.kv.as_ref().map(|kv| kv.key.clone()).unwrap_or_default();
        let prev_kv = live_at(reader.index().history(&key), rev.main - 1).map(|r| reader.kv_at(r)).transpose()?;
        let event = Event { r#type: kind as i32, kv: record.kv, prev_kv };
        match out.last_mut() {
            Some(last) if last.revision == rev.main => last.events.push(event),
            _ => out.push(RevisionEvents { revision: rev.main, events: vec![event] }),
        }
        Ok(())
    })?;
    Ok(out)
}

/// What a defragmentation did to the state file.
#[derive(Debug, Clone, Copy)]
pub struct Defragmented {
    pub before: u64,
    pub after: u64,
    pub took: Duration,
}

/// A frozen view of the whole state (see [`MvccStore::snapshot`]).
pub struct StoreSnapshot {
    path: PathBuf,
    rtx: ReadTransaction,
    state: StoreState,
}

impl StoreSnapshot {
    /// Revision, compaction point and Raft position of this view.
    pub fn state(&self) -> &StoreState {
        &self.state
    }

    /// Visits every retained revision record, in revision order.
    pub fn for_each_revision<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(Revision, RevisionRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let table = self.rtx.open_table(REVISIONS).at(&self.path)?;
        for item in table.iter().at(&self.path)? {
            let (key, value) = item.at(&self.path)?;
            let (main, sub) = key.value();
            let rev = Revision::new(main, sub);
            visit(rev, decode_record(value.value(), rev, &self.path)?)?;
        }
        Ok(())
    }

    pub fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let table = self.rtx.open_table(LEASES).at(&self.path)?;
        let mut out = Vec::new();
        for item in table.iter().at(&self.path)? {
            let (_, value) = item.at(&self.path)?;
            out.push(decode_lease(value.value(), &self.path)?);
        }
        Ok(out)
    }
}

fn stored_state(state: &State) -> StoreState {
    StoreState {
        format: STATE_FORMAT,
        revision: state.revision,
        compact_revision: state.compact_revision,
        applied: Some(state.applied.clone()),
        alarms: crate::node::mvcc::alarm::members_of(&state.alarms),
        auth: Some(state.auth.record()),
    }
}

fn decode_lease(bytes: &[u8], path: &Path) -> Result<LeaseRecord, StoreError> {
    LeaseRecord::decode(bytes).map_err(|e| StoreError::damaged(path, format!("lease record: {e}")))
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::damaged(path, "it is already open (is another raftty member running on this data directory?)")
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            StoreError::damaged(path, format!("not a valid redb database ({why})"))
        }
        other => StoreError::Database { path: path.to_path_buf(), source: other.into() },
    }
}

/// Creates a state file that records its owner. It is built under a temporary name and
/// renamed into place, so a `state.redb` always has an identity, even after a crash during
/// creation.
fn create(path: &Path, identity: StoreIdentity) -> Result<(), StoreError> {
    let mut creating = path.as_os_str().to_owned();
    creating.push(".creating");
    let creating = PathBuf::from(creating);
    // a leftover of an interrupted creation never held any data
    if creating.try_exists().map_err(|e| StoreError::io(&creating, e))? {
        std::fs::remove_file(&creating).map_err(|e| StoreError::io(&creating, e))?;
    }
    {
        let db = Database::create(&creating).at(&creating)?;
        let wtx = db.begin_write().at(&creating)?;
        {
            let mut meta = wtx.open_table(META).at(&creating)?;
            let record = StoreIdentityRecord { cluster_id: identity.cluster_id, member_id: identity.member_id };
            meta.insert(IDENTITY_KEY, record.encode_to_vec().as_slice()).at(&creating)?;
            meta.insert(STATE_KEY, stored_state(&State::empty()).encode_to_vec().as_slice()).at(&creating)?;
            wtx.open_table(REVISIONS).at(&creating)?;
            wtx.open_table(LEASES).at(&creating)?;
        }
        wtx.commit().at(&creating)?;
    }
    std::fs::rename(&creating, path).map_err(|e| StoreError::io(path, e))?;
    sync_parent_dir(path)
}

pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

fn read_state(rtx: &ReadTransaction, path: &Path) -> Result<StoreState, StoreError> {
    let meta = open_meta(rtx, path)?;
    let bytes = meta.get(STATE_KEY).at(path)?.ok_or_else(|| StoreError::damaged(path, "no store state recorded"))?;
    let state =
        StoreState::decode(bytes.value()).map_err(|e| StoreError::damaged(path, format!("store state: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(StoreError::damaged(
            path,
            format!("layout version {} is not the one this build reads ({STATE_FORMAT})", state.format),
        ));
    }
    Ok(state)
}

fn open_meta(rtx: &ReadTransaction, path: &Path) -> Result<ReadOnlyTable<&'static str, &'static [u8]>, StoreError> {
    rtx.open_table(META).map_err(|e| match e {
        TableError::TableDoesNotExist(_) => StoreError::damaged(path, "it is not a raftty state file (no meta table)"),
        other => StoreError::Database { path: path.to_path_buf(), source: other.into() },
    })
}

/// Opening a redb file read-write and closing it rewrites its header, so a file that turns
/// out to be someone else's is first looked at read-only: it stays byte for byte as it was.
/// (A file that was not closed cleanly cannot be opened read-only; its owner is then checked
/// after the read-write open has recovered it, which only ever rolls back to its last
/// durable commit.)
fn check_owner_without_writing(path: &Path, identity: StoreIdentity) -> Result<(), StoreError> {
    match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => {
            let rtx = db.begin_read().at(path)?;
            check_owner(&rtx, path, identity)
        }
        Err(redb::DatabaseError::RepairAborted) => Ok(()),
        Err(e) => Err(open_error(path, e)),
    }
}

fn check_owner(rtx: &ReadTransaction, path: &Path, identity: StoreIdentity) -> Result<(), StoreError> {
    let meta = open_meta(rtx, path)?;
    let bytes = meta.get(IDENTITY_KEY).at(path)?.ok_or_else(|| StoreError::damaged(path, "no owner recorded"))?;
    let found = StoreIdentityRecord::decode(bytes.value())
        .map_err(|e| StoreError::damaged(path, format!("owner record: {e}")))?;
    let found = StoreIdentity { cluster_id: found.cluster_id, member_id: found.member_id };
    if found != identity {
        return Err(StoreError::Foreign { path: path.to_path_buf(), found, expected: identity });
    }
    Ok(())
}

/// Reads a state file back into memory, checking whose it is first.
fn load(db: &Database, path: &Path, identity: StoreIdentity) -> Result<State, StoreError> {
    let rtx = db.begin_read().at(path)?;
    check_owner(&rtx, path, identity)?;
    let stored = read_state(&rtx, path)?;
    let mut state = State::empty();
    state.revision = stored.revision;
    state.compact_revision = stored.compact_revision;
    state.applied = stored.applied.unwrap_or_default();
    state.alarms = crate::node::mvcc::alarm::from_members(&stored.alarms);
    state.auth = stored.auth.as_ref().map(AuthState::from_record).unwrap_or_default();
    let mut loader = Loader::new(path, state.revision);
    let records = rtx.open_table(REVISIONS).at(path)?;
    for item in records.iter().at(path)? {
        let (key, value) = item.at(path)?;
        let (main, sub) = key.value();
        let rev = Revision::new(main, sub);
        loader.revision(rev, &decode_record(value.value(), rev, path)?)?;
    }
    let leases = rtx.open_table(LEASES).at(path)?;
    for item in leases.iter().at(path)? {
        let (_, value) = item.at(path)?;
        loader.lease(&decode_lease(value.value(), path)?)?;
    }
    loader.finish(&mut state);
    Ok(state)
}

/// Rebuilds the in-memory state from records, checking they make sense on the way.
struct Loader<'p> {
    path: &'p Path,
    revision: i64,
    last: Option<Revision>,
    index: KeyIndex,
    lease_of: BTreeMap<Bytes, i64>,
    leases: BTreeMap<i64, Lease>,
}

impl<'p> Loader<'p> {
    fn new(path: &'p Path, revision: i64) -> Self {
        Loader {
            path,
            revision,
            last: None,
            index: KeyIndex::default(),
            lease_of: BTreeMap::new(),
            leases: BTreeMap::new(),
        }
    }

    fn revision(&mut self, rev: Revision, record: &RevisionRecord) -> Result<(), StoreError> {
        if self.last.is_some_and(|last| rev <= last) || rev.main < 1 || rev.main > self.revision || rev.sub < 0 {
            return Err(StoreError::damaged(
                self.path,
                format!(
                    "revision {}/{} is out of order or beyond the store revision {}",
                    rev.main, rev.sub, self.revision
                ),
            ));
        }
        self.last = Some(rev);
        let kv = record.kv.as_ref().filter(|kv| !kv.key.is_empty()).ok_or_else(|| {
            StoreError::damaged(self.path, format!("record of revision {}/{} names no key", rev.main, rev.sub))
        })?;
        self.index.push(kv.key.clone(), IndexEntry { rev, tombstone: record.tombstone });
        if record.tombstone || kv.lease == 0 {
            self.lease_of.remove(&kv.key);
        } else {
            self.lease_of.insert(kv.key.clone(), kv.lease);
        }
        Ok(())
    }

    fn lease(&mut self, record: &LeaseRecord) -> Result<(), StoreError> {
        let lease =
            Lease { id: record.id, ttl: record.ttl, remaining_ttl: record.remaining_ttl, keys: BTreeSet::new() };
        if self.leases.insert(record.id, lease).is_some() {
            return Err(StoreError::damaged(self.path, format!("lease {:x} recorded twice", record.id)));
        }
        Ok(())
    }

    fn finish(self, state: &mut State) {
        let mut leases = self.leases;
        for (key, id) in self.lease_of {
            // etcd ignores a key whose lease is gone; so does this
            if let Some(lease) = leases.get_mut(&id) {
                lease.keys.insert(key);
            }
        }
        state.index = self.index;
        state.leases = leases;
    }
}
