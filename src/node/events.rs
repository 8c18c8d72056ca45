//! The live story of what a member's Raft does: votes, elections, replication, commits,
//! applies, snapshots, membership changes.
//!
//! Every member process has one event bus. The parts of the member that see something
//! happen (the transport sees votes and appends, the log store sees truncations, a watcher
//! of openraft's metrics sees role, term, commit and apply changes) call [`emit`]; the admin
//! service streams the bus to `raftty events` and the terminal app. Replication and apply
//! events come in bursts on a busy cluster, so ranges are merged over a short window
//! ([`emit_range`]) instead of flooding the stream with one event per message.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use tokio::sync::broadcast;

use crate::proto::rafttyadmin::RaftEvent;

/// How many past events a new subscriber can ask for.
const RECENT: usize = 1024;
/// Ranges of the same kind towards the same peer are merged over this window.
pub const MERGE_WINDOW: Duration = Duration::from_millis(100);

struct Bus {
    member_id: u64,
    member: String,
    term: AtomicU64,
    sender: broadcast::Sender<RaftEvent>,
    recent: Mutex<VecDeque<RaftEvent>>,
    /// (kind, peer) -> the merged range waiting to be sent, with its extra fields.
    pending: Mutex<BTreeMap<(String, String), PendingRange>>,
}

struct PendingRange {
    first: u64,
    last: u64,
    messages: u64,
    time_unix_micros: i64,
}

static BUS: OnceLock<Bus> = OnceLock::new();
/// The log index of the last snapshot received from a leader, so a new snapshot can be told
/// apart as built here or installed from elsewhere.
static LAST_INSTALLED: AtomicU64 = AtomicU64::new(0);

/// Records a snapshot installed from the leader, and says so.
pub fn installed(index: u64, from: &str) {
    LAST_INSTALLED.store(index, Ordering::Relaxed);
    emit("snapshot_installed", &[("index", index.to_string()), ("from", from.to_string())]);
}

pub fn was_installed(index: u64) -> bool {
    LAST_INSTALLED.load(Ordering::Relaxed) == index
}

/// Starts the bus of this member process. Events emitted before are dropped.
pub fn init(member_id: u64, member: &str) {
    let (sender, _) = broadcast::channel(4096);
    let _ = BUS.set(Bus {
        member_id,
        member: member.to_string(),
        term: AtomicU64::new(0),
        sender,
        recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        pending: Mutex::new(BTreeMap::new()),
    });
}

/// Sends merged ranges whose window has passed; the member calls it periodically.
pub fn flush_ranges(force: bool) {
    let Some(bus) = BUS.get() else { return };
    let now = now_micros();
    let due: Vec<((String, String), PendingRange)> = {
        let mut pending = bus.pending.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<_> = pending
            .iter()
            .filter(|(_, p)| force || now - p.time_unix_micros >= MERGE_WINDOW.as_micros() as i64)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter().filter_map(|k| pending.remove(&k).map(|p| (k, p))).collect()
    };
    for ((kind, peer), p) in due {
        let mut fields = vec![("from", p.first.to_string()), ("to", p.last.to_string())];
        if p.messages > 1 {
            fields.push(("messages", p.messages.to_string()));
        }
        if !peer.is_empty() {
            fields.push(("peer", peer));
        }
        publish(bus, &kind, p.time_unix_micros, &fields);
    }
}

/// The term the member is in, stamped on every event.
pub fn set_term(term: u64) {
    if let Some(bus) = BUS.get() {
        bus.term.store(term, Ordering::Relaxed);
    }
}

pub fn emit(kind: &str, fields: &[(&str, String)]) {
    if let Some(bus) = BUS.get() {
        publish(bus, kind, now_micros(), fields);
    }
}

/// Records that log entries `first..=last` took part in `kind` (towards `peer`, if any);
/// consecutive ranges are merged and sent after [`MERGE_WINDOW`].
pub fn emit_range(kind: &str, peer: &str, first: u64, last: u64) {
    let Some(bus) = BUS.get() else { return };
    let mut pending = bus.pending.lock().unwrap_or_else(|e| e.into_inner());
    let entry = pending.entry((kind.to_string(), peer.to_string())).or_insert(PendingRange {
        first,
        last,
        messages: 0,
        time_unix_micros: now_micros(),
    });
    entry.first = entry.first.min(first);
    entry.last = entry.last.max(last);
    entry.messages += 1;
}

/// The recent events and a receiver for the ones to come; None if the bus is not running.
pub fn subscribe() -> Option<(Vec<RaftEvent>, broadcast::Receiver<RaftEvent>)> {
    let bus = BUS.get()?;
    let recent = bus.recent.lock().unwrap_or_else(|e| e.into_inner());
    // Subscribing under the lock: no event falls between the backlog and the receiver.
    let receiver = bus.sender.subscribe();
    Some((recent.iter().cloned().collect(), receiver))
}

fn publish(bus: &Bus, kind: &str, time_unix_micros: i64, fields: &[(&str, String)]) {
    let event = RaftEvent {
        time_unix_micros,
        member_id: bus.member_id,
        member: bus.member.clone(),
        term: bus.term.load(Ordering::Relaxed),
        kind: kind.to_string(),
        fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    };
    let mut recent = bus.recent.lock().unwrap_or_else(|e| e.into_inner());
    if recent.len() == RECENT {
        recent.pop_front();
    }
    recent.push_back(event.clone());
    // No subscriber is fine: the event stays in the recent buffer.
    let _ = bus.sender.send(event);
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
