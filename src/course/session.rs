//! Taking a lesson: start it on a fresh lab, check the current step, reveal hints, play the
//! solution, reset. The headless `raftty lesson ...` commands and `raftty lesson verify`
//! are built on these.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::course::check::Context as CheckContext;
use crate::course::check::Memory;
use crate::course::check::Verdict;
use crate::course::check::fill;
use crate::course::lesson::LabNeeds;
use crate::course::lesson::Lesson;
use crate::course::lesson::Setup;
use crate::course::lesson::Step;
use crate::course::observe;
use crate::course::observe::Moment;
use crate::course::progress::LessonProgress;
use crate::course::progress::Progress;
use crate::lab::Lab;

/// How long a new lab may take to elect its first leader.
const FIRST_LEADER: Duration = Duration::from_secs(30);
/// How often a one-shot check looks again while a timed check settles.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Makes the lesson's lab `lab_name` afresh (stopping and deleting one of that name), runs
/// its setup and begins step 1. Returns the progress of the lesson.
pub async fn start(home: &Path, lesson: &Lesson, lab_name: &str) -> Result<LessonProgress> {
    let lab = make_lab(home, &lesson.lab, lab_name).await.with_context(|| format!("setting up {}", lesson.id))?;
    let progress =
        LessonProgress { lab: lab_name.to_string(), start: observe::moment(&lab).await?, ..Default::default() };
    let mut all = Progress::load(home)?;
    all.current = Some(lesson.id.clone());
    all.lessons.insert(lesson.id.clone(), progress.clone());
    all.save(home)?;
    Ok(progress)
}

/// Makes the lab `lab_name` afresh as `needs` says (stopping and deleting one of that
/// name), waits for its first leader and runs the setup: for lessons and demos alike.
pub async fn make_lab(home: &Path, needs: &LabNeeds, lab_name: &str) -> Result<Lab> {
    if Lab::exists(home, lab_name) {
        crate::lab::supervisor::down(home, lab_name, true)
            .with_context(|| format!("removing the lab {lab_name:?} to make it afresh"))?;
    }
    let tempo = crate::lab::Tempo::parse(&needs.tempo).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shape =
        crate::lab::supervisor::LabShape { nodes: Some(needs.members), tempo: Some(tempo), ..Default::default() };
    let (lab, _) = crate::lab::supervisor::up(home, lab_name, shape).await?;
    let first = wait_for_leader(&lab, FIRST_LEADER).await?;
    for setup in &needs.setup {
        run_setup(home, &lab, &first, setup).await?;
    }
    Ok(lab)
}

async fn wait_for_leader(lab: &Lab, timeout: Duration) -> Result<Moment> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = observe::moment(lab).await?;
        if now.leader.is_some() && now.revision.is_some() {
            return Ok(now);
        }
        anyhow::ensure!(Instant::now() < deadline, "the lab elected no leader within {timeout:?}");
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

async fn run_setup(home: &Path, lab: &Lab, now: &Moment, setup: &Setup) -> Result<()> {
    let cert = lab.root_cert();
    let url = lab.config.member(now.leader.as_deref().context("no leader")?)?.client_url();
    let mut c = crate::client::EtcdClient::connect(&url, &cert, Duration::from_secs(5)).await?;
    use crate::proto::etcdserverpb::*;
    match setup {
        Setup::Put { key, value } => {
            c.kv.put(PutRequest { key: key.clone().into(), value: value.clone().into(), ..Default::default() }).await?;
        }
        Setup::PutMany { prefix, count } => {
            for i in 0..*count {
                let value = format!("{{\"n\":{i}}}");
                let key = format!("{prefix}{i:04}");
                c.kv.put(PutRequest { key: key.into(), value: value.into(), ..Default::default() }).await?;
            }
        }
        Setup::Lease { ttl, keys } => {
            let lease = c.lease.lease_grant(LeaseGrantRequest { ttl: *ttl, id: 0 }).await?.into_inner().id;
            for key in keys {
                let put = PutRequest { key: key.clone().into(), value: "leased".into(), lease, ..Default::default() };
                c.kv.put(put).await?;
            }
        }
        Setup::Run { command } => {
            let out = run_line(home, lab, command).await?;
            anyhow::ensure!(out.ok, "{command}: {}", out.text);
        }
    }
    Ok(())
}

