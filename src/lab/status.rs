//! `raftty status`: every member's process and Raft state, as a table or stable JSON.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::lab::Lab;
use crate::lab::LabConfig;
use crate::lab::MemberConfig;
use crate::lab::control;
use crate::lab::faults::LabFaults;
use crate::lab::process::MemberProcess;
use crate::lab::process::ProcessState;
use crate::proto::etcdserverpb::AlarmType;
use crate::proto::rafttyadmin::MemberState;
use crate::proto::rafttyadmin::StateRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "leader" => Some(Role::Leader),
            "follower" => Some(Role::Follower),
            "candidate" => Some(Role::Candidate),
            "learner" => Some(Role::Learner),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
        })
    }
}

/// One member as `raftty status --json` prints it. Field names are a stable interface for
/// scripts: add fields, never rename them.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    /// etcd's member id in hex, as etcdctl prints it.
    pub id: String,
    pub pid: Option<i32>,
    pub state: ProcessState,
    pub role: Option<Role>,
    pub term: Option<u64>,
    pub raft_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// How many entries this member's log is behind the leader's (0 for the leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Killed by the lab (SIGKILL), as opposed to having exited by itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
    /// The name of the member this one believes is the leader.
    pub leader: Option<String>,
    pub client_url: String,
    pub peer_url: String,
    pub metrics_url: String,
    /// The size of its state file, etcd's dbSize.
    pub db_size: Option<u64>,
    /// Why the Raft fields are empty for a process that runs: it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub lab: String,
    pub nodes: Vec<NodeStatus>,
    /// The network faults in force, one line each (`n1 <-> n3 cut`).
    pub faults: Vec<String>,
    /// The same faults as a person names them (`partition n1 | n2,n3`).
    pub faults_in_words: Vec<String>,
    /// The active alarms in words (`NOSPACE raised by n1`), as the members answering know them.
    pub alarms: Vec<String>,
    /// The full fault table, for pictures of the network.
    #[serde(skip)]
    pub fault_table: LabFaults,
}

/// Whether the cluster can take writes, in words for the header of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quorum {
    Healthy,
    /// A quorum is there, but some voters are down, paused or cut off from the leader.
    Degraded {
        down: usize,
        voters: usize,
    },
    /// No leader with a majority behind it: writes stall.
    Lost {
        down: usize,
        voters: usize,
    },
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Healthy => f.write_str("healthy"),
            Quorum::Degraded { down, voters } => write!(f, "degraded: {down} of {voters} down"),
            Quorum::Lost { .. } => f.write_str("NO QUORUM: writes will stall"),
        }
    }
}

impl LabStatus {
    /// The member that leads right now (one with a quorum behind it), if there is one.
    pub fn leader(&self) -> Option<&str> {
        let mut leaders = self.nodes.iter().filter(|n| n.role == Some(Role::Leader));
        match (leaders.next(), leaders.next()) {
            (Some(only), None) => Some(only.name.as_str()),
            // A leader cut off from the others may still believe it leads, in its old
            // term; the one a majority follows is the one that can commit.
            (Some(_), Some(_)) => self.majority_leader(),
            _ => None,
        }
    }

    /// The leader that a majority of the voters follow, itself included.
    pub fn majority_leader(&self) -> Option<&str> {
        let voters = self.nodes.iter().filter(|n| n.role != Some(Role::Learner)).count();
        self.nodes
            .iter()
            .filter(|l| l.role == Some(Role::Leader) && l.state == ProcessState::Running)
            .find(|l| {
                let following = self
                    .nodes
                    .iter()
                    .filter(|n| n.state == ProcessState::Running)
                    .filter(|n| n.name == l.name || n.leader.as_deref() == Some(l.name.as_str()))
                    .count();
                following * 2 > voters
            })
            .map(|l| l.name.as_str())
    }

