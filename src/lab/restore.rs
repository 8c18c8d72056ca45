//! `raftty restore`: a new lab from a backup, as etcd's `snapshot restore` makes a new
//! cluster: new cluster and member ids, every revision, tombstone and lease kept (TTLs start
//! afresh), optionally as of an earlier revision.
//!
//! The new lab is built in a staging folder outside `labs/` (certificates, one seeded state
//! file per member) and moved into place in one rename, so a restore that dies half-way
//! leaves no lab that looks good. With `--replace` the old lab is stopped and moved aside to
//! `replaced/` (never deleted), and its certificate authority and certificates are kept, so
//! clients' certificates keep working.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::backup::etcd_db::Backend;
use crate::backup::snapshot_file;
use crate::lab::Lab;
use crate::lab::SnapshotSettings;
use crate::lab::Tempo;
use crate::node::mvcc::Revision;
use crate::node::mvcc::STATE_FILE;
use crate::node::mvcc::store::MvccStore;
use crate::node::mvcc::store::RestoreItem;
use crate::node::mvcc::store::STATE_FORMAT;
use crate::node::raft::types::StoreIdentity;
use crate::pki::CertRole;
use crate::pki::Pki;
use crate::progress::Progress;
use crate::progress::Unit;
use crate::proto::rafttystore::LeaseRecord;
use crate::proto::rafttystore::RevisionRecord;
use crate::proto::rafttystore::StoreState;

pub struct RestoreOptions {
    /// A snapshot file (raftty's or etcd's), or an etcd data dir / `member/snap/db`.
    pub source: PathBuf,
    pub lab: String,
    pub nodes: usize,
    pub to_revision: Option<i64>,
    pub replace: bool,
    pub skip_hash_check: bool,
}

pub struct RestoreReport {
    pub lab: Lab,
    pub revision: i64,
    pub live_keys: usize,
    pub leases: usize,
    pub detached: usize,
    /// Where the lab that was replaced went.
    pub replaced: Option<PathBuf>,
}

/// Reads a backup: a snapshot file with its SHA-256 trailer, or etcd's `member/snap/db`
/// (a data dir or the file itself), which has none and needs `skip_hash_check`.
pub fn read_backup(source: &Path, skip_hash_check: bool, to_revision: Option<i64>) -> Result<Backend> {
    if crate::backup::continuous::is_backup_dir(source) {
        return crate::backup::continuous::backend_at(source, to_revision);
    }
    let mut path = source.to_path_buf();
    let mut skip = skip_hash_check;
    if path.is_dir() {
        let db = path.join("member/snap/db");
        anyhow::ensure!(
            db.exists(),
            "{} is a folder but neither a raftty backup (no full-*.db) nor an etcd data dir (no member/snap/db)",
            source.display()
        );
        path = db;
        // A live backend file has no trailer: etcd itself restores it only this way.
        skip = true;
    }
    let file = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let db = snapshot_file::db_of(&file, skip).with_context(|| format!("{} cannot be restored", path.display()))?;
    Backend::from_bolt(db).with_context(|| format!("{} is not an etcd backend", path.display()))
}

/// A member's state file holding `backend`, for a member that has never run.
pub(crate) fn seed(
    dir: &Path,
    identity: StoreIdentity,
    backend: &Backend,
    mut progress: impl FnMut(Progress),
) -> Result<()> {
    crate::pki::create_private_dir(dir)?;
    let store = MvccStore::open(&dir.join(STATE_FILE), identity)?;
    let state = StoreState {
        format: STATE_FORMAT,
        revision: backend.revision(),
        // raftty says -1 for "never compacted", as etcd's API does.
        compact_revision: if backend.compact_revision > 0 { backend.compact_revision } else { -1 },
        applied: None,
        // The alarms name members of the old cluster; the new one starts without any.
        alarms: vec![],
        // Users, roles and whether auth is on come back as they were, as with etcd.
        auth: backend.auth.clone(),
    };
    let total = backend.changes.len() as u64;
    let revisions = backend.changes.iter().enumerate().map(|(i, c)| {
        if i % 1000 == 0 || i + 1 == backend.changes.len() {
            progress(Progress::Amount { done: i as u64 + 1, total, unit: Unit::Revisions });
        }
        let record = if c.tombstone {
            crate::node::mvcc::record::tombstone_record(c.kv.key.clone(), c.main)
        } else {
            RevisionRecord { kv: Some(c.kv.clone()), tombstone: false }
        };
        Ok(RestoreItem::Revision(Revision::new(c.main, c.sub), record))
    });
    let leases = backend
        .leases
        .iter()
        .map(|(id, ttl)| Ok(RestoreItem::Lease(LeaseRecord { id: *id, ttl: *ttl, remaining_ttl: 0 })));
    store.restore(&state, revisions.chain(leases))?;
    store.flush()?;
    Ok(())
}

