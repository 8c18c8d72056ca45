//! The app's one state, the actions that change it, and the effects it asks the I/O layer for.
//!
//! Data flows one way: a key press or an answer from the cluster becomes an [`Action`];
//! [`update`] changes the [`App`] and returns [`Effect`]s, which the I/O layer
//! (`io.rs`) carries out in the background and answers with more actions. Drawing
//! (`view.rs`) reads the state only. Nothing here touches a terminal or a socket, so all of
//! it is tested with plain values.

use std::time::Duration;
use std::time::Instant;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use crossterm::event::KeyEventKind;
use crossterm::event::KeyModifiers;
use crossterm::event::MouseEvent;
use crossterm::event::MouseEventKind;

use crate::lab::Tempo;
use crate::lab::faults::LabFaults;
use crate::lab::faults::Slowness;
use crate::lab::faults::StepSettings;
use crate::lab::status::Quorum;
use crate::lab::status::Role;
use crate::lab::step::HeldMessage;
use crate::lab::step::Selection;
use crate::proto::rafttyadmin::RaftEvent;
use crate::proto::rafttyadmin::ReadLogResponse;
use crate::tui::command;
use crate::tui::command::CommandLine;
use crate::tui::presentation::DemoOp;
use crate::tui::presentation::DemoUpdate;
use crate::tui::presentation::Presentation;
use crate::tui::replay::Replay;
use crate::tui::tabs::backups::BackupOp;
use crate::tui::tabs::backups::BackupsTab;
use crate::tui::tabs::backups::KeyOutcome;
use crate::tui::tabs::backups::Work;
use crate::tui::tabs::cluster::ClusterTab;
use crate::tui::tabs::events::EventsTab;
use crate::tui::tabs::keys::KeyDetail;
use crate::tui::tabs::keys::KeyVersion;
use crate::tui::tabs::keys::KeysTab;
use crate::tui::tabs::lessons::LessonOp;
use crate::tui::tabs::lessons::LessonUpdate;
use crate::tui::tabs::lessons::LessonsTab;
use crate::tui::tabs::messages::MessagesTab;
use crate::tui::tabs::metrics::MetricSample;
use crate::tui::tabs::metrics::MetricsTab;
use crate::tui::tabs::raft_log::RaftLogTab;
use crate::tui::theme::Theme;
use crate::tui::theme::ThemeName;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Cluster,
    Keys,
    RaftLog,
    Events,
    Metrics,
    Lessons,
    Backups,
    Messages,
}

impl Tab {
    pub const ALL: [Tab; 8] =
        [Tab::Cluster, Tab::Keys, Tab::RaftLog, Tab::Events, Tab::Metrics, Tab::Lessons, Tab::Backups, Tab::Messages];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Cluster => "Cluster",
            Tab::Keys => "Keys",
            Tab::RaftLog => "Raft log",
            Tab::Events => "Events",
            Tab::Metrics => "Metrics",
            Tab::Lessons => "Lessons",
            Tab::Backups => "Backups",
            Tab::Messages => "Messages",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What a member's process is doing, as far as the app can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    Running,
    Paused,
    /// Killed by the lab (SIGKILL).
    Killed,
    Exited,
    /// Attached to a cluster that is not a lab: the member did not answer.
    Unreachable,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proc::Running => "running",
            Proc::Paused => "paused",
            Proc::Killed => "killed",
            Proc::Exited => "exited",
            Proc::Unreachable => "unreachable",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    pub name: String,
    pub id: u64,
    pub process: Proc,
    pub role: Option<Role>,
    pub term: Option<u64>,
    pub last_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub lag: Option<u64>,
    pub leader: Option<String>,
    pub error: Option<String>,
    pub endpoint: String,
}

/// The cluster as the last look at it found it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    pub members: Vec<MemberView>,
    pub faults: LabFaults,
    pub faults_in_words: Vec<String>,
    pub quorum: Quorum,
    pub leader: Option<String>,
    pub term: Option<u64>,
    pub revision: Option<i64>,
    pub alarms: Vec<String>,
    /// The lab's Raft timing (a cluster that is not a lab does not say).
    pub tempo: Option<Tempo>,
}

impl ClusterView {
    pub fn member(&self, name: &str) -> Option<&MemberView> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// One line of the event timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView {
    pub time_unix_micros: i64,
    pub member: String,
    pub term: u64,
    pub kind: String,
    pub details: String,
}

