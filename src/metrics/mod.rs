//! Prometheus metrics with etcd's names, served by every member on its metrics port, so
//! dashboards and alerts written for etcd work against a raftty lab.
//!
//! - `histogram.rs`: the lock-free histogram that storage and network record timings into.
//! - `peers.rs`: round trips to each peer, recorded by `raft/network.rs`.

pub mod histogram;
pub mod peers;
