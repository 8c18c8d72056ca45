//! The sending end of the peer port: how a member's Raft reaches the others, over gRPC
//! with mutual TLS (each member dials with its own member certificate), and AppendEntries
//! over the port's append link (`append_link.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use openraft::AnyError;
use openraft::OptionalSend;
use openraft::RaftNetworkFactory;
use openraft::errors::NetworkError;
use openraft::errors::ReplicationClosed;
use openraft::errors::Unreachable;
use openraft::network::Backoff;
use openraft::network::RPCOption;
use openraft::network::v2::RaftNetworkV2;
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::node::events;
use crate::node::faults::FaultState;
use crate::node::faults::Verdict;
use crate::node::metrics::histogram::Histogram;
use crate::node::metrics::peers::PeerRoundTrips;
use crate::node::raft::append_link;
use crate::node::raft::append_link::AppendLink;
use crate::node::raft::codec;
use crate::node::raft::types::*;
use crate::node::step;
use crate::node::step::Release;
use crate::node::write_stages;
use crate::node::write_stages::Point;
use crate::pki::CertFiles;
use crate::proto::rafttypb as pb;
use crate::proto::rafttypb::raft_peer_client::RaftPeerClient;

/// Snapshots travel in chunks of this size.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;
/// Raft messages can carry many entries of up to 1.5 MiB each: the largest message members
/// send each other.
pub const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

/// Channels to the other members, shared by Raft's replication tasks and by the client path
/// (forwarding writes and read-index requests to the leader). One HTTP/2 connection per
/// peer: tonic multiplexes concurrent calls over it.
#[derive(Clone)]
pub struct PeerChannels {
    self_id: NodeId,
    self_name: String,
    cert: CertFiles,
    channels: Arc<Mutex<HashMap<(NodeId, String), Channel>>>,
    /// TLS settings of the append links, made once. If the certificate cannot be read, each
    /// append fails as to an unreachable peer, as a channel's calls do.
    link_tls: Result<Arc<rustls::ClientConfig>, String>,
    faults: Arc<FaultState>,
    round_trips: Arc<PeerRoundTrips>,
}

impl PeerChannels {
    pub fn new(self_id: NodeId, self_name: String, cert: CertFiles, faults: Arc<FaultState>) -> PeerChannels {
        let link_tls = cert.rustls_client(append_link::ALPN).map_err(|e| format!("{e:#}"));
        PeerChannels {
            self_id,
            self_name,
            cert,
            channels: Arc::default(),
            link_tls,
            faults,
            round_trips: Arc::default(),
        }
    }

    /// Round-trip times to each peer, for `etcd_network_peer_round_trip_time_seconds`.
    pub fn round_trips(&self) -> Arc<PeerRoundTrips> {
        self.round_trips.clone()
    }

    pub fn self_id(&self) -> NodeId {
        self.self_id
    }

    pub fn faults(&self) -> &Arc<FaultState> {
        &self.faults
    }

    /// Sends one request to `target` through the lab's simulated network: a lost request
    /// or a lost answer looks to the caller exactly like a peer that never answered, after
    /// `timeout`; a slow link adds its delays.
    pub async fn deliver<T, F>(&self, target: NodeId, timeout: Duration, call: F) -> Result<T, tonic::Status>
    where
        F: Future<Output = Result<T, tonic::Status>>,
    {
        let verdict = self.faults.verdict(target);
        if verdict == Verdict::default() {
            // A healthy link: no timer at all (even a zero sleep waits for the timer wheel's
            // next tick, about a millisecond, on every message).
            return call.await;
        }
        let started = tokio::time::Instant::now();
        let lost = || tonic::Status::deadline_exceeded("no answer before the timeout");
        if verdict.request_lost {
            tokio::time::sleep(timeout).await;
            return Err(lost());
        }
        if !verdict.request_delay.is_zero() {
            tokio::time::sleep(verdict.request_delay).await;
        }
        let answer = call.await;
        if verdict.response_lost {
            tokio::time::sleep_until(started + timeout).await;
            return Err(lost());
        }
        if !verdict.response_delay.is_zero() {
            tokio::time::sleep(verdict.response_delay).await;
        }
        answer
    }

