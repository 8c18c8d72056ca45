//! Network faults, as a real network would produce them.
//!
//! A lab keeps its faults in `faults.json`, by member name: partitions and one-way cuts
//! (messages between two members are lost) and slow links (a member's messages are delayed,
//! jittered and sometimes lost). Every member loads the whole table, watches the file, and
//! gets pushed each change; before each Raft message it sends, it asks [`FaultState`] what
//! the network does to it. A lost message is never delivered and its sender simply waits
//! until its own timeout, so no member is told there is a fault: it must find out the way
//! Raft does. Only member-to-member traffic is affected; clients still reach every member.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use rand::Rng;
use serde::Deserialize;
use serde::Serialize;

use crate::lab::LabConfig;
use crate::proto::rafttyadmin as pb;
use crate::raft::types::NodeId;

pub const FAULTS_FILE: &str = "faults.json";

/// How badly a member's links behave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slowness {
    pub delay_ms: u32,
    pub jitter_ms: u32,
    pub loss_percent: f64,
}

/// The faults of a lab, as people name them; saved in `faults.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabFaults {
    /// Bumped at every change, so members can say which table they apply.
    pub generation: u64,
    /// Directed (from, to) pairs whose messages are lost.
    pub cuts: BTreeSet<(String, String)>,
    pub slow: BTreeMap<String, Slowness>,
}

impl LabFaults {
    /// The lab's faults; none if the file does not exist.
    pub fn load(lab_dir: &Path) -> Result<LabFaults> {
        let path = lab_dir.join(FAULTS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("{} is not a valid fault table", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LabFaults::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Saves atomically with the next generation: members may read the file at any moment.
    pub fn save(&mut self, lab_dir: &Path) -> Result<()> {
        self.generation += 1;
        let path = lab_dir.join(FAULTS_FILE);
        let tmp = lab_dir.join(format!("{FAULTS_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Replaces every cut with a partition into `groups`: members of different groups can no
    /// longer exchange messages; members in no group keep talking to everyone.
    pub fn partition(&mut self, groups: &[Vec<String>]) {
        self.cuts.clear();
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for x in a {
                    for y in b {
                        self.cuts.insert((x.clone(), y.clone()));
                        self.cuts.insert((y.clone(), x.clone()));
                    }
                }
            }
        }
    }

    /// Loses the messages from `from` to `to` (one direction only).
    pub fn cut(&mut self, from: &str, to: &str) {
        self.cuts.insert((from.to_string(), to.to_string()));
    }

    pub fn set_slow(&mut self, member: &str, slowness: Slowness) {
        self.slow.insert(member.to_string(), slowness);
    }

    /// Removes every network fault.
    pub fn heal(&mut self) {
        self.cuts.clear();
        self.slow.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.cuts.is_empty() && self.slow.is_empty()
    }

    /// One line per fault, for people: `n1 -> n3 cut`, `n2 slow: 200ms ±50ms, 10% loss`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut seen = BTreeSet::new();
        for (a, b) in &self.cuts {
            if seen.contains(&(b.clone(), a.clone())) {
                continue;
            }
            if self.cuts.contains(&(b.clone(), a.clone())) {
                lines.push(format!("{a} <-> {b} cut"));
                seen.insert((a.clone(), b.clone()));
            } else {
                lines.push(format!("{a} -> {b} cut"));
            }
        }
        for (m, s) in &self.slow {
            lines.push(format!("{m} slow: {}ms ±{}ms, {}% loss", s.delay_ms, s.jitter_ms, s.loss_percent));
        }
        lines
    }

    /// The table members apply, by member id.
    pub fn to_table(&self, lab: &LabConfig) -> pb::FaultTable {
        let id = |name: &str| lab.members.iter().find(|m| m.name == name).map(|m| m.id);
        pb::FaultTable {
            generation: self.generation,
            cuts: self.cuts.iter().filter_map(|(a, b)| Some(pb::Cut { from: id(a)?, to: id(b)? })).collect(),
            slow: self
                .slow
                .iter()
                .filter_map(|(m, s)| {
                    Some((
                        id(m)?,
                        pb::LinkQuality { delay_ms: s.delay_ms, jitter_ms: s.jitter_ms, loss_percent: s.loss_percent },
                    ))
                })
                .collect(),
        }
    }
}

/// Parses `n1,n2|n3` into groups of member names.
pub fn parse_partition(spec: &str) -> Result<Vec<Vec<String>>> {
    let groups: Vec<Vec<String>> = spec
        .split('|')
        .map(|g| g.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect())
        .collect();
    anyhow::ensure!(
        groups.len() >= 2 && groups.iter().all(|g| !g.is_empty()),
        "a partition names at least two groups of members, e.g. \"n1,n2|n3\" (got {spec:?})"
    );
    let mut all = BTreeSet::new();
    for m in groups.iter().flatten() {
        anyhow::ensure!(all.insert(m.clone()), "{m} appears in two groups of {spec:?}");
    }
    Ok(groups)
}

/// Parses `10%` or `10` as a percentage.
pub fn parse_percent(s: &str) -> Result<f64> {
    let v: f64 = s.trim().trim_end_matches('%').parse().with_context(|| format!("bad percentage {s:?}"))?;
    anyhow::ensure!((0.0..=100.0).contains(&v), "a percentage is between 0 and 100, got {v}");
    Ok(v)
}

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
}

impl FaultState {
    pub fn new(self_id: NodeId, table: pb::FaultTable) -> FaultState {
        FaultState { self_id, table: RwLock::new(table) }
    }

    pub fn generation(&self) -> u64 {
        self.table.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Installs `table` unless an equal or newer generation is already in force.
    pub fn update(&self, table: pb::FaultTable) -> u64 {
        let mut current = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.generation > current.generation {
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
    use crate::lab::MemberConfig;

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

    #[test]
    fn bad_partitions_are_explained() {
        assert!(parse_partition("n1,n2").unwrap_err().to_string().contains("at least two groups"));
        assert!(parse_partition("n1|n1").unwrap_err().to_string().contains("appears in two groups"));
        assert_eq!(parse_percent("10%").unwrap(), 10.0);
        assert!(parse_percent("150").is_err());
    }
}
