//! Applying one replicated command: the etcd write API as the state machine runs it.
//!
//! Every outcome a client can see, errors included, is decided here and is part of the
//! replicated result, so it must depend only on the store and the command: every member
//! computes the same one.

use crate::errors::EtcdError;
use crate::node::mvcc::alarm;
use crate::node::mvcc::compact::compact;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::error::StoreError;
use crate::node::mvcc::events::RevisionEvents;
use crate::node::mvcc::lease;
use crate::node::mvcc::txn;
use crate::node::mvcc::validate;
use crate::node::mvcc::view::ReadView;
use crate::node::mvcc::write::Writer;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::CommandResult;
use crate::proto::rafttypb::command::Op;
use crate::proto::rafttypb::command_result::Result as Outcome;

/// Applies a command; a refused command changes nothing and its error is the result. Only
/// a storage failure is an `Err`.
pub(crate) fn apply_command(
    w: &mut Writer<'_, '_>,
    cmd: &Command,
    published: &mut Vec<RevisionEvents>,
) -> Result<CommandResult, StoreError> {
    w.begin_command();
    let outcome = match execute(w, cmd) {
        Ok(outcome) => {
            published.extend(w.finish_command());
            outcome
        }
        Err(Failure::Request(e)) => {
            w.roll_back()?;
            Outcome::Error(e.to_apply_error())
        }
        Err(Failure::Storage(e)) => return Err(e),
    };
    Ok(CommandResult { revision: w.state.revision, result: Some(outcome) })
}

fn execute(w: &mut Writer<'_, '_>, cmd: &Command) -> Result<Outcome, Failure> {
    // The API layer validated this already; checking again keeps a malformed entry (which no
    // raftty member would propose) from doing anything but failing the same way everywhere.
    validate::check_command(cmd)?;
    alarm::check(&w.state.alarms, cmd)?;
    if let (false, Some(op)) = (cmd.user.is_empty(), &cmd.op) {
        crate::node::auth::gate::check_at_apply(w.state, &cmd.user, op)?;
    }
    Ok(match &cmd.op {
        Some(Op::Put(req)) => {
            if req.lease != 0 && !w.lease_exists(req.lease) {
                return Err(EtcdError::LeaseNotFound.into());
            }
            let mut resp = txn::put(w, req)?;
            resp.header = None;
            Outcome::Put(resp)
        }
        Some(Op::DeleteRange(req)) => {
            let mut resp = txn::delete_range(w, req)?;
            resp.header = None;
            Outcome::DeleteRange(resp)
        }
        Some(Op::Txn(req)) => {
            let mut resp = txn::execute(w, req)?;
            resp.header = None;
            Outcome::Txn(resp)
        }
        Some(Op::Compaction(req)) => Outcome::Compaction(compact(w, req)?),
        Some(Op::LeaseGrant(req)) => Outcome::LeaseGrant(lease::grant(w, req)?),
        Some(Op::LeaseRevoke(req)) => Outcome::LeaseRevoke(lease::revoke(w, req)?),
        Some(Op::LeaseCheckpoint(req)) => Outcome::LeaseCheckpoint(lease::checkpoint(w, req)?),
        Some(Op::Alarm(req)) => Outcome::Alarm(alarm::apply(&mut w.state.alarms, req)),
        Some(
            op @ (Op::AuthEnable(_)
            | Op::AuthDisable(_)
            | Op::UserAdd(_)
            | Op::UserDelete(_)
            | Op::UserChangePassword(_)
            | Op::UserGrantRole(_)
            | Op::UserRevokeRole(_)
            | Op::RoleAdd(_)
            | Op::RoleDelete(_)
            | Op::RoleGrantPermission(_)
            | Op::RoleRevokePermission(_)
            | Op::AssignToken(_)),
        ) => crate::node::auth::store::apply(&mut w.state.auth, op)?,
        None => return Err(EtcdError::InvalidArgument("empty command".into()).into()),
    })
}