    /// Whether writes can commit: voters that answer and reach the leader, against a majority.
    pub fn quorum(&self) -> Quorum {
        let voters: Vec<&NodeStatus> = self.nodes.iter().filter(|n| n.role != Some(Role::Learner)).collect();
        let leader = self.leader();
        let reaches = |n: &NodeStatus| match leader {
            Some(l) => n.name == l || (!self.fault_table.is_cut(l, &n.name) && !self.fault_table.is_cut(&n.name, l)),
            None => false,
        };
        let up = voters.iter().filter(|n| n.state == ProcessState::Running && n.role.is_some() && reaches(n)).count();
        let down = voters.len() - up;
        if leader.is_none() || up * 2 <= voters.len() {
            Quorum::Lost { down, voters: voters.len() }
        } else if down > 0 {
            Quorum::Degraded { down, voters: voters.len() }
        } else {
            Quorum::Healthy
        }
    }

    /// The name of the member every answering member agrees is the leader, if they agree.
    pub fn agreed_leader(&self) -> Option<&str> {
        let mut leaders = self.nodes.iter().filter(|n| n.state == ProcessState::Running).map(|n| n.leader.as_deref());
        let first = leaders.next()??;
        leaders.all(|l| l == Some(first)).then_some(first)
    }
}

/// What one member answered, or why it did not: what a status is made of, asked live or
/// read from a recording.
pub struct MemberAnswer {
    pub member: MemberConfig,
    pub process: MemberProcess,
    /// Killed by the lab, rather than exited by itself.
    pub killed: bool,
    /// Why it stopped, for a member that refused to start.
    pub exit_reason: Option<String>,
    pub state: std::result::Result<MemberState, String>,
}

/// Asks every member of the lab for its state, all at once, over its admin surface.
pub async fn gather(lab: &Lab, timeout: Duration) -> Result<LabStatus> {
    let members: Vec<_> = lab.config.active_members().cloned().collect();
    let queries = members.iter().map(|m| {
        let process = lab.process(&m.name);
        async move {
            if process.state != ProcessState::Running {
                return (process, Err("not running".to_string()));
            }
            let state = async {
                let mut admin = control::admin_client(lab, &m.name, timeout).await.map_err(|e| format!("{e:#}"))?;
                admin.state(StateRequest {}).await.map(|r| r.into_inner()).map_err(|e| e.message().to_string())
            };
            (process, state.await)
        }
    });
    let answers = futures::future::join_all(queries).await;
    let answers = members
        .into_iter()
        .zip(answers)
        .map(|(m, (process, state))| MemberAnswer {
            killed: process.state == ProcessState::Exited && lab.was_killed(&m.name),
            exit_reason: (process.state == ProcessState::Exited).then(|| lab.exit_reason(&m.name)).flatten(),
            member: m,
            process,
            state,
        })
        .collect();
    Ok(assemble(lab.name(), &lab.config, answers, LabFaults::load(&lab.dir)?))
}

