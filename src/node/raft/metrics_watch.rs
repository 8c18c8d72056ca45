//! A watch on openraft's metrics that wakes its owner at most once per [`SETTLE`].
//!
//! openraft publishes its metrics after every turn of its core, whether or not anything
//! changed: several times per write on a busy member. Each publication woke every watcher
//! (the narrator, the recorder, the Prometheus gauges), and on two cores those wake-ups cost
//! as much as a write's own apply. A watcher that waits out [`SETTLE`] after each change
//! still sees a role or leader change within milliseconds, and reads the newest metrics
//! when it looks, so no change is lost, only merged with the ones that came soon after.

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use crate::node::raft::types::*;

/// The least time between two wake-ups of one watcher.
pub const SETTLE: Duration = Duration::from_millis(10);

type Receiver = openraft::alias::WatchReceiverOf<TypeConfig, RaftMetrics>;

pub struct MetricsWatch {
    receiver: Receiver,
    quiet_until: Instant,
}

impl MetricsWatch {
    pub fn new(raft: &Raft) -> Self {
        MetricsWatch { receiver: raft.metrics(), quiet_until: Instant::now() }
    }

    /// Waits for metrics newer than the last ones looked at, but no sooner than [`SETTLE`]
    /// after the last wake-up. False once Raft has shut down. Cancel-safe, for `select!`.
    pub async fn changed(&mut self) -> bool {
        tokio::time::sleep_until(self.quiet_until).await;
        let open = self.receiver.changed().await.is_ok();
        self.quiet_until = Instant::now() + SETTLE;
        open
    }

    /// The newest metrics, marked as looked at.
    pub fn look(&mut self) -> impl std::ops::Deref<Target = RaftMetrics> + '_ {
        self.receiver.borrow_and_update()
    }
}
