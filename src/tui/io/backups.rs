//! The backups tab's work, run by the same code as `raftty snapshot save`, `restore`,
//! `backup` and `recover`, with their progress sent to the app as it goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::backup::catalog;
use crate::progress::Progress;
use crate::tui::app::Action;
use crate::tui::io::Io;
use crate::tui::io::Source;
use crate::tui::tabs::backups::BackupOp;

/// The continuous backup the app runs: how to stop it, and the task to wait for.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

pub fn run(io: &Arc<Io>, op: BackupOp) {
    let io = io.clone();
    tokio::spawn(async move {
        match op {
            BackupOp::Refresh => refresh(&io).await,
            BackupOp::BackupStart { dir } => start_backup(&io, dir),
            BackupOp::BackupStop => {
                if let Some(dir) = stop_backup(&io).await {
                    io.send(Action::Output {
                        ok: true,
                        title: format!("stopped the backup in {}", dir.display()),
                        lines: vec![],
                    });
                }
            }
            long => long_work(&io, long).await,
        }
    });
}

async fn refresh(io: &Io) {
    let (entries, folder) = match &io.source {
        Source::Lab { home, name } => {
            let (home, name) = (home.clone(), name.clone());
            let folder = catalog::folder(&home, &name).display().to_string();
            let entries = tokio::task::spawn_blocking(move || catalog::list(&home, &name)).await.unwrap_or_default();
            (entries, Some(folder))
        }
        Source::Attached { .. } | Source::Replay(_) => (vec![], None),
    };
    io.send(Action::Backups { entries, folder });
}

/// Snapshot save, restore and recover: progress while they go, then what they did.
async fn long_work(io: &Arc<Io>, op: BackupOp) {
    let title = op.describe();
    let tell = {
        let (io, title) = (io.clone(), title.clone());
        move |progress: Progress| io.send(Action::Work { title: title.clone(), progress })
    };
    tell(Progress::step("starting"));
    let data_replaced = matches!(op, BackupOp::Restore { .. } | BackupOp::Recover { .. });
    if data_replaced && let Some(dir) = stop_backup(io).await {
        tell(Progress::step(format!(
            "stopped the continuous backup in {}: the lab it records is being replaced",
            dir.display()
        )));
    }
    // Restores and recoveries stop processes and write whole state files, some of it with
    // blocking calls: on a thread of their own, so the screen never waits for them.
    let handle = tokio::runtime::Handle::current();
    let worker = io.clone();
    let result = tokio::task::spawn_blocking(move || handle.block_on(carry_out(&worker, op, tell)))
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the work stopped: {e}")));
    if data_replaced && let Ok(lab) = io.lab() {
        // A restored or rebuilt lab listens on new ports.
        io.forget_clients();
        io.set_endpoints(lab.endpoints());
    }
    let (ok, lines) = match result {
        Ok(lines) => (true, lines),
        Err(e) => (false, vec![format!("{e:#}")]),
    };
    let title = if ok { title } else { format!("{title} failed") };
    io.send(Action::WorkDone { ok, title, lines, data_replaced });
}

