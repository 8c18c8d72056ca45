//! Step mode, as a member applies it: every Raft message it would send waits in its queue
//! until the lab lets it go, and so does every answer it gets back.
//!
//! openraft speaks in request-and-answer calls, so both halves of a call wait in the member
//! that made it: the request before it leaves, the answer once it is back (the peer has
//! already acted on the request, written its disk, and answered). Delivering the request lets
//! the call go out; delivering the answer hands it to Raft. Dropping either is a lost packet:
//! the caller hears nothing until its own timeout.
//!
//! Timers keep running. openraft gives up on a heartbeat after one heartbeat interval and on
//! a vote after its shortest election timeout (see `node::raft_config`); a held message
//! whose caller gave up leaves the queue, as the retry that follows takes its place. Clients' requests, and the forwarding of them
//! between members, are never held: they wait only as long as Raft makes them wait.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::proto::rafttyadmin as pb;

/// What becomes of a held message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Deliver,
    Drop,
}

/// A message about to be held: everything the queue shows about it.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub from: String,
    pub to: String,
    pub kind: &'static str,
    pub term: u64,
    pub entries: u32,
    pub first_index: u64,
    pub last_index: u64,
    pub summary: String,
    /// An append without entries, or the answer to one.
    pub heartbeat: bool,
}

struct Held {
    message: Message,
    since: Instant,
    release: oneshot::Sender<Release>,
}

#[derive(Default)]
struct Queue {
    mode: Option<pb::StepMode>,
    held: BTreeMap<u64, Held>,
}

/// The held messages of one member.
#[derive(Default)]
pub struct StepQueue {
    next_id: AtomicU64,
    queue: Mutex<Queue>,
}

impl StepQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts step mode on (`Some`) or off. Turning it off delivers everything held.
    pub fn set_mode(&self, mode: Option<pb::StepMode>) {
        let mut q = self.lock();
        let auto_heartbeats = mode.as_ref().is_some_and(|m| m.auto_heartbeats);
        q.mode = mode;
        let release: Vec<u64> = match q.mode {
            None => q.held.keys().copied().collect(),
            Some(_) if auto_heartbeats => {
                q.held.iter().filter(|(_, h)| h.message.heartbeat).map(|(id, _)| *id).collect()
            }
            Some(_) => vec![],
        };
        for id in release {
            if let Some(h) = q.held.remove(&id) {
                let _ = h.release.send(Release::Deliver);
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.lock().mode.is_some()
    }

    /// Waits until `message` may go (at once when step mode is off or lets it through).
    /// Cancelling the wait (the caller gave up) takes the message out of the queue.
    pub async fn pass(&self, message: impl FnOnce() -> Message) -> Release {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut q = self.lock();
            let Some(mode) = &q.mode else { return Release::Deliver };
            let message = message();
            if mode.auto_heartbeats && message.heartbeat {
                return Release::Deliver;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            q.held.insert(id, Held { message, since: Instant::now(), release: tx });
            id
        };
        let _leaves_the_queue = Unhold { queue: self, id };
        // A sender dropped without a word is a queue that let the message go with the mode.
        rx.await.unwrap_or(Release::Deliver)
    }

    /// The messages waiting, oldest first.
    pub fn list(&self) -> Vec<pb::HeldMessage> {
        let q = self.lock();
        q.held
            .iter()
            .map(|(id, h)| {
                let m = &h.message;
                pb::HeldMessage {
                    id: *id,
                    from: m.from.clone(),
                    to: m.to.clone(),
                    kind: m.kind.to_string(),
                    term: m.term,
                    entries: m.entries,
                    summary: m.summary.clone(),
                    age_ms: h.since.elapsed().as_millis() as u64,
                    first_index: m.first_index,
                    last_index: m.last_index,
                    heartbeat: m.heartbeat,
                }
            })
            .collect()
    }

    /// Delivers or drops the messages `ids` (or all of them); returns how many were held.
    pub fn release(&self, ids: &[u64], all: bool, how: Release) -> u32 {
        let mut q = self.lock();
        let chosen: Vec<u64> = if all { q.held.keys().copied().collect() } else { ids.to_vec() };
        let mut released = 0;
        for id in chosen {
            if let Some(h) = q.held.remove(&id) {
                let _ = h.release.send(how);
                released += 1;
            }
        }
        released
    }
}

/// Takes a message out of the queue when its caller stops waiting for it.
struct Unhold<'a> {
    queue: &'a StepQueue,
    id: u64,
}

impl Drop for Unhold<'_> {
    fn drop(&mut self) {
        self.queue.lock().held.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn append(entries: u32) -> Message {
        Message {
            from: "n1".into(),
            to: "n2".into(),
            kind: "append",
            term: 2,
            entries,
            heartbeat: entries == 0,
            ..Default::default()
        }
    }

    async fn wait_held(queue: &StepQueue, count: usize) -> Vec<pb::HeldMessage> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let held = queue.list();
            if held.len() == count {
                return held;
            }
            assert!(Instant::now() < deadline, "waited for {count} held messages, have {held:?}");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn messages_flow_at_once_when_step_mode_is_off() {
        let queue = StepQueue::default();
        assert_eq!(queue.pass(|| append(3)).await, Release::Deliver);
        assert!(queue.list().is_empty());
    }

    #[tokio::test]
    async fn a_held_message_waits_for_its_release() {
        let queue = Arc::new(StepQueue::default());
        queue.set_mode(Some(pb::StepMode { auto_heartbeats: false }));
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pass(|| append(3)).await }
        });
        let held = wait_held(&queue, 1).await;
        assert_eq!((held[0].kind.as_str(), held[0].entries, held[0].from.as_str()), ("append", 3, "n1"));
        assert!(!waiting.is_finished(), "the message went before it was released");
        assert_eq!(queue.release(&[held[0].id], false, Release::Drop), 1);
        assert_eq!(waiting.await.unwrap(), Release::Drop);
        assert_eq!(queue.release(&[held[0].id], false, Release::Drop), 0, "a message is released once");
    }

    #[tokio::test]
    async fn heartbeats_can_flow_while_entries_wait() {
        let queue = Arc::new(StepQueue::default());
        queue.set_mode(Some(pb::StepMode { auto_heartbeats: true }));
        assert_eq!(queue.pass(|| append(0)).await, Release::Deliver);
        let entries = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pass(|| append(1)).await }
        });
        wait_held(&queue, 1).await;
        queue.set_mode(None);
        assert_eq!(entries.await.unwrap(), Release::Deliver, "step off delivers what was held");
        assert!(queue.list().is_empty());
    }

    #[tokio::test]
    async fn a_message_whose_caller_gave_up_leaves_the_queue() {
        let queue = StepQueue::default();
        queue.set_mode(Some(pb::StepMode::default()));
        let gave_up = tokio::time::timeout(Duration::from_millis(10), queue.pass(|| append(0))).await;
        assert!(gave_up.is_err());
        assert!(queue.list().is_empty());
    }
}
