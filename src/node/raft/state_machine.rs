//! openraft's state machine for raftty: applies committed commands to the MVCC store, and
//! builds and installs snapshots of it.
//!
//! A member's data directory holds `state.redb` (the MVCC store, see [`crate::node::mvcc`]) and
//! `snapshots/` (see [`crate::node::raft::snapshot`]). The store records the applied log id and
//! the last membership in the same transaction as the data, so after a crash it is never
//! ahead of its data; openraft re-installs the snapshot if the store is behind it and
//! re-applies the log from there.

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use futures::Stream;
use futures::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

use crate::node::mvcc::MvccStore;
use crate::node::mvcc::STATE_FILE;
use crate::node::mvcc::StoreError;
use crate::node::mvcc::StoreSnapshot;
use crate::node::raft::codec::log_id_to_pb;
use crate::node::raft::codec::membership_from_pb;
use crate::node::raft::codec::membership_to_pb;
use crate::node::raft::codec::opt_log_id_from_pb;
use crate::node::raft::snapshot;
use crate::node::raft::snapshot::SNAPSHOT_DIR;
use crate::node::raft::snapshot::SnapshotFile;
use crate::node::raft::types::*;
use crate::node::write_stages;
use crate::node::write_stages::Point;
use crate::proto::rafttypb::CommandResult;
use crate::proto::rafttystore::AppliedState;
use crate::proto::rafttystore::SnapshotHeader;

/// At most this many entries go into one store transaction: readers wait for a whole
/// transaction, so this bounds how long they can wait.
const APPLY_CHUNK: usize = 128;

/// A cheap handle on a member's state machine; clones share everything.
#[derive(Clone)]
pub struct StateMachineStore {
    inner: Arc<Inner>,
}

struct Inner {
    mvcc: Arc<MvccStore>,
    snapshot_dir: PathBuf,
    identity: StoreIdentity,
    /// Serialises moving snapshot files into place and deleting old ones.
    snapshot_files: Mutex<()>,
}

impl std::fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore").field("mvcc", &self.inner.mvcc).finish()
    }
}

impl StateMachineStore {
    /// Opens (or creates) the state of member `identity` in `data_dir`.
    pub fn open(data_dir: &Path, identity: StoreIdentity) -> Result<Self, StoreError> {
        let snapshot_dir = data_dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&snapshot_dir).map_err(|e| StoreError::io(&snapshot_dir, e))?;
        remove_unfinished_snapshots(&snapshot_dir)?;
        // The newest snapshot is what this member would restore from and send to others: a
        // damaged one must stop the member here, not spread or come back as data.
        if let Some(newest) = snapshot::list(&snapshot_dir)?.last() {
            snapshot::verify(newest, identity.cluster_id)?;
        }
        let mvcc = Arc::new(MvccStore::open(&data_dir.join(STATE_FILE), identity)?);
        Ok(StateMachineStore {
            inner: Arc::new(Inner { mvcc, snapshot_dir, identity, snapshot_files: Mutex::new(()) }),
        })
    }

    /// The key-value store, for the etcd API (reads, watches, status).
    pub fn mvcc(&self) -> &Arc<MvccStore> {
        &self.inner.mvcc
    }

    pub fn snapshot_dir(&self) -> &Path {
        &self.inner.snapshot_dir
    }

    /// A fresh path in the snapshot directory where a snapshot being received from the
    /// leader can be written before it is handed to `Raft::install_full_snapshot`. Left-over
    /// files there are removed when the store is next opened.
    pub fn incoming_snapshot_path(&self) -> PathBuf {
        self.inner.snapshot_dir.join(format!("incoming-{:016x}.tmp", rand::random::<u64>()))
    }

    fn cluster_id(&self) -> u64 {
        self.inner.identity.cluster_id
    }
}

/// Temporary files (snapshots being written or received) never survive a restart.
fn remove_unfinished_snapshots(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, io::Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(io::Error::from),
        Err(e) => Err(io::Error::other(format!("state machine task failed: {e}"))),
    }
}

fn decode_applied(applied: &AppliedState) -> Result<(Option<LogId>, StoredMembership), io::Error> {
    let last_applied = opt_log_id_from_pb(&applied.last_applied);
    let membership = match &applied.last_membership {
        Some(m) => StoredMembership::new(opt_log_id_from_pb(&applied.last_membership_log_id), membership_from_pb(m)?),
        None => StoredMembership::default(),
    };
    Ok((last_applied, membership))
}

