//! The receiving end of the peer port's gRPC: Raft messages from other members (but
//! AppendEntries, which comes on the append link), plus the two client-path requests a
//! follower sends its leader (forwarded writes and read indexes).
//! Only holders of a member certificate of this lab may call it.

use std::sync::Arc;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::node::member::Member;
use crate::node::raft::codec;
use crate::node::raft::snapshot::SnapshotFile;
use crate::node::raft::types::*;
use crate::pki::require_member;
use crate::proto::rafttypb as pb;
use crate::proto::rafttypb::raft_peer_server::RaftPeer;

pub struct PeerService {
    member: Arc<Member>,
}

impl PeerService {
    pub fn new(member: Arc<Member>) -> PeerService {
        PeerService { member }
    }
}

/// A call Raft could not serve, as the peer port (gRPC or append link) reports it.
pub(crate) fn raft_failure(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft: {e}"))
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn vote(&self, req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        require_member(&req)?;
        let rpc = codec::vote_request_from_pb(req.get_ref())?;
        let resp = self.member.raft.vote(rpc).await.map_err(raft_failure)?;
        Ok(Response::new(codec::vote_response_to_pb(&resp)))
    }

    async fn pre_vote(&self, req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        require_member(&req)?;
        let rpc = codec::vote_request_from_pb(req.get_ref())?;
        let resp = self.member.raft.pre_vote(rpc).await.map_err(raft_failure)?;
        Ok(Response::new(codec::vote_response_to_pb(&resp)))
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        require_member(&req)?;
        let mut chunks = req.into_inner();
        let (vote, meta) = match chunks.next().await {
            Some(Ok(pb::SnapshotChunk { payload: Some(pb::snapshot_chunk::Payload::Meta(meta)) })) => {
                codec::snapshot_meta_from_pb(&meta)?
            }
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(Status::invalid_argument("a snapshot stream must start with its meta"));
            }
        };
        // Received into a file of our own snapshot folder, so installing it is a rename.
        let path = self.member.state_machine.incoming_snapshot_path();
        let received = async {
            let mut file = tokio::fs::File::create(&path).await?;
            while let Some(chunk) = chunks.next().await {
                match chunk.map_err(std::io::Error::other)?.payload {
                    Some(pb::snapshot_chunk::Payload::Data(data)) => file.write_all(&data).await?,
                    _ => {
                        return Err(std::io::Error::other("a snapshot stream carries one meta, then only data"));
                    }
                }
            }
            file.sync_all().await?;
            std::io::Result::Ok(())
        };
        if let Err(e) = received.await {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(Status::aborted(format!("receiving snapshot: {e}")));
        }
        let snapshot = Snapshot { meta, snapshot: SnapshotFile { path: path.clone() } };
        // On success the state machine owns the file (it moves it into place).
        let resp = match self.member.raft.install_full_snapshot(vote, snapshot).await {
            Ok(resp) => resp,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(raft_failure(e));
            }
        };
        Ok(Response::new(pb::SnapshotResponse { vote: Some(codec::vote_to_pb(&resp.vote)) }))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        require_member(&req)?;
        let rpc = codec::transfer_leader_request_from_pb(req.get_ref())?;
        let resp = self.member.raft.handle_transfer_leader(rpc).await.map_err(raft_failure)?;
        Ok(Response::new(codec::transfer_leader_response_to_pb(&resp)))
    }

    async fn propose(&self, req: Request<pb::ProposeRequest>) -> Result<Response<pb::ProposeResponse>, Status> {
        require_member(&req)?;
        let command = req.into_inner().command.ok_or_else(|| Status::invalid_argument("no command to propose"))?;
        let (result, log_index) = self.member.serve_forwarded_proposal(command).await?;
        Ok(Response::new(pb::ProposeResponse { result: Some(result), log_index }))
    }

    async fn publish(&self, req: Request<pb::PublishRequest>) -> Result<Response<pb::PublishResponse>, Status> {
        require_member(&req)?;
        let req = req.into_inner();
        let node = req.node.ok_or_else(|| Status::invalid_argument("nothing to publish"))?;
        self.member.serve_publish(req.id, node).await?;
        Ok(Response::new(pb::PublishResponse {}))
    }

    async fn read_index(&self, req: Request<pb::ReadIndexRequest>) -> Result<Response<pb::ReadIndexResponse>, Status> {
        require_member(&req)?;
        let read_index = self.member.serve_read_index().await?;
        Ok(Response::new(pb::ReadIndexResponse { read_index }))
    }
}
