//! Conversions between openraft's types and their protobuf form (`proto/raftty/raft.proto`),
//! used both on the peer wire and in the log store.
//!
//! Decoding never panics: a message with a missing required field is a [`DecodeError`],
//! because it may come from a damaged file or a misbehaving peer.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use openraft::EntryPayload as Payload;
use openraft::vote::RaftLeaderId;

use crate::node::raft::types::*;
use crate::proto::rafttypb as pb;

#[derive(Debug, thiserror::Error)]
#[error("malformed {what}: {why}")]
pub struct DecodeError {
    pub what: &'static str,
    pub why: String,
}

impl DecodeError {
    fn missing(what: &'static str, field: &str) -> Self {
        DecodeError { what, why: format!("missing field `{field}`") }
    }
}

impl From<DecodeError> for std::io::Error {
    fn from(e: DecodeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

impl From<DecodeError> for tonic::Status {
    fn from(e: DecodeError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

pub fn log_id_to_pb(id: &LogId) -> pb::LogId {
    pb::LogId { term: id.leader_id.term, index: id.index }
}

pub fn log_id_from_pb(id: &pb::LogId) -> LogId {
    LogId::new(CommittedLeaderId::new(id.term), id.index)
}

pub fn opt_log_id_to_pb(id: &Option<LogId>) -> Option<pb::LogId> {
    id.as_ref().map(log_id_to_pb)
}

pub fn opt_log_id_from_pb(id: &Option<pb::LogId>) -> Option<LogId> {
    id.as_ref().map(log_id_from_pb)
}

pub fn vote_to_pb(v: &Vote) -> pb::Vote {
    pb::Vote { term: v.leader_id.term, node_id: *v.leader_id.node_id(), committed: v.committed }
}

pub fn vote_from_pb(v: &pb::Vote) -> Vote {
    let leader_id = LeaderId::new(v.term, v.node_id);
    Vote { leader_id, committed: v.committed }
}

fn required_vote(v: &Option<pb::Vote>, what: &'static str) -> Result<Vote, DecodeError> {
    v.as_ref().map(vote_from_pb).ok_or_else(|| DecodeError::missing(what, "vote"))
}

pub fn membership_to_pb(m: &Membership) -> pb::Membership {
    pb::Membership {
        configs: m.get_joint_config().iter().map(|c| pb::NodeIdSet { ids: c.iter().copied().collect() }).collect(),
        nodes: m.nodes().map(|(id, n)| (*id, n.clone())).collect(),
    }
}

pub fn membership_from_pb(m: &pb::Membership) -> Result<Membership, DecodeError> {
    let configs: Vec<BTreeSet<NodeId>> = m.configs.iter().map(|c| c.ids.iter().copied().collect()).collect();
    let nodes: BTreeMap<NodeId, MemberNode> = m.nodes.iter().map(|(k, v)| (*k, v.clone())).collect();
    Membership::new(configs, nodes).map_err(|e| DecodeError { what: "membership", why: e.to_string() })
}

pub fn entry_to_pb(e: &Entry) -> pb::Entry {
    let mut out = pb::Entry { term: e.log_id.leader_id.term, index: e.log_id.index, ..Default::default() };
    match &e.payload {
        Payload::Blank => {}
        Payload::Normal(cmd) => out.command = Some(cmd.clone()),
        Payload::Membership(m) => out.membership = Some(membership_to_pb(m)),
    }
    out
}

pub fn entry_from_pb(e: pb::Entry) -> Result<Entry, DecodeError> {
    let log_id = LogId::new(CommittedLeaderId::new(e.term), e.index);
    let payload = match (e.command, e.membership) {
        (None, None) => Payload::Blank,
        (Some(cmd), None) => Payload::Normal(cmd),
        (None, Some(m)) => Payload::Membership(membership_from_pb(&m)?),
        (Some(_), Some(_)) => {
            return Err(DecodeError { what: "log entry", why: "both a command and a membership".into() });
        }
    };
    Ok(Entry { log_id, payload })
}

pub fn vote_request_to_pb(r: &VoteRequest) -> pb::VoteRequest {
    pb::VoteRequest {
        vote: Some(vote_to_pb(&r.vote)),
        last_log_id: opt_log_id_to_pb(&r.last_log_id),
        leadership_transfer: r.leadership_transfer,
    }
}

pub fn vote_request_from_pb(r: &pb::VoteRequest) -> Result<VoteRequest, DecodeError> {
    let mut req = VoteRequest::new(required_vote(&r.vote, "vote request")?, opt_log_id_from_pb(&r.last_log_id));
    req.leadership_transfer = r.leadership_transfer;
    Ok(req)
}

pub fn vote_response_to_pb(r: &VoteResponse) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&r.vote)),
        vote_granted: r.vote_granted,
        last_log_id: opt_log_id_to_pb(&r.last_log_id),
    }
}

