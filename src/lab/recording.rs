//! A lab's recording: what happened, kept in the lab's folder so that `raftty replay` can show
//! the cluster as it was at any moment.
//!
//! ```text
//! timeline/<member>.jsonl   written by the member itself: when it started, its Raft state
//!                           whenever it changed, its events, samples of its log tail
//! timeline/lab.jsonl        written by the supervisor: what it did to processes, the faults
//! ```
//!
//! One JSON object per line, each with its time in microseconds since the epoch. Every file
//! is bounded: past [`MAX_FILE_BYTES`] it becomes `<name>.old.jsonl` (replacing the one
//! before) and a new one begins, so a lab keeps about the last two files' worth. A line cut
//! short by a crash is skipped when read.
//!
//! At a moment, the cluster is each member's last recorded state before it, with the process
//! states the lab recorded (a member killed at 12:00:03 is down from then until it records
//! that it started again); the same code then computes leader and quorum as `raftty status`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::lab::LabConfig;
use crate::lab::Tempo;
use crate::lab::faults::LabFaults;
use crate::lab::process::ProcessState;
use crate::lab::status::LabStatus;
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::rafttyadmin::LogEntryView;
use crate::proto::rafttyadmin::MemberState;
use crate::proto::rafttyadmin::RaftEvent;
use crate::proto::rafttyadmin::ReadLogResponse;

pub const TIMELINE_DIR: &str = "timeline";
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
const LAB_FILE: &str = "lab";
/// The first line of an exported recording.
const EXPORT_FORMAT: &str = "raftty-recording";

/// One thing recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A member's process began to run.
    Started { t: i64, member: String },
    /// A member's Raft state, as its admin surface would have answered.
    State { t: i64, member: String, state: RecordedState },
    /// One of a member's Raft events.
    Event { t: i64, member: String, event: String, term: u64, fields: BTreeMap<String, String> },
    /// A sample of a member's log tail.
    Log { t: i64, member: String, log: RecordedLog },
    /// The lab killed, stopped, paused, resumed or started a member.
    Process { t: i64, member: String, did: String },
    /// The lab's faults, whole, after a change.
    Faults { t: i64, faults: LabFaults },
}

impl Record {
    pub fn time(&self) -> i64 {
        match self {
            Record::Started { t, .. }
            | Record::State { t, .. }
            | Record::Event { t, .. }
            | Record::Log { t, .. }
            | Record::Process { t, .. }
            | Record::Faults { t, .. } => *t,
        }
    }
}

/// [`MemberState`], as recorded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordedState {
    pub role: String,
    pub term: u64,
    pub leader: u64,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// (member id, last index it is known to hold), on a leader. A list, not a map: map keys
    /// are strings in JSON, which an internally tagged record cannot read back as numbers.
    pub matched: Vec<(u64, u64)>,
    pub db_size: u64,
    /// (alarm type, member id) of each active alarm.
    pub alarms: Vec<(i32, u64)>,
}

impl RecordedState {
    pub fn of(s: &MemberState) -> RecordedState {
        RecordedState {
            role: s.role.clone(),
            term: s.term,
            leader: s.leader,
            last_log_index: s.last_log_index,
            committed_index: s.committed_index,
            applied_index: s.applied_index,
            voters: s.voters.clone(),
            learners: s.learners.clone(),
            matched: {
                let mut m: Vec<(u64, u64)> = s.matched.iter().map(|(k, v)| (*k, *v)).collect();
                m.sort();
                m
            },
            db_size: s.db_size,
            alarms: s.alarms.iter().map(|a| (a.alarm, a.member_id)).collect(),
        }
    }

    /// Whether `other` differs in what a person watches for at once (an election, a
    /// membership change), rather than in indexes that move with every write.
    pub fn changed_shape(&self, other: &RecordedState) -> bool {
        (&self.role, self.term, self.leader, &self.voters, &self.learners, &self.alarms)
            != (&other.role, other.term, other.leader, &other.voters, &other.learners, &other.alarms)
    }

