//! What can go wrong below the etcd semantics: the state file itself.
//!
//! A [`StoreError`] is never a client's fault. Writes that hit one stop the member (openraft
//! treats a failed apply as fatal); reads report it as an internal error.

use std::path::Path;
use std::path::PathBuf;

use crate::errors::EtcdError;
use crate::node::raft::types::StoreIdentity;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: {source}", path.display())]
    Database { path: PathBuf, source: redb::Error },

    #[error("{} cannot be decoded: {what}", path.display())]
    Damaged { path: PathBuf, what: String },

    #[error("{} belongs to {found}, not to {expected}; refusing to use another member's data", path.display())]
    Foreign { path: PathBuf, found: StoreIdentity, expected: StoreIdentity },

    #[error("{} is from cluster {found:x}, this member is in cluster {expected:x}", path.display())]
    OtherCluster { path: PathBuf, found: u64, expected: u64 },

    #[error("the state store of {} stopped after an earlier failure: {reason}", path.display())]
    Failed { path: PathBuf, reason: String },

    #[error("{} is busy: {what}", path.display())]
    Busy { path: PathBuf, what: String },
}

impl StoreError {
    pub fn damaged(path: &Path, what: impl Into<String>) -> Self {
        StoreError::Damaged { path: path.to_path_buf(), what: what.into() }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io { ref source, .. } => std::io::Error::new(source.kind(), e.to_string()),
            StoreError::Damaged { .. } | StoreError::Foreign { .. } | StoreError::OtherCluster { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
            }
            other => std::io::Error::other(other.to_string()),
        }
    }
}

/// Attaches the state file's path to a redb error.
pub(crate) trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> AtPath<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database { path: path.to_path_buf(), source: e.into() })
    }
}

/// Why executing a request stopped: the client's request (an etcd error, part of the
/// replicated outcome) or the storage underneath (never part of it).
#[derive(Debug)]
pub(crate) enum Failure {
    Request(EtcdError),
    Storage(StoreError),
}

impl From<EtcdError> for Failure {
    fn from(e: EtcdError) -> Self {
        Failure::Request(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Storage(e)
    }
}

impl Failure {
    /// For read paths: a storage failure becomes the internal error the client sees.
    pub fn into_etcd(self) -> EtcdError {
        match self {
            Failure::Request(e) => e,
            Failure::Storage(e) => {
                tracing::error!("read failed: {e}");
                EtcdError::Internal(e.to_string())
            }
        }
    }
}
