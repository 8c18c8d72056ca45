//! `raftty drill ...`: start a drill, follow it, ask for hints, score it, stop it.

use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use rand::Rng;

use crate::cli::DrillCommand;
use crate::course::drill::DrillState;
use crate::course::drill::Kind;
use crate::course::drill::clock;
use crate::course::drill::folder;
use crate::course::drill::helpers;
use crate::course::drill::now_ms;
use crate::course::drill::score;
use crate::course::drill::score::Score;
use crate::course::drill::workload;
use crate::lab::Lab;

/// Writes acknowledged, and copied by the backup, before the strike may come.
const WRITES_BEFORE_STRIKE: usize = 20;
/// The strike comes at a random moment up to this long after that.
const STRIKE_WINDOW_MS: u64 = 3000;
/// How long the lab, the workload and the backup get to be ready for the strike.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const HELPER_GRACE: Duration = Duration::from_secs(10);

pub async fn run(home: &Path, lab_name: &str, action: DrillCommand) -> Result<ExitCode> {
    match action {
        DrillCommand::List { json } => list(home, json)?,
        DrillCommand::Start { kind, yes, backup_dir } => return start(home, lab_name, kind, yes, backup_dir).await,
        DrillCommand::Status { json } => {
            let state = under_way(home, lab_name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                print!("{}", briefing(home, &state));
            }
        }
        DrillCommand::Hint => hint(home, lab_name)?,
        DrillCommand::Score { json } => return score_now(home, lab_name, json).await,
        DrillCommand::Stop => {
            let state = under_way(home, lab_name)?;
            let stopped = end(home, state)?;
            match stopped {
                Some(s) => {
                    println!("stopped the drill {} on lab {lab_name}; the attempt is kept as stopped", s.kind.name())
                }
                None => println!("the drill on lab {lab_name} was already over; its helpers are stopped"),
            }
        }
        DrillCommand::Workload { dir } => workload::run(home, lab_name, &dir).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn under_way(home: &Path, lab_name: &str) -> Result<DrillState> {
    DrillState::load(home, lab_name)?.with_context(|| {
        format!("there is no drill on lab {lab_name:?}: `raftty drill list` shows the kinds, `raftty drill start KIND` begins one")
    })
}

fn list(home: &Path, json: bool) -> Result<()> {
    let history = score::history(home);
    let best = |k: Kind| {
        let passed: Vec<&Score> = history.iter().filter(|s| s.kind == k && s.passed).collect();
        let fastest = passed.iter().filter_map(|s| s.seconds_to_restore).reduce(f64::min);
        (fastest, history.iter().filter(|s| s.kind == k).count())
    };
    if json {
        let kinds: Vec<serde_json::Value> = Kind::ALL
            .iter()
            .map(|k| {
                let (fastest, attempts) = best(*k);
                serde_json::json!({
                    "kind": k.name(), "summary": k.summary(), "may_lose": k.allowance_in_general(),
                    "where_to_look": k.where_to_look(), "attempts": attempts, "best_seconds": fastest,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&kinds)?);
        return Ok(());
    }
    for k in Kind::ALL {
        let (fastest, attempts) = best(k);
        println!("{:<17} {}", k.name(), k.summary());
        println!("{:<17} may lose: {}", "", k.allowance_in_general());
        println!("{:<17} look at: {}", "", k.where_to_look());
        if attempts > 0 {
            let fastest = fastest.map_or("none passed yet".to_string(), |s| format!("best {s:.1} s"));
            let plural = if attempts == 1 { "" } else { "s" };
            println!("{:<17} {attempts} attempt{plural}, {fastest}", "");
        }
        println!();
    }
    println!(
        "`raftty drill start KIND` makes a lab (default: `default`), starts a workload and a continuous backup, \
         and strikes at a random moment; then the clock runs until `raftty drill score` finds the cluster healthy."
    );
    Ok(())
}

fn confirm_replace(lab_name: &str) -> Result<bool> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "the lab {lab_name:?} exists: give --yes to replace it with the drill's, or --lab NAME for another"
    );
    print!("the lab {lab_name:?} exists; replace it with the drill's (its data is deleted)? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn start(home: &Path, lab_name: &str, kind: Kind, yes: bool, backup_dir: Option<PathBuf>) -> Result<ExitCode> {
    anyhow::ensure!(
        !lab_name.is_empty() && lab_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a lab name may hold only letters, digits, '-' and '_' (got {lab_name:?})"
    );
    if let Some(dir) = &backup_dir {
        let absolute = std::path::absolute(dir).with_context(|| format!("finding {}", dir.display()))?;
        anyhow::ensure!(
            !absolute.starts_with(Lab::dir_for(home, lab_name)),
            "{} is inside the lab's folder, on the members' disks: a backup there goes down with them",
            dir.display()
        );
        anyhow::ensure!(!dir.exists() || dir.is_dir(), "{} is a file, not a folder", dir.display());
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true);
        anyhow::ensure!(empty, "{} is not empty: a drill's backup starts in an empty folder", dir.display());
    }
    if Lab::exists(home, lab_name) && !yes && !confirm_replace(lab_name)? {
        println!("nothing changed; `raftty drill start {} --lab NAME` runs it on a lab of its own", kind.name());
        return Ok(ExitCode::FAILURE);
    }
    if let Some(old) = DrillState::load(home, lab_name).ok().flatten() {
        end(home, old)?;
    }
    if Lab::exists(home, lab_name) {
        crate::lab::supervisor::down(home, lab_name, true)
            .with_context(|| format!("removing the lab {lab_name:?} to make the drill's"))?;
    }
    let dir = folder(home, lab_name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing the last drill's folder {}", dir.display()))?;
    }
    let backup_dir = match backup_dir {
        Some(d) => std::path::absolute(&d).with_context(|| format!("finding {}", d.display()))?,
        None => {
            // The drill's own folder among the lab's backups: the last drill's backup is of a
            // cluster that no longer exists, so it goes.
            let d = crate::backup::catalog::folder(home, lab_name).join("drill");
            if d.exists() {
                std::fs::remove_dir_all(&d).with_context(|| format!("clearing {}", d.display()))?;
            }
            d
        }
    };

    println!("making the lab {lab_name:?} for the {} drill: 3 members", kind.name());
    let shape = crate::lab::supervisor::LabShape {
        nodes: Some(3),
        tempo: Some(crate::lab::Tempo::ETCD),
        quota_backend_bytes: kind.quota_bytes(),
        ..Default::default()
    };
    let (lab, _) = crate::lab::supervisor::up(home, lab_name, shape).await?;
    let mut state = DrillState {
        lab: lab_name.to_string(),
        kind,
        started_unix_ms: now_ms(),
        members: lab.config.active_members().count(),
        backup_dir: backup_dir.clone(),
        workload_pid: None,
        backup_pid: None,
        strike: None,
        hints_shown: 0,
        finished: None,
    };
    state.save(home)?;
    let struck = tokio::select! {
        s = prepare_and_strike(home, &lab, &mut state) => s,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted before the strike")),
    };
    match struck {
        Ok(strike) => {
            state.strike = Some(strike);
            state.save(home)?;
            print!("\n{}", briefing(home, &state));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // No attempt to keep: stop the helpers and leave no drill behind.
            stop_helpers(&state, &dir);
            let _ = std::fs::remove_file(dir.join(crate::course::drill::STATE_FILE));
            Err(e.context(format!("the {} drill could not start", kind.name())))
        }
    }
}

/// Starts the helpers (their pids go into `state` as they start, so a failure can stop
/// them), waits for writes and a backup, and strikes at a random moment.
async fn prepare_and_strike(home: &Path, lab: &Lab, state: &mut DrillState) -> Result<crate::course::drill::Strike> {
    let dir = folder(home, &state.lab);
    let backup_dir = state.backup_dir.clone();
    crate::backup::catalog::remember(home, &state.lab, &backup_dir)?;
    crate::pki::create_private_dir(&backup_dir)?;
    let backup = helpers::backup_args(&state.lab, &backup_dir);
    state.backup_pid = Some(helpers::spawn(home, &backup, &dir.join(crate::course::drill::BACKUP_LOG))?);
    state.save(home)?;
    let workload = helpers::workload_args(&state.lab, &dir);
    state.workload_pid = Some(helpers::spawn(home, &workload, &dir.join(crate::course::drill::WORKLOAD_LOG))?);
    state.save(home)?;
    println!("continuous backup (as an operator runs it, off the members' disks): {}", backup_dir.display());
    println!(
        "workload: a new key under /drill/writes/ every few tens of ms, each acknowledged one kept in {}",
        dir.join(crate::course::drill::ACKS_FILE).display()
    );
    println!("waiting for writes and a backup, then the disaster strikes at a random moment...");
    wait_ready(lab, state, &dir).await?;
    let delay = rand::rng().random_range(0..STRIKE_WINDOW_MS);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    state.kind.strike(&Lab::open(home, &state.lab)?, &backup_dir).await
}

/// Waits until the workload has had writes acknowledged and the backup has copied them.
async fn wait_ready(lab: &Lab, state: &DrillState, dir: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let acks = workload::read_acks(dir)?;
        let backed_up = crate::backup::continuous::span(&state.backup_dir).ok().map(|(_, last)| last);
        let waiting = match (acks.get(WRITES_BEFORE_STRIKE / 2), backed_up) {
            _ if acks.len() < WRITES_BEFORE_STRIKE => {
                format!("{} of {WRITES_BEFORE_STRIKE} writes acknowledged", acks.len())
            }
            (_, None) => "the backup's first full snapshot".to_string(),
            (Some(a), Some(last)) if last < a.revision => format!("the backup to reach revision {}", a.revision),
            _ => return Ok(()),
        };
        for (what, pid, args, log) in [
            (
                "workload",
                state.workload_pid,
                helpers::workload_args(&state.lab, dir),
                crate::course::drill::WORKLOAD_LOG,
            ),
            (
                "backup",
                state.backup_pid,
                helpers::backup_args(&state.lab, &state.backup_dir),
                crate::course::drill::BACKUP_LOG,
            ),
        ] {
            if !pid.is_some_and(|p| helpers::is_helper(p, &args)) {
                let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
                anyhow::bail!(
                    "the drill's {what} stopped; what it printed ({}):\n{}",
                    dir.join(log).display(),
                    text.trim_end()
                );
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "lab {} not ready within {READY_TIMEOUT:?}: waiting for {waiting}",
            lab.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop_helpers(state: &DrillState, dir: &Path) {
    // The workload first, so no write is acknowledged that the backup then misses.
    helpers::stop(state.workload_pid, &helpers::workload_args(&state.lab, dir), HELPER_GRACE);
    helpers::stop(state.backup_pid, &helpers::backup_args(&state.lab, &state.backup_dir), HELPER_GRACE);
}

/// Ends the drill: stops its helpers and, for an attempt that struck and had not passed,
/// keeps it as stopped. Returns that score, if one was kept.
fn end(home: &Path, mut state: DrillState) -> Result<Option<Score>> {
    let dir = folder(home, &state.lab);
    stop_helpers(&state, &dir);
    let Some(strike) = state.strike.as_ref().filter(|_| state.finished.is_none()) else { return Ok(None) };
    let acks = workload::read_acks(&dir).unwrap_or_default();
    let stopped = Score {
        lab: state.lab.clone(),
        kind: state.kind,
        started_unix_ms: state.started_unix_ms,
        struck_unix_ms: Some(strike.at_unix_ms),
        scored_unix_ms: now_ms(),
        passed: false,
        stopped: true,
        healthy: false,
        seconds_to_restore: None,
        keys_acknowledged: acks.len(),
        keys_lost: None,
        keys_lost_allowed: 0,
        allowance: state.kind.allowance_in_general().to_string(),
        hashes_agree: None,
        hints_used: state.hints_shown,
        reasons: vec!["stopped before a passing score".to_string()],
    };
    score::keep(home, &stopped)?;
    state.finished = Some(stopped.clone());
    state.save(home)?;
    Ok(Some(stopped))
}

async fn score_now(home: &Path, lab_name: &str, json: bool) -> Result<ExitCode> {
    let mut state = under_way(home, lab_name)?;
    let score = match &state.finished {
        Some(done) => done.clone(),
        None => {
            let score = score::judge(home, &state).await?;
            if score.passed {
                stop_helpers(&state, &folder(home, lab_name));
                score::keep(home, &score)?;
                state.finished = Some(score.clone());
                state.save(home)?;
            }
            score
        }
    };
    let earlier: Vec<Score> = score::history(home).into_iter().filter(|s| *s != score).collect();
    if json {
        let mut value = serde_json::to_value(&score)?;
        value["earlier"] = serde_json::to_value(&earlier)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", score.render());
        if score.passed {
            println!("the drill is over: its workload and backup are stopped; the lab keeps running");
        } else if state.finished.is_none() {
            println!("the clock is still running; `raftty drill hint` helps, `raftty drill stop` gives up");
        }
        if !earlier.is_empty() {
            println!("\nearlier attempts:");
            for s in &earlier {
                println!("  {}", s.one_line());
            }
        }
    }
    Ok(if score.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn hint(home: &Path, lab_name: &str) -> Result<()> {
    let mut state = under_way(home, lab_name)?;
    let hints = state.kind.hints();
    if state.hints_shown >= hints.len() {
        for (i, h) in hints.iter().enumerate() {
            println!("hint {} of {}: {h}", i + 1, hints.len());
        }
        println!("that was the last hint");
        return Ok(());
    }
    let i = state.hints_shown;
    println!("hint {} of {}: {}", i + 1, hints.len(), hints[i]);
    if state.finished.is_none() {
        state.hints_shown += 1;
        state.save(home)?;
    }
    Ok(())
}

/// What happened and where to look: printed after the strike and by `drill status`.
fn briefing(home: &Path, state: &DrillState) -> String {
    let dir = folder(home, &state.lab);
    let lab_flag = if state.lab == crate::lab::DEFAULT_LAB { String::new() } else { format!(" --lab {}", state.lab) };
    let Some(strike) = &state.strike else {
        return format!("the {} drill on lab {} has not struck yet\n", state.kind.name(), state.lab);
    };
    let mut out = format!("DISASTER ({}) on lab {} at {}\n\n", state.kind.name(), state.lab, clock(strike.at_unix_ms));
    out.push_str(&format!("{}\n\n", strike.told));
    match &state.finished {
        Some(s) if s.passed => out.push_str("the drill is over: it passed (`raftty drill score` shows it)\n"),
        Some(_) => out.push_str("the drill is over: it was stopped\n"),
        None => {
            let running = (now_ms() - strike.at_unix_ms) as f64 / 1000.0;
            out.push_str(&format!(
                "The clock is running ({running:.0} s so far). Bring the cluster back with the real commands: raftty \
                 and etcdctl (eval \"$(raftty env{lab_flag})\").\n"
            ));
        }
    }
    out.push_str(&format!("  where to look     {}\n", state.kind.where_to_look()));
    out.push_str(&format!("  what may be lost  {}\n", state.kind.allowance_in_general()));
    let (recording, writing) = if state.finished.is_none() {
        (" (still recording, as an operator's would)", "still writing; ")
    } else {
        ("", "")
    };
    out.push_str(&format!("  the backup        {}{recording}\n", state.backup_dir.display()));
    out.push_str(&format!(
        "  the workload      {writing}what it saw acknowledged: {}, what it saw fail: {}\n",
        dir.join(crate::course::drill::ACKS_FILE).display(),
        dir.join(crate::course::drill::WORKLOAD_LOG).display()
    ));
    if state.finished.is_none() {
        out.push_str(&format!(
            "\n`raftty drill hint{lab_flag}` for a hint; `raftty drill score{lab_flag}` when you think the cluster is \
             back.\n"
        ));
    }
    out
}
