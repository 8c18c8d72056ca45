//! openraft's storage conformance suite (`openraft::testing::log::Suite`), run against
//! raftty's redb log store, each case in a fresh data directory.
//!
//! The suite exercises the state machine's bookkeeping too (applied log id, membership,
//! snapshots), so it runs with raftty's real state machine in the same directory, exactly
//! as a member opens them.

use std::io;
use std::path::Path;

use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::StorageError;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use raftty::node::raft::log_store::LogStore;
use raftty::node::raft::state_machine::StateMachineStore;
use raftty::node::raft::types::StoreIdentity;
use raftty::node::raft::types::TypeConfig;
use tempfile::TempDir;

/// Opens a log store and a state machine in the same fresh directory, as a member does.
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
async fn the_redb_stores_pass_openraft_storage_conformance_suite() {
    let stores = FreshStores { open_state_machine: StateMachineStore::open };
    if let Err(e) = Suite::test_all(stores).await {
        panic!("openraft's storage conformance suite failed: {e}");
    }
}
