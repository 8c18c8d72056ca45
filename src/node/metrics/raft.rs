//! Leadership, commit and apply, as openraft reports them on its metrics channel.
//!
//! # Whether a member "has a leader"
//!
//! openraft names the leader of the last committed vote, and keeps naming it after that
//! leader died for as long as no new vote is granted; with pre-vote, a lone survivor never
//! gets one, so it would name a dead leader forever. etcd forgets its leader when its
//! election timer fires (and a leader that lost its quorum steps down), so its
//! `etcd_server_has_leader` drops to 0, which is what etcd's alerts watch. raftty therefore
//! counts a leader as known only while it is live: a follower must have had an AppendEntries
//! from it within an election timeout (the peer service reports those), and a leader must
//! have been acknowledged by a quorum within one.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use openraft::Instant as _;
use openraft::ServerState;

use crate::node::metrics::MemberMetrics;
use crate::node::raft::metrics_watch::MetricsWatch;
use crate::node::raft::types::NodeId;
use crate::node::raft::types::Raft;
use crate::node::raft::types::RaftMetrics;

/// The part of openraft's metrics that etcd's server metrics are made of, copied out so the
/// channel is never borrowed for longer than it takes to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftView {
    /// The leader openraft names, live or not.
    pub leader: Option<NodeId>,
    pub leading: bool,
    /// This member is the only voter: it is its own quorum.
    pub sole_voter: bool,
    /// For a leader: how long ago a quorum last acknowledged it.
    pub quorum_acked_ago: Option<Duration>,
    pub learner: bool,
    pub committed: u64,
    pub applied: u64,
}

impl RaftView {
    pub fn of(m: &RaftMetrics) -> RaftView {
        let membership = m.membership_config.membership();
        let mut voters = membership.voter_ids();
        let sole_voter = voters.next() == Some(m.id) && voters.next().is_none();
        RaftView {
            leader: m.current_leader,
            leading: m.state == ServerState::Leader,
            sole_voter,
            quorum_acked_ago: m.last_quorum_acked.as_ref().map(|at| at.elapsed()),
            learner: membership.learner_ids().any(|id| id == m.id),
            committed: m.local_committed.map_or(0, |l| l.index),
            applied: m.last_applied.map_or(0, |l| l.index),
        }
    }

    /// The leader this member may count on: the one openraft names, if it has shown signs
    /// of life within `window` (see the module documentation).
    pub fn live_leader(&self, heard_from_leader_ago: Option<Duration>, window: Duration) -> Option<NodeId> {
        let within = |ago: Option<Duration>| ago.is_some_and(|ago| ago <= window);
        let live =
            if self.leading { self.sole_voter || within(self.quorum_acked_ago) } else { within(heard_from_leader_ago) };
        self.leader.filter(|_| live)
    }
}

/// Counts leader changes the way etcd does: each time a leader is known that differs from
/// the one known just before, where "none" counts as different. Losing the leader and
/// getting the same one back is therefore a change; losing it alone is not.
#[derive(Debug, Default)]
pub struct LeaderChanges {
    last: Option<NodeId>,
}

impl LeaderChanges {
    /// Whether `leader` is a new leader.
    pub fn saw(&mut self, leader: Option<NodeId>) -> bool {
        let new = leader.is_some() && leader != self.last;
        self.last = leader;
        new
    }
}

/// When this member last accepted an AppendEntries from a leader.
#[derive(Debug, Default)]
pub struct LeaderContact {
    last: Mutex<Option<Instant>>,
}

impl LeaderContact {
    pub fn heard_now(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    #[cfg(test)]
    pub fn heard_at(&self, at: Instant) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    pub fn ago(&self) -> Option<Duration> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).map(|at| at.elapsed())
    }
}

impl MemberMetrics {
    /// How long ago this member last accepted an AppendEntries from a leader.
    pub fn heard_from_leader_ago(&self) -> Option<Duration> {
        self.leader_contact.ago()
    }

    /// The peer service calls this for every AppendEntries a leader sent and this member
    /// accepted as coming from the current leader.
    pub fn heard_from_leader(&self) {
        self.leader_contact.heard_now();
    }

