//! When a member snapshots, in a lab that did not ask for a fixed interval.
//!
//! A snapshot writes out every revision record the state holds (see
//! [`crate::node::raft::snapshot`]), so its cost grows with the history, while what it saves,
//! the log it lets openraft purge, grows with the writes since the last one. At a fixed
//! interval a long-lived history makes every write pay for more and more of it: after 200,000
//! revisions, a snapshot every 10,000 entries writes twenty records per write, on every member
//! at once, and on a small machine the writes of clients slow down while it runs. So a member
//! snapshots once the entries since its last snapshot reach the larger of the lab's interval
//! and the number of records the state held at that snapshot. A snapshot then writes at most
//! the records of the last one plus those written since, over at least as many entries: a
//! write pays for about two records, however long the history. (Counting the records of
//! now instead would never come due while every write adds a record.) etcd is not in this
//! position: its database file is its snapshot, written a page at a time, and it sends a
//! follower the file as it is.
//!
//! A check once a second is all this needs: a snapshot a second late frees the same log.

use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use crate::node::mvcc::store::MvccStore;
use crate::node::raft::types::Raft;

const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a snapshot asked for may take before it is asked for again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Entries since the last snapshot after which the next one is due, for a state that held
/// `records` revision records at that snapshot.
pub fn due_after(every: u64, records: usize) -> u64 {
    every.max(records as u64)
}

/// Asks openraft for a snapshot whenever one is due, until Raft shuts down.
pub async fn snapshot_when_due(raft: Raft, mvcc: Arc<MvccStore>, every: u64) {
    let records = || mvcc.read_state(|s| s.index.record_count());
    let positions = || {
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        (m.last_applied.map_or(0, |l| l.index), m.snapshot.map_or(0, |l| l.index))
    };
    // A member that starts takes its state as it finds it as the last snapshot's.
    let (_, mut last_snapshot) = positions();
    let mut records_then = records();
    let mut asked: Option<(u64, tokio::time::Instant)> = None;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (applied, snapshot) = positions();
        if snapshot != last_snapshot {
            // built here, or installed from the leader
            last_snapshot = snapshot;
            records_then = records();
        }
        let pending = asked.is_some_and(|(at, when)| snapshot < at && when.elapsed() < RETRY_AFTER);
        if pending || applied.saturating_sub(snapshot) < due_after(every, records_then) {
            continue;
        }
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        tracing::debug!("snapshot asked for at entry {applied}: {records_then} records at the last one, at {snapshot}");
        asked = Some((applied, tokio::time::Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_state_snapshots_at_the_labs_interval_and_a_large_one_as_often_as_it_holds_records() {
        assert_eq!(due_after(10_000, 0), 10_000);
        assert_eq!(due_after(10_000, 9_999), 10_000);
        assert_eq!(due_after(10_000, 250_000), 250_000);
    }
}
