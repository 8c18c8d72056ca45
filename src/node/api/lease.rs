//! etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive and
//! LeaseLeases. Grants and revokes are Raft commands; keep-alives and time-to-live are
//! answered by the leader's lessor (see [`crate::node::lease`]).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::errors::EtcdError;
use crate::node::api::check_size;
use crate::node::api::watch::has_leader;
use crate::node::api::watch::requires_leader;
use crate::node::lease::Lessor;
use crate::node::member::Member;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::*;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

/// How many times a grant with a server-chosen id tries another id when the one it picked
/// is taken (only possible when a client chose that very id itself).
const ID_ATTEMPTS: usize = 8;

pub struct LeaseService {
    member: Arc<Member>,
    lessor: Arc<Lessor>,
}

impl LeaseService {
    pub fn new(member: Arc<Member>, lessor: Arc<Lessor>) -> LeaseService {
        LeaseService { member, lessor }
    }

    fn current_header(&self) -> ResponseHeader {
        self.member.header(self.member.state_machine.mvcc().current_revision())
    }
}

fn unexpected(outcome: &Outcome) -> Status {
    Status::internal(format!("unexpected state machine result {outcome:?}"))
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(&self, req: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let req = req.into_inner();
        check_size(&req)?;
        // Raised here rather than in the state machine: the minimum depends on the lab's
        // election timeout, which may change, while every member must apply the same TTL.
        let ttl = req.ttl.max(self.lessor.settings().min_ttl);
        self.member.check_quota(crate::node::quota::LEASE_OVERHEAD).await?;
        let chosen_by_client = req.id != 0;
        for _ in 0..ID_ATTEMPTS {
            let id = if chosen_by_client { req.id } else { self.lessor.new_id() };
            match self.member.write(Op::LeaseGrant(LeaseGrantRequest { ttl, id })).await {
                Ok((Outcome::LeaseGrant(mut resp), revision)) => {
                    resp.header = Some(self.member.header(revision));
                    return Ok(Response::new(resp));
                }
                Ok((other, _)) => return Err(unexpected(&other)),
                Err(EtcdError::LeaseExists) if !chosen_by_client => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EtcdError::LeaseExists.into())
    }

    async fn lease_revoke(&self, req: Request<LeaseRevokeRequest>) -> Result<Response<LeaseRevokeResponse>, Status> {
        let caller = crate::node::auth::gate::caller(&self.member, &req).await?;
        let req = req.into_inner();
        caller.allow(&self.member, |s| crate::node::auth::gate::lease_keys(s, req.id))?;
        match self.member.write_as(&caller, Op::LeaseRevoke(req)).await? {
            (Outcome::LeaseRevoke(mut resp), revision) => {
                resp.header = Some(self.member.header(revision));
                Ok(Response::new(resp))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        if requires_leader(&req) && !has_leader(&self.member).await {
            return Err(EtcdError::NoLeader.into());
        }
        let mut requests = req.into_inner();
        let (out, responses) = tokio::sync::mpsc::channel(16);
        let lessor = self.lessor.clone();
        let member = self.member.clone();
        tokio::spawn(async move {
            // One at a time, in order, as etcd serves a keep-alive stream.
            while let Some(Ok(request)) = requests.next().await {
                let ttl = match lessor.keep_alive(request.id).await {
                    Ok(ttl) => ttl,
                    // etcd answers an unknown (expired, revoked) lease with TTL 0, which
                    // clients read as "gone"
                    Err(EtcdError::LeaseNotFound) => 0,
                    Err(e) => {
                        let _ = out.send(Err(e.into())).await;
                        return;
                    }
                };
                let header = Some(member.header(member.state_machine.mvcc().current_revision()));
                let response = LeaseKeepAliveResponse { header, id: request.id, ttl };
                if out.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        let stream = futures::StreamExt::take_until(ReceiverStream::new(responses), self.member.until_stopping());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = req.into_inner();
        let mut resp = match self.lessor.time_to_live(req.id, req.keys).await {
            Ok(resp) => resp,
            // etcd: an unknown lease is no error but a TTL of -1 ("already expired")
            Err(EtcdError::LeaseNotFound) => LeaseTimeToLiveResponse { id: req.id, ttl: -1, ..Default::default() },
            Err(e) => return Err(e.into()),
        };
        resp.header = Some(self.current_header());
        Ok(Response::new(resp))
    }

    async fn lease_leases(&self, _req: Request<LeaseLeasesRequest>) -> Result<Response<LeaseLeasesResponse>, Status> {
        // A follower may not have applied a grant its client just heard about: read after
        // everything committed so far, so `lease list` shows the lease `lease grant` made.
        self.member.linearizable_barrier().await?;
        let leases = self.member.state_machine.mvcc().lease_ids().into_iter().map(|id| LeaseStatus { id }).collect();
        Ok(Response::new(LeaseLeasesResponse { header: Some(self.current_header()), leases }))
    }
}
