//! Judging a recovery, and the scores kept in `<home>/drills/scores.jsonl` (one JSON object
//! per attempt, appended), so a team sees its recovery times over many attempts.
//!
//! A drill passes when the cluster is healthy (see `health.rs`; writes are proven by a probe
//! write), every member's HashKV agrees, and every acknowledged write is there but those
//! the kind allows to lose. The time to restore runs from the strike to the moment the
//! watcher last saw the cluster become healthy: measured while it happened, not when the
//! learner asks for a score.

use std::collections::HashMap;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::course::drill::DrillState;
use crate::course::drill::Kind;
use crate::course::drill::Strike;
use crate::course::drill::WRITES_PREFIX;
use crate::course::drill::clock;
use crate::course::drill::folder;
use crate::course::drill::health;
use crate::course::drill::helpers;
use crate::course::drill::now_ms;
use crate::course::drill::workload;
use crate::course::drill::workload::Ack;
use crate::course::drill::workload::HealthNote;
use crate::lab::Lab;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;

/// Where the score's probe writes: outside the workload's keys.
pub const PROBE_KEY: &str = "/drill/probe";
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long members behind the leader get to catch up before their HashKV is compared.
const HASH_CATCH_UP: Duration = Duration::from_secs(5);

/// One attempt's score. Field names are a stable interface (`drill score --json`): add
/// fields, never rename them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub lab: String,
    pub kind: Kind,
    pub started_unix_ms: i64,
    pub struck_unix_ms: Option<i64>,
    pub scored_unix_ms: i64,
    pub passed: bool,
    /// The attempt was given up (`drill stop`, or a new drill) before it passed.
    #[serde(default)]
    pub stopped: bool,
    pub healthy: bool,
    /// From the strike to the moment the cluster last became healthy.
    pub seconds_to_restore: Option<f64>,
    pub keys_acknowledged: usize,
    /// Acknowledged writes missing or changed; None when they could not be read back.
    pub keys_lost: Option<usize>,
    /// How many of the acknowledged writes the drill allows to lose.
    pub keys_lost_allowed: usize,
    /// What may be lost, in words.
    pub allowance: String,
    /// Whether every member's HashKV agrees; None when it could not be compared.
    pub hashes_agree: Option<bool>,
    #[serde(default)]
    pub hints_used: usize,
    /// Why it did not pass; empty when it did.
    pub reasons: Vec<String>,
}

pub fn scores_file(home: &Path) -> PathBuf {
    home.join("drills").join("scores.jsonl")
}

