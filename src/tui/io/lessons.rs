//! The lesson coach: judges the step under way every second and right after every action
//! (as rustlings' watch mode does), moves on when it passes, and carries out the learner's
//! lesson requests. It works on the same progress file as `raftty lesson ...`, so a learner
//! may use the app and a second terminal at once.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::course::check::Memory;
use crate::course::check::fill;
use crate::course::lesson;
use crate::course::lesson::Lesson;
use crate::course::progress::Progress;
use crate::course::session;
use crate::course::session::Current;
use crate::tui::app::Action;
use crate::tui::io::Io;
use crate::tui::io::Source;
use crate::tui::tabs::lessons::LessonEntry;
use crate::tui::tabs::lessons::LessonOp;
use crate::tui::tabs::lessons::LessonUpdate;
use crate::tui::tabs::lessons::Passed;
use crate::tui::tabs::lessons::StepView;

/// How often the step under way is judged when nothing happens.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The coach's share of the I/O layer.
#[derive(Default)]
pub struct Coach {
    /// Wakes the checker at once, after an action.
    poke: tokio::sync::Notify,
    /// One change to the progress at a time: the checker's and the learner's.
    busy: tokio::sync::Mutex<()>,
    /// What `holds_for` and `eventually` remember between looks, for one step's start.
    memory: std::sync::Mutex<(String, Memory)>,
}

fn home_and_lab(io: &Io) -> Option<(PathBuf, String)> {
    match &io.source {
        Source::Lab { home, name } => Some((home.clone(), name.clone())),
        Source::Attached { .. } | Source::Replay(_) => None,
    }
}

fn load_lessons() -> Result<Vec<Lesson>> {
    lesson::load_all(&lesson::extra_dirs(&[]))
}

/// Lists the lessons, then keeps judging the one under way on this app's lab, if any.
pub fn start(io: &Arc<Io>) {
    let Some((home, _)) = home_and_lab(io) else { return };
    let io = io.clone();
    tokio::spawn(async move {
        send_catalog(&io, &home);
        loop {
            {
                let _one_at_a_time = io.coach.busy.lock().await;
                if let Err(e) = look(&io, &home).await {
                    io.send(Action::Output { ok: false, title: "lesson check".into(), lines: vec![format!("{e:#}")] });
                }
            }
            if io.tx.is_closed() {
                return;
            }
            let _ = tokio::time::timeout(CHECK_EVERY, io.coach.poke.notified()).await;
        }
    });
}

/// Judges the step again now (an action just happened).
pub fn poke(io: &Io) {
    io.coach.poke.notify_one();
}

fn send_catalog(io: &Io, home: &Path) {
    let lessons = match load_lessons() {
        Ok(l) => l,
        Err(e) => {
            io.send(Action::Output { ok: false, title: "the lessons".into(), lines: vec![format!("{e:#}")] });
            return;
        }
    };
    let progress = Progress::load(home).unwrap_or_default();
    let entries = lessons
        .iter()
        .map(|l| {
            let p = progress.lessons.get(&l.id);
            LessonEntry {
                id: l.id.clone(),
                title: l.title.clone(),
                summary: l.summary.clone(),
                members: l.lab.members,
                step_titles: l.steps.iter().map(|s| s.title.clone()).collect(),
                passed: p.map(|p| p.solved.len() + p.shown.len()).unwrap_or(0),
                finished: p.is_some_and(|p| p.finished(l.steps.len())),
            }
        })
        .collect();
    io.send(Action::Lesson(LessonUpdate::Catalog(entries)));
}

/// The lesson under way on this app's lab, if there is one.
fn current<'a>(io: &Io, home: &Path, lessons: &'a [Lesson]) -> Option<Current<'a>> {
    let (_, lab) = home_and_lab(io)?;
    let c = Current::load(home, lessons).ok()?;
    (c.progress.lab == lab).then_some(c)
}

