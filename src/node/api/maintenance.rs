//! etcd's Maintenance service: Status (etcdctl endpoint status), HashKV, Alarm, and friends.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::Request;
use tonic::Response;
use tonic::Status;

use crate::errors::EtcdError;
use crate::node::api::ETCD_VERSION;
use crate::node::member::Member;
use crate::node::mvcc::alarm;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::*;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

/// How long a defragmentation waits for snapshots being read before it gives up.
const DEFRAGMENT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

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
        let errors = alarm::members_of(&mvcc.alarms()).iter().map(alarm::describe).collect();
        Ok(Response::new(StatusResponse {
            header: Some(self.member.header(mvcc.current_revision())),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader,
            raft_index: index,
            raft_term: term,
            raft_applied_index: applied,
            errors,
            db_size_in_use: db_size,
            is_learner: learner,
        }))
    }

    async fn hash_kv(&self, req: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        crate::node::auth::gate::caller(&self.member, &req).await?.admin(&self.member)?;
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
        crate::node::auth::gate::caller(&self.member, &_req).await?.admin(&self.member)?;
        let mvcc = self.member.state_machine.mvcc();
        let hash = mvcc.hash_kv(0)?;
        Ok(Response::new(HashResponse { header: Some(self.member.header(mvcc.current_revision())), hash: hash.hash }))
    }

    /// GET reads the replicated alarms after a read barrier (no log entry, so a dashboard that
    /// polls it does not fill the log); ACTIVATE and DEACTIVATE go through Raft, as in etcd.
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let req = req.into_inner();
        let mvcc = self.member.state_machine.mvcc();
        if req.action() == alarm_request::AlarmAction::Get {
            self.member.linearizable_barrier().await?;
            let alarms = alarm::of_type(&mvcc.alarms(), req.alarm);
            return Ok(Response::new(AlarmResponse {
                header: Some(self.member.header(mvcc.current_revision())),
                alarms,
            }));
        }
        let result = self.member.propose(Command { op: Some(Op::Alarm(req)), user: String::new() }).await?;
        match result.result {
            Some(Outcome::Alarm(mut resp)) => {
                for a in &resp.alarms {
                    let kind = AlarmType::try_from(a.alarm).map(|t| t.as_str_name()).unwrap_or("UNKNOWN");
                    let verb = if req.action() == alarm_request::AlarmAction::Activate { "raised" } else { "disarmed" };
                    crate::node::events::emit(
                        &format!("alarm_{verb}"),
                        &[("alarm", kind.into()), ("of", format!("{:x}", a.member_id))],
                    );
                }
                resp.header = Some(self.member.header(result.revision));
                Ok(Response::new(resp))
            }
            Some(Outcome::Error(e)) => Err(EtcdError::from_apply_error(&e).into()),
            other => Err(Status::internal(format!("unexpected state machine result {other:?}"))),
        }
    }

    /// Rewrites this member's state file without free space, as etcd's defrag does: only this
    /// member, and reads and writes on it wait meanwhile.
    async fn defragment(&self, _req: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        crate::node::auth::gate::caller(&self.member, &_req).await?.admin(&self.member)?;
        let mvcc = self.member.state_machine.mvcc().clone();
        let store = mvcc.clone();
        let done = tokio::task::spawn_blocking(move || store.defragment(DEFRAGMENT_PATIENCE))
            .await
            .map_err(|e| Status::internal(format!("defragmenting: {e}")))?
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tracing::info!("defragmented the state file from {} to {} bytes in {:?}", done.before, done.after, done.took);
        Ok(Response::new(DefragmentResponse { header: Some(self.member.header(mvcc.current_revision())) }))
    }

    type SnapshotStream = SnapshotStream;

    /// The member's whole state as etcd's backend file, from one consistent view of the
    /// store (writes go on meanwhile), streamed as etcd streams it.
    async fn snapshot(&self, _req: Request<SnapshotRequest>) -> Result<Response<SnapshotStream>, Status> {
        crate::node::auth::gate::caller(&self.member, &_req).await?.admin(&self.member)?;
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
        crate::node::auth::gate::caller(&self.member, &req).await?.admin(&self.member)?;
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