    /// Sends one Raft call to `target` as [`Self::deliver`] does, and through step mode: the
    /// request may wait in the step queue before it leaves, and its answer once it is back.
    /// A dropped message looks to the caller like one lost by the network.
    pub async fn deliver_raft<T, F>(
        &self,
        target: NodeId,
        timeout: Duration,
        request: impl FnOnce() -> step::Message,
        call: F,
        answer: impl FnOnce(&T) -> step::Message,
    ) -> Result<T, tonic::Status>
    where
        F: Future<Output = Result<T, tonic::Status>>,
    {
        let step = self.faults.step();
        let started = tokio::time::Instant::now();
        let lost = || async move {
            tokio::time::sleep_until(started + timeout).await;
            tonic::Status::deadline_exceeded("no answer before the timeout")
        };
        if step.pass(request).await == Release::Drop {
            return Err(lost().await);
        }
        let answered = self.deliver(target, timeout, call).await?;
        if step.pass(|| answer(&answered)).await == Release::Drop {
            return Err(lost().await);
        }
        Ok(answered)
    }

    /// A client for the peer port of `target` at `peer_url`; connects lazily.
    pub fn client(&self, target: NodeId, peer_url: &str) -> Result<RaftPeerClient<Channel>, String> {
        Ok(RaftPeerClient::new(self.channel(target, peer_url)?)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE))
    }

    /// The shared channel to `target`, for the peer port's other services.
    pub fn channel(&self, target: NodeId, peer_url: &str) -> Result<Channel, String> {
        let key = (target, peer_url.to_string());
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&key) {
            Some(c) => c.clone(),
            None => {
                let tls = self.cert.client_tls().map_err(|e| format!("{e:#}"))?;
                let channel = Endpoint::from_shared(peer_url.to_string())
                    .map_err(|e| format!("bad peer URL {peer_url}: {e}"))?
                    .tls_config(tls)
                    .map_err(|e| format!("TLS settings for {peer_url}: {e}"))?
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(1))
                    .keep_alive_timeout(Duration::from_secs(3))
                    .connect_lazy();
                channels.insert(key, channel.clone());
                channel
            }
        };
        Ok(channel)
    }
}

/// openraft's factory of connections to other members.
pub struct PeerNetwork {
    channels: PeerChannels,
}

impl PeerNetwork {
    pub fn new(channels: PeerChannels) -> PeerNetwork {
        PeerNetwork { channels }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &MemberNode) -> PeerConnection {
        PeerConnection {
            target,
            target_name: if node.name.is_empty() { format!("{target:x}") } else { node.name.clone() },
            client: self.channels.client(target, &node.peer_url),
            peer_url: node.peer_url.clone(),
            channels: self.channels.clone(),
            round_trip: self.channels.round_trips.to_peer(target),
            appends: None,
        }
    }
}

/// A connection to one other member, as openraft uses it.
pub struct PeerConnection {
    target: NodeId,
    target_name: String,
    client: Result<RaftPeerClient<Channel>, String>,
    channels: PeerChannels,
    /// Timed RPCs are the ones the peer answers without touching its disk (heartbeats and
    /// pre-votes), so they measure the network and the peer's responsiveness, as etcd's
    /// prober does, not the peer's fsync.
    round_trip: Arc<Histogram>,
    peer_url: String,
    /// The append link to the peer, dialed on first use and after any failure.
    appends: Option<AppendLink>,
}

/// Sends `req` on `link`, dialing one first if there is none, within `ttl`. Gives the link
/// back only if the call succeeded: after a failure or a timeout a late answer could still
/// arrive on it.
async fn append_call(
    peer_url: String,
    tls: Result<Arc<rustls::ClientConfig>, String>,
    link: Option<AppendLink>,
    req: pb::AppendEntriesRequest,
    ttl: Duration,
) -> Result<(pb::AppendEntriesResponse, AppendLink), tonic::Status> {
    let call = async {
        let mut link = match link {
            Some(link) => link,
            None => AppendLink::connect(&peer_url, tls.map_err(tonic::Status::unavailable)?).await?,
        };
        let resp = link.call(&req).await?;
        Ok((resp, link))
    };
    tokio::time::timeout(ttl, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer before the timeout")))
}

impl PeerConnection {
    fn client(&self) -> Result<RaftPeerClient<Channel>, RPCError> {
        self.client.clone().map_err(|why| RPCError::Unreachable(Unreachable::new(&AnyError::error(why))))
    }
}

fn request<T>(message: T, option: &RPCOption) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(option.soft_ttl());
    req
}

