//! Where a write's time goes, as the leader sees it: each log index is stamped as it passes
//! the stages of a write (proposed, in the leader's log, durable there, sent to a follower,
//! acknowledged by one, applied), and when the client's request is answered the stamps
//! become one sample of each stage's duration. `raftty bench --explain` reads the samples
//! over the admin surface and prints their medians.
//!
//! Stamping costs a short lock per stage per entry. Followers stamp too (they append and
//! apply); entries nobody answers for are dropped once [`KEEP_INDEXES`] newer ones exist.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::LazyLock;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

/// Entries stamped but not yet answered for, at most.
const KEEP_INDEXES: usize = 4096;
/// Samples kept for the medians: the last writes answered.
const KEEP_SAMPLES: usize = 10_000;

/// The points a write passes on the leader, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The log store took the entry (openraft's core has handled the proposal).
    Appended,
    /// The leader's own copy is on its disk.
    Durable,
    /// An append carrying the entry left for a follower (the first one).
    Sent,
    /// A follower answered that it holds the entry (the first one).
    Acked,
    /// The state machine began to apply the entry: the leader knows it is committed.
    ApplyStarted,
    /// Applied; the client's answer is on its way.
    Applied,
}

/// The stages a sample is made of, as `raftty bench --explain` names them.
pub const STAGES: [&str; 8] = [
    "propose: request to the leader's log",
    "the leader's own log write durable",
    "append leaves for a follower",
    "follower durable, answer back",
    "commit known (after both)",
    "applied",
    "answer sent to the client",
    "in the member, in all",
];

#[derive(Debug, Default, Clone, Copy)]
struct Stamps {
    appended: Option<Instant>,
    durable: Option<Instant>,
    sent: Option<Instant>,
    acked: Option<Instant>,
    apply_started: Option<Instant>,
    applied: Option<Instant>,
}

#[derive(Default)]
struct Trace {
    pending: BTreeMap<u64, Stamps>,
    /// One duration per stage of [`STAGES`], in microseconds, per write answered.
    samples: VecDeque<[u32; 8]>,
}

static TRACE: LazyLock<Mutex<Trace>> = LazyLock::new(Default::default);

fn trace() -> std::sync::MutexGuard<'static, Trace> {
    TRACE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stamps `point` on every index in `first..=last` that has not passed it yet.
pub fn stamp(first: u64, last: u64, point: Point) {
    let now = Instant::now();
    let mut t = trace();
    for index in first..=last {
        let s = t.pending.entry(index).or_default();
        let slot = match point {
            Point::Appended => &mut s.appended,
            Point::Durable => &mut s.durable,
            Point::Sent => &mut s.sent,
            Point::Acked => &mut s.acked,
            Point::ApplyStarted => &mut s.apply_started,
            Point::Applied => &mut s.applied,
        };
        slot.get_or_insert(now);
    }
    while t.pending.len() > KEEP_INDEXES {
        t.pending.pop_first();
    }
}

/// The client's request for the entry at `index`, which reached the member at `received`
/// and was handed to Raft at `proposed`, is answered now: one sample of every stage.
pub fn answered(index: u64, received: Instant, proposed: Instant) {
    let now = Instant::now();
    let mut t = trace();
    let Some(s) = t.pending.remove(&index) else { return };
    let (Some(appended), Some(durable), Some(apply_started), Some(applied)) =
        (s.appended, s.durable, s.apply_started, s.applied)
    else {
        return;
    };
    let micros =
        |from: Instant, to: Instant| to.saturating_duration_since(from).as_micros().min(u32::MAX as u128) as u32;
    // A cluster of one replicates to nobody: its stage is empty.
    let (sent, acked) = (s.sent.unwrap_or(appended), s.acked.unwrap_or(appended));
    let committed_after = durable.max(acked);
    let sample = [
        micros(proposed, appended),
        micros(appended, durable),
        micros(appended, sent),
        micros(sent, acked),
        micros(committed_after, apply_started),
        micros(apply_started, applied),
        micros(applied, now),
        micros(received, now),
    ];
    if t.samples.len() == KEEP_SAMPLES {
        t.samples.pop_front();
    }
    t.samples.push_back(sample);
}

/// The median and the 99th percentile of each stage over the samples kept, and how many
/// there are; `reset` forgets them afterwards.
pub fn medians(reset: bool) -> (Vec<(Duration, Duration)>, usize) {
    let mut t = trace();
    let n = t.samples.len();
    let stats = (0..STAGES.len())
        .map(|stage| {
            let mut values: Vec<u32> = t.samples.iter().map(|s| s[stage]).collect();
            values.sort_unstable();
            let at =
                |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0) as u64;
            (Duration::from_micros(at(0.5)), Duration::from_micros(at(0.99)))
        })
        .collect();
    if reset {
        t.samples.clear();
    }
    (stats, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_passing_every_point_becomes_one_sample_in_order() {
        medians(true);
        let received = Instant::now();
        let index = 1_000_000_007;
        for point in [Point::Appended, Point::Sent, Point::Durable, Point::Acked, Point::ApplyStarted, Point::Applied] {
            stamp(index, index, point);
        }
        // A second stamp of a point keeps the first moment.
        stamp(index, index, Point::Sent);
        answered(index, received, received);
        let (stats, n) = medians(true);
        assert_eq!(n, 1);
        assert_eq!(stats.len(), STAGES.len());
        let total = stats[7].0;
        assert!(stats[..7].iter().all(|(p50, _)| *p50 <= total), "no stage is longer than the whole: {stats:?}");
        assert_eq!(medians(false).1, 0, "reset forgot the samples");
        answered(index, received, received);
        assert_eq!(medians(false).1, 0, "an index is answered for once");
    }
}
