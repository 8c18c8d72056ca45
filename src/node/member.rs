//! A running member as the etcd services see it: who it is, and the two things every request
//! needs from consensus: getting a write committed, and making a read linearizable.
//!
//! Clients may talk to any member (as with etcd). A follower hands writes to the leader and
//! asks the leader for a read index, then waits until it has applied that far itself, so a
//! client always reads its own writes on the member it talks to.

use openraft::async_runtime::WatchReceiver;
use std::time::Duration;
use std::time::Instant;

use openraft::ReadPolicy;
use openraft::errors::ClientWriteError as WriteErr;
use openraft::errors::RaftError as RErr;
use tonic::Code;

use crate::client::EtcdClient;
use crate::errors::EtcdError;
use crate::node::metrics::MemberMetrics;
use crate::node::quota::Quota;
use crate::node::raft::network::PeerChannels;
use crate::node::raft::state_machine::StateMachineStore;
use crate::node::raft::types::*;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::rafttypb::ProposeRequest;
use crate::proto::rafttypb::PublishRequest;
use crate::proto::rafttypb::ReadIndexRequest;

/// The message a leader answers forwarded requests with when it is no longer the leader: the
/// forwarding member may then safely retry elsewhere, since nothing was proposed.
pub const NOT_LEADER: &str = "etcdserver: not leader";

pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub cluster_id: u64,
    pub raft: Raft,
    pub state_machine: StateMachineStore,
    pub peers: PeerChannels,
    /// This member's certificate, for calls to other members' client ports.
    pub cert: CertFiles,
    /// How long a request may wait for consensus before the client is told it timed out
    /// (etcd: 5 s plus two election timeouts).
    pub request_timeout: Duration,
    pub metrics: std::sync::Arc<MemberMetrics>,
    pub quota: Quota,
    /// Turns true when the member begins to stop.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// When each simple token was last used here.
    pub tokens: crate::node::auth::tokens::TokenClock,
}

