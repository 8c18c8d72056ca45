//! The admin surface of a member (served on its peer port, for the lab's admin certificate
//! only): its detailed Raft state, its log, its live event stream, and the network faults
//! the lab wants in force.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use openraft::RaftLogReader;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::node::events;
use crate::node::member::Member;
use crate::node::raft::log_store::LogReader;
use crate::node::raft::types::NodeId;
use crate::node::raft::types::RaftMetrics;
use crate::node::raft::types::entry_summary;
use crate::node::step::Release;
use crate::pki::PeerIdentity;
use crate::proto::rafttyadmin::admin_server::Admin;
use crate::proto::rafttyadmin::*;

/// Entries a single log read returns at most.
const MAX_LOG_READ: u32 = 1000;

pub struct AdminService {
    member: Arc<Member>,
    log: LogReader,
}

impl AdminService {
    pub fn new(member: Arc<Member>, log: LogReader) -> AdminService {
        AdminService { member, log }
    }

    /// The member's Raft state, as the admin surface answers it (and the recording keeps it).
    pub fn member_state(&self) -> MemberState {
        let metrics = self.member.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let live_leader = self.member.live_leader_of(&m);
        let role = role_of(&m, live_leader);
        let matched = m
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, log)| (*id, log.map(|l| l.index).unwrap_or(0))).collect())
            .unwrap_or_default();
        MemberState {
            id: self.member.id,
            name: self.member.name.clone(),
            role: role.to_string(),
            term: m.current_term,
            leader: live_leader.unwrap_or(0),
            last_log_index: m.last_log_index.unwrap_or(0),
            committed_index: m.local_committed.map(|l| l.index).unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            voters,
            learners,
            matched,
            faults_generation: self.member.peers.faults().generation(),
            alarms: crate::node::mvcc::alarm::members_of(&self.member.state_machine.mvcc().alarms()),
            db_size: self.member.state_machine.mvcc().db_size_bytes(),
        }
    }

    /// Up to `limit` entries of the log from index `from` (0: the last `limit`).
    pub async fn read_log_window(&self, from: u64, limit: u32) -> Result<ReadLogResponse, Status> {
        let (purged, last, committed, applied, snapshot) = {
            let metrics = self.member.raft.metrics();
            let m = metrics.borrow_watched();
            (
                m.purged.map(|l| l.index),
                m.last_log_index,
                m.local_committed.map(|l| l.index).unwrap_or(0),
                m.last_applied.map(|l| l.index).unwrap_or(0),
                m.snapshot.map(|l| l.index).unwrap_or(0),
            )
        };
        let limit = limit.clamp(1, MAX_LOG_READ) as u64;
        let first_present = purged.map(|p| p + 1).unwrap_or(0);
        let entries = match last {
            None => vec![],
            Some(last) => {
                let from = if from == 0 { last.saturating_sub(limit - 1) } else { from };
                let from = from.max(first_present);
                let to = last.min(from.saturating_add(limit - 1));
                if from > to {
                    vec![]
                } else {
                    let mut reader = self.log.clone();
                    reader
                        .try_get_log_entries(from..=to)
                        .await
                        .map_err(|e| Status::internal(format!("reading the log: {e}")))?
                }
            }
        };
        let entries = entries
            .into_iter()
            .map(|e| {
                let (kind, summary) = entry_summary(&e.payload);
                LogEntryView { index: e.log_id.index, term: e.log_id.leader_id.term, kind: kind.to_string(), summary }
            })
            .collect();
        Ok(ReadLogResponse {
            entries,
            purged_index: purged.unwrap_or(0),
            last_index: last.unwrap_or(0),
            committed_index: committed,
            applied_index: applied,
            snapshot_index: snapshot,
        })
    }
}

fn require_admin<T>(req: &Request<T>) -> Result<(), Status> {
    match PeerIdentity::of(req) {
        Some(id) if id.is_admin() => Ok(()),
        Some(id) => Err(Status::permission_denied(format!(
            "the admin surface is for the lab supervisor; certificate {:?} is not its",
            id.common_name
        ))),
        None => Err(Status::unauthenticated("the admin surface requires the lab's admin certificate")),
    }
}

