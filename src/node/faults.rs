//! Network faults as a member applies them: before each Raft message it sends, the member
//! asks [`FaultState`] what the network does to the message and to its answer. The table
//! itself, by member name, is the lab's (`lab/faults.rs`); every member gets the whole of it
//! and applies the part that concerns its own messages.

use std::sync::RwLock;
use std::time::Duration;

use rand::Rng;

use crate::node::raft::types::NodeId;
use crate::node::step::StepQueue;
use crate::proto::rafttyadmin as pb;

/// What the network does to one message and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub request_lost: bool,
    pub response_lost: bool,
    pub request_delay: Duration,
    pub response_delay: Duration,
}

/// The faults in force inside one member.
pub struct FaultState {
    self_id: NodeId,
    table: RwLock<pb::FaultTable>,
    step: StepQueue,
}

impl FaultState {
    pub fn new(self_id: NodeId, table: pb::FaultTable) -> FaultState {
        let step = StepQueue::default();
        step.set_mode(table.step);
        FaultState { self_id, table: RwLock::new(table), step }
    }

    /// The messages held by step mode.
    pub fn step(&self) -> &StepQueue {
        &self.step
    }

    pub fn generation(&self) -> u64 {
        self.table.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Installs `table` unless an equal or newer generation is already in force.
    pub fn update(&self, table: pb::FaultTable) -> u64 {
        let mut current = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.generation > current.generation {
            self.step.set_mode(table.step);
            *current = table;
        }
        current.generation
    }

    /// The fate of a request from this member to `to`, and of its answer.
    pub fn verdict(&self, to: NodeId) -> Verdict {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        if table.cuts.is_empty() && table.slow.is_empty() {
            return Verdict::default();
        }
        let cut = |a: NodeId, b: NodeId| table.cuts.iter().any(|c| c.from == a && c.to == b);
        let links: Vec<&pb::LinkQuality> = [self.self_id, to].iter().filter_map(|id| table.slow.get(id)).collect();
        let mut rng = rand::rng();
        let mut one_way = || {
            let mut delay = Duration::ZERO;
            let mut lost = false;
            for q in &links {
                let jitter =
                    if q.jitter_ms > 0 { rng.random_range(0..=2 * q.jitter_ms) as i64 - q.jitter_ms as i64 } else { 0 };
                delay += Duration::from_millis((q.delay_ms as i64 + jitter).max(0) as u64);
                lost |= q.loss_percent > 0.0 && rng.random_range(0.0..100.0) < q.loss_percent;
            }
            (delay, lost)
        };
        let (request_delay, request_lost_by_link) = one_way();
        let (response_delay, response_lost_by_link) = one_way();
        Verdict {
            request_lost: cut(self.self_id, to) || request_lost_by_link,
            response_lost: cut(to, self.self_id) || response_lost_by_link,
            request_delay,
            response_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabConfig;
    use crate::lab::MemberConfig;
    use crate::lab::faults::LabFaults;
    use crate::lab::faults::Slowness;
    use crate::lab::faults::parse_partition;

    fn lab_of(names: &[&str]) -> LabConfig {
        LabConfig {
            name: "t".into(),
            cluster_id: 1,
            tempo: crate::lab::Tempo::ETCD,
            members: names
                .iter()
                .enumerate()
                .map(|(i, n)| MemberConfig {
                    name: n.to_string(),
                    id: i as u64 + 1,
                    client_port: 0,
                    peer_port: 0,
                    metrics_port: 0,
                    initial: true,
                    removed: false,
                })
                .collect(),
            bootstrapped: true,
            snapshots: Default::default(),
            quota_backend_bytes: 0,
        }
    }

    #[test]
    fn a_partition_cuts_both_ways_between_groups_only() {
        let mut f = LabFaults::default();
        f.partition(&parse_partition("n1,n2|n3").unwrap());
        let table = f.to_table(&lab_of(&["n1", "n2", "n3"]));
        let n1 = FaultState::new(1, table.clone());
        let n3 = FaultState::new(3, table);
        assert!(n1.verdict(3).request_lost && n1.verdict(3).response_lost);
        assert!(!n1.verdict(2).request_lost && !n1.verdict(2).response_lost);
        assert!(n3.verdict(2).request_lost);
        assert_eq!(f.describe(), ["n1 <-> n3 cut", "n2 <-> n3 cut"]);
    }

    #[test]
    fn a_one_way_cut_loses_requests_one_way_and_answers_the_other() {
        let mut f = LabFaults::default();
        f.cut("n1", "n3");
        let table = f.to_table(&lab_of(&["n1", "n2", "n3"]));
        // n1's messages to n3 are lost...
        assert!(FaultState::new(1, table.clone()).verdict(3).request_lost);
        // ...so n3's requests reach n1, but n1's answers never come back.
        let v = FaultState::new(3, table).verdict(1);
        assert!(!v.request_lost && v.response_lost);
        assert_eq!(f.describe(), ["n1 -> n3 cut"]);
    }

    #[test]
    fn slow_links_delay_both_directions_and_healing_clears_everything() {
        let mut f = LabFaults::default();
        f.set_slow("n2", Slowness { delay_ms: 200, jitter_ms: 0, loss_percent: 0.0 });
        let table = f.to_table(&lab_of(&["n1", "n2"]));
        let v = FaultState::new(1, table).verdict(2);
        assert_eq!(v.request_delay, Duration::from_millis(200));
        assert_eq!(v.response_delay, Duration::from_millis(200));
        assert!(!v.request_lost);
        f.heal();
        assert!(f.is_empty());
    }

    #[test]
    fn older_tables_never_replace_newer_ones() {
        let state = FaultState::new(1, pb::FaultTable { generation: 5, ..Default::default() });
        assert_eq!(state.update(pb::FaultTable { generation: 3, ..Default::default() }), 5);
        assert_eq!(state.update(pb::FaultTable { generation: 6, ..Default::default() }), 6);
    }
}