impl Member {
    /// A response header as etcd fills it: this member, the given store revision, our term.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.id,
            revision,
            raft_term: self.raft.metrics().borrow_watched().current_term,
        }
    }

    /// Proposes `op` and hands back the state machine's outcome and revision; an error the
    /// state machine decided comes back as that error.
    pub async fn write(
        &self,
        op: crate::proto::rafttypb::command::Op,
    ) -> Result<(crate::proto::rafttypb::command_result::Result, i64), EtcdError> {
        self.write_as(&crate::node::auth::gate::Caller(None), op).await
    }

    /// [`Member::write`] on behalf of `caller`, whose permissions the state machine checks
    /// again when it applies the entry.
    pub async fn write_as(
        &self,
        caller: &crate::node::auth::gate::Caller,
        op: crate::proto::rafttypb::command::Op,
    ) -> Result<(crate::proto::rafttypb::command_result::Result, i64), EtcdError> {
        use crate::proto::rafttypb::command_result::Result as Outcome;
        let user = caller.user().unwrap_or_default().to_string();
        let result = self.propose(Command { op: Some(op), user }).await?;
        match result.result {
            Some(Outcome::Error(e)) => Err(EtcdError::from_apply_error(&e)),
            Some(outcome) => Ok((outcome, result.revision)),
            None => Err(EtcdError::Internal("the state machine returned no result".into())),
        }
    }

    /// Resolves once the member begins to stop: endless streams (watches, lease keep-alives)
    /// end then, so that their clients move to another member at once and the server's
    /// graceful shutdown does not wait for them.
    pub fn until_stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.clone();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// etcd's quota check, before a write costing `cost` is proposed: past the quota the
    /// write is refused, and the NOSPACE alarm raised for the whole cluster (once: while it is
    /// active, the state machine refuses such writes everywhere anyway).
    pub async fn check_quota(&self, cost: u64) -> Result<(), EtcdError> {
        let mvcc = self.state_machine.mvcc();
        let size = mvcc.db_size_bytes();
        if self.quota.allows(size, cost) {
            return Ok(());
        }
        let nospace = crate::proto::etcdserverpb::AlarmType::Nospace as i32;
        if !mvcc.alarms().contains(&(self.id, nospace)) {
            tracing::warn!("the state file is {size} bytes, past the quota: raising the NOSPACE alarm");
            crate::node::events::emit(
                "alarm_raised",
                &[("alarm", "NOSPACE".into()), ("db_size", size.to_string()), ("quota", self.quota.to_string())],
            );
            let raise = crate::proto::etcdserverpb::AlarmRequest {
                action: crate::proto::etcdserverpb::alarm_request::AlarmAction::Activate as i32,
                member_id: self.id,
                alarm: nospace,
            };
            if let Err(e) = self
                .propose(Command { op: Some(crate::proto::rafttypb::command::Op::Alarm(raise)), user: String::new() })
                .await
            {
                tracing::warn!("raising the NOSPACE alarm failed: {e}");
            }
        }
        Err(EtcdError::NoSpace)
    }

    fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    fn leader_url(&self, leader: NodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.membership_config.membership().get_node(&leader).map(|n| n.peer_url.clone())
    }

    /// Waits (until `deadline`) for some member to be known as the leader.
    async fn await_leader(&self, deadline: Instant) -> Result<NodeId, EtcdError> {
        if let Some(leader) = self.current_leader() {
            return Ok(leader);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(remaining))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .ok()
            .and_then(|m| m.current_leader)
            .ok_or(EtcdError::NoLeader)
    }

    /// Gets `command` committed and applied, wherever the leader is, and returns its result.
    ///
    /// A command is retried only when it certainly was not proposed (the member asked was not
    /// the leader). Once it may have been proposed, a failure is reported as a timeout: the
    /// write may still take effect, exactly what etcd tells its clients in that case.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, EtcdError> {
        let pending = self.metrics.start_proposal();
        let outcome = self.propose_until_done(command).await;
        if outcome.is_ok() {
            pending.succeeded();
        }
        outcome
    }

    async fn propose_until_done(&self, command: Command) -> Result<CommandResult, EtcdError> {
        let received = Instant::now();
        let deadline = received + self.request_timeout;
        loop {
            let leader = self.await_leader(deadline).await?;
            let outcome = if leader == self.id {
                self.propose_locally(command.clone(), received, deadline).await
            } else {
                self.propose_via(leader, command.clone(), deadline).await
            };
            match outcome {
                Attempt::Done(result) => return result,
                Attempt::NotProposed => {
                    if Instant::now() >= deadline {
                        return Err(EtcdError::Timeout);
                    }
                    // The leader moved; give the cluster a moment to agree on the new one.
                    let _ = self
                        .raft
                        .wait(Some(Duration::from_millis(50)))
                        .metrics(|m| m.current_leader.is_some_and(|l| l != leader), "a new leader")
                        .await;
                }
            }
        }
    }

    async fn propose_locally(&self, command: Command, received: Instant, deadline: Instant) -> Attempt<CommandResult> {
        let proposed = Instant::now();
        let remaining = deadline.saturating_duration_since(proposed);
        match tokio::time::timeout(remaining, self.raft.client_write(command)).await {
            Err(_) => Attempt::Done(Err(EtcdError::Timeout)),
            Ok(Ok(resp)) => {
                crate::node::write_stages::answered(resp.log_id.index, received, proposed);
                Attempt::Done(Ok(resp.data))
            }
            Ok(Err(RErr::APIError(WriteErr::ForwardToLeader(_)))) => Attempt::NotProposed,
            Ok(Err(RErr::APIError(WriteErr::LogEntryDiscarded(_)))) => {
                Attempt::Done(Err(EtcdError::TimeoutDueToLeaderFail))
            }
            Ok(Err(e)) => Attempt::Done(Err(EtcdError::Internal(format!("proposal failed: {e}")))),
        }
    }

    async fn propose_via(&self, leader: NodeId, command: Command, deadline: Instant) -> Attempt<CommandResult> {
        let Some(url) = self.leader_url(leader) else {
            return Attempt::NotProposed;
        };
        let Ok(mut client) = self.peers.client(leader, &url) else {
            return Attempt::NotProposed;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut req = tonic::Request::new(ProposeRequest { command: Some(command) });
        req.set_timeout(remaining);
        match self.peers.deliver(leader, remaining, client.propose(req)).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                let Some(result) = resp.result else {
                    return Attempt::Done(Err(EtcdError::Internal("the leader sent an empty result".into())));
                };
                // Read-your-writes on this member: answer once we have applied it too.
                self.await_applied(resp.log_index, deadline).await;
                Attempt::Done(Ok(result))
            }
            Err(status) if status.code() == Code::FailedPrecondition && status.message() == NOT_LEADER => {
                Attempt::NotProposed
            }
            // The leader we knew is gone and its port refused the connection: nothing was sent.
            Err(status) if crate::client::never_sent(&status) => Attempt::NotProposed,
            Err(status) => Attempt::Done(Err(status_to_error(status))),
        }
    }

    /// Returns once this member's state machine reflects every write committed before the
    /// call: etcd's linearizable read (ReadIndex).
    pub async fn linearizable_barrier(&self) -> Result<(), EtcdError> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let leader = self.await_leader(deadline).await?;
            let attempt = if leader == self.id {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, self.raft.ensure_linearizable(ReadPolicy::ReadIndex)).await {
                    Err(_) => Attempt::Done(Err(EtcdError::Timeout)),
                    Ok(Ok(_)) => Attempt::Done(Ok(())),
                    Ok(Err(e)) if e.forward_to_leader().is_some() => Attempt::NotProposed,
                    // The leader could not hear from a majority: to a client that is etcd's timeout,
                    // not an internal error (the details are for the log).
                    Ok(Err(e)) => {
                        tracing::debug!("read index failed: {e}");
                        Attempt::Done(Err(EtcdError::Timeout))
                    }
                }
            } else {
                self.read_index_via(leader, deadline).await
            };
            match attempt {
                Attempt::Done(r) => return r,
                Attempt::NotProposed if Instant::now() >= deadline => {
                    return Err(EtcdError::Timeout);
                }
                Attempt::NotProposed => {
                    let _ = self
                        .raft
                        .wait(Some(Duration::from_millis(50)))
                        .metrics(|m| m.current_leader.is_some_and(|l| l != leader), "a new leader")
                        .await;
                }
            }
        }
    }

    async fn read_index_via(&self, leader: NodeId, deadline: Instant) -> Attempt<()> {
        let Some(url) = self.leader_url(leader) else {
            return Attempt::NotProposed;
        };
        let Ok(mut client) = self.peers.client(leader, &url) else {
            return Attempt::NotProposed;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut req = tonic::Request::new(ReadIndexRequest {});
        req.set_timeout(remaining);
        match self.peers.deliver(leader, remaining, client.read_index(req)).await {
            Ok(resp) => {
                if self.await_applied(resp.get_ref().read_index, deadline).await {
                    Attempt::Done(Ok(()))
                } else {
                    Attempt::Done(Err(EtcdError::TimeoutWaitAppliedIndex))
                }
            }
            // Reads have no side effects: any failure to reach the leader may be retried.
            Err(status) if status.code() == Code::FailedPrecondition || status.code() == Code::Unavailable => {
                Attempt::NotProposed
            }
            Err(status) => Attempt::Done(Err(status_to_error(status))),
        }
    }

    /// Waits until this member has applied `index`; false if `deadline` passed first.
    pub async fn await_applied(&self, index: u64, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft.wait(Some(remaining)).applied_index_at_least(Some(index), "read index").await.is_ok()
    }

    /// The leader's half of a forwarded write.
    pub async fn serve_forwarded_proposal(&self, command: Command) -> Result<(CommandResult, u64), tonic::Status> {
        if self.current_leader() != Some(self.id) {
            return Err(tonic::Status::failed_precondition(NOT_LEADER));
        }
        let write = tokio::time::timeout(self.request_timeout, self.raft.client_write(command)).await;
        match write {
            Err(_) => Err(EtcdError::Timeout.into()),
            Ok(Ok(resp)) => Ok((resp.data, resp.log_id.index)),
            Ok(Err(RErr::APIError(WriteErr::ForwardToLeader(_)))) => {
                Err(tonic::Status::failed_precondition(NOT_LEADER))
            }
            Ok(Err(RErr::APIError(WriteErr::LogEntryDiscarded(_)))) => Err(EtcdError::TimeoutDueToLeaderFail.into()),
            Ok(Err(e)) => Err(tonic::Status::internal(format!("proposal failed: {e}"))),
        }
    }

    /// The leader's half of a follower's linearizable read: the index to catch up to.
    pub async fn serve_read_index(&self) -> Result<u64, tonic::Status> {
        match tokio::time::timeout(self.request_timeout, self.raft.get_read_linearizer(ReadPolicy::ReadIndex)).await {
            Err(_) => Err(EtcdError::Timeout.into()),
            Ok(Ok(linearizer)) => Ok(linearizer.read_log_id().log_id().index),
            Ok(Err(e)) if e.forward_to_leader().is_some() => Err(tonic::Status::failed_precondition(NOT_LEADER)),
            Ok(Err(e)) => {
                tracing::debug!("read index failed: {e}");
                Err(EtcdError::Timeout.into())
            }
        }
    }
}

