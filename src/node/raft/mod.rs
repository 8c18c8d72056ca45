//! Consensus: openraft wired to redb storage and to the peer port (gRPC, and the append link).

pub mod append_link;
pub mod codec;
pub mod journal;
pub mod log_store;
pub mod metrics_watch;
pub mod network;
pub mod observer;
pub mod peer_service;
pub mod snapshot;
pub mod snapshot_policy;
pub mod state_machine;
pub mod types;
