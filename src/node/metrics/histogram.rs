//! A lock-free histogram with fixed bounds, for the hot paths that record timings (the log
//! writer's fsyncs, the state file's commits, peer round trips) without knowing about
//! Prometheus; the exporter reads a [`HistogramSnapshot`] whenever it is scraped.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

/// A histogram with fixed upper bounds, ready to be rendered as a Prometheus histogram.
/// Any thread may observe and any thread may read.
#[derive(Debug)]
pub struct Histogram {
    upper_bounds: Vec<f64>,
    /// One count per bound, then one for values above every bound; not cumulative.
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
}

/// A histogram's content at one moment, in Prometheus' cumulative form.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)`, ascending; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Prometheus' `ExponentialBuckets(start, factor, count)`.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Histogram {
        let upper_bounds: Vec<f64> = (0..count).map(|i| start * factor.powi(i as i32)).collect();
        let counts = (0..=count).map(|_| AtomicU64::new(0)).collect();
        Histogram { upper_bounds, counts, sum_bits: AtomicU64::new(0f64.to_bits()) }
    }

    pub fn observe(&self, value: f64) {
        let slot = self.upper_bounds.iter().position(|bound| value <= *bound).unwrap_or(self.upper_bounds.len());
        if let Some(counter) = self.counts.get(slot) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        // The total is the sum of the slots read here, not a separate counter: a scrape that
        // races an observation must still see `+Inf` equal to the last bucket or above it.
        let mut cumulative = 0;
        let buckets = self
            .upper_bounds
            .iter()
            .zip(&self.counts)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        let above_every_bound = self.counts.last().map_or(0, |n| n.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            count: cumulative + above_every_bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_values_above_every_bound_count_only_in_the_total() {
        let h = Histogram::exponential(0.001, 2.0, 3);
        for v in [0.0005, 0.001, 0.0015, 0.003, 10.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.001, 2), (0.002, 3), (0.004, 4)]);
        assert_eq!(s.count, 5);
        assert!((s.sum - 10.006).abs() < 1e-9);
    }

    #[test]
    fn exponential_bounds_match_prometheus() {
        // etcd's peer round-trip buckets: 0.1 ms doubling 16 times, up to 3.2768 s.
        let s = Histogram::exponential(0.0001, 2.0, 16).snapshot();
        assert_eq!(s.buckets.len(), 16);
        assert_eq!(s.buckets[0].0, 0.0001);
        assert!((s.buckets[15].0 - 3.2768).abs() < 1e-12);
        assert_eq!(s.count, 0);
    }
}