/// A failed call: unreachable if the peer could not be contacted at all (openraft then
/// backs off), a network error otherwise.
fn rpc_error(target: NodeId, status: tonic::Status) -> RPCError {
    let err = AnyError::error(format!("peer {target:x}: {}: {}", status.code(), status.message()));
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&err)),
        _ => RPCError::Network(NetworkError::new(&err)),
    }
}

fn decode_error(e: codec::DecodeError) -> RPCError {
    RPCError::Network(NetworkError::new(&AnyError::error(e.to_string())))
}

impl PeerConnection {
    /// A message from this member to the peer, for the step queue.
    fn outgoing(&self, kind: &'static str, term: u64) -> step::Message {
        step::Message {
            from: self.channels.self_name.clone(),
            to: self.target_name.clone(),
            kind,
            term,
            ..Default::default()
        }
    }

    /// The peer's answer to a message of ours, for the step queue.
    fn incoming(&self, kind: &'static str, term: u64) -> step::Message {
        step::Message {
            from: self.target_name.clone(),
            to: self.channels.self_name.clone(),
            kind,
            term,
            ..Default::default()
        }
    }

    fn vote_requested(&self, rpc: &VoteRequest, pre_vote: bool) {
        let kind = if pre_vote { "prevote_requested" } else { "vote_requested" };
        events::emit(kind, &[("peer", self.target_name.clone()), ("last_log", display_log_id(&rpc.last_log_id))]);
    }

    /// Reports a vote's outcome, with why a refusal happened as Raft sees it.
    fn vote_answered(&self, rpc: &VoteRequest, resp: &VoteResponse, pre_vote: bool) {
        let prefix = if pre_vote { "prevote" } else { "vote" };
        match refusal(rpc, resp, pre_vote) {
            None => events::emit(&format!("{prefix}_granted"), &[("peer", self.target_name.clone())]),
            Some(why) => {
                events::emit(&format!("{prefix}_refused"), &[("peer", self.target_name.clone()), ("why", why)])
            }
        }
    }

    fn vote_message(&self, rpc: &VoteRequest, pre_vote: bool) -> step::Message {
        let mut m = self.outgoing(if pre_vote { "prevote" } else { "vote" }, rpc.vote.leader_id.term);
        m.summary = format!(
            "{} {} for term {}, its last entry {}",
            self.channels.self_name,
            if pre_vote { "asks whether it could win" } else { "asks for a vote" },
            rpc.vote.leader_id.term,
            display_log_id(&rpc.last_log_id)
        );
        m
    }

    fn vote_answer_message(&self, rpc: &VoteRequest, resp: &pb::VoteResponse, pre_vote: bool) -> step::Message {
        let kind = if pre_vote { "prevote-response" } else { "vote-response" };
        match codec::vote_response_from_pb(resp) {
            Ok(resp) => {
                let mut m = self.incoming(kind, resp.vote.leader_id.term);
                m.summary = match refusal(rpc, &resp, pre_vote) {
                    None => "granted".to_string(),
                    Some(why) => format!("refused: {why}"),
                };
                m
            }
            Err(e) => {
                let mut m = self.incoming(kind, 0);
                m.summary = format!("unreadable: {e}");
                m
            }
        }
    }

