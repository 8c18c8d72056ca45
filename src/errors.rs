//! The errors a client can get, with etcd's gRPC codes and messages.
//!
//! etcd clients match on these exact strings (clientv3's `rpctypes` turns them back into
//! typed errors), so every variant here reproduces etcd 3.4's code and text to the letter.

use tonic::Code;

use crate::proto::rafttypb::ApplyError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    #[error("etcdserver: request timed out, waiting for the applied index took too long")]
    TimeoutWaitAppliedIndex,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// A request etcd would also refuse, but for which etcd has no dedicated error.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something went wrong inside this member: a storage or internal error.
    #[error("{0}")]
    Internal(String),
}

impl EtcdError {
    pub fn code(&self) -> Code {
        use EtcdError::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey | MemberBadUrls
            | RequestTooLarge | InvalidArgument(_) | UserEmpty | RoleEmpty | AuthFailed | InvalidAuthMgmt => {
                Code::InvalidArgument
            }
            Compacted | FutureRevision | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExists
            | MemberExists
            | PeerUrlExists
            | MemberNotLearner
            | LearnerNotReady
            | TooManyLearners
            | NotEnoughStartedMembers
            | AuthNotEnabled
            | RootUserNotExist
            | RootRoleNotExist
            | UserAlreadyExist
            | UserNotFound
            | RoleAlreadyExist
            | RoleNotFound
            | RoleNotGranted
            | PermissionNotGranted
            | BadLeaderTransferee => Code::FailedPrecondition,
            PermissionDenied => Code::PermissionDenied,
            InvalidAuthToken => Code::Unauthenticated,
            NoLeader
            | LeaderChanged
            | Timeout
            | TimeoutDueToLeaderFail
            | TimeoutWaitAppliedIndex
            | Stopped
            | Unhealthy
            | NotSupportedForLearner => Code::Unavailable,
            Internal(_) => Code::Internal,
        }
    }

    /// The replicated form of an error decided by the state machine.
    pub fn to_apply_error(&self) -> ApplyError {
        ApplyError { code: self.code() as i32, message: self.to_string() }
    }

    /// Turns a replicated error back into the error it was. Every member applies the same
    /// commands, so the message always names a variant this build knows; anything else is kept
    /// verbatim rather than lost.
    pub fn from_apply_error(e: &ApplyError) -> EtcdError {
        KNOWN.iter().find(|k| k.to_string() == e.message).cloned().unwrap_or_else(|| match Code::from_i32(e.code) {
            Code::InvalidArgument => EtcdError::InvalidArgument(e.message.clone()),
            _ => EtcdError::Internal(e.message.clone()),
        })
    }
}

/// The errors the state machine can decide while applying.
const KNOWN: &[EtcdError] = &[
    EtcdError::EmptyKey,
    EtcdError::KeyNotFound,
    EtcdError::ValueProvided,
    EtcdError::LeaseProvided,
    EtcdError::TooManyOps,
    EtcdError::DuplicateKey,
    EtcdError::Compacted,
    EtcdError::FutureRevision,
    EtcdError::NoSpace,
    EtcdError::LeaseNotFound,
    EtcdError::LeaseExists,
    EtcdError::LeaseTtlTooLarge,
    EtcdError::PermissionDenied,
    EtcdError::AuthNotEnabled,
    EtcdError::RootUserNotExist,
    EtcdError::RootRoleNotExist,
    EtcdError::UserAlreadyExist,
    EtcdError::UserEmpty,
    EtcdError::UserNotFound,
    EtcdError::RoleAlreadyExist,
    EtcdError::RoleNotFound,
    EtcdError::RoleEmpty,
    EtcdError::AuthFailed,
    EtcdError::RoleNotGranted,
    EtcdError::PermissionNotGranted,
    EtcdError::InvalidAuthMgmt,
];

impl From<EtcdError> for tonic::Status {
    fn from(e: EtcdError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_match_etcd() {
        let s: tonic::Status = EtcdError::Compacted.into();
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(s.message(), "etcdserver: mvcc: required revision has been compacted");
        let s: tonic::Status = EtcdError::LeaseNotFound.into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "etcdserver: requested lease not found");
    }

    #[test]
    fn apply_errors_round_trip() {
        for e in KNOWN {
            assert_eq!(&EtcdError::from_apply_error(&e.to_apply_error()), e);
        }
    }
}
