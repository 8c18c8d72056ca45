//! Who is asking, and whether they may: what every etcd service calls before it serves.
//!
//! The caller is the user of the request's token (gRPC metadata `token`), or else the CN of
//! its client certificate, as etcd does with client-certificate auth. While auth is off,
//! nothing is checked.

use std::time::Instant;

use tonic::Request;

use crate::errors::EtcdError;
use crate::node::auth::perms::Access;
use crate::node::auth::perms::Need;
use crate::node::auth::perms::covers;
use crate::node::member::Member;
use crate::node::mvcc::state::State;
use crate::proto::etcdserverpb::DeleteRangeRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::request_op::Request as Op;

/// The user a request acts as; None while auth is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Option<String>);

/// The caller of `req`, refusing an unknown or expired token. While auth is off there are no
/// tokens, and nothing is checked (Caller(None)).
pub async fn caller<T>(member: &Member, req: &Request<T>) -> Result<Caller, EtcdError> {
    let who = identify(member, req).await;
    if let Err(e) = &who {
        refused(None, "", e);
    }
    who
}

async fn identify<T>(member: &Member, req: &Request<T>) -> Result<Caller, EtcdError> {
    let mvcc = member.state_machine.mvcc();
    // A token is checked even while auth is off, as etcd does: there is none to be valid then.
    if let Some(token) = req.metadata().get("token") {
        let token = token.to_str().map_err(|_| EtcdError::InvalidAuthToken)?;
        let lookup = || mvcc.read_state(|s| s.auth.tokens.get(token).cloned());
        // A token handed out a moment ago through another member may not be applied here
        // yet: catch up with the leader before calling it unknown.
        let user = match lookup() {
            Some(user) => user,
            None => {
                member.linearizable_barrier().await?;
                lookup().ok_or(EtcdError::InvalidAuthToken)?
            }
        };
        if !member.tokens.touch(token, Instant::now()) {
            return Err(EtcdError::InvalidAuthToken);
        }
        return Ok(Caller(Some(user)));
    }
    if !mvcc.read_state(|s| s.auth.enabled) {
        return Ok(Caller(None));
    }
    let who = crate::pki::PeerIdentity::of(req).ok_or(EtcdError::UserEmpty)?;
    // A member of the lab forwarding a request it already checked (to the leader) is
    // trusted: only members hold certificates of the members' organization.
    if who.is_member() {
        return Ok(Caller(None));
    }
    Ok(Caller(Some(who.common_name)))
}

/// Publishes a refusal on the member's event bus, so the app shows it as it happens:
/// who, what they needed, and etcd's reason.
pub fn refused(user: Option<&str>, needed: &str, error: &EtcdError) {
    let mut fields = vec![("reason", error.to_string())];
    if let Some(user) = user {
        fields.push(("user", user.to_string()));
    }
    if !needed.is_empty() {
        fields.push(("needed", needed.to_string()));
    }
    crate::node::events::emit("request_refused", &fields);
}

impl Caller {
    /// Whether the caller may do everything `accesses` lists (computed from the current
    /// state, which holds the keys on each lease).
    pub(crate) fn allow(&self, member: &Member, accesses: impl FnOnce(&State) -> Vec<Access>) -> Result<(), EtcdError> {
        let Some(user) = &self.0 else { return Ok(()) };
        member.state_machine.mvcc().read_state(|s| may(s, user, accesses))
    }

    /// Whether the caller holds the root role, which etcd's admin operations need.
    pub fn admin(&self, member: &Member) -> Result<(), EtcdError> {
        let Some(user) = &self.0 else { return Ok(()) };
        member.state_machine.mvcc().read_state(|s| {
            if !s.auth.enabled || s.auth.has_root_role(user) {
                return Ok(());
            }
            refused(Some(user), "the root role", &EtcdError::PermissionDenied);
            Err(EtcdError::PermissionDenied)
        })
    }