impl EventView {
    pub fn from_raft(e: &RaftEvent) -> EventView {
        let details = crate::lab::timeline::event_details(e);
        EventView {
            time_unix_micros: e.time_unix_micros,
            member: e.member.clone(),
            term: e.term,
            kind: e.kind.clone(),
            details,
        }
    }

    /// Something the lab did (a fault, a kill), told by the app itself.
    pub fn lab(kind: &str, details: String) -> EventView {
        EventView::lab_at(now_micros(), kind, details)
    }

    pub fn lab_at(time_unix_micros: i64, kind: &str, details: String) -> EventView {
        EventView { time_unix_micros, member: "lab".into(), term: 0, kind: kind.into(), details }
    }

    pub fn clock(&self) -> String {
        let secs = self.time_unix_micros.div_euclid(1_000_000);
        let millis = self.time_unix_micros.rem_euclid(1_000_000) / 1000;
        let day = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}.{millis:03}", day / 3600, day % 3600 / 60, day % 60)
    }
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The load generator's last second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    pub target_per_sec: u32,
    pub done_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// Where the app looks: a lab it controls, or any etcd cluster it only watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Lab { name: String, tempo: Tempo },
    Attached { endpoints: Vec<String> },
}

impl Target {
    pub fn is_lab(&self) -> bool {
        matches!(self, Target::Lab { .. })
    }
}

/// What the app is waiting on from the person.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a `:` command.
    Command,
    /// Typing a `/` filter for the current tab.
    Filter,
    Help,
    /// A destructive action waits for `y`.
    Confirm {
        question: String,
        effect: Box<Effect>,
    },
    Quit,
}

