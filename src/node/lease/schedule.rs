//! The leader's clock for leases: when each one expires, and which expired ones are being
//! revoked. Pure bookkeeping over instants, so every rule is tested without a cluster.

use std::collections::HashMap;
use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

/// etcd revokes at most this many expired leases per second, so that a pile of leases
/// expiring together does not flood Raft.
pub const REVOKES_PER_SECOND: usize = 1000;

#[derive(Debug, Default)]
pub struct Schedule {
    expiries: HashMap<i64, Instant>,
    /// Expired leases whose revoke is on its way, with when to try again if it fails.
    revoking: HashMap<i64, Instant>,
}

impl Schedule {
    /// The schedule of a member that has just become the leader.
    ///
    /// The previous leader's clocks died with its leadership, and clients could not renew
    /// while there was no leader; so, as etcd's lessor does when promoted, every lease gets
    /// its whole remaining time (its last checkpoint, or else its full TTL) again, counted
    /// from now plus `extend` (one election timeout). When many leases would then expire
    /// within the same second, they are spread out so that no more than three quarters of
    /// the revoke rate fall due in any second.
    pub fn promote(leases: impl IntoIterator<Item = (i64, Duration)>, now: Instant, extend: Duration) -> Schedule {
        let mut expiries: Vec<(i64, Instant)> =
            leases.into_iter().map(|(id, remaining)| (id, now + extend + remaining)).collect();
        if expiries.len() >= REVOKES_PER_SECOND {
            spread(&mut expiries, REVOKES_PER_SECOND * 3 / 4);
        }
        Schedule { expiries: expiries.into_iter().collect(), revoking: HashMap::new() }
    }

    pub fn is_tracked(&self, id: i64) -> bool {
        self.expiries.contains_key(&id)
    }

    /// Starts the clock of a lease seen for the first time (just granted).
    pub fn track(&mut self, id: i64, remaining: Duration, now: Instant) {
        self.expiries.entry(id).or_insert(now + remaining);
    }

    /// Forgets leases that no longer exist (revoked).
    pub fn retain(&mut self, existing: &HashSet<i64>) {
        self.expiries.retain(|id, _| existing.contains(id));
        self.revoking.retain(|id, _| existing.contains(id));
    }

    pub fn is_expired(&self, id: i64, now: Instant) -> bool {
        self.expiries.get(&id).is_some_and(|at| *at <= now)
    }

    /// A keep-alive: the lease lives a whole `ttl` from now.
    pub fn renew(&mut self, id: i64, ttl: Duration, now: Instant) {
        self.expiries.insert(id, now + ttl);
    }

    /// How long the lease has left; `None` when it is not tracked.
    pub fn remaining(&self, id: i64, now: Instant) -> Option<Duration> {
        self.expiries.get(&id).map(|at| at.saturating_duration_since(now))
    }

    /// Up to `limit` expired leases to revoke now, earliest first; they count as being
    /// revoked until [`Schedule::revoke_failed`] (or their disappearance) says otherwise.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<i64> {
        let mut due: Vec<(Instant, i64)> = self
            .expiries
            .iter()
            .filter(|(id, at)| **at <= now && self.revoking.get(id).is_none_or(|retry| *retry <= now))
            .map(|(id, at)| (*at, *id))
            .collect();
        due.sort();
        due.truncate(limit);
        let ids: Vec<i64> = due.into_iter().map(|(_, id)| id).collect();
        for id in &ids {
            // until told otherwise, assume the revoke is in flight for as long as any could be
            self.revoking.insert(*id, now + Duration::from_secs(3600));
        }
        ids
    }

    /// The revoke of `id` did not happen; try again after `retry`.
    pub fn revoke_failed(&mut self, id: i64, now: Instant, retry: Duration) {
        if let Some(at) = self.revoking.get_mut(&id) {
            *at = now + retry;
        }
    }

    /// Leases whose remaining time is worth recording through Raft: those with more than
    /// `interval` left (a shorter one would expire, or be renewed, before it mattered).
    pub fn checkpoints(&self, now: Instant, interval: Duration, limit: usize) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = self
            .expiries
            .iter()
            .filter(|(id, _)| !self.revoking.contains_key(id))
            .map(|(id, at)| (*id, at.saturating_duration_since(now)))
            .filter(|(_, left)| *left > interval)
            .map(|(id, left)| (id, seconds_up(left)))
            .collect();
        out.sort();
        out.truncate(limit);
        out
    }
}

