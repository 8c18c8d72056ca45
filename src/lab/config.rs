//! `lab.json`: what a lab is made of. Written by the supervisor, read by every member at
//! start-up, so one file says which members exist, where they listen and how fast they tick.

use std::path::Path;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::node::raft::types::NodeId;

pub const CONFIG_FILE: &str = "lab.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabConfig {
    pub name: String,
    /// etcd's cluster id, shown in every response header; random per lab.
    pub cluster_id: u64,
    pub tempo: Tempo,
    /// Every member the lab ever had, removed ones included, so ids and names are never reused.
    pub members: Vec<MemberConfig>,
    /// Set once the initial members have formed the cluster: from then on a member with an
    /// empty data directory must not bootstrap a new cluster of its own.
    #[serde(default)]
    pub bootstrapped: bool,
    #[serde(default)]
    pub snapshots: SnapshotSettings,
    /// etcd's `--quota-backend-bytes` for every member: 0 is etcd's default (2 GiB), a
    /// negative number no quota. Members read it when they start.
    #[serde(default)]
    pub quota_backend_bytes: i64,
}

/// When members snapshot their state and how much log they keep after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSettings {
    /// A member snapshots after this many entries since its last snapshot. etcd 3.4 waits for
    /// 100,000; a lab snapshots sooner so restarts stay fast and people see it happen.
    pub every: u64,
    /// Entries kept after a snapshot, so a briefly lagging follower catches up from the log
    /// rather than by a whole snapshot.
    pub keep_log: u64,
    /// Waits longer than `every` when the state holds more revision records than that, so
    /// that a long history does not make every write pay for rewriting it (see
    /// [`crate::node::raft::snapshot_policy`]). Labs made with `--snapshot-every` snapshot at
    /// exactly their interval, as do labs made before this existed.
    #[serde(default)]
    pub grows_with_state: bool,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings { every: 10_000, keep_log: 5_000, grows_with_state: true }
    }
}

impl SnapshotSettings {
    /// Snapshot every `every` entries, keeping half as many entries of log after it.
    pub fn every(every: u64) -> SnapshotSettings {
        SnapshotSettings { every: every.max(1), keep_log: (every / 2).min(5_000), grows_with_state: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberConfig {
    /// n1, n2, ...: what people type.
    pub name: String,
    /// etcd's member id (what etcdctl prints in hex): random, never reused.
    pub id: NodeId,
    pub client_port: u16,
    pub peer_port: u16,
    pub metrics_port: u16,
    /// A member of the first configuration, which bootstraps the cluster together.
    pub initial: bool,
    /// Removed from the cluster: its process is never started again.
    #[serde(default)]
    pub removed: bool,
}

impl MemberConfig {
    pub fn client_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.peer_port)
    }

    pub fn metrics_url(&self) -> String {
        format!("https://127.0.0.1:{}/metrics", self.metrics_port)
    }
}

/// Raft's timing. etcd's defaults are a 100 ms heartbeat and a 1 s election timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tempo {
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
}

impl Tempo {
    pub const ETCD: Tempo = Tempo { heartbeat_ms: 100, election_timeout_ms: 1000 };
    /// Ten times slower than etcd: slow enough for a person to watch an election happen.
    pub const SLOW: Tempo = Tempo { heartbeat_ms: 1000, election_timeout_ms: 10_000 };

    /// Parses `etcd`, `slow`, or `HEARTBEAT/ELECTION` in milliseconds (e.g. `50/500`).
    pub fn parse(s: &str) -> Result<Tempo> {
        let tempo = match s {
            "etcd" | "default" => Tempo::ETCD,
            "slow" => Tempo::SLOW,
            custom => {
                let (hb, el) = custom.split_once('/').with_context(|| {
                    format!("unknown tempo {custom:?}: use `etcd`, `slow` or HEARTBEAT_MS/ELECTION_MS such as 50/500")
                })?;
                let heartbeat_ms =
                    hb.trim().trim_end_matches("ms").parse().with_context(|| format!("bad heartbeat {hb:?}"))?;
                let election_timeout_ms =
                    el.trim().trim_end_matches("ms").parse().with_context(|| format!("bad election timeout {el:?}"))?;
                Tempo { heartbeat_ms, election_timeout_ms }
            }
        };
        anyhow::ensure!(tempo.heartbeat_ms >= 10, "heartbeat must be at least 10 ms");
        anyhow::ensure!(
            tempo.election_timeout_ms >= 5 * tempo.heartbeat_ms,
            "the election timeout must be at least five heartbeats (etcd's rule), got {}ms/{}ms",
            tempo.heartbeat_ms,
            tempo.election_timeout_ms
        );
        Ok(tempo)
    }
}

impl LabConfig {
    pub fn load(lab_dir: &Path) -> Result<LabConfig> {
        let path = lab_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid lab config", path.display()))
    }

    /// Saves atomically: members read this file at any time.
    pub fn save(&self, lab_dir: &Path) -> Result<()> {
        let path = lab_dir.join(CONFIG_FILE);
        let tmp = lab_dir.join(format!("{CONFIG_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn member(&self, name: &str) -> Result<&MemberConfig> {
        self.members.iter().find(|m| m.name == name).with_context(|| {
            let names: Vec<_> = self.members.iter().filter(|m| !m.removed).map(|m| m.name.as_str()).collect();
            format!("lab {} has no member {name:?} (members: {})", self.name, names.join(", "))
        })
    }

    /// Members that are part of the cluster (not removed).
    pub fn active_members(&self) -> impl Iterator<Item = &MemberConfig> {
        self.members.iter().filter(|m| !m.removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_names_and_custom_values() {
        assert_eq!(Tempo::parse("etcd").unwrap(), Tempo::ETCD);
        assert_eq!(Tempo::parse("slow").unwrap(), Tempo::SLOW);
        assert_eq!(Tempo::parse("50/500").unwrap(), Tempo { heartbeat_ms: 50, election_timeout_ms: 500 });
        assert!(Tempo::parse("100/200").unwrap_err().to_string().contains("five heartbeats"));
        assert!(Tempo::parse("fast").unwrap_err().to_string().contains("unknown tempo"));
    }
}
