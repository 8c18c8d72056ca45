//! The lesson format: one TOML file per lesson (see `lessons/README.md`), read into these
//! types. The lessons that ship are compiled into the binary from `lessons/`; instructors
//! add folders of their own with `--lessons DIR` or `$RAFTTY_LESSONS`.

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;

use crate::course::check::Check;

/// The format version this raftty reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    pub id: String,
    pub format: u32,
    pub title: String,
    pub summary: String,
    #[serde(default)]
    pub lab: LabNeeds,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
    /// Where it was read from, for messages.
    #[serde(skip)]
    pub source: String,
}

/// The lab a lesson starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabNeeds {
    #[serde(default = "three")]
    pub members: usize,
    /// `etcd`, `slow`, or HEARTBEAT_MS/ELECTION_MS, as `raftty up --tempo`.
    #[serde(default = "etcd_tempo")]
    pub tempo: String,
    #[serde(default)]
    pub setup: Vec<Setup>,
}

impl Default for LabNeeds {
    fn default() -> Self {
        LabNeeds { members: three(), tempo: etcd_tempo(), setup: Vec::new() }
    }
}

fn three() -> usize {
    3
}

fn etcd_tempo() -> String {
    "etcd".into()
}

/// Something done to a fresh lab before step 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Setup {
    /// One key.
    Put { key: String, value: String },
    /// `count` keys `PREFIX0000`.. with small JSON values.
    PutMany { prefix: String, count: usize },
    /// A lease of `ttl` seconds, kept alive by nobody, with `keys` attached.
    Lease { ttl: i64, keys: Vec<String> },
    /// A shell command, run as a solution line is (etcdctl and raftty point at the lab).
    Run { command: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub title: String,
    /// The goal in one line.
    pub goal: String,
    /// What the learner reads.
    pub text: String,
    pub check: Check,
    #[serde(default)]
    pub hints: Vec<String>,
    /// Commands that solve the step: `etcdctl ...`, `raftty ...` (any shell line).
    pub solution: Vec<String>,
    /// Shown once the step passes; `{start.term}`, `{term}`, `{leader}`... are filled in
    /// with live numbers (see `lessons/README.md`).
    pub explain: String,
}

impl Lesson {
    pub fn parse(text: &str, source: &str) -> Result<Lesson> {
        let mut lesson: Lesson = toml::from_str(text).with_context(|| format!("{source} is not a valid lesson"))?;
        lesson.source = source.to_string();
        lesson.validate()?;
        Ok(lesson)
    }

    fn validate(&self) -> Result<()> {
        let source = &self.source;
        anyhow::ensure!(
            self.format == FORMAT,
            "{source}: lesson format {} (this raftty reads format {FORMAT})",
            self.format
        );
        anyhow::ensure!(
            !self.id.is_empty() && self.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{source}: a lesson id is lowercase letters, digits and dashes (got {:?})",
            self.id
        );
        anyhow::ensure!(
            self.steps.len() >= 2,
            "{source}: a lesson has at least 2 steps (this one has {})",
            self.steps.len()
        );
        anyhow::ensure!((1..=7).contains(&self.lab.members), "{source}: a lab has 1 to 7 members");
        crate::lab::Tempo::parse(&self.lab.tempo)
            .map_err(|e| anyhow::anyhow!("{source}: lab.tempo {:?}: {e}", self.lab.tempo))?;
        for (i, step) in self.steps.iter().enumerate() {
            anyhow::ensure!(!step.solution.is_empty(), "{source}: step {} has no solution", i + 1);
        }
        Ok(())
    }
}

/// The lessons that ship, compiled in from `lessons/` (see build.rs).
const BUILT_IN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/lessons.rs"));

/// Every lesson: the built-in ones, then those in `extra` folders (a lesson there with a
/// built-in's id replaces it), in id order within each source.
pub fn load_all(extra: &[PathBuf]) -> Result<Vec<Lesson>> {
    let mut lessons: Vec<Lesson> = Vec::new();
    for (name, text) in BUILT_IN {
        lessons.push(Lesson::parse(text, &format!("lessons/{name}"))?);
    }
    for dir in extra {
        for lesson in load_dir(dir)? {
            lessons.retain(|l| l.id != lesson.id);
            lessons.push(lesson);
        }
    }
    Ok(lessons)
}

pub fn load_dir(dir: &Path) -> Result<Vec<Lesson>> {
    toml_files(dir)?
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Lesson::parse(&text, &f.display().to_string())
        })
        .collect()
}

/// The `*.toml` files of a folder, sorted: lessons' and demos' folders alike.
pub fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading the folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    Ok(files)
}

/// The lesson folders to add: `--lessons` first, then `$RAFTTY_LESSONS` (colon-separated).
pub fn extra_dirs(flag: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = flag.to_vec();
    if let Ok(env) = std::env::var("RAFTTY_LESSONS") {
        dirs.extend(env.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    dirs
}

pub fn find<'a>(lessons: &'a [Lesson], id: &str) -> Result<&'a Lesson> {
    lessons.iter().find(|l| l.id == id).with_context(|| {
        let ids: Vec<&str> = lessons.iter().map(|l| l.id.as_str()).collect();
        format!("there is no lesson {id:?}; the lessons are: {}", ids.join(", "))
    })
}

/// A new lesson file for `raftty lesson new ID`: two steps to fill in, valid as it is.
pub fn scaffold(id: &str) -> String {
    format!(
        r#"# A raftty lesson. The format and every check are described in lessons/README.md.
id = "{id}"
format = {FORMAT}
title = "{id}"
summary = "One line: what the learner will see happen."

[lab]
members = 3
tempo = "etcd"
setup = [{{ put = {{ key = "/hello", value = "world" }} }}]

[[step]]
title = "Take the leader away"
goal = "Get a new leader elected."
text = """
Say what to look at and what to do.
"""
check = {{ leader_changed = {{}} }}
hints = ["`raftty status` shows who leads.", "`raftty kill NAME` kills a member."]
solution = ["raftty kill {{leader}}"]
explain = "The term went from {{start.term}} to {{term}}; {{leader}} leads now."

[[step]]
title = "Bring it back"
goal = "Every member running again."
text = """
Start the member you killed.
"""
check = {{ all = [{{ member = {{ name = "{{start.down}}", state = "running" }} }}, {{ has_leader = {{}} }}] }}
hints = ["`raftty start NAME`"]
solution = ["raftty start {{down}}"]
explain = "{{members}} members run again; it came back as a follower."
"#
    )
}