/// Work for the I/O layer. Every effect is answered with actions, never awaited here.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Lab(LabOp),
    Etcd(command::EtcdOp),
    Backup(BackupOp),
    Lesson(LessonOp),
    Demo(DemoOp),
    /// The value, metadata and lease of one key (at a revision, when travelling in time).
    FetchKey {
        key: String,
        revision: Option<i64>,
    },
    /// Every version of a key that history still holds, deletions included.
    FetchHistory {
        key: String,
    },
    /// The key tree again: live (and followed by Watch) or as it stood at a revision.
    LoadKeys {
        revision: Option<i64>,
    },
    /// Which part of each member's log to read: the tail, or from an index on.
    LogWindow {
        from: Option<u64>,
    },
    Load(Option<u32>),
    /// Replay: show the cluster as it was at this moment (microseconds since the epoch).
    ReplayTo(i64),
    Quit {
        stop_lab: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabOp {
    Kill(String),
    Stop(String),
    Pause(String),
    Resume(String),
    Start(String),
    Isolate(String),
    Partition(Vec<Vec<String>>),
    Cut(String, String),
    Slow(String, Slowness),
    Heal,
    MemberAdd,
    MemberRemove(String),
    Tempo(Tempo),
    /// Step mode on (with its settings) or off.
    Step(Option<StepSettings>),
    Deliver(Selection),
    DropMessages(Selection),
}

impl LabOp {
    pub fn describe(&self) -> String {
        match self {
            LabOp::Kill(m) => format!("kill {m}"),
            LabOp::Stop(m) => format!("stop {m}"),
            LabOp::Pause(m) => format!("pause {m}"),
            LabOp::Resume(m) => format!("resume {m}"),
            LabOp::Start(m) => format!("start {m}"),
            LabOp::Isolate(m) => format!("isolate {m}"),
            LabOp::Partition(groups) => {
                format!("partition {}", groups.iter().map(|g| g.join(",")).collect::<Vec<_>>().join(" | "))
            }
            LabOp::Cut(a, b) => format!("cut {a} -> {b}"),
            LabOp::Slow(m, s) => format!("slow {m} {}ms", s.delay_ms),
            LabOp::Heal => "heal".into(),
            LabOp::MemberAdd => "member add".into(),
            LabOp::MemberRemove(m) => format!("member remove {m}"),
            LabOp::Tempo(t) => format!("tempo {}ms/{}ms", t.heartbeat_ms, t.election_timeout_ms),
            LabOp::Step(None) => "step off".into(),
            LabOp::Step(Some(s)) if s.auto_heartbeats => "step on --auto-heartbeats".into(),
            LabOp::Step(Some(_)) => "step on".into(),
            LabOp::Deliver(s) => format!("step deliver {}", describe_selection(s)),
            LabOp::DropMessages(s) => format!("step drop {}", describe_selection(s)),
        }
    }
}

fn describe_selection(s: &Selection) -> String {
    match s {
        Selection::Ids(ids) => ids.join(" "),
        Selection::All => "--all".into(),
        Selection::Matching { from, to, kinds } => {
            let mut words = Vec::new();
            if let Some(f) = from {
                words.push(format!("--from {f}"));
            }
            if let Some(t) = to {
                words.push(format!("--to {t}"));
            }
            if !kinds.is_empty() {
                words.push(format!("--kind {}", kinds.join(",")));
            }
            words.join(" ")
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Time passed: lease countdowns and fading highlights move on.
    Tick(Instant),
    /// The lab is being started (with what it says meanwhile), or it failed to start.
    Starting(String),
    StartFailed(String),
    Cluster(ClusterView),
    /// The lab was made anew (why, in words): the old one's members, roles and logs are gone.
    LabMadeAnew(String),
    Event(EventView),
    Log {
        member: String,
        log: ReadLogResponse,
    },
    LogUnavailable {
        member: String,
        why: String,
    },
    /// The key tree: a fresh load (replacing what was shown) at `revision`.
    Keys {
        keys: Vec<(String, crate::tui::keyspace::KeyMeta)>,
        revision: i64,
        at: Option<i64>,
        floor: i64,
    },
    KeyPut {
        key: String,
        meta: crate::tui::keyspace::KeyMeta,
        revision: i64,
    },
    KeyDeleted {
        key: String,
        revision: i64,
    },
    KeyDetail(KeyDetail),
    KeyHistory {
        key: String,
        versions: Vec<KeyVersion>,
        floor: i64,
    },
    KeysFailed(String),
    Metrics {
        member: String,
        sample: MetricSample,
    },
    Load(Option<LoadStats>),
    /// A command finished: its title and what it printed.
    Output {
        ok: bool,
        title: String,
        lines: Vec<String>,
    },
    /// Lines streamed by a `watch` command.
    WatchLines(Vec<String>),
    /// The backups, and where new ones go (None when attached to a cluster that is no lab).
    Backups {
        entries: Vec<crate::backup::catalog::Entry>,
        folder: Option<String>,
    },
    /// Long work moved on.
    Work {
        title: String,
        progress: crate::progress::Progress,
    },
    /// Long work ended; a restore or recovery changed the data under the app.
    WorkDone {
        ok: bool,
        title: String,
        lines: Vec<String>,
        data_replaced: bool,
    },
    /// What the app's continuous backup last said; None once it stopped.
    BackupRunning(Option<String>),
    /// The lessons, or the one under way, as the coach sees them.
    Lesson(LessonUpdate),
    /// The demo being presented moved on.
    Demo(DemoUpdate),
    /// The messages step mode holds, oldest first.
    Held(Vec<HeldMessage>),
    /// Replay: the events recorded up to the moment shown, replacing those on screen.
    ReplayEvents(Vec<EventView>),
}

/// What a command printed, shown over the bottom of the screen until esc.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub ok: bool,
    pub title: String,
    pub lines: Vec<String>,
    pub scroll: usize,
    /// A `watch` streams into it: closing it ends the watch.
    pub streaming: bool,
}

/// The whole state of the app.
pub struct App {
    pub target: Target,
    pub tab: Tab,
    pub mode: Mode,
    pub theme: Theme,
    pub size: (u16, u16),
    pub now: Instant,
    /// Wall-clock time in microseconds, for what the app itself adds to the timeline.
    pub wall_micros: i64,
    /// Set while the lab is being started.
    pub starting: Option<String>,
    pub cluster: Option<ClusterView>,
    pub cluster_tab: ClusterTab,
    pub keys: KeysTab,
    pub log: RaftLogTab,
    pub events: EventsTab,
    pub metrics: MetricsTab,
    pub backups: BackupsTab,
    pub lessons: LessonsTab,
    pub messages: MessagesTab,
    /// Presentation mode, for `raftty demo`.
    pub demo: Option<Presentation>,
    /// `raftty replay`: a recording shown read-only, at a moment.
    pub replay: Option<Replay>,
    /// How far the help is scrolled.
    pub help_scroll: u16,
    pub command: CommandLine,
    pub output: Option<Output>,
    /// The last thing the app has to say, and when it said it.
    pub message: Option<(String, bool, Instant)>,
    pub load: Option<LoadStats>,
    /// Something changed since the last frame.
    pub dirty: bool,
    pub quitting: Option<bool>,
    /// The etcd user the app's requests act as (its certificate's CN), when known.
    pub acting_as: Option<String>,
}

/// How long a message in the status line stays.
const MESSAGE_FOR: Duration = Duration::from_secs(8);

impl App {
    pub fn new(target: Target, theme: ThemeName, now: Instant) -> App {
        App {
            target,
            tab: Tab::Cluster,
            mode: Mode::Normal,
            theme: Theme::new(theme),
            size: (80, 24),
            now,
            wall_micros: now_micros(),
            starting: None,
            cluster: None,
            cluster_tab: ClusterTab::default(),
            keys: KeysTab::default(),
            log: RaftLogTab::default(),
            events: EventsTab::default(),
            metrics: MetricsTab::default(),
            backups: BackupsTab::default(),
            lessons: LessonsTab::default(),
            messages: MessagesTab::default(),
            demo: None,
            replay: None,
            help_scroll: 0,
            command: CommandLine::default(),
            output: None,
            message: None,
            load: None,
            dirty: true,
            quitting: None,
            acting_as: None,
        }
    }

    pub fn member_names(&self) -> Vec<String> {
        self.cluster.as_ref().map(|c| c.members.iter().map(|m| m.name.clone()).collect()).unwrap_or_default()
    }

    pub fn say(&mut self, text: impl Into<String>, ok: bool) {
        self.message = Some((text.into(), ok, self.now));
    }

    /// Whether something on screen changes with time alone, so the loop must tick.
    pub fn needs_ticks(&self) -> bool {
        self.starting.is_some()
            || self.message.is_some()
            || self.keys.detail.as_ref().is_some_and(|d| d.lease_ttl.is_some())
            || self.log.has_fading(self.now)
            || self.backups.work.is_some()
    }

    /// Asks before an effect that cannot be undone.
    fn confirm(&mut self, question: String, effect: Effect) {
        self.mode = Mode::Confirm { question, effect: Box::new(effect) };
    }
}

/// Applies one action; returns the work it asks for.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    app.dirty = true;
    match action {
        Action::Key(key) if key.kind != KeyEventKind::Release => on_key(app, key),
        Action::Key(_) => {
            app.dirty = false;
            vec![]
        }
        Action::Mouse(mouse) => on_mouse(app, mouse),
        Action::Resize(w, h) => {
            app.size = (w, h);
            vec![]
        }
        Action::Tick(now) => {
            app.now = now;
            if app.message.as_ref().is_some_and(|(_, _, at)| now.duration_since(*at) > MESSAGE_FOR) {
                app.message = None;
            }
            app.log.expire(now);
            vec![]
        }
        Action::Starting(what) => {
            app.starting = Some(what);
            vec![]
        }
        Action::StartFailed(why) => {
            app.starting = None;
            app.output = Some(Output {
                ok: false,
                title: "the lab did not start".into(),
                lines: lines_of(&why),
                scroll: 0,
                streaming: false,
            });
            vec![]
        }
        Action::Cluster(view) => {
            if app.cluster.as_ref() == Some(&view) {
                app.dirty = false;
                return vec![];
            }
            if view.members.iter().any(|m| m.process == Proc::Running && m.role.is_some()) {
                app.starting = None;
            }
            if let Some(old) = &app.cluster {
                if old.faults_in_words != view.faults_in_words {
                    let now =
                        if view.faults_in_words.is_empty() { "none".into() } else { view.faults_in_words.join("; ") };
                    app.events.push(EventView::lab_at(app.wall_micros, "faults_changed", format!("now={now}")));
                }
                for m in &view.members {
                    let before = old.member(&m.name).map(|o| o.process);
                    if before.is_some_and(|b| b != m.process) {
                        let details = format!("member={} state={}", m.name, m.process);
                        app.events.push(EventView::lab_at(app.wall_micros, "process", details));
                    }
                }
            }
            app.cluster_tab.clamp(view.members.len());
            app.cluster = Some(view);
            vec![]
        }
        Action::LabMadeAnew(why) => {
            app.cluster = None;
            app.starting = Some(format!("{why}: waiting for its members…"));
            app.log = RaftLogTab { page: app.log.page, ..RaftLogTab::default() };
            app.events.push(EventView::lab_at(app.wall_micros, "lab", format!("did=\"{why}\"")));
            vec![]
        }
        Action::Event(e) => {
            app.events.push(e);
            vec![]
        }
        Action::Log { member, log } => {
            app.log.update(&member, log, app.now);
            vec![]
        }
        Action::LogUnavailable { member, why } => {
            app.log.unavailable(&member, why);
            vec![]
        }
        Action::Keys { keys, revision, at, floor } => app.keys.loaded(keys, revision, at, floor),
        Action::KeyPut { key, meta, revision } => {
            app.keys.put(&key, meta, revision);
            app.keys.refresh_if_selected(&key)
        }
        Action::KeyDeleted { key, revision } => {
            app.keys.delete(&key, revision);
            app.keys.refresh_if_selected(&key)
        }
        Action::KeyDetail(d) => {
            app.keys.detail_arrived(d, app.now);
            vec![]
        }
        Action::KeyHistory { key, versions, floor } => {
            app.keys.history_arrived(key, versions, floor);
            vec![]
        }
        Action::KeysFailed(why) => {
            app.say(format!("keys: {why}"), false);
            vec![]
        }
        Action::Metrics { member, sample } => {
            app.metrics.push(&member, sample);
            app.dirty = app.tab == Tab::Metrics;
            vec![]
        }
        Action::Load(stats) => {
            app.load = stats;
            vec![]
        }
        Action::Output { ok, title, lines } => {
            if lines.len() <= 1 {
                let text = if lines.is_empty() { title } else { format!("{title}: {}", lines[0]) };
                app.say(text, ok);
            } else {
                app.output = Some(Output { ok, title, lines, scroll: 0, streaming: false });
            }
            vec![]
        }
        Action::WatchLines(lines) => {
            let out = app.output.get_or_insert_with(|| Output {
                ok: true,
                title: "watch".into(),
                lines: vec![],
                scroll: 0,
                streaming: true,
            });
            out.lines.extend(lines);
            let excess = out.lines.len().saturating_sub(2000);
            out.lines.drain(..excess);
            vec![]
        }
        Action::Backups { entries, folder } => {
            app.backups.listed(entries, folder);
            vec![]
        }
        Action::Work { title, progress } => {
            let since = app.backups.work.as_ref().filter(|w| w.title == title).map_or(app.now, |w| w.since);
            app.backups.work = Some(Work { title, progress, since });
            vec![]
        }
        Action::WorkDone { ok, title, lines, data_replaced } => {
            app.backups.work = None;
            let mut effects = vec![Effect::Backup(BackupOp::Refresh)];
            if data_replaced {
                app.events.push(EventView::lab_at(app.wall_micros, "lab", format!("did=\"{title}\"")));
                effects.push(Effect::LoadKeys { revision: None });
            }
            update(app, Action::Output { ok, title, lines });
            effects
        }
        Action::BackupRunning(line) => {
            // A new backup, or a new full snapshot in it, is a new entry or range to list.
            let listed_anew = line.as_deref().is_some_and(|l| l.starts_with("full snapshot"))
                || app.backups.running.is_none() != line.is_none();
            app.backups.running = line;
            if listed_anew { vec![Effect::Backup(BackupOp::Refresh)] } else { vec![] }
        }
        Action::ReplayEvents(events) => {
            app.events.clear();
            for e in events {
                app.events.push(e);
            }
            vec![]
        }
        Action::Held(held) => {
            if app.messages.held == held {
                app.dirty = false;
                return vec![];
            }
            app.messages.update(held);
            vec![]
        }
        Action::Demo(update) => {
            if let Some(demo) = &mut app.demo {
                demo.update(update);
            }
            vec![]
        }
        Action::Lesson(update) => {
            let before = (app.lessons.current.clone(), app.lessons.catalog.clone());
            let passed = matches!(update, LessonUpdate::Passed(_));
            app.lessons.update(update);
            if passed {
                // The pane may be hidden: the learner still hears that the step passed.
                if let Some(p) = &app.lessons.passed {
                    app.say(format!("step {} passed: {}", p.number, p.title), true);
                }
            }
            // The coach reports every second; only a change is worth a frame.
            app.dirty = passed
                || app.lessons.busy.is_some()
                || before != (app.lessons.current.clone(), app.lessons.catalog.clone());
            vec![]
        }
    }
}

pub fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        // Ctrl-C leaves at once and leaves the lab running: the safe choice.
        app.quitting = Some(false);
        return vec![Effect::Quit { stop_lab: false }];
    }
    match app.mode.clone() {
        Mode::Help => {
            match key.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => {
                    app.mode = Mode::Normal;
                    app.help_scroll = 0;
                }
                // On a small terminal the help is taller than the screen.
                KeyCode::Down | KeyCode::Char('j') => app.help_scroll = app.help_scroll.saturating_add(1),
                KeyCode::Up | KeyCode::Char('k') => app.help_scroll = app.help_scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => app.help_scroll = app.help_scroll.saturating_add(10),
                KeyCode::PageUp => app.help_scroll = app.help_scroll.saturating_sub(10),
                _ => {}
            }
            vec![]
        }
        Mode::Quit => match key.code {
            KeyCode::Char('s') if app.target.is_lab() => {
                app.quitting = Some(true);
                vec![Effect::Quit { stop_lab: true }]
            }
            KeyCode::Char('l') | KeyCode::Char('y') | KeyCode::Char('q') => {
                app.quitting = Some(false);
                vec![Effect::Quit { stop_lab: false }]
            }
            KeyCode::Esc | KeyCode::Char('n') => {
                app.mode = Mode::Normal;
                vec![]
            }
            _ => vec![],
        },
        Mode::Confirm { effect, .. } => {
            app.mode = Mode::Normal;
            match key.code {
                KeyCode::Char('y') | KeyCode::Enter => vec![*effect],
                _ => {
                    app.say("cancelled", true);
                    vec![]
                }
            }
        }
        Mode::Command => on_command_key(app, key),
        Mode::Filter => {
            match key.code {
                KeyCode::Esc => {
                    app.mode = Mode::Normal;
                    app.command.clear();
                    set_filter(app, "");
                }
                KeyCode::Enter => app.mode = Mode::Normal,
                _ => {
                    app.command.edit(key);
                    let text = app.command.text().to_string();
                    set_filter(app, &text);
                }
            }
            vec![]
        }
        Mode::Normal => on_normal_key(app, key),
    }
}

