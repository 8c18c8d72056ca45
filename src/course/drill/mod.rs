//! Disaster-recovery drills: a real disaster struck at a random moment on a lab that is
//! busy taking writes and being backed up, recovered by the learner with the real commands,
//! and scored (time to a healthy cluster, acknowledged writes lost, HashKV agreement).
//!
//! A drill lives in `<home>/drills/<lab>/`, beside the lab rather than inside it: a restore
//! or a recovery replaces the lab's folder, and the drill must see the whole story.
//!
//! ```text
//! drill.json     what was struck, when, what may be lost, the helpers' pids (this file)
//! acked.jsonl    every write the workload saw acknowledged, fsynced before it counts
//! health.jsonl   each change in the cluster's health as the watcher saw it
//! workload.log   backup.log   what the two helpers printed
//! ```
//!
//! - `kinds.rs`: the four kinds of disaster, how each strikes, what each may lose, hints;
//! - `workload.rs`: the detached helper that writes, records acknowledgements and watches
//!   the cluster's health (`raftty drill workload`, hidden);
//! - `health.rs`: what "healthy" means, shared by the watcher and the score;
//! - `helpers.rs`: starting, recognising and stopping the detached helpers;
//! - `score.rs`: judging a recovery, and the kept scores (`<home>/drills/scores.jsonl`);
//! - `commands.rs`: `raftty drill list/start/status/hint/score/stop`.

pub mod commands;
pub mod health;
pub mod helpers;
pub mod kinds;
pub mod score;
pub mod workload;

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

pub use kinds::Kind;

pub const STATE_FILE: &str = "drill.json";
pub const ACKS_FILE: &str = "acked.jsonl";
pub const HEALTH_FILE: &str = "health.jsonl";
pub const WORKLOAD_LOG: &str = "workload.log";
pub const BACKUP_LOG: &str = "backup.log";

/// Where the workload writes: one new key per write, so a missing key is a lost write.
pub const WRITES_PREFIX: &str = "/drill/writes/";

/// The folder of the drill on `lab`.
pub fn folder(home: &Path, lab: &str) -> PathBuf {
    home.join("drills").join(lab)
}

/// The drill under way (or last run) on one lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillState {
    pub lab: String,
    pub kind: Kind,
    pub started_unix_ms: i64,
    /// Voting members the lab had at the start: a recovered cluster is back to this size.
    pub members: usize,
    pub backup_dir: PathBuf,
    #[serde(default)]
    pub workload_pid: Option<i32>,
    #[serde(default)]
    pub backup_pid: Option<i32>,
    #[serde(default)]
    pub strike: Option<Strike>,
    #[serde(default)]
    pub hints_shown: usize,
    /// Set once the drill is over: scored as passed, or stopped.
    #[serde(default)]
    pub finished: Option<score::Score>,
}

/// What the strike did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Strike {
    pub at_unix_ms: i64,
    /// Members whose data was destroyed.
    pub destroyed: Vec<String>,
    /// The member left standing with its data, for quorum loss.
    #[serde(default)]
    pub survivor: Option<String>,
    /// Acknowledged writes above this revision, made before the strike, may be lost (what the
    /// backup or the survivor had not got yet); None: nothing may be lost.
    #[serde(default)]
    pub kept_up_to_revision: Option<i64>,
    /// The backend quota that ran out, for nospace.
    #[serde(default)]
    pub quota_bytes: Option<i64>,
    /// What the learner is told happened.
    pub told: String,
    /// When the strike was over (the members it killed were gone, what survived settled):
    /// a write acknowledged before then may still have been lost with them.
    #[serde(default)]
    pub ended_unix_ms: i64,
}

impl DrillState {
    pub fn load(home: &Path, lab: &str) -> Result<Option<DrillState>> {
        DrillState::load_from(&folder(home, lab))
    }

    pub fn load_from(dir: &Path) -> Result<Option<DrillState>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is damaged; `raftty drill start` begins afresh", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Written whole and renamed into place: the workload reads it at any time.
    pub fn save(&self, home: &Path) -> Result<()> {
        let dir = folder(home, &self.lab);
        crate::pki::create_private_dir(&dir)?;
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).with_context(|| format!("writing {}", dir.display()))?;
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    crate::course::observe::now_ms()
}

/// A wall-clock time for people: `2026-12-02 07:30:12`.
pub fn clock(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").trim_end_matches('Z').to_string()
}
