//! Turns openraft's metrics into the member's event story: role and term changes,
//! elections, commits, applies, snapshots, log purges and membership changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::node::admin::role_of;
use crate::node::events;
use crate::node::member::Member;
use crate::node::raft::metrics_watch::MetricsWatch;
use crate::node::raft::types::*;

/// What the narrator remembers of the last metrics it saw.
#[derive(Default, PartialEq)]
struct Seen {
    role: &'static str,
    /// The term in which this member last led with a quorum: leading again in the same term
    /// means it got its quorum back, not that it won an election.
    led_in_term: Option<u64>,
    term: u64,
    leader: Option<NodeId>,
    committed: u64,
    applied: u64,
    snapshot: Option<LogId>,
    purged: u64,
    membership: Option<LogId>,
}

/// Runs for the life of the member.
pub async fn narrate(member: Arc<Member>) {
    let mut metrics = MetricsWatch::new(&member.raft);
    let mut seen = Seen::default();
    let mut tick = tokio::time::interval(events::MERGE_WINDOW / 2);
    loop {
        tokio::select! {
            open = metrics.changed() => {
                if !open {
                    break;
                }
            }
            // A leader's quorum lease runs out without any metrics change: look again anyway.
            _ = tick.tick() => events::flush_ranges(false),
        }
        let (mut now, names) = {
            let m = metrics.look();
            let live_leader = member.live_leader_of(&m);
            let now = observe(&m, live_leader);
            // Most changes move only indexes (several per write): the names are built for
            // the changes that print them.
            let names = (now.role != seen.role || now.leader != seen.leader || now.membership != seen.membership)
                .then(|| names_of(&m, live_leader));
            (now, names)
        };
        now.led_in_term = if now.role == "leader" { Some(now.term) } else { seen.led_in_term };
        tell(&seen, &now, names.as_ref());
        seen = now;
    }
    events::flush_ranges(true);
}

fn observe(m: &RaftMetrics, live_leader: Option<NodeId>) -> Seen {
    Seen {
        role: role_of(m, live_leader),
        led_in_term: None,
        term: m.current_term,
        leader: live_leader,
        committed: m.local_committed.map(|l| l.index).unwrap_or(0),
        applied: m.last_applied.map(|l| l.index).unwrap_or(0),
        snapshot: m.snapshot,
        purged: m.purged.map(|l| l.index).unwrap_or(0),
        membership: *m.membership_config.log_id(),
    }
}

fn names_of(m: &RaftMetrics, live_leader: Option<NodeId>) -> Names {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let name = |id: NodeId| {
        membership.get_node(&id).map(|n| n.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| format!("{id:x}"))
    };
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };
    Names {
        voters: sorted(voters.iter().map(|id| name(*id)).collect()),
        learners: sorted(membership.learner_ids().map(name).collect()),
        leader: live_leader.map(name),
        quorum_of: voters.len(),
    }
}

struct Names {
    voters: Vec<String>,
    learners: Vec<String>,
    leader: Option<String>,
    quorum_of: usize,
}

/// `names` is there whenever the role, the leader or the membership changed.
fn tell(before: &Seen, now: &Seen, names: Option<&Names>) {
    let quorum_of = names.map_or(0, |n| n.quorum_of);
    if now.term != before.term {
        events::set_term(now.term);
        events::emit("term_changed", &[("from", before.term.to_string()), ("to", now.term.to_string())]);
    }
    if now.role != before.role {
        events::emit("role_changed", &[("from", before.role.to_string()), ("to", now.role.to_string())]);
        if before.role == "leader" && now.role == "candidate" && now.term == before.term {
            events::emit("quorum_lost", &[("why", "no quorum acknowledged it for a whole leader lease".to_string())]);
        }
        if now.role == "leader" && before.led_in_term == Some(now.term) {
            events::emit("quorum_regained", &[]);
        } else if now.role == "leader" {
            events::emit(
                "leader_elected",
                &[("votes_needed", (quorum_of / 2 + 1).to_string()), ("of", quorum_of.to_string())],
            );
        }
    }
    if now.leader != before.leader {
        let leader = names.and_then(|n| n.leader.clone()).unwrap_or_else(|| "none".to_string());
        events::emit("leader_changed", &[("leader", leader)]);
    }
    if now.committed > before.committed {
        events::emit_range("commit_advanced", "", before.committed + 1, now.committed);
    }
    if now.applied > before.applied {
        events::emit_range("applied", "", before.applied + 1, now.applied);
    }
    if now.snapshot != before.snapshot
        && let Some(s) = now.snapshot
    {
        // The peer service reports snapshots received from the leader itself.
        if !events::was_installed(s.index) {
            events::emit("snapshot_built", &[("index", s.index.to_string()), ("term", s.leader_id.term.to_string())]);
        }
    }
    if now.purged > before.purged {
        events::emit("log_purged", &[("up_to", now.purged.to_string())]);
    }
    if let Some(names) = names
        && now.membership != before.membership
        && before.membership.is_some()
    {
        let mut fields = vec![("voters", names.voters.join(","))];
        if !names.learners.is_empty() {
            fields.push(("learners", names.learners.join(",")));
        }
        events::emit("membership_changed", &fields);
    }
}