fn set_filter(app: &mut App, text: &str) {
    match app.tab {
        Tab::Keys => app.keys.set_filter(text),
        Tab::Events => app.events.filter_text = text.to_string(),
        _ => {}
    }
}

fn on_command_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => {
            app.mode = Mode::Normal;
            app.command.clear();
            vec![]
        }
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            let line = app.command.submit();
            run_command_line(app, &line)
        }
        KeyCode::Tab => {
            let members = app.member_names();
            let keys = app.keys.completion_keys();
            app.command.complete(&members, &keys);
            vec![]
        }
        _ => {
            app.command.edit(key);
            vec![]
        }
    }
}

/// Runs what was typed after `:`.
pub fn run_command_line(app: &mut App, line: &str) -> Vec<Effect> {
    if line.trim().is_empty() {
        return vec![];
    }
    match command::parse(line) {
        Ok(command::Parsed::Effect(effect)) => guard(app, effect),
        Ok(command::Parsed::Quit) => {
            app.mode = Mode::Quit;
            vec![]
        }
        Ok(command::Parsed::Help) => {
            app.mode = Mode::Help;
            vec![]
        }
        Ok(command::Parsed::Theme(name)) => {
            app.theme = Theme::new(name);
            vec![]
        }
        Ok(command::Parsed::Tab(tab)) => switch_tab(app, tab),
        Err(e) => {
            app.say(format!("{e}"), false);
            vec![]
        }
    }
}