/// One look: judge the step under way, move on if it passed, tell the app.
async fn look(io: &Io, home: &Path) -> Result<()> {
    let lessons = load_lessons()?;
    let Some(mut current) = current(io, home, &lessons) else {
        io.send(Action::Lesson(LessonUpdate::Step(None)));
        return Ok(());
    };
    if current.step().is_none() {
        io.send(Action::Lesson(LessonUpdate::Step(Some(view(&current, None)))));
        return Ok(());
    }
    let key = format!("{}/{}/{}", current.lesson.id, current.progress.step, current.progress.start.unix_ms);
    let mut memory = {
        let mut kept = io.coach.memory.lock().unwrap_or_else(|e| e.into_inner());
        if kept.0 != key {
            *kept = (key.clone(), Memory::default());
        }
        std::mem::take(&mut kept.1)
    };
    let judged = current.evaluate_once(&mut memory).await;
    *io.coach.memory.lock().unwrap_or_else(|e| e.into_inner()) = (key, memory);
    let (verdict, now) = judged?;
    if !verdict.passed {
        io.send(Action::Lesson(LessonUpdate::Step(Some(view(&current, Some(verdict.missing))))));
        return Ok(());
    }
    let number = current.progress.step + 1;
    let title = current.step().map(|s| s.title.clone()).unwrap_or_default();
    let by_learner = !current.progress.shown.contains(&number);
    let explanation = current.advance(&now).await?;
    current.save(home)?;
    io.send(Action::Lesson(LessonUpdate::Passed(Passed { number, title, explanation, by_learner })));
    io.send(Action::Lesson(LessonUpdate::Step(Some(view(&current, None)))));
    Ok(())
}

/// The step under way as the pane shows it. Its text is filled in as the cluster was when
/// the step began, so "n1 leads" does not change under the learner's eyes once n1 is gone.
fn view(current: &Current<'_>, missing: Option<String>) -> StepView {
    let p = &current.progress;
    let lesson = current.lesson;
    let mut v = StepView {
        lesson: lesson.id.clone(),
        lesson_title: lesson.title.clone(),
        number: p.step + 1,
        steps: lesson.steps.len(),
        title: String::new(),
        goal: String::new(),
        text: String::new(),
        hints: vec![],
        hints_total: 0,
        missing,
        solved: p.solved.len(),
        shown: p.shown.len(),
        finished: current.step().is_none(),
    };
    if let Some(step) = current.step() {
        v.title = step.title.clone();
        v.goal = fill(&step.goal, &p.start, &p.start);
        v.text = fill(&step.text, &p.start, &p.start);
        v.hints = step.hints.iter().take(p.hints).map(|h| fill(h, &p.start, &p.start)).collect();
        v.hints_total = step.hints.len();
    }
    v
}

/// Carries out what the learner asked for, in the background.
pub fn run(io: &Arc<Io>, op: LessonOp) {
    let Some((home, lab)) = home_and_lab(io) else {
        io.send(Action::Output { ok: false, title: "lessons need a raftty lab".into(), lines: vec![] });
        return;
    };
    let io = io.clone();
    tokio::spawn(async move {
        let what = op.describe();
        let result = {
            let _one_at_a_time = io.coach.busy.lock().await;
            carry_out(&io, &home, &lab, op).await
        };
        match result {
            Ok(Some((title, lines))) => io.send(Action::Output { ok: true, title, lines }),
            Ok(None) => {}
            Err(e) => {
                io.send(Action::Output { ok: false, title: format!("{what} failed"), lines: vec![format!("{e:#}")] })
            }
        }
        io.send(Action::Lesson(LessonUpdate::Busy(None)));
        send_catalog(&io, &home);
        poke(&io);
    });
}

type Said = Option<(String, Vec<String>)>;

