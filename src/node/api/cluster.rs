//! etcd's Cluster service: the membership as Raft knows it, and changes to it.
//!
//! Changes are made by the leader (a follower relays the call to the leader's client port,
//! as etcd forwards them) with openraft's joint consensus. etcd's safety checks come along:
//! a learner is promoted only once it has caught up, and a member is added as a voter only
//! if enough members have started to keep a quorum.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use rand::Rng;
use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::errors::EtcdError;
use crate::node::member::Member;
use crate::node::raft::types::MemberNode;
use crate::node::raft::types::Membership;
use crate::node::raft::types::NodeId;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::*;

/// etcd promotes a learner once it holds this share of the leader's log.
const LEARNER_READY: f64 = 0.9;

type EtcdMember = crate::proto::etcdserverpb::Member;

pub struct ClusterService {
    member: Arc<Member>,
}

impl ClusterService {
    pub fn new(member: Arc<Member>) -> ClusterService {
        ClusterService { member }
    }

    fn membership(&self) -> Membership {
        let metrics = self.member.raft.metrics();
        let m = metrics.borrow_watched();
        m.membership_config.membership().clone()
    }

    fn header(&self) -> ResponseHeader {
        self.member.header(self.member.state_machine.mvcc().current_revision())
    }

    fn is_leader(&self) -> bool {
        self.member.raft.metrics().borrow_watched().current_leader == Some(self.member.id)
    }

    /// Commits a membership change and returns the members afterwards.
    async fn change(&self, change: ChangeMembers<NodeId, MemberNode>) -> Result<Vec<EtcdMember>, Status> {
        self.member.change_membership(change).await?;
        Ok(etcd_members(&self.membership()))
    }
}

/// The membership in etcd's terms: voters and learners, with their URLs.
pub fn etcd_members(membership: &Membership) -> Vec<EtcdMember> {
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| EtcdMember {
            id: *id,
            name: node.name.clone(),
            peer_ur_ls: vec![node.peer_url.clone()],
            client_ur_ls: if node.client_url.is_empty() { vec![] } else { vec![node.client_url.clone()] },
            is_learner: !voters.contains(id),
        })
        .collect()
}

/// The votes needed among `voters`.
fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// etcd accepts `scheme://host:port` peer URLs only.
fn valid_peer_urls(urls: &[String]) -> Result<(), EtcdError> {
    let valid = |u: &str| {
        let Some(rest) = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://")) else { return false };
        let Some((host, port)) = rest.rsplit_once(':') else { return false };
        !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
    };
    if urls.is_empty() || !urls.iter().all(|u| valid(u)) {
        return Err(EtcdError::MemberBadUrls);
    }
    Ok(())
}

/// Relays `$call` to the leader's client port when this member is not the leader.
macro_rules! on_leader {
    ($self:ident, $req:ident, $method:ident) => {
        // Membership changes are for root while auth is on; the leader trusts the member
        // that forwards one (it checked).
        crate::node::auth::gate::caller(&$self.member, &$req).await?.admin(&$self.member)?;
        if !$self.is_leader() {
            let mut leader = $self.member.leader_client().await?;
            return leader.cluster.$method($req.into_inner()).await;
        }
    };
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(&self, _req: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse { header: Some(self.header()), members: etcd_members(&self.membership()) }))
    }

    async fn member_add(&self, req: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        on_leader!(self, req, member_add);
        let req = req.into_inner();
        valid_peer_urls(&req.peer_ur_ls)?;
        let membership = self.membership();
        if membership.nodes().any(|(_, n)| req.peer_ur_ls.contains(&n.peer_url)) {
            return Err(EtcdError::PeerUrlExists.into());
        }
        if !req.is_learner {
            // etcd's strict reconfiguration check: with the new voter counted, the voters
            // that have started must still make a quorum.
            let voters: Vec<NodeId> = membership.voter_ids().collect();
            let started =
                voters.iter().filter(|id| membership.get_node(id).is_some_and(|n| !n.name.is_empty())).count();
            if started < quorum(voters.len() + 1) {
                return Err(EtcdError::NotEnoughStartedMembers.into());
            }
        }
        let id = loop {
            let id = rand::rng().random_range(1..=u64::MAX);
            if membership.get_node(&id).is_none() {
                break id;
            }
        };
        let node = MemberNode { name: String::new(), peer_url: req.peer_ur_ls[0].clone(), client_url: String::new() };
        let change = if req.is_learner {
            ChangeMembers::AddNodes(BTreeMap::from([(id, node)]))
        } else {
            ChangeMembers::AddVoters(BTreeMap::from([(id, node)]))
        };
        let members = self.change(change).await?;
        let added = EtcdMember {
            id,
            name: String::new(),
            peer_ur_ls: req.peer_ur_ls,
            client_ur_ls: vec![],
            is_learner: req.is_learner,
        };
        Ok(Response::new(MemberAddResponse { header: Some(self.header()), member: Some(added), members }))
    }

    async fn member_remove(&self, req: Request<MemberRemoveRequest>) -> Result<Response<MemberRemoveResponse>, Status> {
        on_leader!(self, req, member_remove);
        let id = req.get_ref().id;
        let membership = self.membership();
        if membership.get_node(&id).is_none() {
            return Err(EtcdError::MemberNotFound.into());
        }
        let change = if membership.voter_ids().any(|v| v == id) {
            let remaining = membership.voter_ids().filter(|v| *v != id).count();
            if remaining == 0 {
                return Err(Status::failed_precondition("etcdserver: cannot remove the last voting member"));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let members = self.change(change).await?;
        Ok(Response::new(MemberRemoveResponse { header: Some(self.header()), members }))
    }

    async fn member_update(&self, req: Request<MemberUpdateRequest>) -> Result<Response<MemberUpdateResponse>, Status> {
        on_leader!(self, req, member_update);
        let req = req.into_inner();
        valid_peer_urls(&req.peer_ur_ls)?;
        let membership = self.membership();
        let Some(node) = membership.get_node(&req.id) else { return Err(EtcdError::MemberNotFound.into()) };
        if membership.nodes().any(|(id, n)| *id != req.id && req.peer_ur_ls.contains(&n.peer_url)) {
            return Err(EtcdError::PeerUrlExists.into());
        }
        let updated = MemberNode { peer_url: req.peer_ur_ls[0].clone(), ..node.clone() };
        let members = self.change(ChangeMembers::SetNodes(BTreeMap::from([(req.id, updated)]))).await?;
        Ok(Response::new(MemberUpdateResponse { header: Some(self.header()), members }))
    }

    async fn member_promote(
        &self,
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        on_leader!(self, req, member_promote);
        let id = req.get_ref().id;
        let membership = self.membership();
        if membership.get_node(&id).is_none() {
            return Err(EtcdError::MemberNotFound.into());
        }
        if membership.voter_ids().any(|v| v == id) {
            return Err(EtcdError::MemberNotLearner.into());
        }
        if !self.learner_is_ready(id) {
            return Err(EtcdError::LearnerNotReady.into());
        }
        let members = self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await?;
        Ok(Response::new(MemberPromoteResponse { header: Some(self.header()), members }))
    }
}

impl ClusterService {
    /// Whether the learner holds nearly all of the leader's log (etcd's readiness rule).
    fn learner_is_ready(&self, id: NodeId) -> bool {
        let metrics = self.member.raft.metrics();
        let m = metrics.borrow_watched();
        let leader_last = m.last_log_index.unwrap_or(0);
        let matched = m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten()).map(|l| l.index).unwrap_or(0);
        matched as f64 >= leader_last as f64 * LEARNER_READY
    }
}
