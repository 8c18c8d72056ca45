//! Bringing a lab up and down: the same code behind `raftty up`/`down` and the terminal app.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use anyhow::Result;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::SnapshotSettings;
use crate::lab::Tempo;
use crate::lab::process::ProcessState;
use crate::lab::status;
use crate::proto::etcdserverpb::RangeRequest;

/// How long `up` waits for a cluster to elect a leader and answer before giving up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct UpReport {
    pub created: bool,
    /// Members this call started.
    pub started: Vec<String>,
    /// Members that were already running and were left alone.
    pub already_running: Vec<String>,
    /// An existing lab was given another quota.
    pub quota_changed: bool,
}

/// How a new lab is made; an existing lab keeps what it was made with.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabShape {
    pub nodes: Option<usize>,
    pub tempo: Option<Tempo>,
    pub snapshot_every: Option<u64>,
    /// etcd's `--quota-backend-bytes`; unlike the rest, it may change for an existing lab.
    pub quota_backend_bytes: Option<i64>,
}

/// Creates the lab if needed and starts every member that is not running.
pub async fn up(home: &Path, name: &str, shape: LabShape) -> Result<(Lab, UpReport)> {
    let LabShape { nodes, tempo, snapshot_every, quota_backend_bytes } = shape;
    let created = !Lab::exists(home, name);
    let mut lab = if created {
        let snapshots = snapshot_every.map(SnapshotSettings::every).unwrap_or_default();
        Lab::create(home, name, nodes.unwrap_or(3), tempo.unwrap_or(Tempo::ETCD), snapshots)?
    } else {
        let lab = Lab::open(home, name)?;
        let members = lab.config.active_members().count();
        if let Some(n) = nodes {
            anyhow::ensure!(
                n == members,
                "lab {name:?} already has {members} members; grow or shrink it with `raftty member add/remove`, \
                 or start afresh with `raftty down --purge`"
            );
        }
        if let Some(t) = tempo {
            anyhow::ensure!(
                t == lab.config.tempo,
                "lab {name:?} already runs at another tempo; change it with `raftty tempo`"
            );
        }
        lab
    };
    let quota_changed = match quota_backend_bytes {
        Some(q) if q != lab.config.quota_backend_bytes => {
            lab.config.quota_backend_bytes = q;
            lab.config.save(&lab.dir)?;
            !created
        }
        _ => false,
    };

    let mut report = UpReport { created, started: Vec::new(), already_running: Vec::new(), quota_changed };
    let members: Vec<String> = lab.config.active_members().map(|m| m.name.clone()).collect();
    for member in &members {
        if lab.process(member).state == ProcessState::Exited {
            lab.spawn_member(member)?;
            report.started.push(member.clone());
        } else {
            report.already_running.push(member.clone());
        }
    }
    if !report.started.is_empty() {
        wait_ready(&lab, &report.started, READY_TIMEOUT).await?;
    }
    if !lab.config.bootstrapped {
        lab.config.bootstrapped = true;
        lab.config.save(&lab.dir)?;
    }
    lab.reload()?;
    Ok((lab, report))
}

/// Waits until the `started` members run, every running member knows the same leader, and
/// a linearizable read through the leader succeeds. A started member that exits fails the
/// wait at once, with the last lines of its log: usually the reason it refused to start.
pub async fn wait_ready(lab: &Lab, started: &[String], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let cert = lab.root_cert();
    loop {
        let status = status::gather(lab, Duration::from_secs(1)).await?;
        let exited: Vec<&str> = status
            .nodes
            .iter()
            .filter(|n| n.state == ProcessState::Exited && started.contains(&n.name))
            .map(|n| n.name.as_str())
            .collect();
        if !exited.is_empty() {
            let mut msg = format!("lab {}: {} failed to start", lab.name(), exited.join(", "));
            for name in exited {
                let how = lab.how_it_ended(name).map(|h| format!("{name} {h}; ")).unwrap_or_default();
                msg.push_str(&format!(
                    "\n\n{how}last lines of {}:\n{}",
                    lab.log_file(name).display(),
                    lab.log_tail(name, 15)
                ));
            }
            anyhow::bail!(msg);
        }
        let problem = match status.agreed_leader() {
            None => {
                let seen: Vec<String> = status
                    .nodes
                    .iter()
                    .map(|n| {
                        format!("{}: {}", n.name, n.leader.as_deref().or(n.error.as_deref()).unwrap_or("no leader"))
                    })
                    .collect();
                format!("the members do not agree on a leader yet ({})", seen.join(", "))
            }
            Some(leader) => {
                let url = lab.config.member(leader)?.client_url();
                let read = async {
                    let mut c = EtcdClient::connect(&url, &cert, Duration::from_secs(2)).await?;
                    c.kv.range(RangeRequest { key: "health".into(), ..Default::default() }).await?;
                    anyhow::Ok(())
                };
                match read.await {
                    Ok(()) => return Ok(()),
                    Err(e) => format!("leader {leader} does not answer reads yet: {e:#}"),
                }
            }
        };
        anyhow::ensure!(Instant::now() < deadline, "lab {} is not ready after {timeout:?}: {problem}", lab.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops every member of the lab; with `purge`, deletes the lab's folder too.
pub fn down(home: &Path, name: &str, purge: bool) -> Result<Vec<String>> {
    let lab = Lab::open(home, name)?;
    let mut stopped = Vec::new();
    for m in &lab.config.members {
        if lab.stop_member(&m.name, Duration::from_secs(10))? {
            stopped.push(m.name.clone());
        }
    }
    if purge {
        std::fs::remove_dir_all(&lab.dir)?;
    }
    Ok(stopped)
}

/// `export` lines that point etcdctl at the lab (`eval "$(raftty env)"`).
pub fn env_exports(lab: &Lab) -> String {
    let cert = lab.root_cert();
    let quote = |p: &Path| shell_quote(&p.display().to_string());
    format!(
        "export ETCDCTL_API=3\nexport ETCDCTL_ENDPOINTS={}\nexport ETCDCTL_CACERT={}\nexport ETCDCTL_CERT={}\nexport ETCDCTL_KEY={}\n",
        shell_quote(&lab.endpoints().join(",")),
        quote(&cert.ca),
        quote(&cert.cert),
        quote(&cert.key),
    )
}

/// Quotes `s` for a POSIX shell (and for the app's command line, which splits words the
/// same way): single quotes, with a single quote itself written as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:,=".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Changes a lab's tempo. A running member's timing is fixed when it starts, so the members
/// are restarted one at a time (followers first, the leader last), each waiting for the
/// cluster to be whole again: the cluster keeps its quorum throughout.
pub async fn set_tempo(lab: &mut Lab, tempo: Tempo, mut progress: impl FnMut(&str)) -> Result<()> {
    lab.config.tempo = tempo;
    lab.config.save(&lab.dir)?;
    let status = status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.agreed_leader().map(str::to_string);
    let mut order: Vec<String> =
        status.nodes.iter().filter(|n| n.state == ProcessState::Running).map(|n| n.name.clone()).collect();
    order.sort_by_key(|n| Some(n) == leader.as_ref());
    for member in order {
        progress(&member);
        lab.stop_member(&member, Duration::from_secs(10))?;
        lab.spawn_member(&member)?;
        wait_ready(lab, std::slice::from_ref(&member), READY_TIMEOUT).await?;
    }
    Ok(())
}
