//! # raftty: an etcd you can hold in your hands
//!
//! raftty runs a real Raft key-value cluster on this machine, one OS process per member,
//! speaking the etcd v3 API on its client ports, and lets people look inside and break it.
//!
//! ## A tour of the layout
//!
//! - `main.rs` is thin: it parses the command line (`cli.rs`) and calls into the library.
//! - `lab/`: a lab is a folder holding a cluster's config, certificates, member data, pids
//!   and logs. `raftty up`, `down`, `status` and `env` live there, with the supervisor that
//!   starts and stops member processes.
//! - `node.rs`: one member process, `raftty node`: opens its storage, starts Raft and serves
//!   the client and peer ports.
//! - `raft/`: consensus. `types.rs` is openraft's type configuration, `codec.rs` converts
//!   openraft types to protobuf, `log_store.rs` keeps the Raft log in redb,
//!   `state_machine.rs` applies committed entries to the MVCC store, `snapshot.rs` writes
//!   and reads snapshot files, `network.rs` and `peer_service.rs` are the two ends of the
//!   peer port.
//! - `mvcc/`: etcd's data model: revisions, versions, tombstones, compaction, ranges and
//!   transactions, stored in redb.
//! - `api/`: the etcd v3 services on the client port, one file each (`kv.rs`,
//!   `cluster.rs`, `maintenance.rs`, ...).
//! - `metrics/`: Prometheus metrics with etcd's names and `/health`, on each member's
//!   metrics port (HTTPS, mTLS), and the scraper behind `raftty metrics`.
//! - `lease/`: the leader's lease clocks: expiry, keep-alives forwarded from followers,
//!   the TTL extension a new leader grants, checkpoints.
//! - `watch/`: watch sessions: the live feed and history of the MVCC store turned into
//!   etcd watch responses, with etcd's guarantees.
//! - `pki.rs`: the lab's certificate authority and the TLS settings of every port.
//! - `client.rs`: an etcd client over mTLS, used by the lab, the benchmark and the tests.
//! - `check/`: a linearizability checker (Wing-Gong-Lowe, per key) and whole-history checks
//!   for `raftty torture`.
//! - `errors.rs`: the errors clients see, with etcd's codes and messages.
//! - `bench/`: `raftty bench`, a load generator run against raftty and, side by side, etcd.
//! - `proto.rs`: the generated protobuf code (`proto/` holds the definitions).

pub mod admin;
pub mod api;
pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod commands;
pub mod errors;
pub mod events;
pub mod faults;
pub mod lab;
pub mod lease;
pub mod member;
pub mod metrics;
pub mod mvcc;
pub mod node;
pub mod pki;
pub mod proto;
pub mod raft;
pub mod torture;
pub mod watch;
