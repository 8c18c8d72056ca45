//! etcd's Watch service: one bidirectional stream per client, many watches on it. The work
//! is done by [`crate::watch::Session`]; this file connects it to the member.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::errors::EtcdError;
use crate::member::Member;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::watch::ClusterView;
use crate::watch::Session;
use crate::watch::WatchSettings;

/// Responses a stream may have queued for a client that reads slowly; beyond it the
/// session waits (and falls behind the feed, and later catches up from history).
const OUTBOUND_QUEUE: usize = 64;

/// The metadata key etcd clients set to ask that a stream be refused, and later ended,
/// while the member knows no leader (etcdctl sets it on every watch).
pub const REQUIRE_LEADER_KEY: &str = "hasleader";

pub struct WatchService {
    member: Arc<Member>,
    settings: WatchSettings,
}

impl WatchService {
    pub fn new(member: Arc<Member>, settings: WatchSettings) -> WatchService {
        WatchService { member, settings }
    }
}

/// Whether a request carries etcd's require-leader metadata.
pub fn requires_leader<T>(req: &Request<T>) -> bool {
    req.metadata().get(REQUIRE_LEADER_KEY).is_some_and(|v| v.as_bytes() == b"true")
}

/// The member as a watch session sees it.
pub struct MemberView(pub Arc<Member>);

impl ClusterView for MemberView {
    fn header(&self, revision: i64) -> ResponseHeader {
        self.0.header(revision)
    }

    fn has_leader(&self) -> BoxFuture<'_, bool> {
        Box::pin(has_leader(&self.0))
    }
}

/// Whether this member has a leader, as etcd means it: a leader counts only while a quorum
/// still acknowledges it (etcd's would have stepped down); a follower counts its leader only
/// while it keeps hearing from it (etcd's forgets its leader once its election timer fires;
/// openraft's keeps naming the last one, so the time of its last message decides).
pub async fn has_leader(member: &Member) -> bool {
    let (leader, leads_with_quorum, silence_allowed) = {
        let metrics = member.raft.metrics();
        let m = metrics.borrow_watched();
        let config = member.raft.config();
        let leads = crate::admin::role_of(&m, crate::admin::leader_lease(&member.raft)) == "leader";
        let silence = Duration::from_millis(config.election_timeout_min + config.election_timeout_max);
        (m.current_leader, leads, silence)
    };
    match leader {
        None => false,
        Some(leader) if leader == member.id => leads_with_quorum,
        Some(_) => {
            // a follower's vote is refreshed by every message of its leader
            let heard = member.raft.with_raft_state(|state| state.vote_last_modified()).await;
            matches!(heard, Ok(Some(at)) if openraft::Instant::elapsed(&at) <= silence_allowed)
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<Streaming<WatchRequest>>) -> Result<Response<WatchStream>, Status> {
        let require_leader = requires_leader(&req);
        if require_leader && !has_leader(&self.member).await {
            return Err(EtcdError::NoLeader.into());
        }
        let (out, responses) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE);
        let session = Session::new(
            self.member.state_machine.mvcc().clone(),
            Arc::new(MemberView(self.member.clone())),
            out,
            self.settings,
        );
        tokio::spawn(session.run(req.into_inner(), require_leader));
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }
}