/// Lab effects need a lab; the destructive ones on the whole lab ask first.
fn guard(app: &mut App, effect: Effect) -> Vec<Effect> {
    if app.replay.is_some() && !matches!(effect, Effect::ReplayTo(_) | Effect::LogWindow { .. } | Effect::Quit { .. }) {
        app.say("this is a replay of what was recorded: it shows the past and changes nothing", false);
        return vec![];
    }
    if let Effect::Lab(op) = &effect {
        if !app.target.is_lab() {
            app.say(format!("`{}` needs a raftty lab: this app is attached to another cluster", op.describe()), false);
            return vec![];
        }
        if let LabOp::MemberRemove(m) = op {
            let q = format!("remove {m} from the cluster for good? (y/n)");
            app.confirm(q, effect);
            return vec![];
        }
        if let LabOp::Tempo(_) = op {
            let q = format!("{}: every member restarts, one at a time. Go on? (y/n)", op.describe());
            app.confirm(q, effect);
            return vec![];
        }
    }
    if let Effect::Backup(op) = &effect {
        if op.needs_lab() && !app.target.is_lab() {
            app.say(format!("`{}` needs a raftty lab: this app is attached to another cluster", op.describe()), false);
            return vec![];
        }
        if app.backups.work.is_some() && !matches!(op, BackupOp::Refresh | BackupOp::BackupStop) {
            let busy = app.backups.work.as_ref().map(|w| w.title.clone()).unwrap_or_default();
            app.say(format!("wait for `{busy}` to finish first"), false);
            return vec![];
        }
        let lab = match &app.target {
            Target::Lab { name, .. } => name.clone(),
            Target::Attached { .. } => String::new(),
        };
        match op {
            BackupOp::Restore { source, to_revision } => {
                let at = to_revision.map(|r| format!(" as of revision {r}")).unwrap_or_default();
                let q = format!(
                    "replace lab {lab} by the one in {source}{at}? Its members stop, its data is moved aside, \
                     its certificates are kept. (y/n)"
                );
                app.confirm(q, effect);
                return vec![];
            }
            BackupOp::Recover { member, .. } => {
                let q = format!(
                    "rebuild lab {lab} around {member}? The other members' data is dropped and fresh members \
                     join; writes {member} never saw are lost. (y/n)"
                );
                app.confirm(q, effect);
                return vec![];
            }
            _ => {}
        }
    }
    if let Effect::Lesson(op) = &effect {
        let lab = match &app.target {
            Target::Lab { name, .. } => name.clone(),
            Target::Attached { .. } => {
                app.say("lessons need a raftty lab: this app is attached to another cluster", false);
                return vec![];
            }
        };
        let question = match op {
            LessonOp::Start(id) => {
                Some(format!("start {id} on a fresh lab? Lab {lab} is stopped and its data deleted to make it. (y/n)"))
            }
            LessonOp::ResetLesson => {
                Some(format!("the whole lesson again, on a fresh lab? Lab {lab}'s data is deleted. (y/n)"))
            }
            LessonOp::Solution => Some("play the solution? The step counts as shown, not solved by you. (y/n)".into()),
            _ => None,
        };
        if let Some(q) = question {
            app.confirm(q, effect);
            return vec![];
        }
    }
    if let Effect::Etcd(command::EtcdOp::Compact { revision }) = &effect {
        let q = format!("compact history up to revision {revision}? Older revisions are gone for good. (y/n)");
        app.confirm(q, effect);
        return vec![];
    }
    vec![effect]
}

