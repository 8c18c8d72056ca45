//! Watches: telling clients about changes as they are committed, with every guarantee etcd
//! documents (ordered, unique, reliable, atomic, resumable, bookmarkable).
//!
//! ## How events reach a watcher
//!
//! The member's MVCC store publishes every committed revision on a broadcast feed, in
//! revision order, once readers can see it ([`crate::node::mvcc::WatchFeed`]); it also keeps the
//! history of every revision above its compaction point. One gRPC watch stream is one
//! [`Session`]: a task that owns the stream's watchers and its own subscription to the feed.
//!
//! Every watcher remembers one number, `next_rev`: the first revision it has not been told
//! about. A revision `r` reaches a watcher only when `r == next_rev`, and telling it moves
//! `next_rev` past `r`. That single rule gives order and uniqueness. When a revision arrives
//! and a watcher is behind it (it was created at an old revision, or the session fell
//! behind the feed), the watcher first reads the missing revisions from history, so there are
//! no gaps. A revision's events always travel in one response (unless the client asked for
//! fragments), so revisions are atomic. A resumed watch is simply a new one whose start
//! revision is the last one seen plus one.
//!
//! ## Slow watchers
//!
//! The feed never waits for anyone: a session that cannot keep up (its client reads slowly, so
//! its bounded outgoing queue is full and it waits) just misses feed messages, which tokio's
//! broadcast channel reports as a lag. The session then catches up from history, a bounded
//! chunk of revisions at a time, as fast as its client reads. Writers and other sessions
//! never wait for it, and memory stays bounded. If the history it still needs has been
//! compacted away meanwhile, its watchers are cancelled with `compact_revision` set, as etcd
//! does.
//!
//! ## The compaction boundary
//!
//! etcd accepts a watch starting exactly at the compaction revision C. But compaction keeps,
//! of revision C, only the puts that are still a key's latest value at C: deletes made at C
//! and the previous values of keys changed at C are gone, so etcd would deliver revision C
//! partly (a silent gap). raftty refuses instead: a watch must start above C, and a watch
//! starting at or below it is cancelled with `compact_revision = C`. A client that resumes
//! at C therefore relists, as it would for any compacted start; nothing is lost unseen.
//!
//! ## Bookmarks
//!
//! An event response's header revision is the last revision it covers, and a progress
//! notification at R is only sent once the watcher has been told everything up to R; both
//! are safe bookmarks.

mod fragment;
mod session;
mod watcher;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::broadcast;

pub use fragment::split_fragments;
pub use session::Session;
pub use watcher::Watcher;

use crate::errors::EtcdError;
use crate::node::mvcc::MvccStore;
use crate::node::mvcc::RevisionEvents;
use crate::node::mvcc::WatchFeed;
use crate::proto::etcdserverpb::ResponseHeader;

/// etcd's default interval between progress notifications for watches that asked for them.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(600);

/// The environment variable that overrides the progress interval (tests and demos use a
/// short one), like etcd's `--experimental-watch-progress-notify-interval`.
pub const PROGRESS_INTERVAL_ENV: &str = "RAFTTY_WATCH_PROGRESS_INTERVAL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// How often quiet watches that asked for progress notifications get one.
    pub progress_interval: Duration,
    /// How often streams that require a leader check that there is one (etcd: every
    /// election timeout).
    pub leader_check_interval: Duration,
}

impl WatchSettings {
    /// The settings of a member whose election timeout is `election_timeout`, with the
    /// progress interval from [`PROGRESS_INTERVAL_ENV`] when it is set.
    pub fn for_member(election_timeout: Duration) -> anyhow::Result<WatchSettings> {
        let progress_interval = match std::env::var(PROGRESS_INTERVAL_ENV) {
            Ok(text) => humantime::parse_duration(&text)
                .map_err(|e| anyhow::anyhow!("{PROGRESS_INTERVAL_ENV}={text:?} is not a duration: {e}"))?,
            Err(_) => DEFAULT_PROGRESS_INTERVAL,
        };
        anyhow::ensure!(!progress_interval.is_zero(), "{PROGRESS_INTERVAL_ENV} must be above zero");
        // clamped so that adding them to a clock cannot overflow: a month is as good as never
        let longest = Duration::from_secs(30 * 24 * 3600);
        Ok(WatchSettings {
            progress_interval: progress_interval.min(longest),
            leader_check_interval: election_timeout.clamp(Duration::from_millis(10), longest),
        })
    }
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings { progress_interval: DEFAULT_PROGRESS_INTERVAL, leader_check_interval: Duration::from_secs(1) }
    }
}

/// What a session needs of the store: the live feed and retained history.
pub trait History: Send + Sync + 'static {
    fn subscribe(&self) -> broadcast::Receiver<WatchFeed>;
    fn current_revision(&self) -> i64;
    fn compact_revision(&self) -> i64;
    /// The events of revisions `from..=to`; `Compacted` when `from` is at or below the
    /// compaction point.
    fn events(&self, from: i64, to: i64) -> Result<Vec<RevisionEvents>, EtcdError>;
}

impl History for MvccStore {
    fn subscribe(&self) -> broadcast::Receiver<WatchFeed> {
        MvccStore::subscribe(self)
    }

    fn current_revision(&self) -> i64 {
        MvccStore::current_revision(self)
    }

    fn compact_revision(&self) -> i64 {
        MvccStore::compact_revision(self)
    }

    fn events(&self, from: i64, to: i64) -> Result<Vec<RevisionEvents>, EtcdError> {
        MvccStore::events(self, from, to)
    }
}

/// What a session needs of the member: response headers and whether a leader is known.
pub trait ClusterView: Send + Sync + 'static {
    fn header(&self, revision: i64) -> ResponseHeader;
    fn has_leader(&self) -> BoxFuture<'_, bool>;
    /// Whether the stream's user may read the range a watch asks for (always, without auth).
    fn may_read(&self, _key: &[u8], _range_end: &[u8]) -> bool {
        true
    }
}

pub type SharedHistory = Arc<dyn History>;
pub type SharedCluster = Arc<dyn ClusterView>;

#[cfg(test)]
mod tests;
