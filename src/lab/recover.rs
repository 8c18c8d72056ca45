//! `raftty recover NAME`: rebuilds a cluster that lost its quorum for good around the one
//! member left, etcd's `--force-new-cluster` drill made safe and explained.
//!
//! 1. NAME's data is read and checked (missing or damaged data stops everything here);
//! 2. every member is stopped; NAME's old data dir is moved aside (kept, not deleted);
//! 3. NAME gets a fresh Raft log whose only member is itself, and its state as it had
//!    applied it: every revision, lease and the compaction floor;
//! 4. NAME starts alone, then fresh members are added back up to the lab's size, each
//!    caught up before the next (the other old members are marked removed: they never run
//!    again, since their data belongs to a cluster that no longer exists).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::lab::Lab;
use crate::lab::membership;
use crate::lab::status::Quorum;
use crate::node::mvcc::STATE_FILE;
use crate::node::mvcc::store::MvccStore;
use crate::node::raft::types::StoreIdentity;
use crate::progress::Progress;
use crate::progress::Unit;

pub struct RecoverReport {
    pub kept_revision: i64,
    pub kept_applied_index: u64,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub old_data: std::path::PathBuf,
}

pub async fn recover(
    home: &Path,
    lab_name: &str,
    survivor: &str,
    force: bool,
    mut progress: impl FnMut(Progress),
) -> Result<RecoverReport> {
    let mut lab = Lab::open(home, lab_name)?;
    let me = lab.config.member(survivor)?.clone();
    anyhow::ensure!(!me.removed, "{survivor} was removed from lab {lab_name}: it cannot carry the cluster");
    let size = lab.config.active_members().count();
    let status = crate::lab::status::gather(&lab, Duration::from_secs(2)).await?;
    if let (false, Quorum::Healthy | Quorum::Degraded { .. }) = (force, status.quorum()) {
        anyhow::bail!(
            "a quorum is still alive in lab {lab_name} (leader {}): nothing to recover, and rebuilding would throw \
             away what the others hold. Bring back the members that are down instead, or give --force",
            status.leader().unwrap_or("?")
        );
    }

    let data_dir = lab.member_data_dir(survivor);
    let state_file = data_dir.join(STATE_FILE);
    anyhow::ensure!(
        state_file.exists(),
        "{survivor} has no data in {}: it cannot carry the cluster",
        data_dir.display()
    );
    progress(Progress::step(format!("stopping every member of lab {lab_name}")));
    for m in &lab.config.members {
        lab.stop_member(&m.name, Duration::from_secs(10))?;
    }
    let identity = StoreIdentity { cluster_id: lab.config.cluster_id, member_id: me.id };
    let backend = {
        let store = MvccStore::open(&state_file, identity)
            .with_context(|| format!("{survivor}'s data is damaged; it cannot carry the cluster"))?;
        let applied = store.applied_state();
        let view = store.snapshot()?;
        let index = applied.last_applied.as_ref().map_or(0, |l| l.index);
        (crate::backup::stream::backend_of(&view, vec![], index)?, index)
    };
    let (backend, applied_index) = backend;

    let old_data = home
        .join("replaced")
        .join(format!("{lab_name}-{survivor}-before-recover-{}", crate::lab::restore::unix_seconds()));
    std::fs::create_dir_all(old_data.parent().expect("a parent"))?;
    std::fs::rename(&data_dir, &old_data).with_context(|| format!("moving {survivor}'s old data aside"))?;
    progress(Progress::step(format!(
        "{survivor} keeps its state at revision {} (old data kept in {})",
        backend.revision(),
        old_data.display()
    )));
    crate::lab::restore::seed(&data_dir, identity, &backend, &mut progress)?;

    let mut removed = Vec::new();
    for m in &mut lab.config.members {
        if m.name == survivor {
            m.initial = true;
        } else {
            if !m.removed {
                removed.push(m.name.clone());
            }
            m.removed = true;
            m.initial = false;
        }
    }
    lab.config.bootstrapped = false;
    lab.config.save(&lab.dir)?;
    // The faults named the old members: a new cluster starts with a healthy network.
    let mut faults = crate::lab::faults::LabFaults::load(&lab.dir)?;
    faults.heal();
    faults.save(&lab.dir)?;

    progress(Progress::step(format!("starting {survivor} alone, as a cluster of one")));
    let (mut lab, _) = crate::lab::supervisor::up(home, lab_name, crate::lab::supervisor::LabShape::default()).await?;
    // A newcomer must be sent the survivor's state as a snapshot, not its (new) log alone.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut admin = crate::lab::control::admin_client(&lab, survivor, Duration::from_secs(2)).await?;
        let state = admin.state(crate::proto::rafttyadmin::StateRequest {}).await?.into_inner();
        if state.snapshot_index > 0 && state.purged_index >= state.snapshot_index {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{survivor} did not snapshot its state within a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut added = Vec::new();
    while lab.config.active_members().count() < size {
        progress(Progress::step("adding a fresh member and letting it catch up"));
        let name = membership::add(&mut lab, false, |p| {
            progress(Progress::Amount { done: p.matched, total: p.leader_last, unit: Unit::Entries })
        })
        .await?;
        progress(Progress::step(format!("{name} joined and caught up")));
        added.push(name);
    }
    Ok(RecoverReport { kept_revision: backend.revision(), kept_applied_index: applied_index, added, removed, old_data })
}
