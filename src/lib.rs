//! # raftty: an etcd you can hold in your hands
//!
//! raftty runs a real Raft key-value cluster on this machine, one OS process per member,
//! speaking the etcd v3 API on its client ports, and lets people look inside and break it.
//!
//! ## A tour of the layout
//!
//! The tree follows the processes that run. One executable plays every part: `raftty node`
//! is a member, everything else is the supervisor (headless commands, the terminal app).
//!
//! - `main.rs` is thin: it parses the command line (`cli.rs`) and hands over to
//!   `commands.rs`, one arm per command, which calls into the modules below.
//! - `node/`: what runs inside one member process. `mod.rs` opens its storage, starts Raft
//!   and serves its ports; `member.rs` is what every request needs from consensus (writes
//!   through the leader, read index, the live leader).
//!   - `raft/`: consensus. `types.rs` is openraft's type configuration, `codec.rs` converts
//!     openraft types to protobuf, `log_store.rs` keeps the Raft log in redb behind
//!     `journal.rs`, the preallocated file whose one sync makes each batch durable (group
//!     commit), `state_machine.rs` applies committed entries to the MVCC store,
//!     `snapshot.rs` writes and reads snapshot files, `snapshot_policy.rs` decides when,
//!     `network.rs` and `peer_service.rs` are the two ends of the peer port, whose
//!     `append_link.rs` carries AppendEntries on a TLS stream of its own, `observer.rs`
//!     tells the event stream what Raft's metrics show, and `metrics_watch.rs` keeps the
//!     watchers of those metrics from waking on every write.
//!   - `mvcc/`: etcd's data model: revisions, versions, tombstones, compaction, ranges and
//!     transactions, leases' keys, alarms, stored in redb (and defragmented on request).
//!   - `quota.rs`: etcd's backend quota, checked before a write is proposed.
//!   - `auth/`: etcd's auth: the replicated users and roles and the changes to them
//!     (`store.rs`), permission coverage (`perms.rs`), who is asking and may they
//!     (`gate.rs`, called by every service), simple tokens' lifetime (`tokens.rs`).
//!   - `api/`: the etcd v3 services on the client port, one file each (`kv.rs`,
//!     `watch.rs`, `lease.rs`, `cluster.rs`, `maintenance.rs`, `auth.rs`).
//!   - `watch/`: watch sessions: the MVCC store's live feed and history turned into etcd
//!     watch responses, with etcd's guarantees. `lease/`: the leader's lease clocks: expiry,
//!     keep-alives forwarded from followers, the TTL extension a new leader grants.
//!   - `faults.rs`: the network faults as the member applies them to every message it
//!     sends; `step.rs`: step mode's queue, where those messages and their answers wait to
//!     be delivered by hand; `events.rs`: the member's event bus; `admin.rs`: the admin
//!     surface (state, log, events, faults, held messages) the supervisor uses;
//!     `recorder.rs`: the member's part of the lab's recording, for `raftty replay`;
//!     `write_stages.rs`: where each write's time goes on the leader (`bench --explain`);
//!     `memory.rs`: how much the caches may hold, and the variables that give them more.
//!   - `metrics/`: Prometheus metrics with etcd's names and `/health`, on the member's
//!     metrics port (HTTPS, mTLS).
//! - `lab/`: the supervisor. A lab is a folder holding a cluster's config, certificates,
//!   member data, pids, logs and network faults. `supervisor.rs` brings it up and down (and
//!   changes its tempo), `process.rs` starts and finds member processes, `control.rs` kills,
//!   pauses and starts them and puts faults in force, `faults.rs` is the lab's fault table
//!   by member name, `step.rs` lists and releases what step mode holds, `recording.rs` reads
//!   the lab's recording back (the cluster at any moment), `membership.rs` grows and shrinks
//!   the cluster, `status.rs`, `timeline.rs` (events, log), `check.rs` (HashKV) and
//!   `scrape.rs` (metrics) look inside;
//!   `restore.rs` makes a lab from a backup, `recover.rs` rebuilds one that lost its quorum;
//!   `certs.rs` issues per-user certificates and explains any certificate.
//! - `backup/`: snapshots in etcd's own format (bbolt file plus SHA-256), streamed by every
//!   member's Maintenance.Snapshot and read back by `raftty snapshot status`; the continuous
//!   backup and its change log; `catalog.rs`, the lab's backups wherever raftty saved them.
//! - `tui/`: the terminal app, `raftty` with no arguments (and `raftty attach` for any etcd
//!   cluster). It runs in the supervisor's process and drives the same `lab/` code: state
//!   and a pure `update` in `app.rs`, one file per tab in `tabs/` (`messages.rs` is step
//!   mode's queue), cluster I/O in `io/`; `replay.rs` is the app on a recording.
//! - `course/`: the guided lessons and workshop demos, run by the supervisor: both are data
//!   files under `lessons/`; here they are read, their checks judged against the live
//!   cluster (`check.rs`, `observe.rs`), a lesson taken step by step (`session.rs`) and the
//!   learner's progress kept; `demo.rs` plays a demo one step at a time. The app shows them
//!   in `tui/tabs/lessons.rs` and `tui/presentation.rs`. `drill/` runs scored
//!   disaster-recovery drills: a workload and a continuous backup, a strike at a random
//!   moment, and a score of the learner's recovery.
//! - `proving/`: what proves it. `check/` is a linearizability checker (Wing-Gong-Lowe, per
//!   key), whole-history checks and a watch-guarantees checker; `torture/` is `raftty
//!   torture`, clients and a nemesis whose history those checkers judge; `bench/` is
//!   `raftty bench`, raftty side by side with etcd.
//! - Shared by every process: `proto.rs`, the generated protobuf code (`proto/` holds the
//!   definitions: etcd's wire types, and raftty's peer, admin and storage messages);
//!   `errors.rs`, the errors clients see, with etcd's codes and messages; `pki.rs`, the lab's
//!   certificate authority and the TLS settings of every port; `client.rs`, an etcd client
//!   over mTLS, used by the lab, the app, the benchmark and the tests; `progress.rs`, what
//!   long work reports, drawn by the command line and the app; `bolt/`, bbolt's file
//!   format as etcd writes it (a writer and a reader), for etcd-compatible snapshots.

pub mod backup;
pub mod bolt;
pub mod cli;
pub mod client;
pub mod commands;
pub mod course;
pub mod errors;
pub mod lab;
pub mod node;
pub mod pki;
pub mod progress;
pub mod proto;
pub mod proving;
pub mod tui;
