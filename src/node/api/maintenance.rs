//! etcd's Maintenance service: Status (etcdctl endpoint status), HashKV, Alarm, and friends.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::node::api::ETCD_VERSION;
use crate::node::member::Member;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::*;

pub struct MaintenanceService {
    member: Arc<Member>,
}

impl MaintenanceService {
    pub fn new(member: Arc<Member>) -> MaintenanceService {
        MaintenanceService { member }
    }
}

type SnapshotStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let mvcc = self.member.state_machine.mvcc();
        let (leader, index, term, applied, learner) = {
            let metrics = self.member.raft.metrics();
            let m = metrics.borrow_watched();
            let learner = !m.membership_config.membership().voter_ids().any(|id| id == self.member.id);
            (
                self.member.live_leader_of(&m).unwrap_or(0),
                m.last_log_index.unwrap_or(0),
                m.current_term,
                m.last_applied.map(|l| l.index).unwrap_or(0),
                learner,
            )
        };
        let db_size = mvcc.db_size_bytes() as i64;
        Ok(Response::new(StatusResponse {
            header: Some(self.member.header(mvcc.current_revision())),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader,
            raft_index: index,
            raft_term: term,
            raft_applied_index: applied,
            errors: vec![],
            db_size_in_use: db_size,
            is_learner: learner,
        }))
    }

    async fn hash_kv(&self, req: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let mvcc = self.member.state_machine.mvcc();
        let hash = mvcc.hash_kv(req.get_ref().revision)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.member.header(mvcc.current_revision())),
            hash: hash.hash,
            compact_revision: hash.compact_revision,
            hash_revision: hash.hash_revision,
        }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let mvcc = self.member.state_machine.mvcc();
        let hash = mvcc.hash_kv(0)?;
        Ok(Response::new(HashResponse { header: Some(self.member.header(mvcc.current_revision())), hash: hash.hash }))
    }

    async fn alarm(&self, _req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let mvcc = self.member.state_machine.mvcc();
        Ok(Response::new(AlarmResponse { header: Some(self.member.header(mvcc.current_revision())), alarms: vec![] }))
    }

    async fn defragment(&self, _req: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        let mvcc = self.member.state_machine.mvcc();
        Ok(Response::new(DefragmentResponse { header: Some(self.member.header(mvcc.current_revision())) }))
    }

    type SnapshotStream = SnapshotStream;

    /// The member's whole state as etcd's backend file, from one consistent view of the
    /// store (writes go on meanwhile), streamed as etcd streams it.
    async fn snapshot(&self, _req: Request<SnapshotRequest>) -> Result<Response<SnapshotStream>, Status> {
        let view = self.member.state_machine.mvcc().snapshot().map_err(|e| Status::internal(e.to_string()))?;
        let (members, applied) = {
            let metrics = self.member.raft.metrics();
            let m = metrics.borrow_watched();
            let members = crate::node::api::cluster::etcd_members(m.membership_config.membership());
            (members, m.last_applied.map(|l| l.index).unwrap_or(0))
        };
        let members = members
            .into_iter()
            .map(|m| crate::backup::etcd_db::MemberJson {
                id: m.id,
                peer_urls: m.peer_ur_ls,
                name: m.name,
                client_urls: m.client_ur_ls,
                is_learner: m.is_learner,
            })
            .collect();
        let db = tokio::task::spawn_blocking(move || {
            crate::backup::stream::backend_of(&view, members, applied).map(|backend| backend.to_bolt())
        })
        .await
        .map_err(|e| Status::internal(format!("building the snapshot: {e}")))?
        .map_err(|e| Status::internal(e.to_string()))?;
        let messages = crate::backup::stream::responses(db);
        Ok(Response::new(Box::pin(futures::stream::iter(messages.into_iter().map(Ok)))))
    }

    async fn move_leader(&self, req: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = req.get_ref().target_id;
        let is_voter = {
            let metrics = self.member.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config.membership().voter_ids().any(|id| id == target)
        };
        if !is_voter || target == self.member.id {
            return Err(crate::errors::EtcdError::BadLeaderTransferee.into());
        }
        if self.member.raft.metrics().borrow_watched().current_leader != Some(self.member.id) {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        self.member
            .raft
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| Status::internal(format!("transfer leader: {e}")))?;
        let mvcc = self.member.state_machine.mvcc();
        Ok(Response::new(MoveLeaderResponse { header: Some(self.member.header(mvcc.current_revision())) }))
    }
}
