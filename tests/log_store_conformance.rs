//! openraft's storage conformance suite (`openraft::testing::log::Suite`), run against
//! raftty's redb log store, each case in a fresh data directory.
//!
//! The suite needs a state machine too. The real one (`raftty::raft::state_machine`) is
//! still being written, so a minimal in-memory one stands in here; it only tracks what the
//! suite checks (last applied log id, membership, current snapshot).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;

use futures::Stream;
use futures::StreamExt;
use openraft::EntryPayload;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::StorageError;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use raftty::raft::log_store::LogStore;
use raftty::raft::types::CommandResult;
use raftty::raft::types::LogId;
use raftty::raft::types::SnapshotMeta;
use raftty::raft::types::StoreIdentity;
use raftty::raft::types::StoredMembership;
use raftty::raft::types::TypeConfig;
use tempfile::TempDir;

/// Opens a log store and a state machine in the same fresh directory, as a member does.
/// `open_state_machine` has the shape of `StateMachineStore::open(dir, identity)`.
struct FreshStores<F> {
    open_state_machine: F,
}

impl<SM, E, F> StoreBuilder<TypeConfig, LogStore, SM, TempDir> for FreshStores<F>
where
    SM: RaftStateMachine<TypeConfig>,
    E: std::fmt::Display,
    F: Fn(&Path, StoreIdentity) -> Result<SM, E> + Send + Sync,
{
    async fn build(&self) -> Result<(TempDir, LogStore, SM), StorageError<TypeConfig>> {
        let failed = |e: io::Error| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let dir = tempfile::tempdir().map_err(failed)?;
        let identity = StoreIdentity { cluster_id: 0x5ca1ab1e, member_id: 1 };
        let log = LogStore::open(dir.path(), identity).map_err(|e| failed(io::Error::other(e)))?;
        let state_machine =
            (self.open_state_machine)(dir.path(), identity).map_err(|e| failed(io::Error::other(e.to_string())))?;
        Ok((dir, log, state_machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_store_passes_openraft_storage_conformance_suite() {
    // When the real state machine lands, pass `StateMachineStore::open` here instead.
    let stores = FreshStores { open_state_machine: InMemoryStateMachine::open };
    if let Err(e) = Suite::test_all(stores).await {
        panic!("openraft's storage conformance suite failed: {e}");
    }
}

/// A state machine that applies nothing but openraft's own bookkeeping.
#[derive(Clone, Default)]
struct InMemoryStateMachine {
    state: Arc<Mutex<AppliedState>>,
}

#[derive(Clone, Default)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<SnapshotMeta>,
}

type Snapshot = openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>;

impl InMemoryStateMachine {
    fn open(_dir: &Path, _identity: StoreIdentity) -> Result<InMemoryStateMachine, io::Error> {
        Ok(InMemoryStateMachine::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AppliedState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for InMemoryStateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let mut state = self.state();
        let meta = SnapshotMeta { last_log_id: state.last_applied, last_membership: state.membership.clone() };
        state.snapshot = Some(meta.clone());
        Ok(Snapshot { meta, snapshot: Vec::new() })
    }
}

impl RaftStateMachine<TypeConfig> for InMemoryStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = InMemoryStateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut state = self.state();
                state.last_applied = Some(entry.log_id);
                if let EntryPayload::Membership(membership) = &entry.payload {
                    state.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                }
            }
            if let Some(responder) = responder {
                responder.send(CommandResult::default());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, _snapshot: Vec<u8>) -> Result<(), io::Error> {
        let mut state = self.state();
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.state().snapshot.clone().map(|meta| Snapshot { meta, snapshot: Vec::new() }))
    }
}