async fn carry_out(io: &Arc<Io>, home: &Path, lab: &str, op: LessonOp) -> Result<Said> {
    let lessons = load_lessons()?;
    match op {
        // The list is sent after every lesson request.
        LessonOp::Catalog => Ok(None),
        LessonOp::Start(id) => {
            let lesson = lesson::find(&lessons, &id)?;
            make_lab(io, home, lab, lesson).await?;
            Ok(Some((format!("{}: step 1 of {}", lesson.title, lesson.steps.len()), vec![])))
        }
        LessonOp::ResetLesson => {
            let c = current(io, home, &lessons).context("no lesson is under way on this lab")?;
            let lesson = c.lesson;
            make_lab(io, home, lab, lesson).await?;
            Ok(Some((format!("{} begins again on a fresh lab", lesson.title), vec![])))
        }
        LessonOp::Stop => {
            let mut all = Progress::load(home)?;
            let id = all.current.take();
            all.save(home)?;
            io.send(Action::Lesson(LessonUpdate::Step(None)));
            Ok(id.map(|id| (format!("left {id}; its progress is kept, enter on tab 6 starts it afresh"), vec![])))
        }
        LessonOp::Hint => {
            let mut c = current(io, home, &lessons).context("no lesson is under way on this lab")?;
            let step = c.step().context("the lesson is finished")?;
            let total = step.hints.len();
            if total == 0 {
                return Ok(Some(("this step has no hints; F3 plays the solution".into(), vec![])));
            }
            if c.progress.hints >= total {
                return Ok(Some(("that was the last hint; F3 plays the solution".into(), vec![])));
            }
            c.progress.hints += 1;
            c.save(home)?;
            io.send(Action::Lesson(LessonUpdate::Step(Some(view(&c, None)))));
            Ok(None)
        }
        LessonOp::ResetStep => {
            let mut c = current(io, home, &lessons).context("no lesson is under way on this lab")?;
            c.reset_step().await?;
            c.save(home)?;
            io.send(Action::Lesson(LessonUpdate::Step(Some(view(&c, None)))));
            Ok(Some((format!("step {} begins again from the cluster as it is now", c.progress.step + 1), vec![])))
        }
        LessonOp::Solution => {
            let mut c = current(io, home, &lessons).context("no lesson is under way on this lab")?;
            let number = c.progress.step + 1;
            io.send(Action::Lesson(LessonUpdate::Busy(Some(format!("playing the solution of step {number}…")))));
            let outcomes = c.play_solution(home).await?;
            c.save(home)?;
            let mut lines = Vec::new();
            for o in &outcomes {
                lines.push(format!("$ {}", o.line));
                lines.extend(o.text.lines().map(str::to_string));
            }
            let ok = outcomes.iter().all(|o| o.ok);
            let title = if ok {
                format!("the solution of step {number} (counted as shown, not solved by you)")
            } else {
                format!("a line of step {number}'s solution failed")
            };
            Ok(Some((title, lines)))
        }
    }
}

/// Makes the lesson's lab in place of this app's, and points the app at the new members.
async fn make_lab(io: &Arc<Io>, home: &Path, lab: &str, lesson: &Lesson) -> Result<()> {
    io.send(Action::Lesson(LessonUpdate::Busy(Some(format!(
        "making a fresh lab of {} members for {}…",
        lesson.lab.members, lesson.id
    )))));
    if let Some(dir) = crate::tui::io::backups::stop_backup(io).await {
        io.send(Action::BackupRunning(None));
        tracing::info!("stopped the continuous backup in {}: its lab is being replaced", dir.display());
    }
    // Stopping the old members waits on processes: on a thread of its own, so the screen
    // never waits for it.
    let handle = tokio::runtime::Handle::current();
    let (home_owned, lab_owned, lesson_owned) = (home.to_path_buf(), lab.to_string(), lesson.clone());
    tokio::task::spawn_blocking(move || handle.block_on(session::start(&home_owned, &lesson_owned, &lab_owned)))
        .await
        .context("making the lesson's lab stopped")??;
    io.lab_made_anew(format!("made a fresh lab for {}", lesson.id));
    Ok(())
}
