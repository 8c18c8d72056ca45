//! Recording a history from many concurrent clients.
//!
//! Every operation is entered as [`Outcome::Unknown`] when it is invoked and updated when
//! its answer arrives, so a request that never completes (its task was cancelled, the run
//! ended first) stays unknown instead of vanishing: dropping it would hide a write that
//! may have taken effect.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::history::{ClientId, History, Operation, Outcome, Request};

/// Shared by all client tasks (wrap it in an `Arc`); times are nanoseconds since the
/// recorder was created.
#[derive(Debug)]
pub struct HistoryRecorder {
    epoch: Instant,
    operations: Mutex<Vec<Operation>>,
}

/// An invoked operation waiting for its answer. Hand it back to
/// [`HistoryRecorder::complete`] exactly once.
#[derive(Debug)]
#[must_use = "an operation never completed stays Unknown in the history"]
pub struct PendingOperation {
    index: usize,
}

impl Default for HistoryRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryRecorder {
    pub fn new() -> Self {
        HistoryRecorder { epoch: Instant::now(), operations: Mutex::new(Vec::new()) }
    }

    /// Nanoseconds since the recorder was created.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Call just before sending the request.
    pub fn invoke(&self, client: ClientId, request: Request) -> PendingOperation {
        // Read the clock before waiting for the lock: an early invocation time only
        // widens the interval, which is always safe.
        let now = self.now_ns();
        let mut operations = self.lock();
        operations.push(Operation {
            client,
            invoked_at_ns: now,
            completed_at_ns: now,
            request,
            outcome: Outcome::Unknown,
        });
        PendingOperation { index: operations.len() - 1 }
    }

    /// Call just after the answer arrived (or the client gave up: [`Outcome::Unknown`]).
    pub fn complete(&self, pending: PendingOperation, outcome: Outcome) {
        // Read the clock before waiting for the lock, for the same reason: the answer
        // has already arrived, so a later completion time would only be looser.
        let now = self.now_ns();
        if let Some(operation) = self.lock().get_mut(pending.index) {
            operation.completed_at_ns = now.max(operation.invoked_at_ns);
            operation.outcome = outcome;
        }
    }

    /// A copy of what has been recorded so far; operations still in flight are Unknown.
    pub fn snapshot(&self) -> History {
        History { operations: self.lock().clone() }
    }

    pub fn into_history(self) -> History {
        History { operations: self.operations.into_inner().unwrap_or_else(PoisonError::into_inner) }
    }

    /// A client task that panicked while holding the lock left the vector intact (every
    /// update is a single assignment), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Vec<Operation>> {
        self.operations.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proving::check::history::Output;

    #[test]
    fn operations_left_in_flight_stay_unknown() {
        let recorder = HistoryRecorder::new();
        let answered = recorder.invoke(1, Request::Put { key: "k".into(), value: "v".into() });
        let _in_flight = recorder.invoke(2, Request::Delete { key: "k".into() });
        recorder.complete(answered, Outcome::Ok(Output::Put { revision: 2 }));
        let history = recorder.into_history();
        assert_eq!(history.operations.len(), 2);
        assert_eq!(history.operations[0].outcome, Outcome::Ok(Output::Put { revision: 2 }));
        assert!(history.operations[0].completed_at_ns >= history.operations[0].invoked_at_ns);
        assert_eq!(history.operations[1].outcome, Outcome::Unknown);
        assert!(history.validate().is_ok());
    }
}