    fn append_message(&self, rpc: &AppendEntriesRequest) -> step::Message {
        let mut m = self.outgoing("append", rpc.vote.leader_id.term);
        m.entries = rpc.entries.len() as u32;
        m.heartbeat = rpc.entries.is_empty();
        let commit = rpc.leader_commit.map(|l| l.index).unwrap_or(0);
        m.summary = match (rpc.entries.first(), rpc.entries.last()) {
            (Some(first), Some(last)) => {
                m.first_index = first.log_id.index;
                m.last_index = last.log_id.index;
                let what: Vec<String> = rpc.entries.iter().take(3).map(|e| entry_summary(&e.payload).1).collect();
                let more = rpc.entries.len().saturating_sub(what.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let range = if first.log_id.index == last.log_id.index {
                    format!("entry {}", first.log_id.index)
                } else {
                    format!("entries {}..{}", first.log_id.index, last.log_id.index)
                };
                format!("{range}: {}{more}; commit {commit}", what.join(", "))
            }
            _ => format!("heartbeat; commit {commit}"),
        };
        m
    }

    fn append_answer_message(&self, rpc: &AppendEntriesRequest, resp: &pb::AppendEntriesResponse) -> step::Message {
        let mut m = self.incoming("append-response", rpc.vote.leader_id.term);
        m.heartbeat = rpc.entries.is_empty();
        m.summary = match codec::append_response_from_pb(resp) {
            Ok(AppendEntriesResponse::Success) => match (rpc.entries.first(), rpc.entries.last()) {
                (Some(first), Some(last)) => {
                    (m.first_index, m.last_index) = (first.log_id.index, last.log_id.index);
                    format!("success: it holds entries up to {}", last.log_id.index)
                }
                _ => "success".to_string(),
            },
            Ok(AppendEntriesResponse::PartialSuccess(upto)) => {
                format!("partial success: it holds entries up to {}", display_log_id(&upto))
            }
            Ok(AppendEntriesResponse::Conflict) => {
                format!("conflict: its log does not hold our entry {}", display_log_id(&rpc.prev_log_id))
            }
            Ok(AppendEntriesResponse::HigherVote(v)) => {
                m.term = v.leader_id.term;
                format!("refused: it is in term {}", v.leader_id.term)
            }
            Err(e) => format!("unreadable: {e}"),
        };
        m
    }
}

/// Why a peer refused a vote, as Raft sees it; None when it granted it.
fn refusal(rpc: &VoteRequest, resp: &VoteResponse, pre_vote: bool) -> Option<String> {
    if resp.vote_granted {
        return None;
    }
    let ours = rpc.vote.leader_id.term;
    let theirs = resp.vote.leader_id.term;
    Some(if theirs > ours {
        format!("it is already in term {theirs}")
    } else if resp.last_log_id > rpc.last_log_id {
        format!(
            "its log is ahead of ours ({} vs {})",
            display_log_id(&resp.last_log_id),
            display_log_id(&rpc.last_log_id)
        )
    } else if pre_vote {
        "it still hears from a leader".to_string()
    } else {
        format!("it already voted for {:x} in term {theirs}", resp.vote.leader_id.voted_for)
    })
}

/// A log id as people read it: `term/index`, or `none`.
pub fn display_log_id(id: &Option<LogId>) -> String {
    id.map(|l| format!("{}/{}", l.leader_id.term, l.index)).unwrap_or_else(|| "none".to_string())
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError> {
        let range = rpc.entries.first().zip(rpc.entries.last()).map(|(f, l)| (f.log_id.index, l.log_id.index));
        if let Some((first, last)) = range {
            events::emit_range("append_sent", &self.target_name, first, last);
        }
        let stamp = |point| {
            if let Some((first, last)) = range {
                write_stages::stamp(first, last, point);
            }
        };
        let sent = Instant::now();
        stamp(Point::Sent);
        let link = self.appends.take();
        // A call that first dials the link pays the handshake: not the link's round trip.
        let timed = range.is_none() && link.is_some();
        let call = append_call(
            self.peer_url.clone(),
            self.channels.link_tls.clone(),
            link,
            codec::append_request_to_pb(&rpc),
            option.soft_ttl(),
        );
        let (resp, link) = self
            .channels
            .deliver_raft(
                self.target,
                option.soft_ttl(),
                || self.append_message(&rpc),
                call,
                |(resp, _)| self.append_answer_message(&rpc, resp),
            )
            .await
            .map_err(|s| rpc_error(self.target, s))?;
        self.appends = Some(link);
        if timed {
            // Heartbeats are answered without touching the disk: their round trip is the
            // network's (including any delay the lab injects).
            self.round_trip.observe(sent.elapsed().as_secs_f64());
        }
        let resp = codec::append_response_from_pb(&resp).map_err(decode_error)?;
        match (&resp, range) {
            (AppendEntriesResponse::Success, Some((first, last))) => {
                stamp(Point::Acked);
                events::emit_range("append_acked", &self.target_name, first, last)
            }
            (AppendEntriesResponse::Conflict, _) => events::emit(
                "conflict",
                &[
                    ("peer", self.target_name.clone()),
                    ("why", format!("its log does not hold our entry {}", display_log_id(&rpc.prev_log_id))),
                ],
            ),
            _ => {}
        }
        Ok(resp)
    }

    async fn vote(&mut self, rpc: VoteRequest, option: RPCOption) -> Result<VoteResponse, RPCError> {
        let mut client = self.client()?;
        self.vote_requested(&rpc, false);
        let call = client.vote(request(codec::vote_request_to_pb(&rpc), &option));
        let resp = self
            .channels
            .deliver_raft(
                self.target,
                option.soft_ttl(),
                || self.vote_message(&rpc, false),
                call,
                |resp| self.vote_answer_message(&rpc, resp.get_ref(), false),
            )
            .await
            .map_err(|s| rpc_error(self.target, s))?;
        let resp = codec::vote_response_from_pb(resp.get_ref()).map_err(decode_error)?;
        self.vote_answered(&rpc, &resp, false);
        Ok(resp)
    }

    async fn pre_vote(&mut self, rpc: VoteRequest, option: RPCOption) -> Result<VoteResponse, RPCError> {
        let mut client = self.client()?;
        self.vote_requested(&rpc, true);
        let sent = Instant::now();
        let call = client.pre_vote(request(codec::vote_request_to_pb(&rpc), &option));
        let resp = self
            .channels
            .deliver_raft(
                self.target,
                option.soft_ttl(),
                || self.vote_message(&rpc, true),
                call,
                |resp| self.vote_answer_message(&rpc, resp.get_ref(), true),
            )
            .await
            .map_err(|s| rpc_error(self.target, s))?;
        self.round_trip.observe(sent.elapsed().as_secs_f64());
        let resp = codec::vote_response_from_pb(resp.get_ref()).map_err(decode_error)?;
        self.vote_answered(&rpc, &resp, true);
        Ok(resp)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse, StreamingError> {
        let mut client = self.client().map_err(StreamingError::from)?;
        let meta = codec::snapshot_meta_to_pb(&vote, &snapshot.meta);
        let path = snapshot.snapshot.path.clone();
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            StreamingError::from(RPCError::Network(NetworkError::new(&AnyError::error(format!(
                "opening snapshot {}: {e}",
                path.display()
            )))))
        })?;
        let chunks = async_stream::stream! {
            yield pb::SnapshotChunk { payload: Some(pb::snapshot_chunk::Payload::Meta(meta)) };
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                match file.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        yield pb::SnapshotChunk { payload: Some(pb::snapshot_chunk::Payload::Data(buf.into())) };
                    }
                    Err(e) => {
                        // Ending the stream early makes the receiver reject the snapshot.
                        tracing::warn!("reading snapshot {}: {e}", path.display());
                        break;
                    }
                }
            }
        };
        let mut req = tonic::Request::new(chunks);
        req.set_timeout(option.soft_ttl());
        let target = self.target;
        let channels = self.channels.clone();
        let index = snapshot.meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let mut held = self.outgoing("snapshot", vote.leader_id.term);
        held.last_index = index;
        held.summary = format!("snapshot of everything up to entry {index}");
        let mut answer = self.incoming("snapshot-response", vote.leader_id.term);
        answer.summary = format!("installed the snapshot up to entry {index}");
        let send = async move {
            channels
                .deliver_raft(target, option.soft_ttl(), || held, client.install_snapshot(req), |_| answer)
                .await
                .map_err(|s| StreamingError::from(rpc_error(target, s)))
        };
        let resp = tokio::select! {
            resp = send => resp?,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let vote = resp.get_ref().vote.as_ref().map(codec::vote_from_pb).ok_or_else(|| {
            StreamingError::from(decode_error(codec::DecodeError {
                what: "snapshot response",
                why: "missing field `vote`".into(),
            }))
        })?;
        events::emit("snapshot_sent", &[("peer", self.target_name.clone()), ("index", index.to_string())]);
        Ok(SnapshotResponse { vote })
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse, RPCError> {
        let mut client = self.client()?;
        let msg = pb::TransferLeaderRequest {
            from_leader: Some(codec::vote_to_pb(req.from_leader())),
            to_node_id: *req.to_node_id(),
            last_log_id: req.last_log_id().map(codec::log_id_to_pb),
        };
        let call = client.transfer_leader(request(msg, &option));
        let resp =
            self.channels.deliver(self.target, option.soft_ttl(), call).await.map_err(|s| rpc_error(self.target, s))?;
        codec::transfer_leader_response_from_pb(resp.get_ref()).map_err(decode_error)
    }

    fn backoff(&self) -> Option<Backoff> {
        // A dead peer is retried often enough to notice its return within a heartbeat or two.
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(100))))
    }
}
