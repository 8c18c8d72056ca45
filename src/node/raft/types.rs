//! raftty's openraft type configuration and the aliases the rest of the code uses.
//!
//! Log entries carry a [`Command`] (an etcd write request) and produce a [`CommandResult`];
//! members are identified by etcd-style random 64-bit ids and described by a [`MemberNode`].
//! Leader ids follow standard Raft: at most one leader per term.

use std::fmt;

pub use crate::proto::rafttypb::Command;
pub use crate::proto::rafttypb::CommandResult;
pub use crate::proto::rafttypb::MemberNode;
use crate::proto::rafttypb::command::Op;

openraft::declare_raft_types!(
    /// The openraft type configuration of a raftty member.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = MemberNode,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

/// A member's id: etcd's member id, a random non-zero 64-bit number never reused.
pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig, crate::node::raft::state_machine::StateMachineStore>;
pub type LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>;
pub type CommittedLeaderId = openraft::alias::CommittedLeaderIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type EntryPayload = openraft::alias::EntryPayloadOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, MemberNode>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type SnapshotData = crate::node::raft::snapshot::SnapshotFile;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub type LogState = openraft::storage::LogState<TypeConfig>;
pub type IOFlushed = openraft::storage::IOFlushed<TypeConfig>;
pub type EntryResponder = openraft::storage::EntryResponder<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
pub type RPCError<E = openraft::errors::Infallible> = openraft::errors::RPCError<TypeConfig, E>;
pub type RaftError<E = openraft::errors::Infallible> = openraft::errors::RaftError<TypeConfig, E>;
pub type StreamingError = openraft::errors::StreamingError<TypeConfig>;
pub type ClientWriteError = openraft::errors::ClientWriteError<TypeConfig>;
pub type LinearizableReadError = openraft::errors::LinearizableReadError<TypeConfig>;
pub type ForwardToLeader = openraft::errors::ForwardToLeader<TypeConfig>;
pub type VoteRequest = openraft::raft::VoteRequest<TypeConfig>;
pub type VoteResponse = openraft::raft::VoteResponse<TypeConfig>;
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<TypeConfig>;
pub type SnapshotResponse = openraft::raft::SnapshotResponse<TypeConfig>;
pub type TransferLeaderRequest = openraft::raft::TransferLeaderRequest<TypeConfig>;
pub type TransferLeaderResponse = openraft::raft::TransferLeaderResponse<TypeConfig>;

/// A log entry's one-line summary, as the log reader shows it: `put /registry/pods/a`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let range = |k: &[u8], end: &[u8]| {
            if end.is_empty() { key(k) } else { format!("[{}, {})", key(k), key(end)) }
        };
        match &self.op {
            Some(Op::Put(p)) => write!(f, "put {} ({} bytes)", key(&p.key), p.value.len()),
            Some(Op::DeleteRange(d)) => write!(f, "delete {}", range(&d.key, &d.range_end)),
            Some(Op::Txn(t)) => write!(
                f,
                "txn {} compares, {} then-ops, {} else-ops",
                t.compare.len(),
                t.success.len(),
                t.failure.len()
            ),
            Some(Op::Compaction(c)) => write!(f, "compact to revision {}", c.revision),
            Some(Op::LeaseGrant(l)) => write!(f, "lease grant {:x} ttl {}s", l.id, l.ttl),
            Some(Op::LeaseRevoke(l)) => write!(f, "lease revoke {:x}", l.id),
            Some(Op::LeaseCheckpoint(c)) => {
                write!(f, "lease checkpoint ({} leases)", c.checkpoints.len())
            }
            Some(Op::Alarm(a)) => {
                use crate::proto::etcdserverpb::AlarmType;
                use crate::proto::etcdserverpb::alarm_request::AlarmAction;
                let action = if a.action() == AlarmAction::Deactivate { "disarm" } else { "raise" };
                let kind = AlarmType::try_from(a.alarm).map(|t| t.as_str_name()).unwrap_or("UNKNOWN");
                write!(f, "alarm {action} {kind} of {:x}", a.member_id)
            }
            Some(Op::AuthEnable(_)) => write!(f, "auth enable"),
            Some(Op::AuthDisable(_)) => write!(f, "auth disable"),
            Some(Op::UserAdd(u)) => write!(f, "user add {}", u.name),
            Some(Op::UserDelete(u)) => write!(f, "user delete {}", u.name),
            Some(Op::UserChangePassword(u)) => write!(f, "user passwd {}", u.name),
            Some(Op::UserGrantRole(u)) => write!(f, "user grant-role {} {}", u.user, u.role),
            Some(Op::UserRevokeRole(u)) => write!(f, "user revoke-role {} {}", u.name, u.role),
            Some(Op::RoleAdd(r)) => write!(f, "role add {}", r.name),
            Some(Op::RoleDelete(r)) => write!(f, "role delete {}", r.role),
            Some(Op::RoleGrantPermission(r)) => write!(f, "role grant-permission {}", r.name),
            Some(Op::RoleRevokePermission(r)) => write!(f, "role revoke-permission {} {}", r.role, key(&r.key)),
            Some(Op::AssignToken(t)) => write!(f, "authenticate {}", t.user),
            None => write!(f, "empty command"),
        }
    }
}

/// An entry as the log reader shows it: its kind (`normal`, `blank`, `membership`) and one
/// line saying what it does.
pub fn entry_summary(payload: &EntryPayload) -> (&'static str, String) {
    match payload {
        EntryPayload::Blank => ("blank", "new leader's first entry".to_string()),
        EntryPayload::Normal(cmd) => ("normal", cmd.to_string()),
        EntryPayload::Membership(m) => {
            let name = |id: &u64| {
                m.get_node(id).map(|n| n.name.clone()).filter(|n| !n.is_empty()).unwrap_or(format!("{id:x}"))
            };
            let configs: Vec<String> = m
                .get_joint_config()
                .iter()
                .map(|c| {
                    let mut names: Vec<String> = c.iter().map(name).collect();
                    names.sort();
                    names.join(",")
                })
                .collect();
            let mut learners: Vec<String> = m.learner_ids().map(|id| name(&id)).collect();
            learners.sort();
            let mut summary = format!("membership: voters {}", configs.join(" + "));
            if !learners.is_empty() {
                summary.push_str(&format!(", learners {}", learners.join(",")));
            }
            ("membership", summary)
        }
    }
}

/// Whose data a store holds. Both redb files record it when created and refuse to open for
/// anyone else, so a data directory copied from another member or another lab is never
/// silently adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreIdentity {
    pub cluster_id: u64,
    pub member_id: NodeId,
}

impl fmt::Display for StoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {:x} of cluster {:x}", self.member_id, self.cluster_id)
    }
}