    fn to_member_state(&self, id: u64, name: &str) -> MemberState {
        MemberState {
            id,
            name: name.to_string(),
            role: self.role.clone(),
            term: self.term,
            leader: self.leader,
            last_log_index: self.last_log_index,
            committed_index: self.committed_index,
            applied_index: self.applied_index,
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            matched: self.matched.iter().map(|(k, v)| (*k, *v)).collect(),
            alarms: self
                .alarms
                .iter()
                .map(|(alarm, member_id)| AlarmMember { alarm: *alarm, member_id: *member_id })
                .collect(),
            db_size: self.db_size,
            ..Default::default()
        }
    }
}

/// A log tail, as recorded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordedLog {
    /// (index, term, kind, summary) of the last entries.
    pub entries: Vec<(u64, u64, String, String)>,
    pub purged_index: u64,
    pub last_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
}

impl RecordedLog {
    pub fn of(log: &ReadLogResponse) -> RecordedLog {
        RecordedLog {
            entries: log.entries.iter().map(|e| (e.index, e.term, e.kind.clone(), e.summary.clone())).collect(),
            purged_index: log.purged_index,
            last_index: log.last_index,
            committed_index: log.committed_index,
            applied_index: log.applied_index,
            snapshot_index: log.snapshot_index,
        }
    }

    pub fn to_response(&self) -> ReadLogResponse {
        ReadLogResponse {
            entries: self
                .entries
                .iter()
                .map(|(index, term, kind, summary)| LogEntryView {
                    index: *index,
                    term: *term,
                    kind: kind.clone(),
                    summary: summary.clone(),
                })
                .collect(),
            purged_index: self.purged_index,
            last_index: self.last_index,
            committed_index: self.committed_index,
            applied_index: self.applied_index,
            snapshot_index: self.snapshot_index,
        }
    }
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Appends records to one of a lab's timeline files, keeping it bounded.
pub struct Writer {
    path: PathBuf,
    old: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
}

impl Writer {
    /// The writer of `<lab>/timeline/<name>.jsonl`.
    pub fn open(lab_dir: &Path, name: &str) -> Writer {
        let dir = lab_dir.join(TIMELINE_DIR);
        Writer {
            path: dir.join(format!("{name}.jsonl")),
            old: dir.join(format!("{name}.old.jsonl")),
            file: None,
            size: 0,
        }
    }

