//! etcd's Cluster service: the membership as Raft knows it.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::member::Member;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::*;
use crate::raft::types::Membership;

pub struct ClusterService {
    member: Arc<Member>,
}

impl ClusterService {
    pub fn new(member: Arc<Member>) -> ClusterService {
        ClusterService { member }
    }

    fn members(&self) -> Vec<Member_> {
        let metrics = self.member.raft.metrics();
        let membership = metrics.borrow_watched().membership_config.clone();
        etcd_members(membership.membership())
    }

    fn header(&self) -> ResponseHeader {
        self.member
            .header(self.member.state_machine.mvcc().current_revision())
    }
}

type Member_ = crate::proto::etcdserverpb::Member;

/// The membership in etcd's terms: voters and learners, with their URLs.
pub fn etcd_members(membership: &Membership) -> Vec<Member_> {
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member_ {
            id: *id,
            name: node.name.clone(),
            peer_ur_ls: vec![node.peer_url.clone()],
            client_ur_ls: if node.client_url.is_empty() {
                vec![]
            } else {
                vec![node.client_url.clone()]
            },
            is_learner: !voters.contains(id),
        })
        .collect()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(
        &self,
        _req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: Some(self.header()),
            members: self.members(),
        }))
    }

    async fn member_add(
        &self,
        _req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(Status::unimplemented(
            "membership changes through the etcd API are not available yet",
        ))
    }

    async fn member_remove(
        &self,
        _req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(Status::unimplemented(
            "membership changes through the etcd API are not available yet",
        ))
    }

    async fn member_update(
        &self,
        _req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(Status::unimplemented(
            "membership changes through the etcd API are not available yet",
        ))
    }

    async fn member_promote(
        &self,
        _req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(Status::unimplemented(
            "membership changes through the etcd API are not available yet",
        ))
    }
}