/// A member's role as people say it, from openraft's metrics and the live leader.
///
/// openraft's `Learner` is also what a member is before it joins. openraft keeps naming a
/// leader it no longer hears from (a leader that lost its quorum still calls itself leader
/// and refuses writes; a follower cut off from its leader keeps its name while its
/// pre-votes fail). etcd's members would campaign in both cases (CheckQuorum, pre-vote
/// candidates), so a member without a live leader is shown as a candidate: what it is in
/// effect, a member trying to get a leader elected.
pub fn role_of(m: &RaftMetrics, live_leader: Option<NodeId>) -> &'static str {
    let voter = m.membership_config.membership().voter_ids().any(|id| id == m.id);
    match m.state {
        ServerState::Leader if live_leader == Some(m.id) => "leader",
        ServerState::Leader | ServerState::Candidate => "candidate",
        ServerState::Follower if voter && live_leader.is_none() => "candidate",
        ServerState::Follower if voter => "follower",
        ServerState::Follower | ServerState::Learner => "learner",
        ServerState::Shutdown => "stopped",
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<RaftEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn state(&self, req: Request<StateRequest>) -> Result<Response<MemberState>, Status> {
        require_admin(&req)?;
        Ok(Response::new(self.member_state()))
    }

    async fn set_faults(&self, req: Request<FaultTable>) -> Result<Response<FaultAck>, Status> {
        require_admin(&req)?;
        let generation = self.member.peers.faults().update(req.into_inner());
        Ok(Response::new(FaultAck { generation }))
    }

    type EventsStream = EventStream;

    async fn events(&self, req: Request<EventsRequest>) -> Result<Response<EventStream>, Status> {
        require_admin(&req)?;
        let include_recent = req.get_ref().include_recent;
        let (recent, mut live) = events::subscribe().ok_or_else(|| Status::unavailable("no event bus"))?;
        let stream = async_stream::stream! {
            if include_recent {
                for e in recent {
                    yield Ok(e);
                }
            }
            loop {
                match live.recv().await {
                    Ok(e) => yield Ok(e),
                    // A subscriber that falls behind misses events rather than slowing Raft.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        yield Ok(RaftEvent { kind: "events_dropped".into(), fields: [("count".to_string(), n.to_string())].into(), ..Default::default() });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        };
        let stream = futures::StreamExt::take_until(stream, self.member.until_stopping());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn held(&self, req: Request<HeldRequest>) -> Result<Response<HeldMessages>, Status> {
        require_admin(&req)?;
        let messages = self.member.peers.faults().step().list();
        Ok(Response::new(HeldMessages { member: self.member.name.clone(), messages }))
    }

    async fn release(&self, req: Request<ReleaseRequest>) -> Result<Response<ReleaseAck>, Status> {
        require_admin(&req)?;
        let req = req.into_inner();
        let how = if req.drop { Release::Drop } else { Release::Deliver };
        let released = self.member.peers.faults().step().release(&req.ids, req.all, how);
        Ok(Response::new(ReleaseAck { released }))
    }

    async fn write_stages(&self, req: Request<WriteStagesRequest>) -> Result<Response<WriteStages>, Status> {
        require_admin(&req)?;
        let (stats, samples) = crate::node::write_stages::medians(req.get_ref().reset);
        let stages = crate::node::write_stages::STAGES
            .iter()
            .zip(stats)
            .map(|(stage, (p50, p99))| StageTiming {
                stage: stage.to_string(),
                p50_micros: p50.as_micros() as u64,
                p99_micros: p99.as_micros() as u64,
            })
            .collect();
        Ok(Response::new(WriteStages { stages, samples: samples as u64 }))
    }

    async fn read_log(&self, req: Request<ReadLogRequest>) -> Result<Response<ReadLogResponse>, Status> {
        require_admin(&req)?;
        let req = req.into_inner();
        Ok(Response::new(self.read_log_window(req.from, req.limit).await?))
    }
}
