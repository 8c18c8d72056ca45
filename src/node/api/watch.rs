//! etcd's Watch service: one bidirectional stream per client, many watches on it. The work
//! is done by [`crate::node::watch::Session`]; this file connects it to the member.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use futures::Stream;
use futures::future::BoxFuture;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::errors::EtcdError;
use crate::node::auth::gate::Caller;
use crate::node::member::Member;
use crate::node::watch::ClusterView;
use crate::node::watch::Session;
use crate::node::watch::WatchSettings;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::etcdserverpb::watch_server::Watch;

/// Responses a stream may have queued for a client that reads slowly; beyond it the
/// session waits (and falls behind the feed, and later catches up from history).
const OUTBOUND_QUEUE: usize = 64;

/// The metadata key etcd clients set to ask that a stream be refused, and later ended,
/// while the member knows no leader (etcdctl sets it on every watch).
pub const REQUIRE_LEADER_KEY: &str = "hasleader";

pub struct WatchService {
    view: Arc<MemberView>,
    settings: WatchSettings,
}

impl WatchService {
    pub fn new(member: Arc<Member>, settings: WatchSettings) -> WatchService {
        WatchService { view: Arc::new(MemberView::new(member)), settings }
    }
}

/// Whether a request carries etcd's require-leader metadata.
pub fn requires_leader<T>(req: &Request<T>) -> bool {
    req.metadata().get(REQUIRE_LEADER_KEY).is_some_and(|v| v.as_bytes() == b"true")
}

/// How long an answer to "is there a leader?" is reused: every require-leader stream asks
/// once per election timeout, and thousands of them should not each ask Raft.
const LEADER_ANSWER_FRESH: Duration = Duration::from_millis(100);

/// The member as watch sessions see it, shared by all of them.
pub struct MemberView {
    member: Arc<Member>,
    leader_answer: Mutex<Option<(Instant, bool)>>,
}

impl MemberView {
    pub fn new(member: Arc<Member>) -> MemberView {
        MemberView { member, leader_answer: Mutex::new(None) }
    }

    async fn has_leader_cached(&self) -> bool {
        let cached = *self.leader_answer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, answer)) = cached
            && at.elapsed() < LEADER_ANSWER_FRESH
        {
            return answer;
        }
        let answer = has_leader(&self.member).await;
        *self.leader_answer.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), answer));
        answer
    }
}

impl ClusterView for MemberView {
    fn header(&self, revision: i64) -> ResponseHeader {
        self.member.header(revision)
    }

    fn has_leader(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.has_leader_cached())
    }
}

/// One stream's view: the member's, and the user the stream acts as.
struct CallerView {
    view: Arc<MemberView>,
    caller: Caller,
}

impl ClusterView for CallerView {
    fn header(&self, revision: i64) -> ResponseHeader {
        self.view.member.header(revision)
    }

    fn has_leader(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.view.has_leader_cached())
    }

    fn may_read(&self, key: &[u8], range_end: &[u8]) -> bool {
        let access = crate::node::auth::perms::Access::new(crate::node::auth::perms::Need::Read, key, range_end);
        self.caller.allow(&self.view.member, |_| vec![access]).is_ok()
    }
}

/// Whether this member has a leader, as etcd means it: one it can count on right now (see
/// [`Member::live_leader`]).
pub async fn has_leader(member: &Member) -> bool {
    member.live_leader().is_some()
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

impl WatchService {
    /// A watch stream fed by `requests`, acting as `caller`: what a gRPC stream gets, for the
    /// JSON gateway too.
    pub fn open<S>(&self, caller: Caller, requests: S, require_leader: bool) -> WatchStream
    where
        S: Stream<Item = Result<WatchRequest, Status>> + Send + Unpin + 'static,
    {
        let (out, responses) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE);
        let view = Arc::new(CallerView { view: self.view.clone(), caller });
        let session = Session::new(self.view.member.state_machine.mvcc().clone(), view, out, self.settings);
        tokio::spawn(session.run(requests, require_leader));
        Box::pin(futures::StreamExt::take_until(ReceiverStream::new(responses), self.view.member.until_stopping()))
    }

    pub fn member(&self) -> &Arc<Member> {
        &self.view.member
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<Streaming<WatchRequest>>) -> Result<Response<WatchStream>, Status> {
        let require_leader = requires_leader(&req);
        if require_leader && !self.view.has_leader_cached().await {
            return Err(EtcdError::NoLeader.into());
        }
        let caller = crate::node::auth::gate::caller(&self.view.member, &req).await?;
        Ok(Response::new(self.open(caller, req.into_inner(), require_leader)))
    }
}
