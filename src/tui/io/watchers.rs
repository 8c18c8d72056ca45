//! The pollers and followers that keep the app's picture of the cluster fresh: status (each
//! half second), every member's event stream, the logs while the Raft log tab is on
//! screen, and the metrics endpoints.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::lab::Lab;
use crate::lab::faults::LabFaults;
use crate::lab::process::ProcessState;
use crate::lab::status::Quorum;
use crate::lab::status::Role;
use crate::proto::etcdserverpb::AlarmRequest;
use crate::proto::etcdserverpb::MemberListRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::StatusRequest;
use crate::tui::app::Action;
use crate::tui::app::ClusterView;
use crate::tui::app::EventView;
use crate::tui::app::MemberView;
use crate::tui::app::Proc;
use crate::tui::io::Io;
use crate::tui::io::Source;
use crate::tui::tabs::metrics::MetricSample;

/// How often the app looks at the cluster: a dead or paused member shows within a second.
const STATUS_EVERY: Duration = Duration::from_millis(500);
const LOG_EVERY: Duration = Duration::from_millis(500);
const METRICS_EVERY: Duration = Duration::from_secs(2);
/// Step mode's queues change with every delivery: a person should see the answer arrive.
const HELD_EVERY: Duration = Duration::from_millis(250);
/// Entries read from each member's log tail.
const LOG_TAIL: u32 = 200;

pub fn spawn_all(io: &Arc<Io>) {
    let status = io.clone();
    tokio::spawn(async move { status_loop(status).await });
    let logs = io.clone();
    tokio::spawn(async move { log_loop(logs).await });
    let metrics = io.clone();
    tokio::spawn(async move { metrics_loop(metrics).await });
    if matches!(io.source, Source::Lab { .. }) {
        let held = io.clone();
        tokio::spawn(async move { held_loop(held).await });
    }
}

/// While step mode is on, what every member holds; an empty queue once it is off.
async fn held_loop(io: Arc<Io>) {
    let mut shown_any = false;
    loop {
        if io.tx.is_closed() {
            return;
        }
        if let Ok(lab) = io.lab() {
            let on = LabFaults::load(&lab.dir).is_ok_and(|f| f.step.is_some());
            if on {
                if let Ok(held) = crate::lab::step::held(&lab).await {
                    shown_any = !held.is_empty();
                    io.send(Action::Held(held));
                }
            } else if shown_any {
                shown_any = false;
                io.send(Action::Held(vec![]));
            }
        }
        tokio::time::sleep(HELD_EVERY).await;
    }
}

async fn status_loop(io: Arc<Io>) {
    let mut followed: HashSet<String> = HashSet::new();
    let mut previous: Option<ClusterView> = None;
    loop {
        let generation = io.lab_generation();
        let view = match &io.source {
            Source::Lab { .. } => lab_view(&io, &mut followed).await,
            Source::Attached { .. } => attached_view(&io).await,
            Source::Replay(_) => return,
        };
        if let Some(view) = view {
            if matches!(io.source, Source::Attached { .. }) {
                for e in inferred_events(previous.as_ref(), &view) {
                    io.send(Action::Event(e));
                }
            }
            let mut order: Vec<String> = view.members.iter().map(|m| m.endpoint.clone()).collect();
            if let Some(leader) = view.leader.as_ref().and_then(|l| view.member(l)) {
                order.retain(|e| e != &leader.endpoint);
                order.insert(0, leader.endpoint.clone());
            }
            previous = Some(view.clone());
            io.send_cluster(view, order, generation);
        }
        if io.tx.is_closed() {
            return;
        }
        let _ = tokio::time::timeout(STATUS_EVERY, io.status_poke.notified()).await;
    }
}

