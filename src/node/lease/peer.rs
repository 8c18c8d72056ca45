//! The leader's lease questions on the peer port: both ends of the `LeasePeer` service.
//!
//! Calls go through [`crate::node::raft::network::PeerChannels::deliver`], like Raft's own
//! messages, so a partitioned or slow link loses or delays keep-alives exactly as it would
//! Raft traffic.

use std::sync::Arc;

use tokio::time::Instant;
use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::errors::EtcdError;
use crate::node::lease::LeaseRefusal;
use crate::node::lease::Lessor;
use crate::node::member::Member;
use crate::node::member::NOT_LEADER;
use crate::node::raft::network::MAX_PEER_MESSAGE;
use crate::node::raft::types::NodeId;
use crate::pki::require_member;
use crate::proto::etcdserverpb::LeaseKeepAliveRequest;
use crate::proto::etcdserverpb::LeaseKeepAliveResponse;
use crate::proto::etcdserverpb::LeaseTimeToLiveRequest;
use crate::proto::etcdserverpb::LeaseTimeToLiveResponse;
use crate::proto::rafttypb::lease_peer_client::LeasePeerClient;
use crate::proto::rafttypb::lease_peer_server::LeasePeer;

pub struct LeasePeerService {
    lessor: Arc<Lessor>,
}

impl LeasePeerService {
    pub fn new(lessor: Arc<Lessor>) -> LeasePeerService {
        LeasePeerService { lessor }
    }
}

fn refusal_to_status(refusal: LeaseRefusal) -> Status {
    match refusal {
        LeaseRefusal::NotLeader => Status::failed_precondition(NOT_LEADER),
        LeaseRefusal::NotFound => EtcdError::LeaseNotFound.into(),
        LeaseRefusal::Timeout => EtcdError::Timeout.into(),
    }
}

fn status_to_refusal(status: &Status) -> LeaseRefusal {
    match status.code() {
        Code::NotFound => LeaseRefusal::NotFound,
        // not the leader, unreachable, lost on the way: the caller finds the leader again
        _ => LeaseRefusal::NotLeader,
    }
}

#[tonic::async_trait]
impl LeasePeer for LeasePeerService {
    async fn renew(&self, req: Request<LeaseKeepAliveRequest>) -> Result<Response<LeaseKeepAliveResponse>, Status> {
        require_member(&req)?;
        let id = req.get_ref().id;
        let deadline = Instant::now() + self.lessor.member().request_timeout;
        let ttl = self.lessor.renew_here(id, deadline).await.map_err(refusal_to_status)?;
        Ok(Response::new(LeaseKeepAliveResponse { header: None, id, ttl }))
    }

    async fn time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        require_member(&req)?;
        let req = req.into_inner();
        let resp = self.lessor.time_to_live_here(req.id, req.keys).map_err(refusal_to_status)?;
        Ok(Response::new(resp))
    }
}

fn client(
    member: &Member,
    leader: NodeId,
    url: &str,
) -> Result<LeasePeerClient<tonic::transport::Channel>, LeaseRefusal> {
    let channel = member.peers.channel(leader, url).map_err(|_| LeaseRefusal::NotLeader)?;
    Ok(LeasePeerClient::new(channel).max_decoding_message_size(MAX_PEER_MESSAGE))
}

fn attempt_timeout(deadline: Instant, per_attempt: std::time::Duration) -> std::time::Duration {
    deadline.saturating_duration_since(Instant::now()).min(per_attempt)
}

/// Asks `leader` to renew lease `id`.
pub async fn renew(
    member: &Member,
    leader: NodeId,
    url: String,
    id: i64,
    deadline: Instant,
    per_attempt: std::time::Duration,
) -> Result<i64, LeaseRefusal> {
    let mut client = client(member, leader, &url)?;
    let timeout = attempt_timeout(deadline, per_attempt);
    let mut req = Request::new(LeaseKeepAliveRequest { id });
    req.set_timeout(timeout);
    match member.peers.deliver(leader, timeout, client.renew(req)).await {
        Ok(resp) => Ok(resp.into_inner().ttl),
        Err(status) => Err(status_to_refusal(&status)),
    }
}

/// Asks `leader` how long lease `id` has left.
pub async fn time_to_live(
    member: &Member,
    leader: NodeId,
    url: String,
    id: i64,
    keys: bool,
    deadline: Instant,
    per_attempt: std::time::Duration,
) -> Result<LeaseTimeToLiveResponse, LeaseRefusal> {
    let mut client = client(member, leader, &url)?;
    let timeout = attempt_timeout(deadline, per_attempt);
    let mut req = Request::new(LeaseTimeToLiveRequest { id, keys });
    req.set_timeout(timeout);
    match member.peers.deliver(leader, timeout, client.time_to_live(req)).await {
        Ok(resp) => Ok(resp.into_inner()),
        Err(status) => Err(status_to_refusal(&status)),
    }
}
