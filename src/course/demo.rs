//! Workshop demos: scripted steps an instructor plays in the app's presentation mode, one
//! press of space at a time. A demo is data (`lessons/demos/*.toml`, format in
//! `lessons/README.md`): each step runs its commands, then waits until the cluster shows the
//! step's outcome (judged by the lessons' own checks) before the next step is offered, so a
//! demo on a projector never runs ahead of the cluster. Checkpoints are the steps backspace
//! returns to; each says how to bring the cluster back to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;

use crate::course::check::Check;
use crate::course::check::Context as CheckContext;
use crate::course::check::Dur;
use crate::course::check::Memory;
use crate::course::check::fill;
use crate::course::lesson::LabNeeds;
use crate::course::observe;
use crate::course::observe::Moment;
use crate::course::session;
use crate::lab::Lab;

/// The format version this raftty reads.
pub const FORMAT: u32 = 1;
/// How long a step's outcome may take when the demo does not say.
const OUTCOME_WITHIN: Duration = Duration::from_secs(30);
const LOOK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    pub id: String,
    pub format: u32,
    pub title: String,
    pub summary: String,
    #[serde(default)]
    pub lab: LabNeeds,
    #[serde(rename = "step")]
    pub steps: Vec<DemoStep>,
    /// The steps as written, read again with the values remembered so far filled in.
    #[serde(skip)]
    raw: Vec<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoStep {
    pub title: String,
    /// What the presenter's screen says once the step is done; placeholders as in lessons,
    /// `{start.X}` being the cluster when the step began.
    pub say: String,
    /// Shell lines run when the presenter asks for the step (etcdctl, raftty).
    #[serde(default)]
    pub run: Vec<String>,
    /// What the cluster must show before the narration appears and the next step is offered.
    pub outcome: Check,
    /// How long the outcome may take (default 30 s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// Backspace comes back to the last checkpoint passed.
    #[serde(default)]
    pub checkpoint: bool,
    /// The lines that bring the cluster back to this checkpoint; by default every fault is
    /// healed and every member that is not running is started or resumed.
    #[serde(default)]
    pub back: Vec<String>,
    /// Values taken when the step begins, for the steps after it: `{ cut = "{leader}" }`
    /// makes `{cut}` the member that led when this step began, wherever it is written later
    /// (in texts, lines and checks alike).
    #[serde(default)]
    pub remember: BTreeMap<String, String>,
}

impl Demo {
    pub fn parse(text: &str, source: &str) -> Result<Demo> {
        let mut demo: Demo = toml::from_str(text).with_context(|| format!("{source} is not a valid demo"))?;
        let table: toml::Table = toml::from_str(text).with_context(|| format!("{source} is not a valid demo"))?;
        demo.raw = match table.get("step") {
            Some(toml::Value::Array(steps)) => steps.clone(),
            _ => vec![],
        };
        anyhow::ensure!(
            demo.format == FORMAT,
            "{source}: format {} is not one this raftty reads (it reads {FORMAT})",
            demo.format
        );
        anyhow::ensure!(demo.steps.len() >= 2, "{source}: a demo needs two steps or more");
        anyhow::ensure!(
            demo.steps.first().is_some_and(|s| s.checkpoint),
            "{source}: the first step must be a checkpoint, so backspace always has one to return to"
        );
        anyhow::ensure!(
            (1..=7).contains(&demo.lab.members),
            "{source}: a lab has 1 to 7 members, not {}",
            demo.lab.members
        );
        Ok(demo)
    }

    /// The checkpoint at or before step `i`.
    pub fn checkpoint_before(&self, i: usize) -> usize {
        (0..=i.min(self.steps.len().saturating_sub(1))).rev().find(|&j| self.steps[j].checkpoint).unwrap_or(0)
    }
}

const BUILT_IN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/demos.rs"));

/// The demos that ship, then those in `extra` folders (a demo there with the id of a
/// built-in one replaces it).
pub fn load_all(extra: &[PathBuf]) -> Result<Vec<Demo>> {
    let mut demos: Vec<Demo> = Vec::new();
    for (name, text) in BUILT_IN {
        demos.push(Demo::parse(text, &format!("lessons/demos/{name}"))?);
    }
    for dir in extra {
        let dir = dir.join("demos");
        // An instructor's folder of lessons need not hold demos.
        if !dir.is_dir() {
            continue;
        }
        for f in crate::course::lesson::toml_files(&dir)? {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            let demo = Demo::parse(&text, &f.display().to_string())?;
            demos.retain(|d| d.id != demo.id);
            demos.push(demo);
        }
    }
    Ok(demos)
}

pub fn find<'a>(demos: &'a [Demo], id: &str) -> Result<&'a Demo> {
    demos.iter().find(|d| d.id == id).with_context(|| {
        let ids: Vec<&str> = demos.iter().map(|d| d.id.as_str()).collect();
        format!("there is no demo {id:?}; the demos are: {}", ids.join(", "))
    })
}

