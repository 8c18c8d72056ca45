//! The terminal app's costs: how long a frame takes to build and render with 100,000 keys
//! in the tree and a 10,000-entry log in view (on ratatui's TestBackend, so the terminal
//! itself is left out), and how much CPU the real app burns while the cluster is idle
//! (in tmux, against a running lab). Targets: a frame's p99 under 5 ms, idle under 1%.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::lab::Tempo;
use crate::lab::faults::LabFaults;
use crate::lab::status::Quorum;
use crate::lab::status::Role;
use crate::proto::rafttyadmin::LogEntryView;
use crate::proto::rafttyadmin::ReadLogResponse;
use crate::tui::app::Action;
use crate::tui::app::App;
use crate::tui::app::ClusterView;
use crate::tui::app::MemberView;
use crate::tui::app::Proc;
use crate::tui::app::Target;
use crate::tui::app::update;
use crate::tui::keyspace::KeyMeta;
use crate::tui::theme::ThemeName;

const KEYS: usize = 100_000;
const LOG_ENTRIES: u64 = 10_000;
const FRAMES: usize = 300;

pub struct FrameTimes {
    pub what: &'static str,
    pub p50: Duration,
    pub p99: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn big_app() -> App {
    let mut app = App::new(Target::Lab { name: "bench".into(), tempo: Tempo::ETCD }, ThemeName::Dark, Instant::now());
    let members: Vec<MemberView> = (1..=3)
        .map(|i| MemberView {
            name: format!("n{i}"),
            id: i,
            process: Proc::Running,
            role: Some(if i == 1 { Role::Leader } else { Role::Follower }),
            term: Some(2),
            last_index: Some(LOG_ENTRIES),
            committed: Some(LOG_ENTRIES - 5),
            applied: Some(LOG_ENTRIES - 5),
            lag: Some(0),
            leader: Some("n1".into()),
            error: None,
            endpoint: String::new(),
        })
        .collect();
    update(
        &mut app,
        Action::Cluster(ClusterView {
            members,
            faults: LabFaults::default(),
            faults_in_words: vec![],
            quorum: Quorum::Healthy,
            leader: Some("n1".into()),
            term: Some(2),
            revision: Some(KEYS as i64 + 1),
            alarms: vec![],
            tempo: Some(Tempo::ETCD),
        }),
    );
    let keys = (0..KEYS)
        .map(|i| {
            (format!("/registry/pods/ns{:02}/pod-{i:06}", i % 50), KeyMeta { mod_revision: i as i64 + 2, version: 1 })
        })
        .collect();
    update(&mut app, Action::Keys { keys, revision: KEYS as i64 + 1, at: None, floor: 0 });
    for p in ["/", "/registry/", "/registry/pods/", "/registry/pods/ns07/"] {
        app.keys.space.set_expanded(p, true);
    }
    for m in 1..=3 {
        let entries = (1..=LOG_ENTRIES)
            .map(|i| LogEntryView {
                index: i,
                term: 2,
                kind: "normal".into(),
                summary: format!("put /registry/pods/x{i} (256 bytes)"),
            })
            .collect();
        let log = ReadLogResponse {
            entries,
            purged_index: 0,
            last_index: LOG_ENTRIES,
            committed_index: LOG_ENTRIES - 5,
            applied_index: LOG_ENTRIES - 5,
            snapshot_index: 0,
        };
        update(&mut app, Action::Log { member: format!("n{m}"), log });
    }
    app
}

fn time_frames(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    mut between: impl FnMut(&mut App, usize),
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        between(app, i);
        let start = Instant::now();
        crate::tui::prepare(app);
        let _ = terminal.draw(|f| crate::tui::view::draw(f, app));
        times.push(start.elapsed());
    }
    times.sort();
    times
}