/// The newest revision, and any alarms when `with_alarms`, from the first member that answers.
async fn revision_and_alarms(io: &Io, with_alarms: bool) -> (Option<i64>, Vec<String>) {
    for endpoint in io.endpoints() {
        let Ok(mut client) = io.client(&endpoint) else { continue };
        let range = RangeRequest {
            key: Bytes::from_static(b"health"),
            serializable: true,
            count_only: true,
            ..Default::default()
        };
        let Ok(answer) = tokio::time::timeout(Duration::from_secs(1), client.kv.range(range)).await else { continue };
        let Ok(answer) = answer else { continue };
        let revision = answer.into_inner().header.map(|h| h.revision);
        if !with_alarms {
            return (revision, vec![]);
        }
        let alarms =
            match tokio::time::timeout(Duration::from_secs(1), client.maintenance.alarm(AlarmRequest::default())).await
            {
                Ok(Ok(a)) => a
                    .into_inner()
                    .alarms
                    .iter()
                    .filter_map(|a| match a.alarm {
                        1 => Some(format!("NOSPACE raised by {:x}", a.member_id)),
                        2 => Some(format!("CORRUPT raised by {:x}", a.member_id)),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
        return (revision, alarms);
    }
    (None, vec![])
}

async fn lab_view(io: &Arc<Io>, followed: &mut HashSet<String>) -> Option<ClusterView> {
    let lab = io.lab().ok()?;
    let status = crate::lab::status::gather(&lab, Duration::from_secs(1)).await.ok()?;
    for m in lab.config.active_members() {
        if followed.insert(m.name.clone()) {
            spawn_follower(io, m.name.clone());
        }
    }
    // The lab's status names the members behind the alarms; the etcd answer is for the revision.
    let (revision, _) = revision_and_alarms(io, false).await;
    Some(cluster_view(&status, revision, lab.config.tempo))
}

/// The app's picture of a lab, from its status (asked live, or read from a recording).
pub fn cluster_view(
    status: &crate::lab::status::LabStatus,
    revision: Option<i64>,
    tempo: crate::lab::Tempo,
) -> ClusterView {
    let members = status
        .nodes
        .iter()
        .map(|n| MemberView {
            name: n.name.clone(),
            id: u64::from_str_radix(&n.id, 16).unwrap_or(0),
            process: match n.state {
                ProcessState::Running => Proc::Running,
                ProcessState::Paused => Proc::Paused,
                ProcessState::Exited if n.killed => Proc::Killed,
                ProcessState::Exited => Proc::Exited,
            },
            role: n.role,
            term: n.term,
            last_index: n.raft_index,
            committed: n.committed_index,
            applied: n.applied_index,
            lag: n.lag,
            leader: n.leader.clone(),
            error: n.error.clone(),
            endpoint: n.client_url.clone(),
        })
        .collect::<Vec<_>>();
    let leader = status.leader().map(str::to_string);
    let term = leader.as_ref().and_then(|l| status.nodes.iter().find(|n| &n.name == l)).and_then(|n| n.term);
    let term = term.or_else(|| status.nodes.iter().filter_map(|n| n.term).max());
    ClusterView {
        members,
        quorum: status.quorum(),
        faults_in_words: status.faults_in_words.clone(),
        faults: status.fault_table.clone(),
        leader,
        term,
        revision,
        alarms: status.alarms.clone(),
        tempo: Some(tempo),
    }
}

fn spawn_follower(io: &Arc<Io>, member: String) {
    let io = io.clone();
    tokio::spawn(async move {
        let (sink, mut events) = tokio::sync::mpsc::channel(1024);
        let follower = {
            let io = io.clone();
            async move {
                let Ok(lab) = io.lab() else { return };
                crate::lab::timeline::follow_member(&lab, &member, true, sink).await;
            }
        };
        let forward = async {
            while let Some(e) = events.recv().await {
                if io.tx.send(Action::Event(EventView::from_raft(&e))).is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            _ = follower => {}
            _ = forward => {}
        }
    });
}

/// A cluster that is not a lab: what etcd's own Status and MemberList say.
async fn attached_view(io: &Arc<Io>) -> Option<ClusterView> {
    let Source::Attached { endpoints, .. } = &io.source else { return None };
    let mut names = std::collections::HashMap::new();
    for endpoint in endpoints {
        let Ok(mut client) = io.client(endpoint) else { continue };
        let list =
            tokio::time::timeout(Duration::from_secs(1), client.cluster.member_list(MemberListRequest::default()))
                .await;
        if let Ok(Ok(list)) = list {
            for m in list.into_inner().members {
                let name = if m.name.is_empty() { format!("{:x}", m.id) } else { m.name.clone() };
                names.insert(m.id, (name, m.client_ur_ls.first().cloned()));
            }
            break;
        }
    }
    let mut members = Vec::new();
    for endpoint in endpoints {
        let answer = match io.client(endpoint) {
            Ok(mut client) => {
                tokio::time::timeout(Duration::from_secs(1), client.maintenance.status(StatusRequest::default())).await
            }
            Err(_) => continue,
        };
        let fallback = endpoint.trim_start_matches("https://").trim_start_matches("http://").to_string();
        let view = match answer {
            Ok(Ok(s)) => {
                let s = s.into_inner();
                let id = s.header.as_ref().map_or(0, |h| h.member_id);
                let name = names.get(&id).map(|(n, _)| n.clone()).unwrap_or(fallback);
                let role = if s.is_learner {
                    Role::Learner
                } else if s.leader == id && id != 0 {
                    Role::Leader
                } else {
                    Role::Follower
                };
                MemberView {
                    name,
                    id,
                    process: Proc::Running,
                    role: Some(role),
                    term: Some(s.raft_term),
                    last_index: None,
                    committed: Some(s.raft_index),
                    applied: Some(s.raft_applied_index),
                    lag: None,
                    leader: names.get(&s.leader).map(|(n, _)| n.clone()),
                    error: s.errors.first().cloned(),
                    endpoint: endpoint.clone(),
                }
            }
            Ok(Err(e)) => unreachable_member(fallback, endpoint, e.message().to_string()),
            Err(_) => unreachable_member(fallback, endpoint, "no answer within 1s".into()),
        };
        members.push(view);
    }
    let leader_commit = members.iter().find(|m| m.role == Some(Role::Leader)).and_then(|m| m.committed);
    for m in &mut members {
        m.lag = leader_commit.zip(m.committed).map(|(l, c)| l.saturating_sub(c));
    }
    let leaders: Vec<&MemberView> = members.iter().filter(|m| m.role == Some(Role::Leader)).collect();
    let leader = (leaders.len() == 1).then(|| leaders[0].name.clone());
    let voters = members.iter().filter(|m| m.role != Some(Role::Learner)).count();
    let down = members.iter().filter(|m| m.process != Proc::Running).count();
    let quorum = if leader.is_none() || (voters - down) * 2 <= voters {
        Quorum::Lost { down, voters }
    } else if down > 0 {
        Quorum::Degraded { down, voters }
    } else {
        Quorum::Healthy
    };
    let term = members.iter().filter_map(|m| m.term).max();
    let (revision, alarms) = revision_and_alarms(io, true).await;
    Some(ClusterView {
        members,
        faults: LabFaults::default(),
        faults_in_words: vec![],
        quorum,
        leader,
        term,
        revision,
        alarms,
        tempo: None,
    })
}

fn unreachable_member(name: String, endpoint: &str, why: String) -> MemberView {
    MemberView {
        name,
        id: 0,
        process: Proc::Unreachable,
        role: None,
        term: None,
        last_index: None,
        committed: None,
        applied: None,
        lag: None,
        leader: None,
        error: Some(why),
        endpoint: endpoint.to_string(),
    }
}

/// A cluster that is not a lab streams no events: tell what changed between two looks.
pub fn inferred_events(before: Option<&ClusterView>, now: &ClusterView) -> Vec<EventView> {
    let Some(before) = before else { return vec![] };
    let mut events = Vec::new();
    if before.leader != now.leader {
        let who = now.leader.clone().unwrap_or_else(|| "none".into());
        let mut e = EventView::lab(
            "leader_changed",
            format!("leader={who} was={}", before.leader.as_deref().unwrap_or("none")),
        );
        e.member = now.leader.clone().unwrap_or_else(|| "-".into());
        e.term = now.term.unwrap_or(0);
        events.push(e);
    } else if before.term != now.term {
        let mut e = EventView::lab("term_changed", format!("term={}", now.term.unwrap_or(0)));
        e.term = now.term.unwrap_or(0);
        events.push(e);
    }
    for m in &now.members {
        let was = before.members.iter().find(|b| b.endpoint == m.endpoint).map(|b| b.process);
        match (was, m.process) {
            (Some(Proc::Running), Proc::Unreachable) => {
                let mut e = EventView::lab(
                    "member_unreachable",
                    m.error.clone().map(|w| format!("why=\"{w}\"")).unwrap_or_default(),
                );
                e.member = m.name.clone();
                events.push(e);
            }
            (Some(Proc::Unreachable), Proc::Running) => {
                let mut e = EventView::lab("member_back", String::new());
                e.member = m.name.clone();
                events.push(e);
            }
            _ => {}
        }
    }
    events
}

async fn log_loop(io: Arc<Io>) {
    let mut window = io.log_window.subscribe();
    loop {
        let shown = *window.borrow_and_update();
        if let (Some(from), Ok(lab)) = (shown, io.lab()) {
            read_logs(&io, &lab, from).await;
        }
        if io.tx.is_closed() {
            return;
        }
        // A change of window is read at once; otherwise the tail is read again shortly.
        let _ = tokio::time::timeout(LOG_EVERY, window.changed()).await;
    }
}

async fn read_logs(io: &Io, lab: &Lab, from: Option<u64>) {
    let reads = lab.config.active_members().map(|m| async move {
        if lab.process(&m.name).state != ProcessState::Running {
            let why = lab.process(&m.name).state.to_string();
            return (m.name.clone(), Err(why));
        }
        let (start, limit) = match from {
            Some(f) => (f.max(1), LOG_TAIL),
            None => (0, LOG_TAIL),
        };
        let log = crate::lab::timeline::read_log(lab, &m.name, start, limit).await.map_err(|e| format!("{e:#}"));
        (m.name.clone(), log)
    });
    for (member, log) in futures::future::join_all(reads).await {
        match log {
            Ok(log) => io.send(Action::Log { member, log }),
            Err(why) => io.send(Action::LogUnavailable { member, why }),
        }
    }
}

async fn metrics_loop(io: Arc<Io>) {
    loop {
        let targets: Vec<(String, String)> = match &io.source {
            Source::Lab { .. } => match io.lab() {
                Ok(lab) => lab
                    .config
                    .active_members()
                    .filter(|m| lab.process(&m.name).state == ProcessState::Running)
                    .map(|m| (m.name.clone(), m.metrics_url()))
                    .collect(),
                Err(_) => vec![],
            },
            Source::Attached { endpoints, .. } => endpoints
                .iter()
                .map(|e| {
                    (e.trim_start_matches("https://").trim_start_matches("http://").to_string(), format!("{e}/metrics"))
                })
                .collect(),
            Source::Replay(_) => return,
        };
        let cert = io.cert();
        let scrapes = targets.iter().map(|(name, url)| {
            let cert = cert.clone();
            async move {
                let answer = match &cert {
                    Some(cert) => crate::lab::scrape::get(url, cert, Duration::from_secs(1)).await,
                    None => crate::lab::scrape::get_plain(url, Duration::from_secs(1)).await,
                };
                (name.clone(), answer)
            }
        });
        for (member, answer) in futures::future::join_all(scrapes).await {
            if let Ok(a) = answer
                && a.status == 200
            {
                io.send(Action::Metrics { member, sample: MetricSample::parse(&a.body, io.clock()) });
            }
        }
        if io.tx.is_closed() {
            return;
        }
        tokio::time::sleep(METRICS_EVERY).await;
    }
}