pub async fn restore(
    home: &Path,
    options: RestoreOptions,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport> {
    anyhow::ensure!(options.nodes >= 1, "a cluster needs at least one member");
    let mut backend = read_backup(&options.source, options.skip_hash_check, options.to_revision)?;
    let mut detached = 0;
    if let Some(r) = options.to_revision {
        (backend, detached) = backend.at_revision(r)?;
    }
    let exists = Lab::exists(home, &options.lab);
    anyhow::ensure!(
        !exists || options.replace,
        "lab {:?} already exists; restore into another with --lab NAME, or give --replace to stop it and \
         restore in its place (its certificates are kept, its data moved to {}/replaced/)",
        options.lab,
        home.display()
    );
    let (tempo, snapshots, quota) = match exists.then(|| Lab::open(home, &options.lab)).transpose()? {
        Some(old) => (old.config.tempo, old.config.snapshots, old.config.quota_backend_bytes),
        None => (Tempo::ETCD, SnapshotSettings::default(), 0),
    };

    remove_abandoned_staging(home, &options.lab);
    let staging_home = home.join("restoring").join(format!("{}-{}", options.lab, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging_home);
    let staged = stage(&staging_home, home, &options, (tempo, snapshots, quota), &backend, &mut progress);
    let staged_dir = match staged {
        Ok(dir) => dir,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging_home);
            return Err(e);
        }
    };

    let mut replaced = None;
    let target = Lab::dir_for(home, &options.lab);
    if exists {
        progress(Progress::step(format!("stopping lab {} and moving it aside", options.lab)));
        crate::lab::supervisor::down(home, &options.lab, false)?;
        let aside = home.join("replaced").join(format!("{}-{}", options.lab, unix_seconds()));
        std::fs::create_dir_all(aside.parent().expect("a parent"))?;
        std::fs::rename(&target, &aside).with_context(|| format!("moving the old lab to {}", aside.display()))?;
        replaced = Some(aside);
    }
    std::fs::create_dir_all(home.join("labs"))?;
    std::fs::rename(&staged_dir, &target)
        .with_context(|| format!("moving the restored lab into {}", target.display()))?;
    let _ = std::fs::remove_dir_all(&staging_home);

    progress(Progress::step(format!("starting lab {} ({} members)", options.lab, options.nodes)));
    let (lab, _) = crate::lab::supervisor::up(home, &options.lab, crate::lab::supervisor::LabShape::default()).await?;
    let live_keys = verify(&lab, backend.revision()).await?;
    let revision = backend.revision();
    Ok(RestoreReport { lab, revision, live_keys, leases: backend.leases.len(), detached, replaced })
}

/// Builds the lab in `staging_home`: config, certificates, a seeded state file per member.
fn stage(
    staging_home: &Path,
    home: &Path,
    options: &RestoreOptions,
    (tempo, snapshots, quota): (Tempo, SnapshotSettings, i64),
    backend: &Backend,
    progress: &mut impl FnMut(Progress),
) -> Result<PathBuf> {
    // Ports recorded by the other labs stay theirs.
    std::fs::create_dir_all(staging_home)?;
    let mut lab =
        Lab::create_avoiding(staging_home, &options.lab, options.nodes, tempo, snapshots, &home.join("labs"))?;
    lab.config.quota_backend_bytes = quota;
    lab.config.save(&lab.dir)?;
    if options.replace && Lab::exists(home, &options.lab) {
        let old_pki = Lab::dir_for(home, &options.lab).join("pki");
        progress(Progress::step("keeping the old lab's certificate authority and certificates"));
        copy_pki(&old_pki, &lab.pki_dir())?;
        let pki = Pki::open(&lab.pki_dir())?;
        for m in &lab.config.members {
            if !pki.files(&m.name).cert.exists() {
                pki.issue(&m.name, CertRole::Member)?;
            }
        }
    }
    for m in lab.config.active_members() {
        progress(Progress::step(format!("writing {} revisions into {}", backend.changes.len(), m.name)));
        let identity = StoreIdentity { cluster_id: lab.config.cluster_id, member_id: m.id };
        seed(&lab.member_data_dir(&m.name), identity, backend, &mut *progress)
            .with_context(|| format!("seeding the state of {}", m.name))?;
    }
    Ok(lab.dir.clone())
}

/// Staging folders of restores of `lab` whose process is gone (killed half-way): never a
/// lab, only leftovers.
fn remove_abandoned_staging(home: &Path, lab: &str) {
    let Ok(entries) = std::fs::read_dir(home.join("restoring")) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&format!("{lab}-")).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn copy_pki(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    crate::pki::create_private_dir(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_pki(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The number of live keys at the backup's revision, read through the leader. Clients may
/// write as soon as the restored lab answers (an application reconnecting), so the lab may
/// be past that revision already; it must not be short of it.
async fn verify(lab: &Lab, revision: i64) -> Result<usize> {
    let status = crate::lab::status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.leader().context("the restored lab has no leader")?;
    let url = lab.config.member(leader)?.client_url();
    let mut client = crate::client::EtcdClient::connect(&url, &lab.root_cert(), Duration::from_secs(30)).await?;
    let everything = crate::proto::etcdserverpb::RangeRequest {
        key: bytes::Bytes::from_static(b"\0"),
        range_end: bytes::Bytes::from_static(b"\0"),
        count_only: true,
        revision,
        ..Default::default()
    };
    let answer = client.kv.range(everything).await.map_err(|s| {
        anyhow::anyhow!("the restored lab cannot be read at the backup's revision {revision}: {}", s.message())
    })?;
    Ok(answer.into_inner().count as usize)
}

pub(crate) fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
