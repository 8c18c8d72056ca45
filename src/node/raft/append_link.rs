//! The append link: Raft's AppendEntries on a TLS stream of its own, beside the peer port's
//! gRPC services.
//!
//! Every write crosses a follower's link once each way, and it is the longest stage of a
//! single client's put after the fsyncs. Carried as an HTTP/2 stream through tonic, each
//! crossing woke the connection tasks at both ends, framed, flow-controlled and buffered
//! the message, and cost about 0.2 ms on loopback; one TLS record each way costs well
//! under 0.1 ms. So a leader's replication task dials the peer port offering only
//! [`ALPN`], and the follower's port hands such connections here instead of to tonic.
//! Same port, same certificates, same mutual TLS: only members may speak on it.
//!
//! The protocol is a request, then its answer, in turn: each frame is a 4-byte big-endian
//! length and a protobuf message, an `AppendEntriesRequest` from the leader and an
//! `AppendLinkAnswer` back. openraft sends one request at a time per peer and waits for
//! its answer, so nothing needs matching. A failure, on either side, ends the link; the
//! leader dials a new one for its next request, so a late answer can never be taken for
//! the answer to another request.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::Status;

use crate::node::member::Member;
use crate::node::raft::codec;
use crate::node::raft::network::MAX_PEER_MESSAGE;
use crate::node::raft::peer_service::raft_failure;
use crate::node::tls::Divert;
use crate::pki::PeerIdentity;
use crate::pki::require_member_identity;
use crate::proto::rafttypb as pb;
use crate::proto::rafttypb::append_link_answer::Answer;

/// The ALPN protocol of the link, negotiated in the TLS handshake on the peer port.
pub const ALPN: &[u8] = b"raftty-append/1";

/// How long the leader waits for the TCP connection (the TLS handshake counts against the
/// request's own deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The leader's end of a link to one follower.
pub struct AppendLink {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
}

impl AppendLink {
    /// Dials the peer port at `peer_url` (`https://host:port`) and agrees on the link's
    /// protocol. A peer that cannot be reached is `Unavailable`, as a gRPC call would be.
    pub async fn connect(peer_url: &str, config: Arc<ClientConfig>) -> Result<AppendLink, Status> {
        let uri: http::Uri =
            peer_url.parse().map_err(|e| Status::invalid_argument(format!("bad peer URL {peer_url}: {e}")))?;
        let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
            return Err(Status::invalid_argument(format!("peer URL {peer_url} has no host and port")));
        };
        let unreachable = |e: std::io::Error| Status::unavailable(format!("append link to {peer_url}: {e}"));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                Status::unavailable(format!("append link to {peer_url}: no connection within {CONNECT_TIMEOUT:?}"))
            })?
            .map_err(unreachable)?;
        // A frame must leave at once, not wait for the previous one's ACK.
        tcp.set_nodelay(true).map_err(unreachable)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Status::invalid_argument(format!("peer URL {peer_url}: {e}")))?;
        let tls = TlsConnector::from(config).connect(name, tcp).await.map_err(unreachable)?;
        if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
            return Err(Status::unimplemented(format!("the member at {peer_url} does not speak the append link")));
        }
        Ok(AppendLink { tls })
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&mut self, req: &pb::AppendEntriesRequest) -> Result<pb::AppendEntriesResponse, Status> {
        exchange(&mut self.tls, req).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    link: &mut S,
    req: &pb::AppendEntriesRequest,
) -> Result<pb::AppendEntriesResponse, Status> {
    let broken = |e: std::io::Error| Status::unavailable(format!("append link: {e}"));
    write_frame(link, req).await.map_err(broken)?;
    let answer: pb::AppendLinkAnswer = read_frame(link).await.map_err(broken)?;
    match answer.answer {
        Some(Answer::Response(resp)) => Ok(resp),
        Some(Answer::Refused(refused)) => Err(Status::new(refused.code.into(), refused.message)),
        None => Err(Status::internal("append link: an answer with neither a response nor a refusal")),
    }
}

/// How the peer port hands the link's connections to the follower's end: each in a task of
/// its own.
pub fn divert(member: Arc<Member>) -> Divert {
    Divert {
        alpn: ALPN,
        to: Box::new(move |tls| {
            let member = member.clone();
            tokio::spawn(async move {
                let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                serve(member, tls, certificate.as_deref()).await
            });
        }),
    }
}

