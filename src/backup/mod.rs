//! Backups that real etcd accepts: a raftty snapshot is an etcd snapshot (the same bbolt
//! layout, the same SHA-256 trailer), so `etcdctl snapshot save/status/restore` work on it,
//! and etcd's snapshots read back into raftty's terms.
//!
//! - `etcd_db.rs`: etcd's backend buckets to and from raftty's data (revisions, compaction,
//!   leases, members);
//! - `snapshot_file.rs`: the trailer, atomic saving, and `snapshot status`;
//! - `stream.rs`: Maintenance.Snapshot as etcd streams it, and `raftty snapshot save`;
//! - `continuous.rs` and `change_log.rs`: `raftty backup`, a full snapshot and every change
//!   after it, for point-in-time restores;
//! - `catalog.rs`: a lab's backups, in its backup folder and wherever else raftty saved them.

pub mod catalog;
pub mod change_log;
pub mod continuous;
pub mod etcd_db;
pub mod snapshot_file;
pub mod stream;