pub fn vote_response_from_pb(r: &pb::VoteResponse) -> Result<VoteResponse, DecodeError> {
    Ok(VoteResponse::new(required_vote(&r.vote, "vote response")?, opt_log_id_from_pb(&r.last_log_id), r.vote_granted))
}

pub fn append_request_to_pb(r: &AppendEntriesRequest) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&r.vote)),
        prev_log_id: opt_log_id_to_pb(&r.prev_log_id),
        entries: r.entries.iter().map(entry_to_pb).collect(),
        leader_commit: opt_log_id_to_pb(&r.leader_commit),
    }
}

pub fn append_request_from_pb(r: pb::AppendEntriesRequest) -> Result<AppendEntriesRequest, DecodeError> {
    Ok(AppendEntriesRequest {
        vote: required_vote(&r.vote, "append-entries request")?,
        prev_log_id: opt_log_id_from_pb(&r.prev_log_id),
        leader_commit: opt_log_id_from_pb(&r.leader_commit),
        entries: r.entries.into_iter().map(entry_from_pb).collect::<Result<_, _>>()?,
    })
}

pub fn append_response_to_pb(r: &AppendEntriesResponse) -> pb::AppendEntriesResponse {
    use pb::append_entries_response::Outcome;
    let mut out = pb::AppendEntriesResponse::default();
    match r {
        AppendEntriesResponse::Success => out.set_outcome(Outcome::Success),
        AppendEntriesResponse::PartialSuccess(id) => {
            out.set_outcome(Outcome::PartialSuccess);
            out.last_log_id = opt_log_id_to_pb(id);
        }
        AppendEntriesResponse::Conflict => out.set_outcome(Outcome::Conflict),
        AppendEntriesResponse::HigherVote(v) => {
            out.set_outcome(Outcome::HigherVote);
            out.higher_vote = Some(vote_to_pb(v));
        }
    }
    out
}

pub fn append_response_from_pb(r: &pb::AppendEntriesResponse) -> Result<AppendEntriesResponse, DecodeError> {
    use pb::append_entries_response::Outcome;
    let outcome = Outcome::try_from(r.outcome)
        .map_err(|_| DecodeError { what: "append-entries response", why: format!("unknown outcome {}", r.outcome) })?;
    Ok(match outcome {
        Outcome::Success => AppendEntriesResponse::Success,
        Outcome::PartialSuccess => AppendEntriesResponse::PartialSuccess(opt_log_id_from_pb(&r.last_log_id)),
        Outcome::Conflict => AppendEntriesResponse::Conflict,
        Outcome::HigherVote => {
            AppendEntriesResponse::HigherVote(required_vote(&r.higher_vote, "append-entries response")?)
        }
    })
}

pub fn snapshot_meta_to_pb(vote: &Vote, meta: &SnapshotMeta) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        vote: Some(vote_to_pb(vote)),
        last_log_id: opt_log_id_to_pb(&meta.last_log_id),
        last_membership_log_id: opt_log_id_to_pb(meta.last_membership.log_id()),
        last_membership: Some(membership_to_pb(meta.last_membership.membership())),
        snapshot_id: String::new(),
    }
}