    /// Writes `records`, one line each, in one write. Recording is for people looking back:
    /// a failure to record is reported, never allowed to stop the member.
    pub fn write(&mut self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(file);
        }
        if self.size + text.len() as u64 > MAX_FILE_BYTES {
            self.file = None;
            std::fs::rename(&self.path, &self.old).with_context(|| format!("rotating {}", self.path.display()))?;
            return self.write(records);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(text.as_bytes()).with_context(|| format!("writing {}", self.path.display()))?;
        self.size += text.len() as u64;
        Ok(())
    }
}

/// Records what the lab itself did, for replay. Never fails the action it records.
pub fn note(lab_dir: &Path, record: Record) {
    if let Err(e) = Writer::open(lab_dir, LAB_FILE).write(&[record]) {
        tracing::warn!("recording the lab's timeline: {e:#}");
    }
}

pub fn note_process(lab_dir: &Path, member: &str, did: &str) {
    note(lab_dir, Record::Process { t: now_micros(), member: member.to_string(), did: did.to_string() });
}

/// Everything a lab recorded, in time order, with what replay needs to know of the lab.
#[derive(Debug, Clone)]
pub struct Recording {
    pub lab: String,
    pub config: LabConfig,
    pub records: Vec<Record>,
}

/// The first line of an exported recording.
#[derive(Debug, Serialize, Deserialize)]
struct ExportHeader {
    format: String,
    version: u32,
    lab: String,
    config: LabConfig,
}

impl Recording {
    /// The recording in a lab's folder.
    pub fn of_lab(lab_dir: &Path) -> Result<Recording> {
        let config = LabConfig::load(lab_dir)?;
        let dir = lab_dir.join(TIMELINE_DIR);
        let mut records = Vec::new();
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("{} holds no recording (the lab has recorded nothing yet)", dir.display()))?;
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files.iter().filter(|f| f.extension().is_some_and(|x| x == "jsonl")) {
            read_lines(file, &mut records)?;
        }
        records.sort_by_key(Record::time);
        let lab = lab_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Recording { lab, config, records })
    }

    /// A recording exported by [`Recording::export`].
    pub fn from_file(path: &Path) -> Result<Recording> {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let first = lines.next().transpose()?.with_context(|| format!("{} is empty", path.display()))?;
        let header: ExportHeader =
            serde_json::from_str(&first).ok().filter(|h: &ExportHeader| h.format == EXPORT_FORMAT).with_context(
                || format!("{} is not a raftty recording (made by `raftty replay --export`)", path.display()),
            )?;
        anyhow::ensure!(
            header.version == 1,
            "{} is a recording of version {}; this raftty reads version 1",
            path.display(),
            header.version
        );
        let mut records = Vec::new();
        for line in lines {
            let line = line?;
            if let Ok(r) = serde_json::from_str::<Record>(&line) {
                records.push(r);
            }
        }
        records.sort_by_key(Record::time);
        Ok(Recording { lab: header.lab, config: header.config, records })
    }

    /// Writes the whole recording as one file, another machine's `raftty replay FILE` reads.
    /// Written aside and renamed, so a file by that name is always whole.
    pub fn export(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("partial");
        {
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
            );
            let header = ExportHeader {
                format: EXPORT_FORMAT.into(),
                version: 1,
                lab: self.lab.clone(),
                config: self.config.clone(),
            };
            serde_json::to_writer(&mut out, &header)?;
            out.write_all(b"\n")?;
            for r in &self.records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn start(&self) -> Option<i64> {
        self.records.first().map(Record::time)
    }

    pub fn end(&self) -> Option<i64> {
        self.records.last().map(Record::time)
    }

    pub fn tempo(&self) -> Tempo {
        self.config.tempo
    }

    /// The times at which something worth stepping to happened: every event, state change,
    /// process change and fault change (log samples are not moments of their own).
    pub fn moments(&self) -> Vec<i64> {
        let mut times: Vec<i64> =
            self.records.iter().filter(|r| !matches!(r, Record::Log { .. })).map(Record::time).collect();
        times.dedup();
        times
    }

    /// The cluster as it was at `t`, as `raftty status` would have shown it.
    pub fn status_at(&self, t: i64) -> LabStatus {
        let upto = self.records.partition_point(|r| r.time() <= t);
        let seen = &self.records[..upto];
        let mut answers = Vec::new();
        for m in self.config.members.iter().filter(|m| !m.removed) {
            let state = seen.iter().rev().find_map(|r| match r {
                Record::State { member, state, .. } if *member == m.name => Some(state),
                _ => None,
            });
            let process = process_at(seen, &m.name);
            let answer = match (process, state) {
                (ProcessState::Running, Some(s)) => Ok(s.to_member_state(m.id, &m.name)),
                (ProcessState::Running, None) => Err("not recorded yet".to_string()),
                _ => Err("not running".to_string()),
            };
            let killed = process == ProcessState::Exited && last_process_record(seen, &m.name) == Some("killed");
            answers.push(crate::lab::status::MemberAnswer {
                member: m.clone(),
                process: crate::lab::process::MemberProcess { pid: None, state: process },
                killed,
                exit_reason: None,
                state: answer,
            });
        }
        let faults = seen
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::Faults { faults, .. } => Some(faults.clone()),
                _ => None,
            })
            .unwrap_or_default();
        crate::lab::status::assemble(&self.lab, &self.config, answers, faults)
    }

    /// The events recorded up to `t`, the last `limit` of them, oldest first.
    pub fn events_until(&self, t: i64, limit: usize) -> Vec<RaftEvent> {
        let upto = self.records.partition_point(|r| r.time() <= t);
        let mut events: Vec<RaftEvent> = self.records[..upto]
            .iter()
            .rev()
            .filter_map(|r| match r {
                Record::Event { t, member, event, term, fields } => Some(RaftEvent {
                    time_unix_micros: *t,
                    member_id: self.config.members.iter().find(|m| &m.name == member).map(|m| m.id).unwrap_or(0),
                    member: member.clone(),
                    term: *term,
                    kind: event.clone(),
                    fields: fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                }),
                _ => None,
            })
            .take(limit)
            .collect();
        events.reverse();
        events
    }

    /// Each member's last recorded log tail at `t`.
    pub fn logs_at(&self, t: i64) -> Vec<(String, ReadLogResponse)> {
        let upto = self.records.partition_point(|r| r.time() <= t);
        let seen = &self.records[..upto];
        self.config
            .members
            .iter()
            .filter_map(|m| {
                seen.iter().rev().find_map(|r| match r {
                    Record::Log { member, log, .. } if *member == m.name => Some((m.name.clone(), log.to_response())),
                    _ => None,
                })
            })
            .collect()
    }
}