impl Member {
    /// The leader this member can count on right now: the one openraft names, if it has shown
    /// signs of life within a leader lease (see `metrics::raft`).
    pub fn live_leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        self.live_leader_of(&m)
    }

    pub fn live_leader_of(&self, m: &crate::node::raft::types::RaftMetrics) -> Option<NodeId> {
        let window = Duration::from_millis(self.raft.config().election_timeout_max);
        crate::node::metrics::raft::RaftView::of(m).live_leader(self.metrics.heard_from_leader_ago(), window)
    }

    /// An etcd client connected to the leader's client port, for the calls etcd serves only
    /// on the leader (membership changes).
    pub async fn leader_client(&self) -> Result<EtcdClient, tonic::Status> {
        let deadline = Instant::now() + self.request_timeout;
        let leader = self.await_leader(deadline).await?;
        let url = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config.membership().get_node(&leader).map(|n| n.client_url.clone())
        };
        let url = url.filter(|u| !u.is_empty()).ok_or(EtcdError::NoLeader)?;
        EtcdClient::connect(&url, &self.cert, self.request_timeout)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("reaching the leader at {url}: {e:#}")))
    }

    /// Makes sure the membership shows this member's name and client URL, as etcd members
    /// publish theirs: a member added through etcd's MemberAdd is known only by its peer URL
    /// until it runs. Retries until the leader has recorded them.
    pub async fn publish_self(&self, me: MemberNode) {
        loop {
            let recorded = {
                let metrics = self.raft.metrics();
                let m = metrics.borrow_watched();
                m.membership_config.membership().get_node(&self.id).cloned()
            };
            match recorded {
                Some(node) if node == me => return,
                // Not (yet) part of the cluster: nothing to publish to.
                None => {}
                Some(_) => {
                    if let Err(e) = self.request_publish(me.clone()).await {
                        tracing::debug!("publishing {}: {e}", me.name);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn request_publish(&self, me: MemberNode) -> Result<(), tonic::Status> {
        let deadline = Instant::now() + self.request_timeout;
        let leader = self.await_leader(deadline).await?;
        if leader == self.id {
            return self.serve_publish(self.id, me).await;
        }
        let url = self.leader_url(leader).ok_or(EtcdError::NoLeader)?;
        let mut client = self.peers.client(leader, &url).map_err(tonic::Status::unavailable)?;
        let req = PublishRequest { id: self.id, node: Some(me) };
        self.peers.deliver(leader, self.request_timeout, client.publish(req)).await.map(|_| ())
    }

    /// The leader's half of a member publishing its attributes.
    pub async fn serve_publish(&self, id: NodeId, node: MemberNode) -> Result<(), tonic::Status> {
        use openraft::ChangeMembers;
        if self.current_leader() != Some(self.id) {
            return Err(tonic::Status::failed_precondition(NOT_LEADER));
        }
        let change = ChangeMembers::SetNodes(std::collections::BTreeMap::from([(id, node)]));
        self.change_membership(change).await
    }

    /// Commits a membership change on the leader. Raft allows one change at a time, so a
    /// change that finds another in progress waits for it to commit and tries again.
    pub async fn change_membership(
        &self,
        change: openraft::ChangeMembers<NodeId, MemberNode>,
    ) -> Result<(), tonic::Status> {
        use openraft::errors::ChangeMembershipError;
        let deadline = Instant::now() + self.request_timeout;
        loop {
            match self.raft.change_membership(change.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(RErr::APIError(WriteErr::ChangeMembershipError(ChangeMembershipError::InProgress(_))))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(RErr::APIError(WriteErr::ForwardToLeader(_))) => {
                    return Err(tonic::Status::failed_precondition(NOT_LEADER));
                }
                Err(e) => {
                    return Err(tonic::Status::failed_precondition(format!(
                        "etcdserver: membership change failed: {e}"
                    )));
                }
            }
        }
    }
}

enum Attempt<T> {
    Done(Result<T, EtcdError>),
    /// Certainly not proposed: safe to retry with the (new) leader.
    NotProposed,
}

/// An error relayed by the leader: keep etcd's message when it is one.
fn status_to_error(status: tonic::Status) -> EtcdError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => EtcdError::Timeout,
        _ => EtcdError::Internal(status.message().to_string()),
    }
}