/// What playing one step did.
#[derive(Debug, Clone)]
pub struct Played {
    /// Each line run, with what it printed.
    pub output: Vec<String>,
    /// The narration, filled in with the cluster as the outcome showed it.
    pub said: String,
    /// The lab was made anew for it (going back to the start).
    pub fresh_lab: bool,
}

/// What a step is doing, for the presenter's screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Doing {
    Running(String),
    /// The outcome is not there yet: what is missing.
    Waiting(String),
}

/// Plays a demo on a lab, step by step, remembering what steps asked to remember.
pub struct Player {
    pub demo: Demo,
    home: PathBuf,
    lab_name: String,
    remembered: BTreeMap<String, String>,
}

impl Player {
    pub fn new(demo: Demo, home: &Path, lab_name: &str) -> Player {
        Player { demo, home: home.to_path_buf(), lab_name: lab_name.to_string(), remembered: BTreeMap::new() }
    }

    /// Step `i` as written, with the remembered values filled in.
    fn step(&self, i: usize) -> Result<DemoStep> {
        let mut raw = self.demo.raw.get(i).cloned().context("no such step")?;
        fill_remembered(&mut raw, &self.remembered);
        raw.try_into().with_context(|| format!("step {} of {}", i + 1, self.demo.id))
    }

    fn lab(&self) -> Result<Lab> {
        Lab::open(&self.home, &self.lab_name)
    }

    /// Plays step `i`: takes what it remembers, runs its lines, then waits for its outcome.
    pub async fn play(&mut self, i: usize, mut tell: impl FnMut(Doing)) -> Result<Played> {
        let start = observe::moment(&self.lab()?).await?;
        for (name, template) in self.step(i)?.remember {
            self.remembered.insert(name, fill(&template, &start, &start));
        }
        let step = self.step(i)?;
        let output = self.run_lines(step.run.iter().map(|l| fill(l, &start, &start)).collect(), &mut tell).await?;
        let now = self.await_outcome(&step, &start, &mut tell).await?;
        Ok(Played { output, said: fill(&step.say, &start, &now), fresh_lab: false })
    }

    /// Brings the cluster back to checkpoint `i`: the first step's is a fresh lab, as the
    /// demo began; a later one's are its `back` lines (by default: heal, and start every
    /// member). Then its outcome again.
    pub async fn back_to(&mut self, i: usize, mut tell: impl FnMut(Doing)) -> Result<Played> {
        let step = self.step(i)?;
        if i == 0 && step.back.is_empty() {
            tell(Doing::Running(format!("a fresh lab of {} members, as the demo began", self.demo.lab.members)));
            session::make_lab(&self.home, &self.demo.lab, &self.lab_name).await?;
            self.remembered.clear();
            let played = self.play(0, tell).await?;
            return Ok(Played { fresh_lab: true, ..played });
        }
        let start = observe::moment(&self.lab()?).await?;
        let lines: Vec<String> = if step.back.is_empty() {
            let mut lines = vec!["raftty heal".to_string()];
            for m in &start.members {
                match m.state.as_str() {
                    "paused" => lines.push(format!("raftty resume {}", m.name)),
                    "killed" | "exited" => lines.push(format!("raftty start {}", m.name)),
                    _ => {}
                }
            }
            lines
        } else {
            step.back.iter().map(|l| fill(l, &start, &start)).collect()
        };
        let output = self.run_lines(lines, &mut tell).await?;
        // Back at the checkpoint, its outcome is judged from a fresh start: "has a leader",
        // not "the leader changed since".
        let start = observe::moment(&self.lab()?).await?;
        let now = self.await_outcome(&step, &start, &mut tell).await?;
        Ok(Played { output, said: fill(&step.say, &start, &now), fresh_lab: false })
    }

    async fn run_lines(&self, lines: Vec<String>, tell: &mut impl FnMut(Doing)) -> Result<Vec<String>> {
        let mut output = Vec::new();
        for line in lines {
            tell(Doing::Running(line.clone()));
            // Reopened for each line: a restore gives the lab new ports.
            let ran = session::run_line(&self.home, &self.lab()?, &line).await?;
            output.push(format!("$ {line}"));
            output.extend(ran.text.lines().map(str::to_string));
            anyhow::ensure!(ran.ok, "`{line}` failed: {}", ran.text);
        }
        Ok(output)
    }

    async fn await_outcome(&self, step: &DemoStep, start: &Moment, tell: &mut impl FnMut(Doing)) -> Result<Moment> {
        await_outcome(&self.home, &self.lab_name, &step.outcome, start, step.within(), tell).await
    }
}