/// The follower's end: answers the requests on `tls` in turn until the leader hangs up,
/// something fails, or the member stops.
pub async fn serve<S>(member: Arc<Member>, mut tls: S, peer_certificate: Option<&[u8]>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The link is for members only, as the port's gRPC services are.
    if let Err(refused) = require_member_identity(peer_certificate.and_then(PeerIdentity::of_der)) {
        let _ = write_frame(&mut tls, &refusal(refused)).await;
        return;
    }
    let stopping = member.until_stopping();
    tokio::pin!(stopping);
    loop {
        let req = tokio::select! {
            _ = &mut stopping => return,
            req = read_frame::<pb::AppendEntriesRequest, _>(&mut tls) => req,
        };
        let Ok(req) = req else {
            // The leader hung up (it dials again when it needs to) or sent garbage.
            return;
        };
        let answer = match append(&member, req).await {
            Ok(resp) => pb::AppendLinkAnswer { answer: Some(Answer::Response(resp)) },
            Err(status) => refusal(status),
        };
        let refused = matches!(answer.answer, Some(Answer::Refused(_)));
        if write_frame(&mut tls, &answer).await.is_err() || refused {
            return;
        }
    }
}

/// One AppendEntries, handed to Raft.
async fn append(member: &Member, req: pb::AppendEntriesRequest) -> Result<pb::AppendEntriesResponse, Status> {
    let rpc = codec::append_request_from_pb(req)?;
    let resp = member.raft.append_entries(rpc).await.map_err(raft_failure)?;
    if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
        member.metrics.heard_from_leader();
    }
    Ok(codec::append_response_to_pb(&resp))
}

fn refusal(status: Status) -> pb::AppendLinkAnswer {
    pb::AppendLinkAnswer {
        answer: Some(Answer::Refused(pb::AppendLinkRefusal {
            code: status.code() as i32,
            message: status.message().to_string(),
        })),
    }
}

/// Writes `message` as one frame, in one write, and flushes it.
async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, message: &impl Message) -> std::io::Result<()> {
    let len = message.encoded_len();
    if len > MAX_PEER_MESSAGE {
        return Err(std::io::Error::other(format!("a {len}-byte message is over the link's {MAX_PEER_MESSAGE}")));
    }
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    message.encode(&mut frame).map_err(std::io::Error::other)?;
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one frame and decodes it; a frame longer than any message may be is an error, not
/// an allocation.
async fn read_frame<M: Message + Default, R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<M> {
    let len = r.read_u32().await? as usize;
    if len > MAX_PEER_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {len}-byte frame is over the link's {MAX_PEER_MESSAGE}"),
        ));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    M::decode(body.as_slice()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_reads_back_as_the_message_written() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let req = pb::AppendEntriesRequest { entries: vec![Default::default(); 3], ..Default::default() };
        write_frame(&mut a, &req).await.unwrap();
        let read: pb::AppendEntriesRequest = read_frame(&mut b).await.unwrap();
        assert_eq!(read, req);
    }

    #[tokio::test]
    async fn a_frame_longer_than_any_message_is_refused_before_it_is_read() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_u32(u32::MAX).await.unwrap();
        let err = read_frame::<pb::AppendEntriesRequest, _>(&mut b).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the link's"), "{err}");
    }

    #[tokio::test]
    async fn a_refusal_reaches_the_leader_as_the_status_a_call_would_have_failed_with() {
        let (mut leader, mut follower) = tokio::io::duplex(1024);
        let follower = async move {
            let _: pb::AppendEntriesRequest = read_frame(&mut follower).await.unwrap();
            write_frame(&mut follower, &refusal(Status::permission_denied("not a member"))).await.unwrap();
        };
        let req = pb::AppendEntriesRequest::default();
        let (status, ()) = tokio::join!(exchange(&mut leader, &req), follower);
        let status = status.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(status.message(), "not a member");
    }

    #[tokio::test]
    async fn a_follower_that_hangs_up_mid_answer_is_unavailable() {
        let (mut leader, mut follower) = tokio::io::duplex(1024);
        let follower = async move {
            let _: pb::AppendEntriesRequest = read_frame(&mut follower).await.unwrap();
            follower.write_u32(100).await.unwrap();
        };
        let req = pb::AppendEntriesRequest::default();
        let (status, ()) = tokio::join!(exchange(&mut leader, &req), follower);
        assert_eq!(status.unwrap_err().code(), tonic::Code::Unavailable);
    }
}
