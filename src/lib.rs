//! # raftty: an etcd you can hold in your hands
//!
//! raftty runs a real Raft key-value cluster on this machine, one OS process per member,
//! speaking the etcd v3 API on its client ports, and lets people look inside and break it.
//!
//! ## A tour of the layout
//!
//! - `main.rs` is thin: it parses the command line (`cli.rs`) and hands over to
//!   `commands.rs`, one arm per command, which calls into the modules below.
//! - `lab/`: a lab is a folder holding a cluster's config, certificates, member data, pids,
//!   logs and network faults. `supervisor.rs` brings it up and down (and changes its tempo),
//!   `process.rs` starts and finds member processes, `control.rs` kills, pauses and starts
//!   them and puts faults in force, `membership.rs` grows and shrinks the cluster,
//!   `status.rs`, `timeline.rs` (events, log) and `check.rs` (HashKV) look inside.
//! - `node.rs`: one member process, `raftty node`: opens its storage, starts Raft and serves
//!   its ports; `member.rs`: what every request needs from consensus (writes through the
//!   leader, read index, the live leader).
//! - `raft/`: consensus. `types.rs` is openraft's type configuration, `codec.rs` converts
//!   openraft types to protobuf, `log_store.rs` keeps the Raft log in redb (group commit),
//!   `state_machine.rs` applies committed entries to the MVCC store, `snapshot.rs` writes
//!   and reads snapshot files, `network.rs` and `peer_service.rs` are the two ends of the
//!   peer port, `observer.rs` tells the event stream what Raft's metrics show.
//! - `mvcc/`: etcd's data model: revisions, versions, tombstones, compaction, ranges and
//!   transactions, leases' keys, stored in redb.
//! - `api/`: the etcd v3 services on the client port, one file each (`kv.rs`, `watch.rs`,
//!   `lease.rs`, `cluster.rs`, `maintenance.rs`).
//! - `watch/`: watch sessions: the MVCC store's live feed and history turned into etcd watch
//!   responses, with etcd's guarantees. `lease/`: the leader's lease clocks: expiry,
//!   keep-alives forwarded from followers, the TTL extension a new leader grants.
//! - `faults.rs`: partitions, one-way cuts and slow links, applied to every message a member
//!   sends; `events.rs`: the member's event bus; `admin.rs`: the admin surface (state, log,
//!   events, faults) the lab uses.
//! - `metrics/`: Prometheus metrics with etcd's names and `/health`, on each member's
//!   metrics port (HTTPS, mTLS), and the scraper behind `raftty metrics`.
//! - `pki.rs`: the lab's certificate authority and the TLS settings of every port;
//!   `client.rs`: an etcd client over mTLS, used by the lab, the benchmark and the tests;
//!   `errors.rs`: the errors clients see, with etcd's codes and messages.
//! - `check/`: a linearizability checker (Wing-Gong-Lowe, per key), whole-history checks and
//!   a watch-guarantees checker; `torture/`: `raftty torture`, clients and a nemesis whose
//!   history those checkers judge; `bench/`: `raftty bench`, raftty side by side with etcd.
//! - `proto.rs`: the generated protobuf code (`proto/` holds the definitions: etcd's wire
//!   types, and raftty's peer, admin and storage messages).

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