impl DemoStep {
    fn within(&self) -> Duration {
        self.within.as_ref().map(|d| d.0).unwrap_or(OUTCOME_WITHIN)
    }
}

/// Writes the remembered values into every string of a step as written.
fn fill_remembered(value: &mut toml::Value, remembered: &BTreeMap<String, String>) {
    match value {
        toml::Value::String(s) => {
            for (name, v) in remembered {
                *s = s.replace(&format!("{{{name}}}"), v);
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(|v| fill_remembered(v, remembered)),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| fill_remembered(v, remembered)),
        _ => {}
    }
}

async fn await_outcome(
    home: &Path,
    lab_name: &str,
    outcome: &Check,
    start: &Moment,
    within: Duration,
    tell: &mut impl FnMut(Doing),
) -> Result<Moment> {
    let began = Instant::now();
    let mut memory = Memory::default();
    loop {
        // Reopened each time: a restore in the step's lines gives the lab new ports.
        let lab = Lab::open(home, lab_name)?;
        let now = observe::moment(&lab).await?;
        let mut cx = CheckContext { lab: &lab, start, now: now.clone(), memory: &mut memory };
        let verdict = outcome.evaluate(&mut cx).await;
        if verdict.passed {
            return Ok(now);
        }
        anyhow::ensure!(
            began.elapsed() < within,
            "the cluster did not show the step's outcome within {}: {}",
            humantime::format_duration(within),
            verdict.missing
        );
        tell(Doing::Waiting(verdict.missing));
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Plays `demo` through in a fresh lab under `home`, then goes back to its last checkpoint
/// and plays on from there again: what `raftty demo verify` and `make test` prove of every
/// demo. Returns each problem found, naming the step.
pub async fn verify(home: &Path, demo: &Demo) -> Result<Vec<String>> {
    let lab_name = format!("verify-{}", demo.id);
    let result = verify_in(home, demo, &lab_name).await;
    if Lab::exists(home, &lab_name) {
        let _ = crate::lab::supervisor::down(home, &lab_name, true);
    }
    result
}

async fn verify_in(home: &Path, demo: &Demo, lab_name: &str) -> Result<Vec<String>> {
    session::make_lab(home, &demo.lab, lab_name).await?;
    let mut player = Player::new(demo.clone(), home, lab_name);
    let mut problems = Vec::new();
    for (i, step) in demo.steps.iter().enumerate() {
        if let Err(e) = player.play(i, |_| {}).await {
            problems.push(format!("step {} ({}): {e:#}", i + 1, step.title));
            return Ok(problems);
        }
    }
    let checkpoint = demo.checkpoint_before(demo.steps.len() - 1);
    if let Err(e) = player.back_to(checkpoint, |_| {}).await {
        let title = &demo.steps[checkpoint].title;
        problems.push(format!("back to checkpoint {} ({title}): {e:#}", checkpoint + 1));
        return Ok(problems);
    }
    for (i, step) in demo.steps.iter().enumerate().skip(checkpoint + 1) {
        if let Err(e) = player.play(i, |_| {}).await {
            problems.push(format!("step {} again, after going back ({}): {e:#}", i + 1, step.title));
            break;
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demos_that_ship_parse_and_start_at_a_checkpoint() {
        let demos = load_all(&[]).expect("the built-in demos parse");
        for id in ["failover", "partition", "backup-restore"] {
            let demo = find(&demos, id).unwrap_or_else(|e| panic!("{e}"));
            assert!(demo.steps[0].checkpoint, "{id} begins at a checkpoint");
        }
    }

    #[test]
    fn backspace_returns_to_the_last_checkpoint_passed() {
        let text = r#"
id = "t"
format = 1
title = "T"
summary = "s"
[[step]]
title = "a"
say = "a"
outcome = { has_leader = {} }
checkpoint = true
[[step]]
title = "b"
say = "b"
outcome = { has_leader = {} }
[[step]]
title = "c"
say = "c"
outcome = { has_leader = {} }
checkpoint = true
[[step]]
title = "d"
say = "d"
outcome = { has_leader = {} }
"#;
        let demo = Demo::parse(text, "t.toml").expect("parses");
        assert_eq!([0, 1, 2, 3].map(|i| demo.checkpoint_before(i)), [0, 0, 2, 2]);
    }

    #[test]
    fn a_demo_without_a_first_checkpoint_is_refused_saying_why() {
        let text = r#"
id = "t"
format = 1
title = "T"
summary = "s"
[[step]]
title = "a"
say = "a"
outcome = { has_leader = {} }
[[step]]
title = "b"
say = "b"
outcome = { has_leader = {} }
"#;
        let e = Demo::parse(text, "t.toml").expect_err("refused");
        assert!(format!("{e:#}").contains("first step must be a checkpoint"), "{e:#}");
    }
}