    /// Updates the Raft-derived metrics from one view of openraft's metrics, where a leader
    /// silent for longer than `window` counts as none.
    pub fn record_raft(&self, view: &RaftView, leaders: &mut LeaderChanges, window: Duration) {
        let leader = view.live_leader(self.leader_contact.ago(), window);
        if leaders.saw(leader) {
            self.leader_changes.inc();
        }
        self.has_leader.set(leader.is_some().into());
        self.is_leader.set(view.leading.into());
        self.is_learner.set(view.learner.into());
        self.proposals_committed.set(view.committed as i64);
        self.proposals_applied.set(view.applied as i64);
    }

    /// Keeps the Raft-derived metrics current until Raft shuts down: on every change
    /// openraft reports, and every heartbeat interval, since a leader falling silent is not
    /// a change openraft reports.
    pub fn follow(self: &Arc<Self>, raft: &Raft) {
        let metrics = self.clone();
        let mut changes = MetricsWatch::new(raft);
        let config = raft.config();
        let window = Duration::from_millis(config.election_timeout_max);
        let mut tick = tokio::time::interval(Duration::from_millis(config.heartbeat_interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            let mut leaders = LeaderChanges::default();
            loop {
                let view = RaftView::of(&changes.look());
                metrics.record_raft(&view, &mut leaders, window);
                tokio::select! {
                    open = changes.changed() => if !open {
                        return;
                    },
                    _ = tick.tick() => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::metrics::tests::member_metrics;
    use crate::node::metrics::tests::sample;

    const WINDOW: Duration = Duration::from_secs(2);

    fn follower_of(leader: NodeId) -> RaftView {
        RaftView {
            leader: Some(leader),
            leading: false,
            sole_voter: false,
            quorum_acked_ago: None,
            learner: false,
            committed: 10,
            applied: 9,
        }
    }

    #[test]
    fn leader_changes_count_like_etcd() {
        let mut leaders = LeaderChanges::default();
        assert!(!leaders.saw(None), "no leader yet is no change");
        assert!(leaders.saw(Some(1)), "the first leader is a change");
        assert!(!leaders.saw(Some(1)), "the same leader again is not");
        assert!(!leaders.saw(None), "losing the leader is not a change by itself");
        assert!(leaders.saw(Some(1)), "the same leader after none is");
        assert!(leaders.saw(Some(2)), "another leader is");
    }

    #[test]
    fn a_leader_counts_only_while_it_shows_signs_of_life() {
        let follower = follower_of(7);
        let recent = Some(Duration::from_millis(100));
        let stale = Some(Duration::from_secs(3));
        assert_eq!(follower.live_leader(recent, WINDOW), Some(7));
        assert_eq!(follower.live_leader(stale, WINDOW), None);
        assert_eq!(follower.live_leader(None, WINDOW), None);

        let leader = RaftView { leader: Some(1), leading: true, ..follower };
        let acked = |ago| RaftView { quorum_acked_ago: ago, ..leader };
        assert_eq!(acked(recent).live_leader(None, WINDOW), Some(1));
        assert_eq!(acked(stale).live_leader(None, WINDOW), None);
        assert_eq!(acked(None).live_leader(None, WINDOW), None);
        let alone = RaftView { sole_voter: true, ..leader };
        assert_eq!(alone.live_leader(None, WINDOW), Some(1));
    }

    #[test]
    fn raft_views_set_leadership_gauges_and_indexes() {
        let (_dir, m) = member_metrics();
        let mut leaders = LeaderChanges::default();
        m.heard_from_leader();
        m.record_raft(&follower_of(7), &mut leaders, WINDOW);
        let text = m.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_has_leader"), Some(1.0));
        assert_eq!(sample(&text, "etcd_server_is_leader"), Some(0.0));
        assert_eq!(sample(&text, "etcd_server_leader_changes_seen_total"), Some(1.0));
        assert_eq!(sample(&text, "etcd_server_proposals_committed_total"), Some(10.0));
        assert_eq!(sample(&text, "etcd_server_proposals_applied_total"), Some(9.0));

        // The leader falls silent: openraft still names it, the metrics no longer do.
        m.leader_contact.heard_at(Instant::now() - WINDOW - Duration::from_secs(1));
        m.record_raft(&follower_of(7), &mut leaders, WINDOW);
        let text = m.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_has_leader"), Some(0.0));
        assert_eq!(sample(&text, "etcd_server_leader_changes_seen_total"), Some(1.0));
    }
}
