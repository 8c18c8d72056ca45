//! `raftty bench --rounds N`: a single client's put, N times on each system, alternating.
//!
//! One client's put is bound by fsync and scheduling latency, which on a shared VM drift by
//! up to 2x within a minute: one raftty run followed by one etcd run then measures the
//! machine as much as the systems. Alternating short rounds lets both see the same drift,
//! and the median of the per-round ratios is what to compare.

use std::fmt::Write as _;

use crate::proving::bench::load::Outcome;

/// One round: raftty's run, then etcd's right after it.
pub struct Round {
    pub raftty: Outcome,
    pub etcd: Outcome,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.raftty.ops_per_sec() / self.etcd.ops_per_sec()
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn report(rounds: &[Round], etcd_name: &str) -> String {
    let mut out = String::new();
    if rounds.is_empty() {
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "put, 1 client, in {} alternating rounds (raftty, then {etcd_name}):", rounds.len());
    for (i, r) in rounds.iter().enumerate() {
        let _ = writeln!(
            out,
            "  round {}: raftty {:.0} ops/s (p50 {:.2} ms), {etcd_name} {:.0} ops/s (p50 {:.2} ms): {:.2}x",
            i + 1,
            r.raftty.ops_per_sec(),
            r.raftty.p50_ms(),
            r.etcd.ops_per_sec(),
            r.etcd.p50_ms(),
            r.ratio()
        );
    }
    let _ = writeln!(
        out,
        "  median: {:.2}x; p50 raftty {:.2} ms, {etcd_name} {:.2} ms",
        median(rounds.iter().map(Round::ratio).collect()),
        median(rounds.iter().map(|r| r.raftty.p50_ms()).collect()),
        median(rounds.iter().map(|r| r.etcd.p50_ms()).collect()),
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;

    fn outcome(ops: u64, latency_us: u64) -> Outcome {
        let mut latency = Histogram::new(3).unwrap();
        for _ in 0..ops {
            latency.record(latency_us).unwrap();
        }
        Outcome { ops, errors: 0, elapsed: Duration::from_secs(1), latency }
    }

    #[test]
    fn the_median_of_the_rounds_ratios_is_reported() {
        let rounds = vec![
            Round { raftty: outcome(500, 2000), etcd: outcome(1000, 1000) },
            Round { raftty: outcome(900, 1100), etcd: outcome(600, 1700) },
            Round { raftty: outcome(700, 1400), etcd: outcome(700, 1400) },
        ];
        let text = report(&rounds, "etcd 3.4.23");
        assert!(text.contains("in 3 alternating rounds"), "{text}");
        assert!(
            text.contains("round 1: raftty 500 ops/s (p50 2.00 ms), etcd 3.4.23 1000 ops/s (p50 1.00 ms): 0.50x"),
            "{text}"
        );
        assert!(text.contains("round 2:") && text.contains(": 1.50x"), "{text}");
        // ratios 0.5, 1.5 and 1.0: the median is the middle one, not the mean of the others
        assert!(text.contains("median: 1.00x; p50 raftty 1.40 ms, etcd 3.4.23 1.40 ms"), "{text}");
    }

    #[test]
    fn no_rounds_print_nothing() {
        assert_eq!(report(&[], "etcd"), "");
    }
}