async fn carry_out(io: &Io, op: BackupOp, mut tell: impl FnMut(Progress)) -> Result<Vec<String>> {
    match op {
        BackupOp::SnapshotSave { file } => {
            let file = match (&file, &io.source) {
                (Some(f), _) => PathBuf::from(f),
                (None, Source::Lab { home, name }) => catalog::new_snapshot_path(home, name),
                (None, Source::Attached { .. } | Source::Replay(_)) => {
                    anyhow::bail!("name the file: snapshot save FILE")
                }
            };
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::pki::create_private_dir(parent)?;
            }
            let endpoint = io.endpoints().into_iter().next().ok_or_else(|| anyhow::anyhow!("no member to ask"))?;
            let mut client = io.client(&endpoint)?;
            tell(Progress::step(format!("receiving a snapshot from {endpoint}")));
            let saved = crate::backup::stream::save(&mut client, &file, tell).await?;
            if let Source::Lab { home, name } = &io.source {
                catalog::remember(home, name, &file)?;
            }
            Ok(vec![format!(
                "Snapshot saved at {} ({} bytes, revision {}, from {endpoint})",
                file.display(),
                saved.bytes,
                saved.revision
            )])
        }
        BackupOp::Restore { source, to_revision } => {
            let Source::Lab { home, name } = &io.source else { anyhow::bail!("restore needs a raftty lab") };
            let nodes = io.lab()?.config.active_members().count().max(1);
            let options = crate::lab::restore::RestoreOptions {
                source: PathBuf::from(&source),
                lab: name.clone(),
                nodes,
                to_revision,
                replace: true,
                skip_hash_check: false,
            };
            let report = crate::lab::restore::restore(home, options, tell).await?;
            let mut lines = vec![format!(
                "restored lab {name} from {source}: revision {}, {} keys, {} leases (their TTLs start again)",
                report.revision, report.live_keys, report.leases
            )];
            if report.detached > 0 {
                lines.push(format!("{} keys lost their lease, which did not exist at that revision", report.detached));
            }
            if let Some(old) = report.replaced {
                lines.push(format!("the old lab's data is kept in {}", old.display()));
            }
            lines.push("the certificates are the old lab's: clients keep working".into());
            Ok(lines)
        }
        BackupOp::Recover { member, force } => {
            let Source::Lab { home, name } = &io.source else { anyhow::bail!("recover needs a raftty lab") };
            let report = crate::lab::recover::recover(home, name, &member, force, tell).await?;
            let mut lines = vec![format!(
                "rebuilt lab {name} around {member}, which kept its state at revision {} (Raft index {})",
                report.kept_revision, report.kept_applied_index
            )];
            if !report.added.is_empty() {
                lines.push(format!("fresh members joined: {}", report.added.join(", ")));
            }
            if !report.removed.is_empty() {
                lines.push(format!("out for good: {}", report.removed.join(", ")));
            }
            lines.push(format!(
                "what may be lost: writes a majority without {member} committed after index {}",
                report.kept_applied_index
            ));
            Ok(lines)
        }
        BackupOp::Refresh | BackupOp::BackupStart { .. } | BackupOp::BackupStop => Ok(vec![]),
    }
}

fn start_backup(io: &Arc<Io>, dir: Option<String>) {
    let Source::Lab { home, name } = &io.source else { return };
    let mut running = io.backup.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = running.as_ref() {
        io.send(Action::Output {
            ok: false,
            title: format!("a backup already runs into {}", r.dir.display()),
            lines: vec![],
        });
        return;
    }
    let dir = dir.map(PathBuf::from).unwrap_or_else(|| catalog::continuous_folder(home, name));
    let lab_dir = match io.lab() {
        Ok(lab) => lab.dir.clone(),
        Err(e) => {
            io.send(Action::Output { ok: false, title: "backup failed".into(), lines: vec![format!("{e:#}")] });
            return;
        }
    };
    if let Err(e) = catalog::remember(home, name, &dir) {
        io.send(Action::Output { ok: false, title: "backup failed".into(), lines: vec![format!("{e:#}")] });
        return;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let (io, dir) = (io.clone(), dir.clone());
        tokio::spawn(async move {
            io.send(Action::BackupRunning(Some(format!("starting in {}", dir.display()))));
            let options = crate::backup::continuous::BackupOptions {
                every: Duration::from_secs(3600),
                max_log_bytes: 64 << 20,
                progress_every: Duration::from_secs(2),
            };
            let say = |line: String| io.send(Action::BackupRunning(Some(line)));
            let stop = async {
                let _ = stopped.await;
            };
            let result = crate::backup::continuous::run(&lab_dir, &dir, &options, stop, say).await;
            io.send(Action::BackupRunning(None));
            if let Err(e) = result {
                io.send(Action::Output {
                    ok: false,
                    title: "the backup stopped".into(),
                    lines: vec![format!("{e:#}")],
                });
            }
            io.send(Action::Event(crate::tui::app::EventView::lab(
                "lab",
                format!("did=\"backup stopped in {}\"", dir.display()),
            )));
        })
    };
    *running = Some(Running { stop, task, dir });
}

/// Stops the app's continuous backup, if one runs, and waits until it has flushed its log.
pub async fn stop_backup(io: &Io) -> Option<PathBuf> {
    let running = io.backup.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    let _ = running.stop.send(());
    if tokio::time::timeout(Duration::from_secs(10), running.task).await.is_err() {
        tracing::warn!("the backup in {} did not stop within 10 s", running.dir.display());
    }
    Some(running.dir)
}
