//! The terminal app: `raftty` with no arguments (a lab it starts or attaches to), and
//! `raftty attach` (any etcd cluster).
//!
//! - `app.rs`: the one state, the `Action`s that change it, the pure `update`, and the
//!   `Effect`s it asks for. Testable without a terminal.
//! - `tabs/`: one file per tab (Cluster, Keys, Raft log, Events, Metrics, Lessons): the
//!   tab's state, its keys and its drawing. `view.rs`: the header, tab bar, footer and
//!   popups around them. `command.rs`: the `:` line. `keyspace.rs`: the key tree.
//!   `theme.rs`: dark, light and monochrome (NO_COLOR).
//! - `io/`: every request to the cluster, in background tasks that answer with actions.
//! - this file: the terminal (raw mode, restored whatever happens) and the loop, which
//!   waits for a key, an answer or (only when something on screen moves by itself) a tick,
//!   and draws only when the state changed, at most once per frame.

pub mod app;
pub mod command;
pub mod io;
pub mod keyspace;
pub mod presentation;
pub mod replay;
pub mod tabs;
pub mod theme;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use crossterm::event::DisableMouseCapture;
use crossterm::event::EnableMouseCapture;
use crossterm::event::Event;
use crossterm::event::EventStream;
use crossterm::terminal::BeginSynchronizedUpdate;
use crossterm::terminal::EndSynchronizedUpdate;
use crossterm::terminal::EnterAlternateScreen;
use crossterm::terminal::LeaveAlternateScreen;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio_stream::StreamExt;

use crate::lab::supervisor::LabShape;
use crate::tui::app::Action;
use crate::tui::app::App;
use crate::tui::app::Effect;
use crate::tui::app::Tab;
use crate::tui::app::Target;
use crate::tui::io::Io;
use crate::tui::io::Source;
use crate::tui::theme::ThemeName;

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(16);

pub struct AppOptions {
    pub source: Source,
    pub target: Target,
    pub shape: LabShape,
    pub theme: ThemeName,
    /// `raftty demo`: present this demo.
    pub demo: Option<crate::course::demo::Demo>,
    /// `raftty replay`: the moment to open the recording at.
    pub replay_from: Option<i64>,
}

/// Raw mode, the alternate screen and the mouse, undone on drop, on panic and on signals.
struct TerminalGuard;

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen, crossterm::cursor::Show);
}

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            hook(info);
        }));
        crossterm::terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        Ok(TerminalGuard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Sizes the panes that scroll, and flattens the key tree if it changed.
pub fn prepare(app: &mut App) {
    let (body, _) = view::tab_and_pane(app);
    app.keys.page = body.height.saturating_sub(2) as usize;
    app.log.page = body.height.saturating_sub(3) as usize;
    app.keys.prepare();
}

/// Who the app's requests act as once auth is on: the CN of the certificate it uses.
fn acting_as(source: &Source) -> Option<String> {
    match source {
        // The lab's own client certificate, made with the lab (which may not exist yet).
        Source::Lab { .. } => Some(crate::pki::ROOT_NAME.to_string()),
        Source::Attached { cert, .. } => {
            crate::lab::certs::inspect(&cert.as_ref()?.cert, None).ok().map(|i| i.common_name)
        }
        Source::Replay(_) => None,
    }
}

pub async fn run(options: AppOptions) -> Result<ExitCode> {
    anyhow::ensure!(
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        "the raftty app needs a terminal; for scripts use the headless commands (`raftty up`, `raftty status`, ...)"
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let io = Io::new(options.source.clone(), tx);
    let mut app = App::new(options.target.clone(), options.theme, Instant::now());
    app.acting_as = acting_as(&options.source);
    if let Some(demo) = options.demo {
        let steps = demo.steps.iter().map(|s| (s.title.clone(), s.checkpoint)).collect();
        app.demo = Some(presentation::Presentation::new(&demo.id, &demo.title, &demo.summary, steps));
        io.present(demo);
    }
    let guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    io.start(options.shape);
    if let (Source::Replay(recording), Some(from)) = (&options.source, options.replay_from) {
        let replay = replay::Replay::new(recording.moments(), from);
        io.run(Effect::ReplayTo(replay.at));
        app.replay = Some(replay);
    }

    let mut input = EventStream::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut last_frame = Instant::now() - FRAME;
    let mut stop_lab = None;
    while stop_lab.is_none() {
        if app.dirty && last_frame.elapsed() >= FRAME {
            prepare(&mut app);
            let mut out = std::io::stdout();
            let _ = crossterm::queue!(out, BeginSynchronizedUpdate);
            terminal.draw(|f| view::draw(f, &app))?;
            let _ = crossterm::queue!(out, EndSynchronizedUpdate);
            let _ = out.flush();
            app.dirty = false;
            last_frame = Instant::now();
        }
        let action = tokio::select! {
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) => Action::Key(key),
                Some(Ok(Event::Mouse(mouse))) => Action::Mouse(mouse),
                Some(Ok(Event::Resize(w, h))) => Action::Resize(w, h),
                Some(Ok(_)) => continue,
                // The terminal is gone: leave, and leave the lab running.
                Some(Err(_)) | None => break,
            },
            Some(action) = rx.recv() => action,
            _ = ticks.tick(), if app.needs_ticks() => Action::Tick(Instant::now()),
            _ = tokio::time::sleep_until((last_frame + FRAME).into()), if app.dirty => continue,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
        };
        let mut actions = vec![action];
        // Take everything that is already waiting, so a burst is drawn once.
        while actions.len() < 1024 {
            match rx.try_recv() {
                Ok(a) => actions.push(a),
                Err(_) => break,
            }
        }
        let tab_before = app.tab;
        let dirty_before = app.dirty;
        let mut any_dirty = false;
        for action in actions {
            app.now = Instant::now();
            app.wall_micros = app::now_micros();
            for effect in app::update(&mut app, action) {
                match effect {
                    Effect::Quit { stop_lab: stop } => stop_lab = Some(stop),
                    effect => io.run(effect),
                }
            }
            any_dirty |= app.dirty;
        }
        app.dirty = dirty_before || any_dirty;
        if tab_before == Tab::RaftLog && app.tab != Tab::RaftLog {
            io.hide_log();
        }
    }
    drop(terminal);
    drop(guard);
    if let Some(dir) = io::backups::stop_backup(&io).await {
        println!("the continuous backup in {} stopped; `raftty backup {}` resumes it", dir.display(), dir.display());
    }
    let name = match &options.target {
        Target::Lab { name, .. } => Some(name.clone()),
        Target::Attached { .. } => None,
    };
    match (stop_lab, name) {
        (Some(true), Some(name)) => {
            println!("stopping lab {name}…");
            let stopped = io::stop_lab(&options.source)?;
            println!("stopped {}; `raftty` starts it again with its data", stopped.join(", "));
        }
        (_, Some(name)) => {
            let flag = if name == crate::lab::DEFAULT_LAB { String::new() } else { format!(" --lab {name}") };
            println!(
                "lab {name} is still running: eval \"$(raftty env{flag})\" and use etcdctl; `raftty down{flag}` stops it"
            );
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}