fn switch_tab(app: &mut App, tab: Tab) -> Vec<Effect> {
    app.tab = tab;
    match tab {
        Tab::RaftLog => vec![Effect::LogWindow { from: app.log.window_from() }],
        Tab::Backups => vec![Effect::Backup(BackupOp::Refresh)],
        Tab::Lessons => vec![Effect::Lesson(LessonOp::Catalog)],
        _ => vec![],
    }
}

fn on_normal_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if let Some(demo) = &mut app.demo
        && app.output.is_none()
        && let Some(effects) = demo.on_key(key)
    {
        return effects;
    }
    if app.output.is_some() {
        let out = app.output.as_mut().expect("checked");
        match key.code {
            KeyCode::Esc => {
                let streaming = out.streaming;
                app.output = None;
                if streaming {
                    return vec![Effect::Etcd(command::EtcdOp::WatchOff)];
                }
                return vec![];
            }
            KeyCode::PageUp => {
                out.scroll = out.scroll.saturating_add(10);
                return vec![];
            }
            KeyCode::PageDown => {
                out.scroll = out.scroll.saturating_sub(10);
                return vec![];
            }
            _ => {}
        }
    }
    if let Some(replay) = &mut app.replay {
        if let Some(at) = replay.on_key(key) {
            return vec![Effect::ReplayTo(at)];
        }
        if key.code == KeyCode::Char('q') {
            // Nothing runs in a replay: leaving needs no question.
            app.quitting = Some(false);
            return vec![Effect::Quit { stop_lab: false }];
        }
    }
    match key.code {
        KeyCode::Char('q') => {
            app.mode = Mode::Quit;
            return vec![];
        }
        KeyCode::Char('?') => {
            app.mode = Mode::Help;
            return vec![];
        }
        KeyCode::Char(':') => {
            app.mode = Mode::Command;
            app.command.clear();
            return vec![];
        }
        KeyCode::Char('/') if matches!(app.tab, Tab::Keys | Tab::Events) => {
            app.mode = Mode::Filter;
            app.command.clear();
            return vec![];
        }
        KeyCode::Char(c @ '1'..='8') => {
            let tab = Tab::ALL[(c as usize) - ('1' as usize)];
            return switch_tab(app, tab);
        }
        KeyCode::Tab => {
            let next = Tab::ALL[(app.tab.index() + 1) % Tab::ALL.len()];
            return switch_tab(app, next);
        }
        KeyCode::BackTab => {
            let prev = Tab::ALL[(app.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()];
            return switch_tab(app, prev);
        }
        KeyCode::Esc => {
            app.message = None;
        }
        // While a lesson runs, its keys work on every tab.
        KeyCode::F(n @ (2 | 3 | 4 | 8)) if app.lessons.current.is_some() => {
            let op = match n {
                2 => LessonOp::Hint,
                3 => LessonOp::Solution,
                4 => LessonOp::ResetStep,
                _ => {
                    app.lessons.pane_hidden = !app.lessons.pane_hidden;
                    return vec![];
                }
            };
            return guard(app, Effect::Lesson(op));
        }
        _ => {}
    }
    let effects = match app.tab {
        Tab::Cluster => {
            let names = app.member_names();
            let selected = app.cluster_tab.selected_name(&names);
            app.cluster_tab.on_key(key, &names, selected)
        }
        Tab::Keys => {
            let effects = app.keys.on_key(key);
            if let Some(text) = app.keys.take_prefill() {
                app.mode = Mode::Command;
                app.command.set(&text);
            }
            if let Some((question, effect)) = app.keys.take_confirm() {
                app.confirm(question, effect);
            }
            effects
        }
        Tab::RaftLog => app.log.on_key(key),
        Tab::Events => {
            app.events.on_key(key, &app.member_names());
            vec![]
        }
        Tab::Backups => match app.backups.on_key(key) {
            KeyOutcome::Nothing => vec![],
            KeyOutcome::Effect(e) => vec![e],
            KeyOutcome::Prefill(text) => {
                app.mode = Mode::Command;
                app.command.set(&text);
                vec![]
            }
        },
        Tab::Lessons => match app.lessons.on_key(key) {
            crate::tui::tabs::lessons::KeyOutcome::Nothing => vec![],
            crate::tui::tabs::lessons::KeyOutcome::Effect(e) => vec![e],
        },
        Tab::Metrics => vec![],
        Tab::Messages => {
            let step = app.cluster.as_ref().and_then(|c| c.faults.step);
            app.messages.on_key(key, step)
        }
    };
    effects.into_iter().flat_map(|e| guard(app, e)).collect()
}

fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    let (w, _) = app.size;
    match mouse.kind {
        MouseEventKind::Down(_) => {
            if mouse.row == crate::tui::view::TAB_ROW
                && let Some(tab) = crate::tui::view::tab_at(mouse.column, w)
            {
                return switch_tab(app, tab);
            }
            let body = crate::tui::view::body_area(app.size);
            if mouse.row >= body.y {
                let row = (mouse.row - body.y) as usize;
                match app.tab {
                    Tab::Cluster => app.cluster_tab.click(row, app.member_names().len()),
                    Tab::Keys => return app.keys.click(row),
                    _ => {}
                }
            }
            vec![]
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
            let code = if mouse.kind == MouseEventKind::ScrollDown { KeyCode::Down } else { KeyCode::Up };
            on_normal_key(app, KeyEvent::new(code, KeyModifiers::NONE))
        }
        _ => {
            app.dirty = false;
            vec![]
        }
    }
}
