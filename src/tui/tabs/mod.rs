//! One file per tab: each holds the tab's own state, what its keys do, and how it is drawn.

pub mod backups;
pub mod cluster;
pub mod events;
pub mod keys;
pub mod lessons;
pub mod messages;
pub mod metrics;
pub mod raft_log;