/// Frame times on each heavy view, on a 160x50 screen.
pub fn frame_times() -> Vec<FrameTimes> {
    let mut app = big_app();
    app.size = (160, 50);
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("a test terminal");
    let mut out = Vec::new();
    let down = |app: &mut App, _| {
        update(app, Action::Key(KeyEvent::from(KeyCode::Down)));
    };
    app.tab = crate::tui::app::Tab::Keys;
    let t = time_frames(&mut app, &mut terminal, down);
    out.push(FrameTimes {
        what: "keys tab, 100k keys, moving down",
        p50: percentile(&t, 0.5),
        p99: percentile(&t, 0.99),
    });
    let grow = |app: &mut App, i: usize| {
        let key = format!("/registry/pods/ns07/new-{i:04}");
        update(app, Action::KeyPut { key, meta: KeyMeta { mod_revision: 1, version: 1 }, revision: 1 });
    };
    let t = time_frames(&mut app, &mut terminal, grow);
    out.push(FrameTimes {
        what: "keys tab, 100k keys, a new key each frame",
        p50: percentile(&t, 0.5),
        p99: percentile(&t, 0.99),
    });
    app.tab = crate::tui::app::Tab::RaftLog;
    let scroll = |app: &mut App, i: usize| {
        let code = if i.is_multiple_of(2) { KeyCode::PageUp } else { KeyCode::Up };
        update(app, Action::Key(KeyEvent::from(code)));
    };
    let t = time_frames(&mut app, &mut terminal, scroll);
    out.push(FrameTimes {
        what: "Raft log tab, 3 x 10k entries, scrolling",
        p50: percentile(&t, 0.5),
        p99: percentile(&t, 0.99),
    });
    app.tab = crate::tui::app::Tab::Cluster;
    let t = time_frames(&mut app, &mut terminal, |_, _| {});
    out.push(FrameTimes { what: "cluster tab", p50: percentile(&t, 0.5), p99: percentile(&t, 0.99) });
    out
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The app's CPU use while nothing happens, as a share of one core: the real app in tmux,
/// attached to the running lab `lab` in `home`. None when tmux is missing.
pub fn idle_cpu(home: &Path, lab: &str, measure_for: Duration) -> Option<f64> {
    let socket = format!("raftty-bench-{}", std::process::id());
    let exe = std::env::current_exe().ok()?;
    let line = format!("exec env RAFTTY_HOME={} {} --lab {lab}", home.display(), exe.display());
    let tmux = |args: &[&str]| Command::new("tmux").arg("-L").arg(&socket).args(args).output().ok();
    let started = tmux(&["-f", "/dev/null", "new-session", "-d", "-s", "bench", "-x", "160", "-y", "50", &line])?;
    if !started.status.success() {
        return None;
    }
    let pid = tmux(&["display", "-p", "-t", "bench", "#{pane_pid}"])
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok());
    let result = pid.and_then(|pid| {
        // Let it settle: the first looks at the cluster, the first frames.
        std::thread::sleep(Duration::from_secs(3));
        let ticks_per_sec = 100.0;
        let before = cpu_ticks(pid)?;
        let start = Instant::now();
        std::thread::sleep(measure_for);
        let after = cpu_ticks(pid)?;
        Some((after - before) as f64 / ticks_per_sec / start.elapsed().as_secs_f64() * 100.0)
    });
    let _ = tmux(&["kill-server"]);
    result
}

pub fn report(home: &Path, lab: &str) -> String {
    let mut out = String::from("\nthe terminal app (targets: a frame's p99 under 5 ms, idle under 1% of a core)\n");
    for f in frame_times() {
        out.push_str(&format!(
            "  frame, {:<45} p50 {:>6.2} ms   p99 {:>6.2} ms\n",
            f.what,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0
        ));
    }
    match idle_cpu(home, lab, Duration::from_secs(10)) {
        Some(cpu) => out.push_str(&format!("  idle CPU of the app on a quiet 3-member lab: {cpu:.2}% of one core\n")),
        None => out.push_str("  (install tmux to measure the app's idle CPU)\n"),
    }
    out
}
