//! Network faults, as a real network would produce them, and as the lab names them.
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

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::lab::LabConfig;
use crate::proto::rafttyadmin as pb;

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
    /// Step mode: every Raft message waits until it is delivered or dropped by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepSettings>,
}

/// How step mode holds messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSettings {
    /// Appends without entries (heartbeats), and their answers, flow without waiting.
    #[serde(default)]
    pub auto_heartbeats: bool,
}

impl StepSettings {
    pub fn in_words(&self) -> String {
        if self.auto_heartbeats { "step mode (heartbeats flow)".to_string() } else { "step mode".to_string() }
    }
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
        self.cuts.is_empty() && self.slow.is_empty() && self.step.is_none()
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
        if let Some(step) = &self.step {
            lines.push(step.in_words());
        }
        lines
    }

    /// The faults as a person would name them, for `members` (in lab order): a partition as
    /// its groups (`partition n1 | n2,n3`), then the cuts that are not part of one
    /// (`cut n1 -> n3`), then slow links (`slow n2 200ms ±50ms 10% loss`).
    pub fn in_words(&self, members: &[String]) -> Vec<String> {
        let mut words = Vec::new();
        let groups = self.partition_groups(members);
        let mut explained = BTreeSet::new();
        if let Some(groups) = &groups {
            let named: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
            words.push(format!("partition {}", named.join(" | ")));
            for (i, a) in groups.iter().enumerate() {
                for b in groups.iter().skip(i + 1) {
                    for x in a {
                        for y in b {
                            explained.insert((x.clone(), y.clone()));
                            explained.insert((y.clone(), x.clone()));
                        }
                    }
                }
            }
        }
        for (a, b) in self.cuts.difference(&explained) {
            if self.cuts.contains(&(b.clone(), a.clone())) && !explained.contains(&(b.clone(), a.clone())) {
                if a < b {
                    words.push(format!("cut {a} <-> {b}"));
                }
            } else {
                words.push(format!("cut {a} -> {b}"));
            }
        }
        for (m, s) in &self.slow {
            let mut w = format!("slow {m} {}ms", s.delay_ms);
            if s.jitter_ms > 0 {
                w.push_str(&format!(" ±{}ms", s.jitter_ms));
            }
            if s.loss_percent > 0.0 {
                w.push_str(&format!(" {}% loss", s.loss_percent));
            }
            words.push(w);
        }
        if let Some(step) = &self.step {
            words.push(step.in_words());
        }
        words
    }

    /// The groups of a partition, if the cuts split `members` into islands that reach
    /// nobody outside their own: members joined by a link open in both directions share an
    /// island. None when there is no such split.
    pub fn partition_groups(&self, members: &[String]) -> Option<Vec<Vec<String>>> {
        let open = |a: &String, b: &String| {
            !self.cuts.contains(&(a.clone(), b.clone())) && !self.cuts.contains(&(b.clone(), a.clone()))
        };
        let mut island: Vec<usize> = (0..members.len()).collect();
        // Few members: a plain fixpoint of "same island as a neighbour" is enough.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..members.len() {
                for j in 0..members.len() {
                    if i != j && open(&members[i], &members[j]) && island[j] < island[i] {
                        island[i] = island[j];
                        changed = true;
                    }
                }
            }
        }
        let mut groups: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, m) in members.iter().enumerate() {
            match groups.iter_mut().find(|(id, _)| *id == island[i]) {
                Some((_, g)) => g.push(m.clone()),
                None => groups.push((island[i], vec![m.clone()])),
            }
        }
        if groups.len() < 2 {
            return None;
        }
        // An island only counts if it is cut off completely, in both directions.
        let isolated = groups.iter().all(|(id, g)| {
            g.iter().all(|x| {
                members.iter().enumerate().filter(|(j, _)| island[*j] != *id).all(|(_, y)| {
                    self.cuts.contains(&(x.clone(), y.clone())) && self.cuts.contains(&(y.clone(), x.clone()))
                })
            })
        });
        isolated.then(|| groups.into_iter().map(|(_, g)| g).collect())
    }

    /// Whether the messages from `from` to `to` are lost.
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.cuts.contains(&(from.to_string(), to.to_string()))
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
            step: self.step.map(|s| pb::StepMode { auto_heartbeats: s.auto_heartbeats }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn faults_are_named_in_words() {
        let members = names(&["n1", "n2", "n3"]);
        let mut f = LabFaults::default();
        f.partition(&parse_partition("n1|n2,n3").unwrap());
        assert_eq!(f.in_words(&members), ["partition n1 | n2,n3"]);
        f.heal();
        f.cut("n1", "n3");
        assert_eq!(f.in_words(&members), ["cut n1 -> n3"]);
        assert_eq!(f.partition_groups(&members), None);
        f.cut("n3", "n1");
        assert_eq!(f.in_words(&members), ["cut n1 <-> n3"]);
        f.heal();
        f.set_slow("n2", Slowness { delay_ms: 200, jitter_ms: 50, loss_percent: 10.0 });
        assert_eq!(f.in_words(&members), ["slow n2 200ms ±50ms 10% loss"]);
        f.heal();
        assert!(f.in_words(&members).is_empty());
    }

    #[test]
    fn bad_partitions_are_explained() {
        assert!(parse_partition("n1,n2").unwrap_err().to_string().contains("at least two groups"));
        assert!(parse_partition("n1|n1").unwrap_err().to_string().contains("appears in two groups"));
        assert_eq!(parse_percent("10%").unwrap(), 10.0);
        assert!(parse_percent("150").is_err());
    }
}