fn read_lines(file: &Path, records: &mut Vec<Record>) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // A line cut short by a crash (the last one) does not parse and is left out.
    records.extend(text.lines().filter_map(|l| serde_json::from_str::<Record>(l).ok()));
    Ok(())
}

fn last_process_record<'a>(seen: &'a [Record], name: &str) -> Option<&'a str> {
    seen.iter().rev().find_map(|r| match r {
        Record::Process { member, did, .. } if member == name => Some(did.as_str()),
        _ => None,
    })
}

/// A member's process at the end of `seen`: what the lab last did to it, unless the member
/// recorded starting again since.
fn process_at(seen: &[Record], name: &str) -> ProcessState {
    let lab_did = seen.iter().rposition(|r| matches!(r, Record::Process { member, .. } if member == name));
    let started = seen.iter().rposition(|r| matches!(r, Record::Started { member, .. } if member == name));
    let recorded_any = seen.iter().any(|r| match r {
        Record::State { member, .. } | Record::Started { member, .. } => member == name,
        _ => false,
    });
    match (lab_did, started) {
        (Some(l), Some(s)) if s > l => ProcessState::Running,
        (Some(l), _) => match &seen[l] {
            Record::Process { did, .. } => match did.as_str() {
                "killed" | "stopped" => ProcessState::Exited,
                "paused" => ProcessState::Paused,
                _ => ProcessState::Running,
            },
            _ => ProcessState::Running,
        },
        (None, _) if recorded_any => ProcessState::Running,
        (None, _) => ProcessState::Exited,
    }
}