/// Whole seconds, rounded up: a checkpoint never shortens a lease.
pub fn seconds_up(d: Duration) -> i64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Pushes expiries later, never earlier, so that they follow each other at least
/// `1s / per_second` apart: a steady revoke rate instead of a burst.
pub fn spread(expiries: &mut [(i64, Instant)], per_second: usize) {
    let per_second = u32::try_from(per_second.max(1)).unwrap_or(u32::MAX);
    let gap = Duration::from_secs(1) / per_second;
    expiries.sort_by_key(|(id, at)| (*at, *id));
    let mut earliest_free: Option<Instant> = None;
    for (_, at) in expiries.iter_mut() {
        if let Some(free) = earliest_free
            && *at < free
        {
            *at = free;
        }
        earliest_free = Some(*at + gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn promotion_gives_every_lease_its_remaining_time_plus_the_extension() {
        let now = Instant::now();
        let s = Schedule::promote([(1, secs(10)), (2, secs(60))], now, secs(1));
        assert_eq!(s.remaining(1, now), Some(secs(11)));
        assert_eq!(s.remaining(2, now), Some(secs(61)));
        assert!(!s.is_expired(1, now + secs(10)));
        assert!(s.is_expired(1, now + secs(11)));
    }

    #[test]
    fn a_renewal_restarts_the_whole_ttl() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.track(7, secs(5), now);
        s.renew(7, secs(5), now + secs(4));
        assert!(!s.is_expired(7, now + secs(8)));
        assert!(s.is_expired(7, now + secs(9)));
        // tracking again never moves an existing clock
        s.track(7, secs(100), now);
        assert_eq!(s.remaining(7, now + secs(4)), Some(secs(5)));
    }

    #[test]
    fn due_leases_are_handed_out_once_until_their_revoke_fails() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.track(1, secs(1), now);
        s.track(2, secs(2), now);
        s.track(3, secs(10), now);
        let later = now + secs(3);
        assert_eq!(s.take_due(later, 10), vec![1, 2]);
        assert!(s.take_due(later, 10).is_empty(), "in flight");
        s.revoke_failed(2, later, secs(1));
        assert!(s.take_due(later, 10).is_empty(), "not before the retry");
        assert_eq!(s.take_due(later + secs(1), 10), vec![2]);
        s.retain(&HashSet::from([3]));
        assert!(!s.is_tracked(1) && !s.is_tracked(2));
        assert_eq!(s.take_due(now + secs(20), 10), vec![3]);
    }

    #[test]
    fn due_leases_respect_the_limit_earliest_first() {
        let now = Instant::now();
        let mut s = Schedule::default();
        for id in 1..=5 {
            s.track(id, secs(6 - id as u64), now);
        }
        assert_eq!(s.take_due(now + secs(10), 2), vec![5, 4]);
    }

    #[test]
    fn promotion_spreads_a_pile_of_leases_expiring_together() {
        let now = Instant::now();
        let leases = (0..3000).map(|id| (id, secs(10)));
        let s = Schedule::promote(leases, now, secs(1));
        let mut times: Vec<Instant> = (0..3000).map(|id| now + s.remaining(id, now).unwrap()).collect();
        times.sort();
        assert_eq!(times[0], now + secs(11), "the first keeps its time");
        assert!(times.iter().all(|t| *t >= now + secs(11)), "never earlier");
        for window in times.windows(751) {
            assert!(window[750] - window[0] >= Duration::from_millis(999), "at most 750 a second");
        }
    }

    #[test]
    fn few_leases_are_not_spread() {
        let now = Instant::now();
        let s = Schedule::promote((0..10).map(|id| (id, secs(5))), now, secs(1));
        assert!((0..10).all(|id| s.remaining(id, now) == Some(secs(6))));
    }

    #[test]
    fn spread_leaves_already_sparse_expiries_alone() {
        let now = Instant::now();
        let mut e = vec![(1, now + secs(5)), (2, now + secs(1))];
        spread(&mut e, 10);
        assert_eq!(e, vec![(2, now + secs(1)), (1, now + secs(5))]);
    }

    #[test]
    fn checkpoints_cover_only_long_leases_rounded_up() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.track(1, Duration::from_millis(600_500), now);
        s.track(2, secs(10), now);
        assert_eq!(s.checkpoints(now, secs(300), 100), vec![(1, 601)]);
        assert_eq!(seconds_up(Duration::from_millis(1)), 1);
        assert_eq!(seconds_up(secs(2)), 2);
    }
}