fn snapshot_meta(header: &SnapshotHeader) -> Result<SnapshotMeta, io::Error> {
    let (last_log_id, last_membership) = decode_applied(&header.applied.clone().unwrap_or_default())?;
    Ok(SnapshotMeta { last_log_id, last_membership })
}

/// Keeps `keep` and the newest snapshot; deletes every other one.
fn remove_older_snapshots(dir: &Path, keep: &Path) -> Result<(), StoreError> {
    let mut all = snapshot::list(dir)?;
    let newest = all.pop();
    for path in all {
        if path != keep && Some(&path) != newest.as_ref() {
            std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        }
    }
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        decode_applied(&self.inner.mvcc.applied_state())
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder, io::Error>> + Unpin + OptionalSend,
    {
        let mut applied = self.inner.mvcc.applied_state();
        let mut chunk = Vec::with_capacity(APPLY_CHUNK);
        while let Some(item) = entries.try_next().await? {
            chunk.push(item);
            if chunk.len() == APPLY_CHUNK {
                self.apply_chunk(std::mem::take(&mut chunk), &mut applied).await?;
            }
        }
        if !chunk.is_empty() {
            self.apply_chunk(chunk, &mut applied).await?;
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { store: self.clone(), view: Some(self.inner.mvcc.snapshot()) }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotFile) -> Result<(), io::Error> {
        let store = self.clone();
        let expected = meta.last_log_id.as_ref().map(log_id_to_pb);
        blocking(move || {
            let path = snapshot.path;
            let header = snapshot::verify(&path, store.cluster_id())?;
            let found = header.applied.as_ref().and_then(|a| a.last_applied);
            if found != expected {
                return Err(StoreError::damaged(
                    &path,
                    format!("snapshot holds log position {found:?}, but was offered as {expected:?}"),
                ));
            }
            let (records, _) = snapshot::SnapshotReader::open(&path)?;
            store.inner.mvcc.restore(&snapshot::store_state(&header), records)?;

            // keep the installed snapshot as the current one
            let _files = store.inner.snapshot_files.lock().unwrap_or_else(|p| p.into_inner());
            let current = store.inner.snapshot_dir.join(snapshot::file_name(&header));
            if path != current {
                std::fs::rename(&path, &current).map_err(|e| StoreError::io(&current, e))?;
                crate::node::mvcc::store::sync_parent_dir(&current)?;
            }
            for old in snapshot::list(&store.inner.snapshot_dir)? {
                if old != current {
                    std::fs::remove_file(&old).map_err(|e| StoreError::io(&old, e))?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let dir = self.inner.snapshot_dir.clone();
        let found = blocking(move || {
            let Some(path) = snapshot::list(&dir)?.pop() else {
                return Ok(None);
            };
            let header = snapshot::read_header(&path)?;
            Ok(Some((path, header)))
        })
        .await?;
        match found {
            None => Ok(None),
            Some((path, header)) => {
                Ok(Some(Snapshot { meta: snapshot_meta(&header)?, snapshot: SnapshotFile { path } }))
            }
        }
    }
}

impl StateMachineStore {
    /// Applies entries in one store transaction, then answers their clients: a client that
    /// gets an answer can read its write on this member.
    async fn apply_chunk(&self, chunk: Vec<EntryResponder>, applied: &mut AppliedState) -> Result<(), io::Error> {
        let mut commands = Vec::new();
        let mut responders = Vec::new();
        let range = chunk.first().zip(chunk.last()).map(|((f, _), (l, _))| (f.log_id.index, l.log_id.index));
        if let Some((first, last)) = range {
            write_stages::stamp(first, last, Point::ApplyStarted);
        }
        for (entry, responder) in chunk {
            applied.last_applied = Some(log_id_to_pb(&entry.log_id));
            let command_at = match entry.payload {
                EntryPayload::Normal(cmd) => {
                    commands.push(cmd);
                    Some(commands.len() - 1)
                }
                EntryPayload::Membership(m) => {
                    applied.last_membership_log_id = Some(log_id_to_pb(&entry.log_id));
                    applied.last_membership = Some(membership_to_pb(&m));
                    None
                }
                EntryPayload::Blank => None,
            };
            if let Some(responder) = responder {
                responders.push((command_at, responder));
            }
        }
        // Applying commits without an fsync, in tens of microseconds: done right here, on the
        // state machine's task, since moving it to a blocking thread and back (or
        // `block_in_place`) costs several times the work itself.
        let results = self.inner.mvcc.apply(commands.iter(), applied).map_err(io::Error::from)?;
        let revision = self.inner.mvcc.current_revision();
        if let Some((first, last)) = range {
            write_stages::stamp(first, last, Point::Applied);
        }
        for (command_at, responder) in responders {
            let result =
                command_at.and_then(|i| results.get(i).cloned()).unwrap_or(CommandResult { revision, result: None });
            responder.send(result);
        }
        Ok(())
    }
}

/// Builds a snapshot from the view captured when openraft asked for the builder, so
/// applies can go on meanwhile.
pub struct SnapshotBuilder {
    store: StateMachineStore,
    view: Option<Result<StoreSnapshot, StoreError>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let store = self.store.clone();
        let view = self.view.take();
        let (path, header) = blocking(move || {
            let view = match view {
                Some(view) => view?,
                None => store.inner.mvcc.snapshot()?,
            };
            // the snapshot may let openraft purge the log: the store must not fall behind it
            store.inner.mvcc.flush()?;
            let (path, header) = snapshot::write(&store.inner.snapshot_dir, store.cluster_id(), &view)?;
            let _files = store.inner.snapshot_files.lock().unwrap_or_else(|p| p.into_inner());
            remove_older_snapshots(&store.inner.snapshot_dir, &path)?;
            Ok((path, header))
        })
        .await?;
        Ok(Snapshot { meta: snapshot_meta(&header)?, snapshot: SnapshotFile { path } })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    use super::*;
    use crate::node::mvcc::testkit::{IDENTITY, compact, grant, put, put_req, put_with};
    use crate::proto::etcdserverpb::PutRequest;
    use crate::proto::rafttypb::Command;

    const TERM: u64 = 3;

    fn open(dir: &Path) -> StateMachineStore {
        StateMachineStore::open(dir, IDENTITY).expect("open state machine")
    }

    fn normal(index: u64, cmd: Command) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(TERM), index), payload: EntryPayload::Normal(cmd) }
    }

    fn membership(index: u64) -> Entry {
        let node =
            MemberNode { name: "m1".into(), peer_url: "https://127.0.0.1:2380".into(), client_url: String::new() };
        let m = Membership::new(vec![BTreeSet::from([1])], BTreeMap::from([(1, node)])).unwrap();
        Entry { log_id: LogId::new(CommittedLeaderId::new(TERM), index), payload: EntryPayload::Membership(m) }
    }

    fn blank(index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(TERM), index), payload: EntryPayload::Blank }
    }

    async fn apply(sm: &mut StateMachineStore, entries: Vec<Entry>) {
        let stream = futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
        sm.apply(stream).await.expect("apply");
    }

    /// A short history with every kind of entry: blank, membership, writes, a lease, a
    /// compaction.
    fn history(from: u64, to: u64) -> Vec<Entry> {
        (from..=to)
            .map(|i| match i {
                1 => blank(1),
                2 => membership(2),
                3 => normal(3, grant(0x77, 60)),
                7 => normal(7, compact(3)),
                i if i % 3 == 0 => {
                    normal(i, put_with(PutRequest { lease: 0x77, ..put_req(&format!("leased/{i}"), "v") }))
                }
                i => normal(i, put(&format!("key/{}", i % 5), &format!("value {i}"))),
            })
            .collect()
    }

    #[tokio::test]
    async fn applies_entries_and_records_where_it_stands() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        assert_eq!(sm.applied_state().await.unwrap(), (None, StoredMembership::default()));
        apply(&mut sm, history(1, 10)).await;
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(LogId::new(CommittedLeaderId::new(TERM), 10)));
        assert_eq!(membership.log_id(), &Some(LogId::new(CommittedLeaderId::new(TERM), 2)));
        assert!(membership.membership().voter_ids().eq([1]));
        assert_eq!(sm.mvcc().range(&crate::node::mvcc::testkit::get_req("key/4")).unwrap().0.kvs.len(), 1);

        // a clean restart keeps all of it
        drop(sm);
        let mut sm = open(dir.path());
        assert_eq!(sm.applied_state().await.unwrap().0, applied);
        assert_eq!(sm.mvcc().compact_revision(), 3);
    }

    #[tokio::test]
    async fn every_member_applying_the_same_entries_ends_with_the_same_hash() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut one = open(a.path());
        let mut other = StateMachineStore::open(b.path(), StoreIdentity { member_id: 0xb2, ..IDENTITY }).unwrap();
        apply(&mut one, history(1, 40)).await;
        // the other member gets the same entries in different batches
        for (from, to) in [(1, 2), (3, 17), (18, 18), (19, 40)] {
            apply(&mut other, history(from, to)).await;
        }
        assert_eq!(one.mvcc().hash_kv(0).unwrap(), other.mvcc().hash_kv(0).unwrap());
    }

    async fn build(sm: &mut StateMachineStore) -> Snapshot {
        let mut builder = sm.get_snapshot_builder().await;
        builder.build_snapshot().await.expect("build snapshot")
    }

    /// Copies a snapshot to where the peer service would have received it on another member.
    fn receive(snapshot: &Snapshot, on: &StateMachineStore) -> SnapshotFile {
        let incoming = on.incoming_snapshot_path();
        std::fs::copy(&snapshot.snapshot.path, &incoming).unwrap();
        SnapshotFile { path: incoming }
    }

    #[tokio::test]
    async fn a_snapshot_moves_the_whole_state_to_another_member() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = open(a.path());
        apply(&mut leader, history(1, 20)).await;
        let snap = build(&mut leader).await;
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(20));
        // applies go on while (and after) the snapshot is taken; it does not move
        apply(&mut leader, history(21, 25)).await;
        assert_eq!(
            snapshot::read_header(&snap.snapshot.path).unwrap().applied.unwrap().last_applied.unwrap().index,
            20
        );

        let mut follower = StateMachineStore::open(b.path(), StoreIdentity { member_id: 0xb2, ..IDENTITY }).unwrap();
        apply(&mut follower, vec![blank(1)]).await;
        let mut watch = follower.mvcc().subscribe();
        let file = receive(&snap, &follower);
        follower.install_snapshot(&snap.meta, file.clone()).await.unwrap();
        assert!(!file.path.exists(), "the received file became the current snapshot");

        let hash = |sm: &StateMachineStore, rev| sm.mvcc().hash_kv(rev).unwrap().hash;
        let at_snapshot = follower.mvcc().current_revision();
        assert_eq!(hash(&follower, 0), hash(&leader, at_snapshot));
        assert_eq!(follower.applied_state().await.unwrap(), (snap.meta.last_log_id, snap.meta.last_membership.clone()));
        assert!(matches!(watch.try_recv().unwrap(), crate::node::mvcc::WatchFeed::Restored { .. }));
        assert_eq!(follower.mvcc().lease(0x77), leader_lease_at_snapshot(&snap));
        let current = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);

        // and it catches up from the log like any member
        apply(&mut follower, history(21, 25)).await;
        assert_eq!(hash(&follower, 0), hash(&leader, 0));
    }

    fn leader_lease_at_snapshot(snap: &Snapshot) -> Option<crate::node::mvcc::LeaseInfo> {
        // rebuild the leader's state at the snapshot from the file itself, through a store
        let dir = tempfile::tempdir().unwrap();
        let store = MvccStore::open(&dir.path().join(STATE_FILE), IDENTITY).unwrap();
        let header = snapshot::verify(&snap.snapshot.path, IDENTITY.cluster_id).unwrap();
        let (records, _) = snapshot::SnapshotReader::open(&snap.snapshot.path).unwrap();
        store.restore(&snapshot::store_state(&header), records).unwrap();
        store.lease(0x77)
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_snapshot_is_refused_and_changes_nothing() {
        let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = open(a.path());
        apply(&mut leader, history(1, 12)).await;
        let snap = build(&mut leader).await;

        let mut follower = StateMachineStore::open(b.path(), StoreIdentity { member_id: 0xb2, ..IDENTITY }).unwrap();
        apply(&mut follower, history(1, 4)).await;
        let before = (follower.mvcc().hash_kv(0).unwrap(), follower.applied_state().await.unwrap());

        let len = std::fs::metadata(&snap.snapshot.path).unwrap().len();
        for offset in [3, len / 2, len - 2] {
            let file = receive(&snap, &follower);
            let mut bytes = std::fs::read(&file.path).unwrap();
            bytes[offset as usize] ^= 0x20;
            std::fs::write(&file.path, bytes).unwrap();
            let err = follower.install_snapshot(&snap.meta, file).await.unwrap_err();
            assert!(err.to_string().contains("checksum mismatch"), "flipped byte {offset}: {err}");
        }
        let truncated = receive(&snap, &follower);
        let bytes = std::fs::read(&truncated.path).unwrap();
        std::fs::write(&truncated.path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(follower.install_snapshot(&snap.meta, truncated).await.is_err());

        // a snapshot of another cluster, intact
        let mut stranger =
            StateMachineStore::open(c.path(), StoreIdentity { cluster_id: 0xdead, member_id: 1 }).unwrap();
        apply(&mut stranger, history(1, 12)).await;
        let foreign = build(&mut stranger).await;
        let err = follower.install_snapshot(&foreign.meta, receive(&foreign, &follower)).await.unwrap_err();
        assert!(err.to_string().contains("cluster dead"), "{err}");

        // offered under the wrong log position
        let mut wrong_meta = snap.meta.clone();
        wrong_meta.last_log_id = Some(LogId::new(CommittedLeaderId::new(TERM), 11));
        assert!(follower.install_snapshot(&wrong_meta, receive(&snap, &follower)).await.is_err());

        assert_eq!((follower.mvcc().hash_kv(0).unwrap(), follower.applied_state().await.unwrap()), before);
        assert!(follower.get_current_snapshot().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn only_the_newest_snapshot_is_kept_and_it_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        apply(&mut sm, history(1, 10)).await;
        let first = build(&mut sm).await;
        apply(&mut sm, history(11, 15)).await;
        let second = build(&mut sm).await;
        assert!(!first.snapshot.path.exists());
        assert_eq!(snapshot::list(sm.snapshot_dir()).unwrap(), vec![second.snapshot.path.clone()]);

        // a snapshot being received when the member stopped does not survive it
        std::fs::write(sm.incoming_snapshot_path(), b"half a snapshot").unwrap();
        drop(sm);
        let mut sm = open(dir.path());
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, second.meta);
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join(SNAPSHOT_DIR)).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(names, vec![second.snapshot.path]);
    }

    /// What openraft does after a crash (see `StorageHelper::get_initial_state`): install the
    /// current snapshot if the store is behind it, then re-apply the log from the store's
    /// applied id. The end state must be the one before the crash.
    #[tokio::test]
    async fn recovery_after_a_crash_reaches_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        sm.mvcc().set_durable_interval(std::time::Duration::from_secs(3600));
        apply(&mut sm, history(1, 12)).await;
        build(&mut sm).await; // durable up to 12, snapshot at 12
        apply(&mut sm, history(13, 30)).await; // not durable
        let expected = sm.mvcc().hash_kv(0).unwrap();

        // the crash: the files as they are on disk, without a clean close
        let crashed = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join(STATE_FILE), crashed.path().join(STATE_FILE)).unwrap();
        std::fs::create_dir(crashed.path().join(SNAPSHOT_DIR)).unwrap();
        for snap in snapshot::list(sm.snapshot_dir()).unwrap() {
            std::fs::copy(&snap, crashed.path().join(SNAPSHOT_DIR).join(snap.file_name().unwrap())).unwrap();
        }
        let mut restarted = open(crashed.path());
        let (applied, _) = restarted.applied_state().await.unwrap();
        let applied = applied.map_or(0, |l| l.index);
        assert!((12..=30).contains(&applied), "applied {applied}");
        let current = restarted.get_current_snapshot().await.unwrap().unwrap();
        if current.meta.last_log_id.map(|l| l.index) > Some(applied) {
            restarted.install_snapshot(&current.meta, current.snapshot).await.unwrap();
        }
        let (applied, _) = restarted.applied_state().await.unwrap();
        apply(&mut restarted, history(applied.map_or(0, |l| l.index) + 1, 30)).await;
        assert_eq!(restarted.mvcc().hash_kv(0).unwrap(), expected);

        // worse: the state file is lost, only the snapshot is left
        drop(restarted);
        std::fs::remove_file(crashed.path().join(STATE_FILE)).unwrap();
        let mut rebuilt = open(crashed.path());
        assert_eq!(rebuilt.applied_state().await.unwrap().0, None);
        let current = rebuilt.get_current_snapshot().await.unwrap().unwrap();
        rebuilt.install_snapshot(&current.meta, current.snapshot).await.unwrap();
        assert_eq!(rebuilt.applied_state().await.unwrap().0.map(|l| l.index), Some(12));
        apply(&mut rebuilt, history(13, 30)).await;
        assert_eq!(rebuilt.mvcc().hash_kv(0).unwrap(), expected);
        assert_eq!(snapshot::list(rebuilt.snapshot_dir()).unwrap().len(), 1, "installing it kept the file");
    }
}
