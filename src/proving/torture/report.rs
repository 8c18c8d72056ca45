//! What a torture run found: a summary for people, and on a violation, the whole history
//! and a readable account of the first violation, saved to files.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::lab::check::CheckReport;
use crate::proving::check::Anomaly;
use crate::proving::check::AnomalyKind;
use crate::proving::check::History;
use crate::proving::check::Linearizability;
use crate::proving::check::LinearizabilityReport;
use crate::proving::torture::nemesis;
use crate::proving::torture::nemesis::Injected;
use crate::proving::torture::workload::Tally;

pub struct TortureReport {
    pub seed: u64,
    pub duration: Duration,
    pub tally: Tally,
    pub injected: Vec<Injected>,
    pub linearizability: LinearizabilityReport,
    pub anomalies: Vec<Anomaly>,
    pub hashes: CheckReport,
    /// Events the watchers received, all checked against the committed history.
    pub watched_events: usize,
    pub watch_violations: Vec<String>,
    pub lease_violations: Vec<String>,
    pub history: History,
    pub out: PathBuf,
}

impl TortureReport {
    pub fn passed(&self) -> bool {
        matches!(self.linearizability.verdict(), Linearizability::Linearizable)
            && self.anomalies.is_empty()
            && self.hashes.all_agree()
            && self.watch_violations.is_empty()
            && self.lease_violations.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "torture run, seed {}, {:.1} s", self.seed, self.duration.as_secs_f64());
        let _ = writeln!(out, "\noperations ({} in all):", self.tally.total());
        let _ = writeln!(out, "  {:<20} {:>8} {:>8} {:>8}", "kind", "ok", "failed", "unknown");
        for (kind, [ok, failed, unknown]) in &self.tally.by_kind {
            let _ = writeln!(out, "  {kind:<20} {ok:>8} {failed:>8} {unknown:>8}");
        }
        let counts = nemesis::count(&self.injected);
        let faults: Vec<String> = counts.iter().map(|(f, n)| format!("{f} x{n}")).collect();
        let _ = writeln!(
            out,
            "\nfaults injected ({}): {}",
            self.injected.len(),
            if faults.is_empty() { "none".to_string() } else { faults.join(", ") }
        );
        for i in &self.injected {
            let _ = writeln!(out, "  {:>7.1}s  {}", i.at.as_secs_f64(), i.detail);
        }
        let _ = writeln!(out, "\nchecks:");
        let lin = match self.linearizability.verdict() {
            Linearizability::Linearizable => format!(
                "passed ({} operations on {} keys)",
                self.linearizability.operations_checked(),
                self.linearizability.keys.len()
            ),
            Linearizability::NotLinearizable(_) => "FAILED".to_string(),
            Linearizability::Unknown(u) => format!("UNDECIDED (key {} exceeded the search budget)", u.key),
        };
        let _ = writeln!(out, "  linearizability:                 {lin}");
        let pass = |bad: usize| if bad == 0 { "passed".to_string() } else { format!("FAILED ({bad})") };
        let of_kind = |kind: AnomalyKind| self.anomalies.iter().filter(|a| a.kind == kind).count();
        let lost = of_kind(AnomalyKind::LostWrite);
        let regressions = of_kind(AnomalyKind::RevisionRegression);
        let _ = writeln!(out, "  no acknowledged write lost:      {}", pass(lost));
        let _ = writeln!(out, "  revisions never go backwards:    {}", pass(regressions));
        let other = self.anomalies.len() - lost - regressions;
        let _ = writeln!(out, "  reads match revision order:      {}", pass(other));
        let hashes = if self.hashes.all_agree() {
            format!("passed (revision {})", self.hashes.revision)
        } else {
            "FAILED".to_string()
        };
        let _ = writeln!(out, "  every member's HashKV agrees:    {hashes}");
        let watches = if self.watch_violations.is_empty() {
            format!("passed ({} events checked)", self.watched_events)
        } else {
            format!("FAILED ({})", self.watch_violations.len())
        };
        let _ = writeln!(out, "  watch guarantees:                {watches}");
        let _ = writeln!(out, "  revoked lease keys are gone:     {}", pass(self.lease_violations.len()));
        let _ = writeln!(out, "\n{}", if self.passed() { "PASSED" } else { "FAILED" });
        out
    }

    /// The first violation, explained in terms of the operations involved.
    pub fn first_violation(&self) -> Option<String> {
        if let Some(v) = self.linearizability.violations().next() {
            return Some(v.to_string());
        }
        if let Some(a) = self.anomalies.first() {
            return Some(a.to_string());
        }
        if !self.hashes.all_agree() {
            return Some(self.hashes.render());
        }
        if let Some(v) = self.watch_violations.first().or(self.lease_violations.first()) {
            return Some(v.clone());
        }
        if let Linearizability::Unknown(u) = self.linearizability.verdict() {
            return Some(format!("the linearizability check could not decide for key {}: {:?}", u.key, u.exhausted));
        }
        None
    }

    /// Saves the history and the account of the first violation under `out`; returns the
    /// folder, or None when there was nothing to report.
    pub fn save_if_failed(&self) -> Result<Option<PathBuf>> {
        let Some(account) = self.first_violation() else { return Ok(None) };
        let dir = self.out.join(format!("raftty-torture-{}", self.seed));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("history.json"), serde_json::to_string_pretty(&self.history)?)?;
        std::fs::write(dir.join("violation.txt"), format!("{}\n\n{account}\n", self.summary()))?;
        Ok(Some(dir))
    }
}