/// A moment given as RFC 3339 (`2026-12-02T11:03:53.818Z`), or as an offset from the
/// recording's start (`+12s`, `+1m30s`).
pub fn parse_moment(text: &str, start: i64) -> Result<i64> {
    if let Some(offset) = text.strip_prefix('+') {
        let d = humantime::parse_duration(offset).with_context(|| format!("{text:?}: an offset such as +12s"))?;
        return Ok(start + d.as_micros() as i64);
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).with_context(|| {
        format!("{text:?} is not a moment: use a time such as 2026-12-02T11:03:53Z, or +12s from the recording's start")
    })?;
    Ok((at.unix_timestamp_nanos() / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(role: &str, term: u64, leader: u64) -> RecordedState {
        RecordedState { role: role.into(), term, leader, voters: vec![1, 2, 3], ..Default::default() }
    }

    fn config() -> LabConfig {
        let member = |name: &str, id| crate::lab::MemberConfig {
            name: name.into(),
            id,
            client_port: 1,
            peer_port: 2,
            metrics_port: 3,
            initial: true,
            removed: false,
        };
        LabConfig {
            name: "x".into(),
            cluster_id: 7,
            tempo: Tempo::ETCD,
            members: vec![member("n1", 1), member("n2", 2), member("n3", 3)],
            bootstrapped: true,
            snapshots: Default::default(),
            quota_backend_bytes: 0,
        }
    }

    #[test]
    fn the_cluster_at_a_moment_follows_states_kills_and_restarts() {
        let records = vec![
            Record::State { t: 10, member: "n1".into(), state: state("leader", 2, 1) },
            Record::State { t: 11, member: "n2".into(), state: state("follower", 2, 1) },
            Record::State { t: 12, member: "n3".into(), state: state("follower", 2, 1) },
            Record::Process { t: 20, member: "n1".into(), did: "killed".into() },
            Record::State { t: 30, member: "n2".into(), state: state("leader", 3, 2) },
            Record::State { t: 31, member: "n3".into(), state: state("follower", 3, 2) },
            Record::Started { t: 40, member: "n1".into() },
            Record::State { t: 41, member: "n1".into(), state: state("follower", 3, 2) },
        ];
        let rec = Recording { lab: "x".into(), config: config(), records };
        let at = |t| rec.status_at(t);
        assert_eq!(at(15).leader(), Some("n1"));
        let after_kill = at(25);
        assert_eq!(after_kill.nodes[0].state, ProcessState::Exited);
        assert!(after_kill.nodes[0].killed);
        assert_eq!(at(35).leader(), Some("n2"));
        assert_eq!(at(35).nodes[1].term, Some(3));
        let back = at(45);
        assert_eq!(back.nodes[0].state, ProcessState::Running);
        assert_eq!(back.nodes[0].role, Some(crate::lab::status::Role::Follower));
        assert_eq!(rec.moments(), vec![10, 11, 12, 20, 30, 31, 40, 41]);
    }

    #[test]
    fn a_leaders_state_reads_back_as_written() {
        let mut leader = state("leader", 3, 1);
        leader.matched = vec![(2, 7), (u64::MAX, 9)];
        let record = Record::State { t: 5, member: "n1".into(), state: leader };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }

    #[test]
    fn moments_are_read_as_times_or_offsets() {
        assert_eq!(parse_moment("+2s", 1_000).unwrap(), 2_001_000);
        assert_eq!(parse_moment("1970-01-01T00:00:01Z", 0).unwrap(), 1_000_000);
        assert!(parse_moment("yesterday", 0).unwrap_err().to_string().contains("is not a moment"));
    }

    #[test]
    fn a_file_past_its_bound_rotates_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path(), "n1");
        let big = "x".repeat(1024);
        let record = |t| Record::Event { t, member: "n1".into(), event: big.clone(), term: 1, fields: BTreeMap::new() };
        for t in 0..(MAX_FILE_BYTES / 1024 + 10) as i64 {
            w.write(&[record(t)]).unwrap();
        }
        let timeline = dir.path().join(TIMELINE_DIR);
        let current = std::fs::metadata(timeline.join("n1.jsonl")).unwrap().len();
        let old = std::fs::metadata(timeline.join("n1.old.jsonl")).unwrap().len();
        assert!(current <= MAX_FILE_BYTES && old <= MAX_FILE_BYTES);
        let mut f = std::fs::OpenOptions::new().append(true).open(timeline.join("n1.jsonl")).unwrap();
        f.write_all(b"{\"kind\":\"event\",\"t\":99").unwrap();
        let mut records = Vec::new();
        read_lines(&timeline.join("n1.jsonl"), &mut records).unwrap();
        assert!(!records.is_empty() && records.iter().all(|r| matches!(r, Record::Event { .. })));
    }
}