pub fn snapshot_meta_from_pb(m: &pb::SnapshotMeta) -> Result<(Vote, SnapshotMeta), DecodeError> {
    let vote = required_vote(&m.vote, "snapshot meta")?;
    let membership =
        m.last_membership.as_ref().ok_or_else(|| DecodeError::missing("snapshot meta", "last_membership"))?;
    let meta = SnapshotMeta {
        last_log_id: opt_log_id_from_pb(&m.last_log_id),
        last_membership: StoredMembership::new(
            opt_log_id_from_pb(&m.last_membership_log_id),
            membership_from_pb(membership)?,
        ),
    };
    Ok((vote, meta))
}

pub fn transfer_leader_request_from_pb(r: &pb::TransferLeaderRequest) -> Result<TransferLeaderRequest, DecodeError> {
    Ok(TransferLeaderRequest::new(
        required_vote(&r.from_leader, "transfer-leader request")?,
        r.to_node_id,
        opt_log_id_from_pb(&r.last_log_id),
    ))
}

pub fn transfer_leader_response_to_pb(r: &TransferLeaderResponse) -> pb::TransferLeaderResponse {
    use openraft::raft::TransferLeaderError;
    use pb::transfer_leader_response::Outcome;
    let mut out = pb::TransferLeaderResponse::default();
    match r {
        Ok(()) => out.set_outcome(Outcome::Ok),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => {
            out.set_outcome(Outcome::VoteChanged);
            out.expected_vote = Some(vote_to_pb(expected));
            out.actual_vote = Some(vote_to_pb(actual));
        }
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
            out.set_outcome(Outcome::LogNotFlushed);
            out.expected_log_id = opt_log_id_to_pb(expected);
            out.actual_log_id = opt_log_id_to_pb(actual);
        }
    }
    out
}

pub fn transfer_leader_response_from_pb(r: &pb::TransferLeaderResponse) -> Result<TransferLeaderResponse, DecodeError> {
    use openraft::raft::TransferLeaderError;
    use pb::transfer_leader_response::Outcome;
    let what = "transfer-leader response";
    let outcome = Outcome::try_from(r.outcome)
        .map_err(|_| DecodeError { what, why: format!("unknown outcome {}", r.outcome) })?;
    Ok(match outcome {
        Outcome::Ok => Ok(()),
        Outcome::VoteChanged => Err(TransferLeaderError::VoteChanged {
            expected: required_vote(&r.expected_vote, what)?,
            actual: required_vote(&r.actual_vote, what)?,
        }),
        Outcome::LogNotFlushed => Err(TransferLeaderError::LogNotFlushed {
            expected: opt_log_id_from_pb(&r.expected_log_id),
            actual: opt_log_id_from_pb(&r.actual_log_id),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::PutRequest;
    use crate::proto::rafttypb::command::Op;

    #[test]
    fn entries_round_trip() {
        let node = |name: &str| MemberNode {
            name: name.into(),
            peer_url: format!("https://{name}"),
            client_url: String::new(),
        };
        let m = Membership::new(
            vec![BTreeSet::from([1, 2])],
            BTreeMap::from([(1, node("a")), (2, node("b")), (3, node("c"))]),
        )
        .unwrap();
        let put = Command {
            op: Some(Op::Put(PutRequest { key: "k".into(), value: "v".into(), ..Default::default() })),
            user: String::new(),
        };
        let entries = vec![
            Entry { log_id: LogId::new(CommittedLeaderId::new(3), 7), payload: Payload::Blank },
            Entry { log_id: LogId::new(CommittedLeaderId::new(3), 8), payload: Payload::Normal(put) },
            Entry { log_id: LogId::new(CommittedLeaderId::new(4), 9), payload: Payload::Membership(m) },
        ];
        for e in entries {
            let back = entry_from_pb(entry_to_pb(&e)).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn a_vote_request_without_vote_is_rejected() {
        let err = vote_request_from_pb(&pb::VoteRequest::default()).unwrap_err();
        assert!(err.to_string().contains("missing field `vote`"), "{err}");
    }
}