/// The status of a lab whose members answered `answers`, under `faults`.
pub fn assemble(lab_name: &str, config: &LabConfig, answers: Vec<MemberAnswer>, faults: LabFaults) -> LabStatus {
    let matched: Vec<Option<(u64, std::collections::HashMap<u64, u64>)>> = answers
        .iter()
        .map(|a| a.state.as_ref().ok().filter(|s| s.role == "leader").map(|s| (s.last_log_index, s.matched.clone())))
        .collect();
    let name_of = |id: u64| config.members.iter().find(|m| m.id == id).map(|m| m.name.clone());
    let mut alarms = std::collections::BTreeSet::new();
    let names: Vec<String> = answers.iter().map(|a| a.member.name.clone()).collect();
    let nodes = answers
        .into_iter()
        .map(|a| {
            let m = &a.member;
            let process = a.process;
            let mut node = NodeStatus {
                name: m.name.clone(),
                id: format!("{:x}", m.id),
                pid: process.pid,
                state: process.state,
                role: None,
                term: None,
                raft_index: None,
                committed_index: None,
                applied_index: None,
                lag: None,
                killed: a.killed,
                leader: None,
                client_url: m.client_url(),
                peer_url: m.peer_url(),
                metrics_url: m.metrics_url(),
                db_size: None,
                error: None,
            };
            match a.state {
                Ok(s) => {
                    node.role = Role::parse(&s.role);
                    node.term = Some(s.term);
                    node.raft_index = Some(s.last_log_index);
                    node.committed_index = Some(s.committed_index);
                    node.applied_index = Some(s.applied_index);
                    node.db_size = Some(s.db_size);
                    for a in &s.alarms {
                        let kind = AlarmType::try_from(a.alarm).map(|t| t.as_str_name()).unwrap_or("UNKNOWN");
                        let by = name_of(a.member_id).unwrap_or_else(|| format!("{:x}", a.member_id));
                        alarms.insert(format!("{kind} raised by {by}"));
                    }
                    node.leader =
                        if s.leader == 0 { None } else { name_of(s.leader).or(Some(format!("{:x}", s.leader))) };
                }
                Err(e) if process.state == ProcessState::Running => node.error = Some(e),
                Err(_) if process.state == ProcessState::Exited => {
                    node.error = a.exit_reason.map(|why| format!("refused to start: {why}"));
                }
                Err(_) => {}
            }
            node
        })
        .collect();
    let mut nodes: Vec<NodeStatus> = nodes;
    // Lag is measured against the leader's log, as the leader's own matched indexes say.
    let leader_matched = answers_matched(&nodes, &matched);
    for node in &mut nodes {
        node.lag = leader_matched.as_ref().and_then(|(leader_last, matched)| {
            let id = u64::from_str_radix(&node.id, 16).ok()?;
            Some(leader_last.saturating_sub(*matched.get(&id)?))
        });
    }
    LabStatus {
        lab: lab_name.to_string(),
        nodes,
        faults: faults.describe(),
        faults_in_words: faults.in_words(&names),
        alarms: alarms.into_iter().collect(),
        fault_table: faults,
    }
}

/// The leader's last log index and the indexes it knows each member holds, if one answered.
fn answers_matched(
    nodes: &[NodeStatus],
    matched: &[Option<(u64, std::collections::HashMap<u64, u64>)>],
) -> Option<(u64, std::collections::HashMap<u64, u64>)> {
    nodes.iter().zip(matched).find_map(|(n, m)| (n.role == Some(Role::Leader)).then(|| m.clone()).flatten())
}

/// The human view: one line per member.
pub fn render_table(lab_name: &str, tempo: crate::lab::Tempo, status: &LabStatus) -> String {
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(dash);
    let mut rows = vec![
        ["NAME", "ID", "PID", "STATE", "ROLE", "TERM", "INDEX", "APPLIED", "LEADER", "CLIENT URL", "PEER URL"]
            .map(str::to_string),
    ];
    for n in &status.nodes {
        rows.push([
            n.name.clone(),
            n.id.clone(),
            n.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            if n.killed { "killed".to_string() } else { n.state.to_string() },
            n.role.map(|r| r.to_string()).unwrap_or_else(dash),
            opt(n.term),
            opt(n.raft_index),
            opt(n.applied_index),
            n.leader.clone().unwrap_or_else(dash),
            n.client_url.clone(),
            n.peer_url.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = format!(
        "lab {} ({} members, heartbeat {} ms, election timeout {} ms)\n",
        lab_name,
        status.nodes.len(),
        tempo.heartbeat_ms,
        tempo.election_timeout_ms
    );
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for n in status.nodes.iter().filter(|n| n.error.is_some()) {
        let what = if n.state == ProcessState::Exited { "exited" } else { "does not answer" };
        let _ = writeln!(out, "{} {what}: {}", n.name, n.error.as_deref().unwrap_or_default());
    }
    if !status.alarms.is_empty() {
        let _ = writeln!(
            out,
            "alarms: {} (writes are refused: free space with `etcdctl compact` and `etcdctl defrag`, \
             then `etcdctl alarm disarm`)",
            status.alarms.join(", ")
        );
    }
    if !status.faults.is_empty() {
        let _ = writeln!(out, "network faults: {}", status.faults.join("; "));
    }
    out
}
