//! The etcd v3 API on the client port: one file per etcd service.

pub mod auth;
pub mod cluster;
pub mod gateway;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod watch;

use prost::Message;

use crate::errors::EtcdError;

/// etcd's limit on a request (`--max-request-bytes`, 1.5 MiB).
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// What gRPC accepts before decoding: etcd adds 512 KiB of slack to the request limit, so a
/// request a little too large gets etcd's own error rather than a transport one.
pub const MAX_GRPC_MESSAGE: usize = MAX_REQUEST_BYTES + 512 * 1024;
/// The version `etcdctl endpoint status` reports: the etcd release whose API raftty serves.
pub const ETCD_VERSION: &str = "3.4.23";

/// Refuses requests over etcd's size limit with etcd's error.
pub fn check_size(request: &impl Message) -> Result<(), EtcdError> {
    if request.encoded_len() > MAX_REQUEST_BYTES {
        return Err(EtcdError::RequestTooLarge);
    }
    Ok(())
}