    pub fn user(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Whether `user` may do everything `accesses` lists in state `s`: what the services check
/// before they serve or propose, and the state machine again when a write is applied, so a
/// permission revoked in between is honoured. A refusal is published (see [`refused`]).
pub(crate) fn may(s: &State, user: &str, accesses: impl FnOnce(&State) -> Vec<Access>) -> Result<(), EtcdError> {
    permitted(s, user, accesses).map_err(|missing| {
        refused(Some(user), &missing, &EtcdError::PermissionDenied);
        EtcdError::PermissionDenied
    })
}

/// The check itself, with what is missing when it fails ("write /secret").
fn permitted(s: &State, user: &str, accesses: impl FnOnce(&State) -> Vec<Access>) -> Result<(), String> {
    if !s.auth.enabled || s.auth.has_root_role(user) {
        return Ok(());
    }
    if !s.auth.users.contains_key(user) {
        return Err("a user of that name".into());
    }
    let perms = s.auth.permissions_of(user);
    match accesses(s).into_iter().find(|a| !covers(&perms, a)) {
        None => Ok(()),
        Some(missing) => Err(missing.describe()),
    }
}

/// The state machine's check of a command proposed on behalf of `user`, against the state
/// it is applied to: the same rules as before proposing, so the two differ only when the
/// permissions changed in between (every member decides alike; nothing is published, the
/// member that took the request reports the error to its client).
pub(crate) fn check_at_apply(s: &State, user: &str, op: &crate::proto::rafttypb::command::Op) -> Result<(), EtcdError> {
    use crate::proto::rafttypb::command::Op as Cmd;
    let allowed = match op {
        Cmd::Put(req) => permitted(s, user, |s| put(s, req)),
        Cmd::DeleteRange(req) => permitted(s, user, |_| delete(req)),
        Cmd::Txn(req) => permitted(s, user, |s| txn(s, req)),
        Cmd::LeaseRevoke(req) => permitted(s, user, |s| lease_keys(s, req.id)),
        // The outcome of a password just checked, for the user it names.
        Cmd::AssignToken(_) => Ok(()),
        Cmd::AuthEnable(_)
        | Cmd::AuthDisable(_)
        | Cmd::UserAdd(_)
        | Cmd::UserDelete(_)
        | Cmd::UserChangePassword(_)
        | Cmd::UserGrantRole(_)
        | Cmd::UserRevokeRole(_)
        | Cmd::RoleAdd(_)
        | Cmd::RoleDelete(_)
        | Cmd::RoleGrantPermission(_)
        | Cmd::RoleRevokePermission(_) => {
            if !s.auth.enabled || s.auth.has_root_role(user) {
                Ok(())
            } else {
                Err("the root role".into())
            }
        }
        Cmd::Compaction(_) | Cmd::LeaseGrant(_) | Cmd::LeaseCheckpoint(_) | Cmd::Alarm(_) => Ok(()),
    };
    allowed.map_err(|_| EtcdError::PermissionDenied)
}

pub fn range(req: &RangeRequest) -> Vec<Access> {
    vec![Access::new(Need::Read, &req.key, &req.range_end)]
}

/// WRITE on the key, READ too for prev_kv, and WRITE on every key already on its lease.
pub(crate) fn put(state: &State, req: &PutRequest) -> Vec<Access> {
    let mut out = vec![Access::new(Need::Write, &req.key, b"")];
    if req.prev_kv {
        out.push(Access::new(Need::Read, &req.key, b""));
    }
    if req.lease != 0 {
        out.extend(lease_keys(state, req.lease));
    }
    out
}

pub fn delete(req: &DeleteRangeRequest) -> Vec<Access> {
    let mut out = vec![Access::new(Need::Write, &req.key, &req.range_end)];
    if req.prev_kv {
        out.push(Access::new(Need::Read, &req.key, &req.range_end));
    }
    out
}

/// READ on every compare, and every operation of both branches, nested ones included: a
/// transaction is allowed as a whole or not at all.
pub(crate) fn txn(state: &State, req: &TxnRequest) -> Vec<Access> {
    let mut out: Vec<Access> = req.compare.iter().map(|c| Access::new(Need::Read, &c.key, &c.range_end)).collect();
    for op in req.success.iter().chain(&req.failure) {
        out.extend(request_op(state, op));
    }
    out
}

fn request_op(state: &State, op: &RequestOp) -> Vec<Access> {
    match &op.request {
        Some(Op::RequestRange(r)) => range(r),
        Some(Op::RequestPut(p)) => put(state, p),
        Some(Op::RequestDeleteRange(d)) => delete(d),
        Some(Op::RequestTxn(t)) => txn(state, t),
        None => vec![],
    }
}

/// WRITE on every key attached to the lease, which a revoke deletes.
pub(crate) fn lease_keys(state: &State, lease: i64) -> Vec<Access> {
    state
        .leases
        .get(&lease)
        .map(|l| l.keys.iter().map(|k| Access::new(Need::Write, k, b"")).collect())
        .unwrap_or_default()
}
