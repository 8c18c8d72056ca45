//! etcd's alarms, kept by the state machine: a member raises one (NOSPACE when its file
//! passed the quota), every member applies it, and while a NOSPACE alarm is active every
//! member refuses what would grow the store, as etcd's "capped" applier does, until someone
//! disarms it.

use std::collections::BTreeSet;

use crate::errors::EtcdError;
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::etcdserverpb::AlarmRequest;
use crate::proto::etcdserverpb::AlarmResponse;
use crate::proto::etcdserverpb::AlarmType;
use crate::proto::etcdserverpb::alarm_request::AlarmAction;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::command::Op;

/// The active alarms: (member id, alarm type), at most one of each per member.
pub type Alarms = BTreeSet<(u64, i32)>;

pub fn members_of(alarms: &Alarms) -> Vec<AlarmMember> {
    alarms.iter().map(|&(member_id, alarm)| AlarmMember { member_id, alarm }).collect()
}

pub fn from_members(members: &[AlarmMember]) -> Alarms {
    members.iter().map(|a| (a.member_id, a.alarm)).collect()
}

/// The alarms of one type, or all of them for `NONE`, as etcd's `alarm list` asks.
pub fn of_type(alarms: &Alarms, alarm: i32) -> Vec<AlarmMember> {
    let all = members_of(alarms);
    if alarm == AlarmType::None as i32 { all } else { all.into_iter().filter(|a| a.alarm == alarm).collect() }
}

/// Activates or deactivates one alarm. As in etcd, the answer lists the alarm changed, and
/// nothing when there was nothing to change.
pub(crate) fn apply(alarms: &mut Alarms, req: &AlarmRequest) -> AlarmResponse {
    let alarm = (req.member_id, req.alarm);
    let changed = match req.action() {
        AlarmAction::Activate => alarms.insert(alarm),
        AlarmAction::Deactivate => alarms.remove(&alarm),
        AlarmAction::Get => false,
    };
    let alarms = if changed { vec![AlarmMember { member_id: alarm.0, alarm: alarm.1 }] } else { vec![] };
    AlarmResponse { header: None, alarms }
}

pub fn space_exceeded(alarms: &Alarms) -> bool {
    alarms.iter().any(|&(_, alarm)| alarm == AlarmType::Nospace as i32)
}

/// What etcd's capped applier refuses while NOSPACE is active: puts, transactions with a
/// put at their top level, and lease grants. Deletes, reads and compactions go on, since
/// they are the way out.
pub(crate) fn refused_when_full(cmd: &Command) -> bool {
    match &cmd.op {
        Some(Op::Put(_)) | Some(Op::LeaseGrant(_)) => true,
        Some(Op::Txn(txn)) => crate::node::quota::txn_cost(txn) > 0,
        _ => false,
    }
}

/// Refuses `cmd` when the store is full.
pub(crate) fn check(alarms: &Alarms, cmd: &Command) -> Result<(), EtcdError> {
    if space_exceeded(alarms) && refused_when_full(cmd) { Err(EtcdError::NoSpace) } else { Ok(()) }
}

/// How etcd's Status names an alarm in its `errors`: the Go text form of the message,
/// `memberID:<decimal> alarm:NOSPACE `.
pub fn describe(alarm: &AlarmMember) -> String {
    let kind = AlarmType::try_from(alarm.alarm).map(|t| t.as_str_name()).unwrap_or("UNKNOWN");
    format!("memberID:{} alarm:{kind} ", alarm.member_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::PutRequest;
    use crate::proto::etcdserverpb::RequestOp;
    use crate::proto::etcdserverpb::TxnRequest;
    use crate::proto::etcdserverpb::request_op::Request;

    fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest { action: action as i32, member_id, alarm: alarm as i32 }
    }

    #[test]
    fn activating_twice_changes_once_and_disarming_names_what_went() {
        let mut alarms = Alarms::new();
        let first = apply(&mut alarms, &request(AlarmAction::Activate, 7, AlarmType::Nospace));
        assert_eq!(first.alarms.len(), 1);
        let again = apply(&mut alarms, &request(AlarmAction::Activate, 7, AlarmType::Nospace));
        assert!(again.alarms.is_empty(), "an alarm already active is not reported as new");
        assert!(space_exceeded(&alarms));
        let gone = apply(&mut alarms, &request(AlarmAction::Deactivate, 7, AlarmType::Nospace));
        assert_eq!(gone.alarms, vec![AlarmMember { member_id: 7, alarm: AlarmType::Nospace as i32 }]);
        assert!(!space_exceeded(&alarms));
        assert!(apply(&mut alarms, &request(AlarmAction::Deactivate, 7, AlarmType::Nospace)).alarms.is_empty());
    }

    #[test]
    fn a_full_store_refuses_growth_but_not_deletes_or_reads_in_transactions() {
        let mut alarms = Alarms::new();
        apply(&mut alarms, &request(AlarmAction::Activate, 1, AlarmType::Nospace));
        let put = Command {
            op: Some(Op::Put(PutRequest { key: b"k".to_vec().into(), ..Default::default() })),
            user: String::new(),
        };
        assert_eq!(check(&alarms, &put), Err(EtcdError::NoSpace));
        let read_txn = Command { op: Some(Op::Txn(TxnRequest::default())), user: String::new() };
        assert_eq!(check(&alarms, &read_txn), Ok(()));
        let put_op = RequestOp { request: Some(Request::RequestPut(PutRequest::default())) };
        let writing_txn = Command {
            op: Some(Op::Txn(TxnRequest { failure: vec![put_op], ..Default::default() })),
            user: String::new(),
        };
        assert_eq!(check(&alarms, &writing_txn), Err(EtcdError::NoSpace));
    }

    #[test]
    fn status_errors_read_as_etcd_prints_them() {
        let alarm = AlarmMember { member_id: 10276657743932975437, alarm: AlarmType::Nospace as i32 };
        assert_eq!(describe(&alarm), "memberID:10276657743932975437 alarm:NOSPACE ");
    }
}
