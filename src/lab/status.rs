//! `raftty status`: every member's process and Raft state, as a table or stable JSON.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::proto::etcdserverpb::StatusRequest;
use crate::proto::etcdserverpb::StatusResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
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
    pub applied_index: Option<u64>,
    /// The name of the member this one believes is the leader.
    pub leader: Option<String>,
    pub client_url: String,
    pub peer_url: String,
    pub metrics_url: String,
    /// Why the Raft fields are empty for a process that runs: it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub lab: String,
    pub nodes: Vec<NodeStatus>,
}

impl LabStatus {
    /// The name of the member every answering member agrees is the leader, if they agree.
    pub fn agreed_leader(&self) -> Option<&str> {
        let mut leaders = self
            .nodes
            .iter()
            .filter(|n| n.state == ProcessState::Running)
            .map(|n| n.leader.as_deref());
        let first = leaders.next()??;
        leaders.all(|l| l == Some(first)).then_some(first)
    }
}

/// Asks every member of the lab for its status, all at once.
pub async fn gather(lab: &Lab, timeout: Duration) -> Result<LabStatus> {
    let cert = lab.root_cert();
    let members: Vec<_> = lab.config.active_members().cloned().collect();
    let queries = members.iter().map(|m| {
        let cert = cert.clone();
        let url = m.client_url();
        let process = lab.process(&m.name);
        async move {
            if process.state == ProcessState::Exited {
                return (process, Err("not running".to_string()));
            }
            let status = async {
                let mut client = EtcdClient::connect(&url, &cert, timeout)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                client
                    .maintenance
                    .status(StatusRequest {})
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|e| e.message().to_string())
            };
            (process, status.await)
        }
    });
    let answers = futures::future::join_all(queries).await;
    let name_of = |id: u64| {
        lab.config
            .members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.name.clone())
    };
    let nodes = members
        .iter()
        .zip(answers)
        .map(|(m, (process, status))| {
            let mut node = NodeStatus {
                name: m.name.clone(),
                id: format!("{:x}", m.id),
                pid: process.pid,
                state: process.state,
                role: None,
                term: None,
                raft_index: None,
                applied_index: None,
                leader: None,
                client_url: m.client_url(),
                peer_url: m.peer_url(),
                metrics_url: m.metrics_url(),
                error: None,
            };
            match status {
                Ok(s) => {
                    node.role = Some(role_of(m.id, &s));
                    node.term = Some(s.raft_term);
                    node.raft_index = Some(s.raft_index);
                    node.applied_index = Some(s.raft_applied_index);
                    node.leader = if s.leader == 0 {
                        None
                    } else {
                        name_of(s.leader).or(Some(format!("{:x}", s.leader)))
                    };
                }
                Err(e) if process.state == ProcessState::Running => node.error = Some(e),
                Err(_) => {}
            }
            node
        })
        .collect();
    Ok(LabStatus {
        lab: lab.name().to_string(),
        nodes,
    })
}

fn role_of(id: u64, s: &StatusResponse) -> Role {
    if s.is_learner {
        Role::Learner
    } else if s.leader == id {
        Role::Leader
    } else if s.leader == 0 {
        Role::Candidate
    } else {
        Role::Follower
    }
}

/// The human view: one line per member.
pub fn render_table(lab: &Lab, status: &LabStatus) -> String {
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(dash);
    let mut rows = vec![
        [
            "NAME",
            "ID",
            "PID",
            "STATE",
            "ROLE",
            "TERM",
            "INDEX",
            "APPLIED",
            "LEADER",
            "CLIENT URL",
            "PEER URL",
        ]
        .map(str::to_string),
    ];
    for n in &status.nodes {
        rows.push([
            n.name.clone(),
            n.id.clone(),
            n.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            n.state.to_string(),
            n.role.map(|r| r.to_string()).unwrap_or_else(dash),
            opt(n.term),
            opt(n.raft_index),
            opt(n.applied_index),
            n.leader.clone().unwrap_or_else(dash),
            n.client_url.clone(),
            n.peer_url.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let tempo = lab.config.tempo;
    let mut out = format!(
        "lab {} ({} members, heartbeat {} ms, election timeout {} ms)\n",
        lab.name(),
        status.nodes.len(),
        tempo.heartbeat_ms,
        tempo.election_timeout_ms
    );
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for n in status.nodes.iter().filter(|n| n.error.is_some()) {
        let _ = writeln!(
            out,
            "{} does not answer: {}",
            n.name,
            n.error.as_deref().unwrap_or_default()
        );
    }
    out
}
