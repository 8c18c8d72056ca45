//! `raftty lesson ...`: the lessons headless, for terminals, scripts and tests.

use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::cli::LessonCommand;
use crate::course::lesson;
use crate::course::lesson::Lesson;
use crate::course::progress::Progress;
use crate::course::session;
use crate::course::session::Current;

/// How long `verify` waits for a step's check to pass after its solution.
const VERIFY_PATIENCE: Duration = Duration::from_secs(30);

pub async fn run(home: &Path, lab_name: &str, action: LessonCommand, dirs: &[PathBuf]) -> Result<ExitCode> {
    let lessons = || lesson::load_all(&lesson::extra_dirs(dirs));
    match action {
        LessonCommand::List { json } => {
            let lessons = lessons()?;
            let progress = Progress::load(home)?;
            if json {
                let list: Vec<serde_json::Value> = lessons
                    .iter()
                    .map(|l| {
                        let p = progress.lessons.get(&l.id);
                        serde_json::json!({
                            "id": l.id,
                            "title": l.title,
                            "summary": l.summary,
                            "steps": l.steps.len(),
                            "members": l.lab.members,
                            "step": p.map(|p| p.step.min(l.steps.len())),
                            "solved": p.map(|p| p.solved.len()).unwrap_or(0),
                            "finished": p.is_some_and(|p| p.finished(l.steps.len())),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let width = lessons.iter().map(|l| l.id.len()).max().unwrap_or(0);
                for l in &lessons {
                    let done = match progress.lessons.get(&l.id) {
                        Some(p) if p.finished(l.steps.len()) => "done".to_string(),
                        Some(p) => format!("step {} of {}", p.step + 1, l.steps.len()),
                        None => format!("{} steps", l.steps.len()),
                    };
                    println!("{:<width$}  {:<12}  {}: {}", l.id, done, l.title, l.summary);
                }
            }
        }
        LessonCommand::Start { id, yes } => {
            let lessons = lessons()?;
            let lesson = lesson::find(&lessons, &id)?;
            if crate::lab::Lab::exists(home, lab_name) && !yes && !confirm_replace(lab_name)? {
                println!("nothing changed; `raftty lesson start {id} --lab NAME` runs it on a lab of its own");
                return Ok(ExitCode::FAILURE);
            }
            println!("making the lab {lab_name:?} for {}: {} members", lesson.id, lesson.lab.members);
            session::start(home, lesson, lab_name).await?;
            let current = Current::load(home, &lessons)?;
            print!("{}", step_text(&current));
        }
        LessonCommand::Status => {
            let lessons = lessons()?;
            let current = Current::load(home, &lessons)?;
            print!("{}", step_text(&current));
        }
        LessonCommand::Check => {
            let lessons = lessons()?;
            let mut current = Current::load(home, &lessons)?;
            if current.step().is_none() {
                println!("{} is finished. `raftty lesson list` shows the others.", current.lesson.id);
                return Ok(ExitCode::SUCCESS);
            }
            let (verdict, now) = current.evaluate().await?;
            if !verdict.passed {
                println!("not yet: {}", verdict.missing);
                return Ok(ExitCode::FAILURE);
            }
            let number = current.progress.step + 1;
            let explanation = current.advance(&now).await?;
            current.save(home)?;
            println!("step {number} passed.\n\n{}\n", explanation.trim_end());
            match current.step() {
                Some(_) => print!("{}", step_text(&current)),
                None => println!("{}", finished_text(&current)),
            }
        }
        LessonCommand::Hint => {
            let lessons = lessons()?;
            let mut current = Current::load(home, &lessons)?;
            let step = current.step().context("the lesson is finished")?;
            if step.hints.is_empty() {
                println!("this step has no hints; `raftty lesson solution` shows how it is done");
            } else if current.progress.hints >= step.hints.len() {
                println!("that was the last hint; `raftty lesson solution` shows how it is done");
                for (i, h) in step.hints.iter().enumerate() {
                    println!("hint {} of {}: {h}", i + 1, step.hints.len());
                }
            } else {
                let i = current.progress.hints;
                println!("hint {} of {}: {}", i + 1, step.hints.len(), step.hints[i]);
                current.progress.hints += 1;
                current.save(home)?;
            }
        }
        LessonCommand::Reset { lesson: whole } => {
            let lessons = lessons()?;
            let mut current = Current::load(home, &lessons)?;
            if whole {
                let (id, lab) = (current.lesson.id.clone(), current.progress.lab.clone());
                println!("making the lab {lab:?} for {id} again");
                session::start(home, current.lesson, &lab).await?;
                current = Current::load(home, &lessons)?;
            } else {
                current.reset_step().await?;
                current.save(home)?;
                println!("step {} begins again from the cluster as it is now", current.progress.step + 1);
            }
            print!("{}", step_text(&current));
        }
        LessonCommand::Solution { play } => {
            let lessons = lessons()?;
            let mut current = Current::load(home, &lessons)?;
            let step = current.step().context("the lesson is finished")?;
            if !play {
                println!("the solution of step {}:", current.progress.step + 1);
                let now = crate::course::observe::moment(&current.lab).await?;
                for line in &step.solution {
                    println!("  {}", crate::course::check::fill(line, &current.progress.start, &now));
                }
                println!("(`raftty lesson solution --play` runs it; the step then counts as shown, not solved)");
                return Ok(ExitCode::SUCCESS);
            }
            let outcomes = current.play_solution(home).await?;
            current.save(home)?;
            for o in &outcomes {
                println!("$ {}", o.line);
                if !o.text.is_empty() {
                    println!("{}", o.text);
                }
            }
            if outcomes.iter().any(|o| !o.ok) {
                println!("a line of the solution failed; the cluster may not be as the lesson expects");
                return Ok(ExitCode::FAILURE);
            }
            println!("done: `raftty lesson check` moves on once the cluster shows it");
        }
        LessonCommand::Verify { ids, all, dir } => {
            let lessons = match &dir {
                Some(d) => lesson::load_dir(d)?,
                None => lessons()?,
            };
            let chosen: Vec<&Lesson> = if all || ids.is_empty() {
                anyhow::ensure!(all || dir.is_some(), "name the lessons to verify, or give --all");
                lessons.iter().collect()
            } else {
                ids.iter().map(|id| lesson::find(&lessons, id)).collect::<Result<_>>()?
            };
            // Each lesson in a home of its own: the learner's labs and progress are not touched.
            let scratch = tempfile::Builder::new().prefix("raftty-verify-").tempdir()?;
            let mut failed = 0;
            for l in chosen {
                let verdicts = session::verify(scratch.path(), l, VERIFY_PATIENCE).await;
                match verdicts {
                    Err(e) => {
                        failed += 1;
                        println!("{}: FAILED to play: {e:#}", l.id);
                    }
                    Ok(v) => {
                        let problems: Vec<_> = v.iter().filter(|s| s.problem.is_some()).collect();
                        if problems.is_empty() && v.len() == l.steps.len() {
                            println!("{}: ok ({} steps)", l.id, v.len());
                        } else {
                            failed += 1;
                            println!("{}: FAILED", l.id);
                            for s in problems {
                                println!(
                                    "  step {} ({}): {}",
                                    s.step,
                                    s.title,
                                    s.problem.as_deref().unwrap_or_default()
                                );
                            }
                        }
                    }
                }
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        LessonCommand::New { id, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let file = dir.join(format!("{id}.toml"));
            anyhow::ensure!(!file.exists(), "{} exists already", file.display());
            let text = lesson::scaffold(&id);
            // The scaffold must itself be a valid lesson.
            Lesson::parse(&text, &file.display().to_string())?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            println!("wrote {}", file.display());
            println!(
                "try it:  raftty lesson --lessons {} start {id}   check it:  raftty lesson verify --dir {} {id}",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn confirm_replace(lab_name: &str) -> Result<bool> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "the lab {lab_name:?} exists: give --yes to replace it, or --lab NAME for another"
    );
    print!("the lab {lab_name:?} exists; replace it (its data is deleted)? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn step_text(current: &Current) -> String {
    let Some(step) = current.step() else { return format!("{}\n", finished_text(current)) };
    let n = current.lesson.steps.len();
    let mut out =
        format!("\n{}: step {} of {}: {}\n\n", current.lesson.title, current.progress.step + 1, n, step.title);
    let start = &current.progress.start;
    out.push_str(crate::course::check::fill(&step.text, start, start).trim_end());
    out.push_str(&format!("\n\ngoal: {}\n", step.goal));
    let hints = current.progress.hints.min(step.hints.len());
    for (i, h) in step.hints.iter().take(hints).enumerate() {
        out.push_str(&format!("hint {} of {}: {h}\n", i + 1, step.hints.len()));
    }
    out.push_str("\n`raftty lesson check` when you think it is done; `raftty lesson hint` for help.\n");
    out
}

fn finished_text(current: &Current) -> String {
    let p = &current.progress;
    let shown = if p.shown.is_empty() { String::new() } else { format!(", {} with the solution shown", p.shown.len()) };
    format!(
        "{} is finished: {} of {} steps solved by you{shown}.",
        current.lesson.title,
        p.solved.len(),
        current.lesson.steps.len()
    )
}