/// Every kept score, oldest first. A damaged line is skipped rather than hiding the rest.
pub fn history(home: &Path) -> Vec<Score> {
    let text = std::fs::read_to_string(scores_file(home)).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

pub fn keep(home: &Path, score: &Score) -> Result<()> {
    let path = scores_file(home);
    std::fs::create_dir_all(path.parent().context("the scores file has no folder")?)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut line = serde_json::to_vec(score)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

/// What the drill allows to lose: the writes acknowledged until the strike was over, above
/// the revision the backup (or the survivor) had reached; and that rule in words.
fn allowance(state: &DrillState, strike: &Strike, acks: &[Ack]) -> (HashSet<u64>, String) {
    let Some(kept) = strike.kept_up_to_revision else {
        return (HashSet::new(), state.kind.allowance_in_general().to_string());
    };
    let until = strike.ended_unix_ms.max(strike.at_unix_ms);
    let allowed: HashSet<u64> = acks.iter().filter(|a| a.at_ms <= until && a.revision > kept).map(|a| a.seq).collect();
    let who = match (&state.kind, &strike.survivor) {
        (Kind::QuorumLoss, Some(s)) => format!("{s} had not applied"),
        _ => "the continuous backup had not copied".to_string(),
    };
    let text = format!(
        "up to {}: the writes acknowledged after revision {kept}, which {who} when the disks died",
        allowed.len()
    );
    (allowed, text)
}

/// Judges the drill as the cluster stands now.
pub async fn judge(home: &Path, state: &DrillState) -> Result<Score> {
    let strike = state.strike.as_ref().context("the drill has not struck yet")?;
    let dir = folder(home, &state.lab);
    // Acknowledgements first, keys after: every write acknowledged before the read must be in it.
    let acks = workload::read_acks(&dir)?;
    let (allowed, allowance_text) = allowance(state, strike, &acks);
    let mut score = Score {
        lab: state.lab.clone(),
        kind: state.kind,
        started_unix_ms: state.started_unix_ms,
        struck_unix_ms: Some(strike.at_unix_ms),
        scored_unix_ms: now_ms(),
        passed: false,
        stopped: false,
        healthy: false,
        seconds_to_restore: None,
        keys_acknowledged: acks.len(),
        keys_lost: None,
        keys_lost_allowed: allowed.len(),
        allowance: allowance_text,
        hashes_agree: None,
        hints_used: state.hints_shown,
        reasons: vec![],
    };
    let lab = match Lab::open(home, &state.lab) {
        Ok(lab) => lab,
        Err(e) => {
            score.reasons.push(format!("{e:#}"));
            return Ok(score);
        }
    };

    let look = health::look(&lab, state.members).await;
    let mut problems = look.problems;
    if !look.led {
        problems.push("writes cannot commit without a leader".to_string());
    } else if let Err(why) = probe_write(&lab).await {
        problems.push(format!("writes do not commit ({why})"));
    }
    score.healthy = problems.is_empty();
    score.reasons.extend(problems.into_iter().map(|p| format!("not healthy: {p}")));
    if state.kind.victims_must_go() {
        for v in &strike.destroyed {
            if lab.config.member(v).is_ok_and(|m| !m.removed)
                && lab.process(v).state != crate::lab::process::ProcessState::Exited
            {
                score.reasons.push(format!(
                    "{v} is back under its old identity with an empty disk: etcd refuses that (the member forgot \
                     its log and its vote, and could vote twice in one term); a dead member leaves the cluster \
                     and a new one takes its place"
                ));
            }
        }
    }

    // Without a leader nothing can be read back; the reasons above say why.
    if !look.led {
        return Ok(score);
    }
    match read_writes(&lab).await {
        Ok(present) => {
            let lost: Vec<&Ack> = acks.iter().filter(|a| present.get(&a.key) != Some(&a.value)).collect();
            score.keys_lost = Some(lost.len());
            let beyond: Vec<&&Ack> = lost.iter().filter(|a| !allowed.contains(&a.seq)).collect();
            if let Some(first) = beyond.first() {
                score.reasons.push(format!(
                    "{} acknowledged writes are missing beyond the allowance ({}), the first {} (acknowledged at \
                     revision {}, {})",
                    beyond.len(),
                    score.allowance,
                    first.key,
                    first.revision,
                    clock(first.at_ms)
                ));
            }
        }
        Err(e) => score.reasons.push(format!("the acknowledged writes cannot be read back: {e:#}")),
    }

    if !score.healthy {
        // An unhealthy cluster's hashes say nothing new (a member that is down has none), and
        // comparing them would only keep the learner waiting for members to catch up.
        return Ok(score);
    }
    match crate::lab::check::check(&lab, HASH_CATCH_UP).await {
        Ok(report) => {
            let running = lab.config.active_members().count();
            let agree = report.all_agree() && report.members.len() == running;
            score.hashes_agree = Some(agree);
            if !agree {
                let text = report.render().trim_end().replace('\n', "; ");
                score.reasons.push(format!("the members' HashKV do not all agree: {text}"));
            }
        }
        Err(e) => score.reasons.push(format!("HashKV cannot be compared: {e:#}")),
    }

    match restored_at(&workload::read_health(&dir)?, strike.at_unix_ms) {
        Ok(at) => score.seconds_to_restore = Some((at - strike.at_unix_ms).max(0) as f64 / 1000.0),
        Err(why) => score.reasons.push(why),
    }
    let args = helpers::workload_args(&state.lab, &dir);
    if !state.workload_pid.is_some_and(|p| helpers::is_helper(p, &args)) {
        score.reasons.push(format!(
            "the drill's workload is not running (see {}): nothing watches the writes",
            dir.join(crate::course::drill::WORKLOAD_LOG).display()
        ));
    }
    score.passed = score.reasons.is_empty();
    Ok(score)
}

/// The moment the cluster last became healthy after the strike, from the watcher's notes.
fn restored_at(notes: &[HealthNote], strike_ms: i64) -> Result<i64, String> {
    let after: Vec<&HealthNote> = notes.iter().filter(|n| n.at_ms >= strike_ms).collect();
    match after.last() {
        Some(last) if last.healthy && after.iter().any(|n| !n.healthy) => Ok(last.at_ms),
        Some(last) if last.healthy => Err("the watcher never saw the outage after the strike".to_string()),
        _ => Err("the watcher has not seen the cluster healthy yet (it looks twice a second): score again in a \
                  moment"
            .to_string()),
    }
}

/// A write through any member, as a client would make it.
async fn probe_write(lab: &Lab) -> Result<(), String> {
    let mut last = "no member to write to".to_string();
    for url in lab.endpoints() {
        let put = PutRequest { key: PROBE_KEY.into(), value: now_ms().to_string().into(), ..Default::default() };
        let attempt = async {
            let mut c = EtcdClient::connect(&url, &lab.root_cert(), PROBE_TIMEOUT).await?;
            c.kv.put(put).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = format!("{e:#}"),
            Err(_) => last = format!("no answer within {PROBE_TIMEOUT:?}"),
        }
    }
    Err(last)
}

/// Every key the workload wrote, with its value, by linearizable reads in pages.
async fn read_writes(lab: &Lab) -> Result<HashMap<String, String>> {
    let mut last = anyhow::anyhow!("the lab has no members");
    for url in lab.endpoints() {
        match read_writes_from(lab, &url).await {
            Ok(found) => return Ok(found),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn read_writes_from(lab: &Lab, url: &str) -> Result<HashMap<String, String>> {
    let mut c = EtcdClient::connect(url, &lab.root_cert(), Duration::from_secs(5)).await?;
    let end = crate::client::prefix_end(WRITES_PREFIX.as_bytes()).to_vec();
    let mut from = WRITES_PREFIX.as_bytes().to_vec();
    let mut revision = 0;
    let mut found = HashMap::new();
    loop {
        // Every page at the first page's revision: one consistent view of the keys.
        let page = RangeRequest {
            key: from.clone().into(),
            range_end: end.clone().into(),
            limit: 2000,
            revision,
            ..Default::default()
        };
        let answer = c.kv.range(page).await.map_err(|s| anyhow::anyhow!("{url}: {}", s.message()))?.into_inner();
        if revision == 0 {
            revision = answer.header.map_or(0, |h| h.revision);
        }
        for kv in &answer.kvs {
            found
                .insert(String::from_utf8_lossy(&kv.key).into_owned(), String::from_utf8_lossy(&kv.value).into_owned());
        }
        match answer.kvs.last() {
            Some(kv) if answer.more => {
                from = kv.key.to_vec();
                from.push(0);
            }
            _ => return Ok(found),
        }
    }
}

impl Score {
    /// What `drill score` prints.
    pub fn render(&self) -> String {
        let mut out = format!("drill {} on lab {}", self.kind.name(), self.lab);
        if let Some(at) = self.struck_unix_ms {
            out.push_str(&format!(", struck at {}", clock(at)));
        }
        out.push('\n');
        let restored = match self.seconds_to_restore {
            Some(s) => format!("{s:.1} s after the strike"),
            None if self.healthy => "healthy, but not timed (see below)".to_string(),
            None => "not yet".to_string(),
        };
        out.push_str(&format!("  restored          {restored}\n"));
        let lost = self.keys_lost.map_or("not read back yet".to_string(), |n| format!("{n} lost"));
        out.push_str(&format!("  writes            {} acknowledged, {lost}\n", self.keys_acknowledged));
        out.push_str(&format!("  may lose          {}\n", self.allowance));
        let hashes = match self.hashes_agree {
            Some(true) => "every member agrees",
            Some(false) => "members DISAGREE",
            None if self.healthy || self.stopped => "not compared",
            None => "compared once the cluster is healthy",
        };
        out.push_str(&format!("  HashKV            {hashes}\n"));
        out.push_str(&format!("  hints used        {}\n", self.hints_used));
        if self.passed {
            out.push_str("PASSED\n");
        } else {
            out.push_str(if self.stopped { "STOPPED before it passed\n" } else { "NOT YET:\n" });
            for r in &self.reasons {
                out.push_str(&format!("  - {r}\n"));
            }
        }
        out
    }

    /// One line of the history.
    pub fn one_line(&self) -> String {
        let time = self.seconds_to_restore.map_or("-".to_string(), |s| format!("{s:.1} s"));
        let lost = self.keys_lost.map_or("?".to_string(), |n| n.to_string());
        let verdict = if self.passed {
            "passed"
        } else if self.stopped {
            "stopped"
        } else {
            "not passed"
        };
        format!(
            "{}  {:<16}  {:<8}  restored in {:>8}  lost {lost} of {} (allowed {})  hints {}  {verdict}",
            clock(self.started_unix_ms),
            self.kind.name(),
            self.lab,
            time,
            self.keys_acknowledged,
            self.keys_lost_allowed,
            self.hints_used
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(at_ms: i64, healthy: bool) -> HealthNote {
        HealthNote { at_ms, healthy, problems: vec![] }
    }

    #[test]
    fn the_clock_stops_when_the_cluster_last_became_healthy_after_the_strike() {
        let notes = [note(1, true), note(10, false), note(20, true), note(25, false), note(30, true)];
        assert_eq!(restored_at(&notes, 5), Ok(30), "the last streak counts, not a brief recovery before it");
        assert!(restored_at(&notes[..4], 5).unwrap_err().contains("not seen the cluster healthy"));
        assert!(restored_at(&notes[..1], 5).unwrap_err().contains("not seen"), "nothing seen since the strike");
        assert!(restored_at(&[note(1, false), note(6, true)], 5).unwrap_err().contains("never saw the outage"));
    }

    #[test]
    fn the_allowance_is_what_was_acknowledged_past_the_kept_revision_before_the_strike() {
        let ack = |seq: u64, revision, at_ms| Ack { seq, key: format!("k{seq}"), value: "v".into(), revision, at_ms };
        let acks = [ack(1, 10, 100), ack(2, 11, 110), ack(3, 12, 240), ack(4, 13, 300)];
        let strike = Strike {
            at_unix_ms: 200,
            destroyed: vec!["n1".into()],
            survivor: Some("n2".into()),
            kept_up_to_revision: Some(10),
            quota_bytes: None,
            told: String::new(),
            ended_unix_ms: 250,
        };
        let state = DrillState {
            lab: "default".into(),
            kind: Kind::QuorumLoss,
            started_unix_ms: 0,
            members: 3,
            backup_dir: PathBuf::new(),
            workload_pid: None,
            backup_pid: None,
            strike: Some(strike.clone()),
            hints_shown: 0,
            finished: None,
        };
        let (allowed, text) = allowance(&state, &strike, &acks);
        assert_eq!(allowed, HashSet::from([2, 3]), "write 4 came after the strike was over: it must be kept");
        assert!(text.contains("up to 2") && text.contains("n2 had not applied"), "{text}");
        let none = Strike { kept_up_to_revision: None, ..strike };
        let (allowed, text) = allowance(&DrillState { kind: Kind::MemberDiskLoss, ..state }, &none, &acks);
        assert!(allowed.is_empty() && text.starts_with("nothing"), "{text}");
    }

    #[test]
    fn a_score_says_what_it_found_and_why_it_did_not_pass() {
        let mut score = Score {
            lab: "default".into(),
            kind: Kind::TotalLoss,
            started_unix_ms: 1_796_196_299_438,
            struck_unix_ms: Some(1_796_196_302_417),
            scored_unix_ms: 1_796_196_312_282,
            passed: false,
            stopped: false,
            healthy: false,
            seconds_to_restore: None,
            keys_acknowledged: 42,
            keys_lost: None,
            keys_lost_allowed: 2,
            allowance: "up to 2: the writes acknowledged after revision 43".into(),
            hashes_agree: None,
            hints_used: 1,
            reasons: vec!["not healthy: n1 is not running".into()],
        };
        let text = score.render();
        for said in ["restored          not yet", "42 acknowledged, not read back yet", "up to 2", "compared once"] {
            assert!(text.contains(said), "{said:?} in:\n{text}");
        }
        assert!(text.contains("NOT YET:\n  - not healthy: n1 is not running"), "{text}");
        score = Score {
            passed: true,
            healthy: true,
            seconds_to_restore: Some(8.17),
            keys_lost: Some(1),
            hashes_agree: Some(true),
            reasons: vec![],
            ..score
        };
        let text = score.render();
        assert!(
            text.contains("8.2 s after the strike") && text.contains("1 lost") && text.ends_with("PASSED\n"),
            "{text}"
        );
        let line = score.one_line();
        assert!(
            line.contains("total-loss") && line.contains("8.2 s") && line.contains("lost 1 of 42 (allowed 2)"),
            "{line}"
        );
        assert!(line.ends_with("passed"), "{line}");
    }
}