/// The lesson being taken, with its progress and lab.
pub struct Current<'a> {
    pub lesson: &'a Lesson,
    pub progress: LessonProgress,
    pub lab: Lab,
}

impl<'a> Current<'a> {
    pub fn load(home: &Path, lessons: &'a [Lesson]) -> Result<Current<'a>> {
        let all = Progress::load(home)?;
        let id = all.current.context("no lesson is under way: start one with `raftty lesson start ID`")?;
        let lesson = crate::course::lesson::find(lessons, &id)?;
        let progress = all.lessons.get(&id).cloned().context("the progress file lost the current lesson")?;
        let lab = Lab::open(home, &progress.lab).with_context(|| {
            format!("the lab of lesson {id} is gone: `raftty lesson reset --lesson` makes it again")
        })?;
        Ok(Current { lesson, progress, lab })
    }

    pub fn step(&self) -> Option<&'a Step> {
        self.lesson.steps.get(self.progress.step)
    }

    pub fn save(&self, home: &Path) -> Result<()> {
        let mut all = Progress::load(home)?;
        all.current = Some(self.lesson.id.clone());
        all.lessons.insert(self.lesson.id.clone(), self.progress.clone());
        all.save(home)
    }

    /// Evaluates the current step's check, looking again until it passes or has had the
    /// time its timed parts need (at least once).
    pub async fn evaluate(&self) -> Result<(Verdict, Moment)> {
        let step = self.step().context("the lesson is finished")?;
        let settle = step.check.settle_time();
        let began = Instant::now();
        let mut memory = Memory::default();
        loop {
            let now = observe::moment(&self.lab).await?;
            let mut cx =
                CheckContext { lab: &self.lab, start: &self.progress.start, now: now.clone(), memory: &mut memory };
            let verdict = step.check.evaluate(&mut cx).await;
            if verdict.passed || began.elapsed() >= settle {
                return Ok((verdict, now));
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Judges the current step once, against the cluster now, with `memory` carried from
    /// the last look: the app looks every second, so a `holds_for` builds up across looks.
    pub async fn evaluate_once(&self, memory: &mut Memory) -> Result<(Verdict, Moment)> {
        let step = self.step().context("the lesson is finished")?;
        let now = observe::moment(&self.lab).await?;
        let mut cx = CheckContext { lab: &self.lab, start: &self.progress.start, now: now.clone(), memory };
        Ok((step.check.evaluate(&mut cx).await, now))
    }

    /// Moves past the current step (which passed at `now`): returns its explanation, with
    /// the live numbers filled in.
    /// A step whose solution was shown counts as shown, not as solved by the learner.
    pub async fn advance(&mut self, now: &Moment) -> Result<String> {
        let step = self.step().context("the lesson is finished")?;
        let explanation = fill(&step.explain, &self.progress.start, now);
        let number = self.progress.step + 1;
        if !self.progress.shown.contains(&number) && !self.progress.solved.contains(&number) {
            self.progress.solved.push(number);
        }
        self.progress.step += 1;
        self.progress.hints = 0;
        self.progress.start = observe::moment(&self.lab).await?;
        Ok(explanation)
    }

    /// Begins the current step again: what "changed" is measured against is now.
    pub async fn reset_step(&mut self) -> Result<()> {
        self.progress.start = observe::moment(&self.lab).await?;
        self.progress.hints = 0;
        Ok(())
    }

    /// Runs the current step's solution, line by line, stopping at the first that fails;
    /// the step then counts as shown, not solved by the learner.
    pub async fn play_solution(&mut self, home: &Path) -> Result<Vec<LineOutcome>> {
        let step = self.step().context("the lesson is finished")?;
        let number = self.progress.step + 1;
        if !self.progress.shown.contains(&number) {
            self.progress.shown.push(number);
        }
        let mut outcomes = Vec::new();
        for line in &step.solution {
            let now = observe::moment(&self.lab).await?;
            let line = fill(line, &self.progress.start, &now);
            let out = run_line(home, &self.lab, &line).await?;
            let ok = out.ok;
            outcomes.push(LineOutcome { line, ok, text: out.text });
            if !ok {
                break;
            }
        }
        Ok(outcomes)
    }
}

pub struct LineOutcome {
    pub line: String,
    pub ok: bool,
    pub text: String,
}

pub(crate) struct Ran {
    pub ok: bool,
    pub text: String,
}

/// Runs one solution or setup line in a shell, with etcdctl and raftty pointed at the lab
/// (and this raftty first on PATH).
pub(crate) async fn run_line(home: &Path, lab: &Lab, line: &str) -> Result<Ran> {
    // An earlier line may have added members or replaced the lab (a restore): point at the
    // members it has now.
    let reopened = Lab::open_dir(&lab.dir).ok();
    let lab = reopened.as_ref().unwrap_or(lab);
    let exe = std::env::current_exe().context("finding raftty's own executable")?;
    let dir = exe.parent().context("raftty's executable has no folder")?;
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let cert = lab.root_cert();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("PATH", path)
        .env("RAFTTY_HOME", home)
        .env("RAFTTY_LAB", lab.name())
        .env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", lab.endpoints().join(","))
        .env("ETCDCTL_CACERT", &cert.ca)
        .env("ETCDCTL_CERT", &cert.cert)
        .env("ETCDCTL_KEY", &cert.key)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {line}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok(Ran { ok: out.status.success(), text: text.trim_end().to_string() })
}

/// What `raftty lesson verify` found for one step.
#[derive(Debug, Clone)]
pub struct StepVerdict {
    pub step: usize,
    pub title: String,
    pub problem: Option<String>,
}

/// Plays `lesson` in a fresh lab under `home`: for every step, the check must fail before
/// the solution and pass after it (within `patience`).
pub async fn verify(home: &Path, lesson: &Lesson, patience: Duration) -> Result<Vec<StepVerdict>> {
    let lab_name = format!("verify-{}", lesson.id);
    let verdicts = play(home, lesson, &lab_name, patience).await;
    // Whatever happened, no member of the verification lab is left running.
    if Lab::exists(home, &lab_name) {
        let _ = crate::lab::supervisor::down(home, &lab_name, true);
    }
    verdicts
}

async fn play(home: &Path, lesson: &Lesson, lab_name: &str, patience: Duration) -> Result<Vec<StepVerdict>> {
    start(home, lesson, lab_name).await?;
    let lessons = std::slice::from_ref(lesson);
    let mut verdicts = Vec::new();
    for (i, step) in lesson.steps.iter().enumerate() {
        let mut current = Current::load(home, lessons)?;
        let mut problem = None;
        let (before, _) = current.evaluate().await?;
        if before.passed {
            problem = Some("the check passes before the solution is played".to_string());
        }
        let played = current.play_solution(home).await?;
        if let Some(failed) = played.iter().find(|o| !o.ok) {
            problem.get_or_insert(format!("solution line `{}` failed: {}", failed.line, failed.text));
        }
        let deadline = Instant::now() + patience;
        let now = loop {
            let (verdict, now) = current.evaluate().await?;
            if verdict.passed {
                break Some(now);
            }
            if Instant::now() >= deadline {
                problem.get_or_insert(format!(
                    "the check still fails {:.0} s after the solution: {}",
                    patience.as_secs_f64(),
                    verdict.missing
                ));
                break None;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        };
        match now {
            Some(now) => {
                current.advance(&now).await?;
            }
            // The rest builds on this step: stop here.
            None => {
                verdicts.push(StepVerdict { step: i + 1, title: step.title.clone(), problem });
                break;
            }
        }
        current.save(home)?;
        verdicts.push(StepVerdict { step: i + 1, title: step.title.clone(), problem });
    }
    Ok(verdicts)
}
