//! The app without a terminal: `update` on plain actions, and rendered screens compared with
//! snapshots (ratatui's TestBackend, insta). The fixtures use fixed ids, ports and times, so
//! nothing in a screen changes from run to run.

use std::time::Instant;

use crossterm::event::KeyCode;
use crossterm::event::KeyEvent;
use crossterm::event::KeyModifiers;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::lab::Tempo;
use crate::lab::faults::LabFaults;
use crate::lab::faults::parse_partition;
use crate::lab::status::Quorum;
use crate::lab::status::Role;
use crate::proto::rafttyadmin::LogEntryView;
use crate::proto::rafttyadmin::ReadLogResponse;
use crate::tui::app::Action;
use crate::tui::app::App;
use crate::tui::app::ClusterView;
use crate::tui::app::Effect;
use crate::tui::app::EventView;
use crate::tui::app::LabOp;
use crate::tui::app::MemberView;
use crate::tui::app::Mode;
use crate::tui::app::Proc;
use crate::tui::app::Tab;
use crate::tui::app::Target;
use crate::tui::app::update;
use crate::tui::command::EtcdOp;
use crate::tui::keyspace::KeyMeta;
use crate::tui::presentation::DemoOp;
use crate::tui::presentation::DemoUpdate;
use crate::tui::presentation::Presentation;
use crate::tui::tabs::keys::KeyDetail;
use crate::tui::tabs::lessons::LessonEntry;
use crate::tui::tabs::lessons::LessonOp;
use crate::tui::tabs::lessons::LessonUpdate;
use crate::tui::tabs::lessons::Passed;
use crate::tui::tabs::lessons::StepView;
use crate::tui::theme::ThemeName;

fn member(name: &str, role: Option<Role>, process: Proc, last: u64) -> MemberView {
    let up = process == Proc::Running;
    MemberView {
        name: name.into(),
        id: name.bytes().last().map_or(0, u64::from),
        process,
        role,
        term: up.then_some(3),
        last_index: up.then_some(last),
        committed: up.then_some(last.min(41)),
        applied: up.then_some(last.min(41)),
        lag: Some(42u64.saturating_sub(last)),
        leader: if up { Some("n2".into()) } else { None },
        error: None,
        endpoint: format!("https://127.0.0.1:2{}379", name.len()),
    }
}

fn healthy() -> ClusterView {
    ClusterView {
        members: vec![
            member("n1", Some(Role::Follower), Proc::Running, 42),
            member("n2", Some(Role::Leader), Proc::Running, 42),
            member("n3", Some(Role::Follower), Proc::Running, 42),
        ],
        faults: LabFaults::default(),
        faults_in_words: vec![],
        quorum: Quorum::Healthy,
        leader: Some("n2".into()),
        term: Some(3),
        revision: Some(17),
        alarms: vec![],
        tempo: Some(Tempo::ETCD),
    }
}

fn event(secs: i64, member: &str, kind: &str, details: &str) -> EventView {
    EventView {
        time_unix_micros: 1_700_000_000_000_000 + secs * 1_000_000,
        member: member.into(),
        term: 3,
        kind: kind.into(),
        details: details.into(),
    }
}

fn app() -> App {
    let mut app = App::new(Target::Lab { name: "demo".into(), tempo: Tempo::ETCD }, ThemeName::Mono, Instant::now());
    app.wall_micros = 1_700_000_100_000_000;
    update(&mut app, Action::Cluster(healthy()));
    app
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = vec![];
    for c in text.chars() {
        effects.extend(update(app, key(KeyCode::Char(c))));
    }
    effects
}

fn command(app: &mut App, line: &str) -> Vec<Effect> {
    let mut effects = typed(app, &format!(":{line}"));
    effects.extend(update(app, key(KeyCode::Enter)));
    effects
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    app.size = (width, height);
    crate::tui::prepare(app);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal.draw(|f| crate::tui::view::draw(f, app)).expect("drawing");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn lesson_entry(id: &str, title: &str, passed: usize) -> LessonEntry {
    LessonEntry {
        id: id.into(),
        title: title.into(),
        summary: format!("What {title} is about, in one line."),
        members: 3,
        step_titles: vec!["Cause an election".into(), "The old leader comes back".into(), "A frozen leader".into()],
        passed,
        finished: passed == 3,
    }
}

fn catalog() -> LessonUpdate {
    LessonUpdate::Catalog(vec![
        lesson_entry("keys-and-revisions", "Keys and revisions", 3),
        lesson_entry("leader-election", "Leader election", 1),
        lesson_entry("quorum", "Quorum", 0),
    ])
}

fn step_two(missing: Option<&str>) -> StepView {
    StepView {
        lesson: "leader-election".into(),
        lesson_title: "Leader election".into(),
        number: 2,
        steps: 3,
        title: "The old leader comes back".into(),
        goal: "Start the member that is down; it rejoins as a follower.".into(),
        text: "n2 is down. Start it again, and look at its role and its term once it is back.".into(),
        hints: vec!["`raftty start NAME` starts a member again.".into()],
        hints_total: 2,
        missing: missing.map(str::to_string),
        solved: 1,
        shown: 0,
        finished: false,
    }
}

/// The app with leader-election under way at step 2, step 1 just passed.
fn app_in_a_lesson() -> App {
    let mut app = app();
    update(&mut app, Action::Lesson(catalog()));
    update(&mut app, Action::Lesson(LessonUpdate::Step(Some(step_two(Some("n2 must be running, but it is killed"))))));
    update(
        &mut app,
        Action::Lesson(LessonUpdate::Passed(Passed {
            number: 1,
            title: "Cause an election".into(),
            explanation: "The term went from 3 to 4, and n1 leads now, 1.4 s after this step began.".into(),
            by_learner: true,
        })),
    );
    app
}

// ---- update ----

#[test]
fn tabs_switch_with_digits_tab_and_shift_tab() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('2')));
    assert_eq!(app.tab, Tab::Keys);
    update(&mut app, key(KeyCode::Tab));
    assert_eq!(app.tab, Tab::RaftLog);
    update(&mut app, key(KeyCode::BackTab));
    update(&mut app, key(KeyCode::BackTab));
    assert_eq!(app.tab, Tab::Cluster);
    update(&mut app, key(KeyCode::BackTab));
    assert_eq!(app.tab, Tab::Messages);
    update(&mut app, key(KeyCode::BackTab));
    assert_eq!(app.tab, Tab::Backups);
    update(&mut app, key(KeyCode::Char('8')));
    assert_eq!(app.tab, Tab::Messages);
}

fn backups() -> Vec<crate::backup::catalog::Entry> {
    use crate::backup::catalog::Entry;
    use crate::backup::catalog::Kind;
    let at = |secs: u64| Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + secs));
    vec![
        Entry {
            kind: Kind::Continuous,
            path: "/home/op/.local/share/raftty/backups/demo/continuous".into(),
            first: 1,
            last: 1804,
            bytes: 2_400_000,
            modified: at(600),
            problem: None,
        },
        Entry {
            kind: Kind::Snapshot,
            path: "/home/op/.local/share/raftty/backups/demo/snapshot-20231114-221320.db".into(),
            first: 1,
            last: 1200,
            bytes: 1_100_000,
            modified: at(300),
            problem: None,
        },
        Entry {
            kind: Kind::Snapshot,
            path: "/tmp/broken.db".into(),
            first: 0,
            last: 0,
            bytes: 0,
            modified: at(100),
            problem: Some("sha256 mismatch: the file was changed after it was saved".into()),
        },
    ]
}

#[test]
fn the_backups_tab_saves_restores_after_asking_and_does_one_long_thing_at_a_time() {
    use crate::progress::Progress;
    use crate::tui::tabs::backups::BackupOp;
    let mut app = app();
    assert_eq!(update(&mut app, key(KeyCode::Char('7'))), vec![Effect::Backup(BackupOp::Refresh)]);
    update(&mut app, Action::Backups { entries: backups(), folder: Some("/b/demo".into()) });
    assert_eq!(update(&mut app, key(KeyCode::Char('s'))), vec![Effect::Backup(BackupOp::SnapshotSave { file: None })]);
    update(&mut app, key(KeyCode::Char('j')));
    assert!(update(&mut app, key(KeyCode::Char('r'))).is_empty(), "a restore asks first");
    assert!(matches!(app.mode, Mode::Confirm { .. }));
    let source = backups()[1].path.display().to_string();
    assert_eq!(
        update(&mut app, key(KeyCode::Char('y'))),
        vec![Effect::Backup(BackupOp::Restore { source: source.clone(), to_revision: None })]
    );
    update(&mut app, key(KeyCode::Char('t')));
    assert_eq!(app.mode, Mode::Command, "t prefills a restore to a revision");
    assert_eq!(app.command.text(), format!("restore {source} --to-revision "));
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, key(KeyCode::Char('j')));
    assert!(update(&mut app, key(KeyCode::Char('r'))).is_empty(), "a damaged backup is not offered for restore");
    assert_eq!(app.mode, Mode::Normal);

    update(&mut app, Action::Work { title: "restore x".into(), progress: Progress::step("writing") });
    assert!(command(&mut app, "snapshot save").is_empty(), "one long piece of work at a time");
    assert!(app.message.as_ref().is_some_and(|(m, ok, _)| !ok && m.contains("restore x")));
    let done = update(
        &mut app,
        Action::WorkDone { ok: true, title: "restore x".into(), lines: vec!["restored".into()], data_replaced: true },
    );
    assert!(app.backups.work.is_none());
    assert!(done.contains(&Effect::LoadKeys { revision: None }), "the key tree is reloaded: {done:?}");
    assert!(done.contains(&Effect::Backup(BackupOp::Refresh)));
}

#[test]
fn the_header_names_an_active_alarm_and_who_raised_it() {
    let mut app = app();
    let mut view = healthy();
    view.alarms = vec!["NOSPACE raised by n1".into()];
    update(&mut app, Action::Cluster(view));
    let screen = render(&mut app, 100, 26);
    assert!(screen.lines().take(2).any(|l| l.contains("NOSPACE raised by n1")), "{screen}");
}

#[test]
fn the_header_says_who_the_app_acts_as() {
    let mut app = app();
    app.acting_as = Some("root".into());
    let screen = render(&mut app, 100, 26);
    assert!(screen.lines().nth(1).is_some_and(|l| l.contains("as root")), "{screen}");
}

#[test]
fn an_attached_app_saves_snapshots_but_restores_nothing() {
    use crate::tui::tabs::backups::BackupOp;
    let mut app =
        App::new(Target::Attached { endpoints: vec!["https://e:2379".into()] }, ThemeName::Mono, Instant::now());
    assert_eq!(
        command(&mut app, "snapshot save /tmp/s.db"),
        vec![Effect::Backup(BackupOp::SnapshotSave { file: Some("/tmp/s.db".into()) })]
    );
    assert!(command(&mut app, "restore /tmp/s.db").is_empty());
    assert!(app.message.as_ref().is_some_and(|(m, _, _)| m.contains("needs a raftty lab")));
}

#[test]
fn screen_backups_with_a_restore_under_way() {
    use crate::progress::Progress;
    use crate::progress::Unit;
    let mut app = app();
    update(&mut app, key(KeyCode::Char('7')));
    update(
        &mut app,
        Action::Backups { entries: backups(), folder: Some("/home/op/.local/share/raftty/backups/demo".into()) },
    );
    update(&mut app, Action::BackupRunning(Some("at revision 1804 (the cluster is at 1804, 0 behind)".into())));
    update(
        &mut app,
        Action::Work {
            title: "restore snapshot-20231114-221320.db".into(),
            progress: Progress::Amount { done: 600, total: 1200, unit: Unit::Revisions },
        },
    );
    insta::assert_snapshot!(render(&mut app, 100, 24));
}

#[test]
fn fault_keys_act_on_the_selected_member_and_navigation_keys_never_do() {
    let mut app = app();
    for c in ['j', 'k', 'j'] {
        assert!(update(&mut app, key(KeyCode::Char(c))).is_empty(), "{c} must only move");
    }
    assert_eq!(update(&mut app, key(KeyCode::Down)), vec![]);
    assert_eq!(app.cluster_tab.selected, 2);
    assert_eq!(update(&mut app, key(KeyCode::Char('K'))), vec![Effect::Lab(LabOp::Kill("n3".into()))]);
    assert_eq!(update(&mut app, key(KeyCode::Char('P'))), vec![Effect::Lab(LabOp::Pause("n3".into()))]);
    assert_eq!(update(&mut app, key(KeyCode::Char('H'))), vec![Effect::Lab(LabOp::Heal)]);
}

#[test]
fn the_command_line_runs_lab_and_etcd_commands_and_keeps_a_history() {
    let mut app = app();
    assert_eq!(command(&mut app, "kill n2"), vec![Effect::Lab(LabOp::Kill("n2".into()))]);
    assert_eq!(command(&mut app, "put /a 1"), vec![Effect::Etcd(EtcdOp::Put { key: "/a".into(), value: "1".into() })]);
    assert_eq!(app.command.history(), ["kill n2", "put /a 1"]);
    update(&mut app, key(KeyCode::Char(':')));
    update(&mut app, key(KeyCode::Up));
    update(&mut app, key(KeyCode::Up));
    assert_eq!(app.command.text(), "kill n2");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    assert!(command(&mut app, "kill").is_empty());
    assert!(app.message.as_ref().is_some_and(|(m, ok, _)| m.contains("usage: kill NAME") && !ok));
}

#[test]
fn destructive_lab_actions_ask_first() {
    let mut app = app();
    assert!(command(&mut app, "member remove n3").is_empty());
    assert!(matches!(app.mode, Mode::Confirm { .. }));
    assert!(update(&mut app, key(KeyCode::Char('n'))).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    command(&mut app, "member remove n3");
    assert_eq!(update(&mut app, key(KeyCode::Char('y'))), vec![Effect::Lab(LabOp::MemberRemove("n3".into()))]);
}

#[test]
fn quitting_asks_whether_to_stop_the_lab() {
    let mut app = app();
    assert!(update(&mut app, key(KeyCode::Char('q'))).is_empty());
    assert_eq!(app.mode, Mode::Quit);
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    update(&mut app, key(KeyCode::Char('q')));
    assert_eq!(update(&mut app, key(KeyCode::Char('l'))), vec![Effect::Quit { stop_lab: false }]);
    let mut app = self::app();
    update(&mut app, key(KeyCode::Char('q')));
    assert_eq!(update(&mut app, key(KeyCode::Char('s'))), vec![Effect::Quit { stop_lab: true }]);
    let ctrl_c = Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(update(&mut self::app(), ctrl_c), vec![Effect::Quit { stop_lab: false }]);
}

#[test]
fn an_attached_app_refuses_lab_controls_and_says_why() {
    let mut app =
        App::new(Target::Attached { endpoints: vec!["https://etcd:2379".into()] }, ThemeName::Mono, Instant::now());
    assert!(command(&mut app, "kill n1").is_empty());
    let (message, ok, _) = app.message.clone().expect("a message");
    assert!(!ok && message.contains("needs a raftty lab"), "{message}");
    assert_eq!(
        command(&mut app, "get /a"),
        vec![Effect::Etcd(EtcdOp::Get { key: "/a".into(), prefix: false, revision: 0, keys_only: false })]
    );
}

#[test]
fn an_unchanged_cluster_does_not_redraw() {
    let mut app = app();
    app.dirty = false;
    update(&mut app, Action::Cluster(healthy()));
    assert!(!app.dirty, "the same picture of the cluster must not cost a frame");
    let mut changed = healthy();
    changed.revision = Some(18);
    update(&mut app, Action::Cluster(changed));
    assert!(app.dirty);
}

#[test]
fn a_fault_change_and_a_killed_member_show_in_the_timeline() {
    let mut app = app();
    let mut cut = healthy();
    cut.faults.partition(&parse_partition("n1|n2,n3").unwrap());
    cut.faults_in_words = vec!["partition n1 | n2,n3".into()];
    cut.members[0].process = Proc::Killed;
    update(&mut app, Action::Cluster(cut));
    let kinds: Vec<String> = app.events.latest().map(|e| format!("{} {}", e.kind, e.details)).collect();
    assert!(kinds.contains(&"faults_changed now=partition n1 | n2,n3".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"process member=n1 state=killed".to_string()), "{kinds:?}");
}

#[test]
fn the_key_tree_follows_watch_events_and_asks_for_the_selected_value() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('2')));
    let meta = KeyMeta { mod_revision: 5, version: 1 };
    update(&mut app, Action::Keys { keys: vec![("/a/x".into(), meta)], revision: 5, at: None, floor: 0 });
    update(&mut app, Action::KeyPut { key: "/a/y".into(), meta, revision: 6 });
    assert_eq!(app.keys.space.len(), 2);
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, key(KeyCode::Char('j')));
    update(&mut app, key(KeyCode::Enter));
    let effects = update(&mut app, key(KeyCode::Char('j')));
    assert_eq!(effects, vec![Effect::FetchKey { key: "/a/x".into(), revision: None }]);
    update(&mut app, Action::KeyDeleted { key: "/a/x".into(), revision: 7 });
    assert_eq!(app.keys.space.keys(), ["/a/y"]);
    assert_eq!(update(&mut app, key(KeyCode::Char('['))), vec![Effect::LoadKeys { revision: Some(6) }]);
    assert_eq!(update(&mut app, key(KeyCode::Char('='))), vec![Effect::LoadKeys { revision: None }]);
}

#[test]
fn deleting_a_key_from_the_tree_asks_first() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('2')));
    let meta = KeyMeta { mod_revision: 5, version: 1 };
    update(&mut app, Action::Keys { keys: vec![("k".into(), meta)], revision: 5, at: None, floor: 0 });
    assert!(update(&mut app, key(KeyCode::Char('d'))).is_empty());
    assert!(matches!(&app.mode, Mode::Confirm { question, .. } if question.contains("delete k?")));
    assert_eq!(
        update(&mut app, key(KeyCode::Char('y'))),
        vec![Effect::Etcd(EtcdOp::Del { key: "k".into(), prefix: false })]
    );
}

#[test]
fn starting_a_lesson_from_tab_6_asks_first_because_the_lab_is_made_anew() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('6')));
    update(&mut app, Action::Lesson(catalog()));
    update(&mut app, key(KeyCode::Char('j')));
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty(), "nothing happens before the learner says yes");
    assert!(
        matches!(&app.mode, Mode::Confirm { question, .. } if question.contains("leader-election") && question.contains("deleted")),
        "the question names the lesson and what happens to the lab"
    );
    assert_eq!(
        update(&mut app, key(KeyCode::Char('y'))),
        vec![Effect::Lesson(LessonOp::Start("leader-election".into()))]
    );
}

#[test]
fn lesson_keys_work_on_every_tab_while_a_lesson_runs_and_not_before() {
    let mut app = app();
    assert!(update(&mut app, key(KeyCode::F(2))).is_empty(), "no lesson, no hint");
    let mut app = app_in_a_lesson();
    update(&mut app, key(KeyCode::Char('2')));
    assert_eq!(update(&mut app, key(KeyCode::F(2))), vec![Effect::Lesson(LessonOp::Hint)]);
    assert_eq!(update(&mut app, key(KeyCode::F(4))), vec![Effect::Lesson(LessonOp::ResetStep)]);
    assert!(update(&mut app, key(KeyCode::F(3))).is_empty(), "the solution asks first");
    assert!(matches!(&app.mode, Mode::Confirm { question, .. } if question.contains("shown, not solved")));
    assert_eq!(update(&mut app, key(KeyCode::Char('y'))), vec![Effect::Lesson(LessonOp::Solution)]);
    assert!(app.lessons.pane_shown());
    update(&mut app, key(KeyCode::F(8)));
    assert!(!app.lessons.pane_shown(), "F8 hides the pane");
    assert_eq!(command(&mut app, "hint"), vec![Effect::Lesson(LessonOp::Hint)]);
    assert!(command(&mut app, "reset lesson").is_empty(), "a fresh lab asks first");
    assert_eq!(update(&mut app, key(KeyCode::Char('y'))), vec![Effect::Lesson(LessonOp::ResetLesson)]);
    assert_eq!(command(&mut app, "lesson stop"), vec![Effect::Lesson(LessonOp::Stop)]);
}

#[test]
fn a_passed_step_is_announced_and_progress_shows_in_the_list() {
    let app = app_in_a_lesson();
    let (said, ok, _) = app.message.clone().expect("a message");
    assert!(ok && said.contains("step 1 passed"), "{said}");
    let entry = app.lessons.catalog.iter().find(|l| l.id == "leader-election").expect("listed");
    assert_eq!(entry.passed, 1, "the list counts the step the coach reported");
}

#[test]
fn the_same_judgement_every_second_does_not_redraw() {
    let mut app = app_in_a_lesson();
    app.dirty = false;
    update(&mut app, Action::Lesson(LessonUpdate::Step(Some(step_two(Some("n2 must be running, but it is killed"))))));
    assert!(!app.dirty, "nothing changed on screen");
    update(&mut app, Action::Lesson(LessonUpdate::Step(Some(step_two(Some(""))))));
    assert!(app.dirty);
}

#[test]
fn lessons_need_a_lab() {
    let mut app =
        App::new(Target::Attached { endpoints: vec!["https://e:2379".into()] }, ThemeName::Mono, Instant::now());
    assert!(command(&mut app, "lesson quorum").is_empty());
    let (said, ok, _) = app.message.clone().expect("a message");
    assert!(!ok && said.contains("need a raftty lab"), "{said}");
}

fn presenting() -> App {
    let mut app = app();
    let steps = [("A healthy cluster", true), ("A write", false), ("Kill the leader", false), ("Nothing lost", false)];
    let steps = steps.iter().map(|(t, c)| (t.to_string(), *c)).collect();
    app.demo = Some(Presentation::new("failover", "Failover", "The leader dies; the others elect a new one.", steps));
    app
}

#[test]
fn a_demo_offers_the_next_step_only_once_the_last_one_showed_its_outcome() {
    let mut app = presenting();
    assert_eq!(update(&mut app, key(KeyCode::Char(' '))), vec![Effect::Demo(DemoOp::Play(0))]);
    update(&mut app, Action::Demo(DemoUpdate::Doing { step: 0, what: "waiting for the cluster: a leader".into() }));
    assert!(update(&mut app, key(KeyCode::Char(' '))).is_empty(), "no step while one is under way");
    assert!(update(&mut app, key(KeyCode::Char('K'))).is_empty(), "presentation mode kills nothing by accident");
    update(&mut app, Action::Demo(DemoUpdate::Done { step: 0, said: "healthy".into(), output: vec![] }));
    assert_eq!(update(&mut app, key(KeyCode::Char(' '))), vec![Effect::Demo(DemoOp::Play(1))]);
    update(&mut app, Action::Demo(DemoUpdate::Done { step: 1, said: "written".into(), output: vec![] }));
    update(&mut app, key(KeyCode::Char(' ')));
    update(&mut app, Action::Demo(DemoUpdate::Done { step: 2, said: "killed".into(), output: vec![] }));
    assert_eq!(
        update(&mut app, key(KeyCode::Backspace)),
        vec![Effect::Demo(DemoOp::Back(0))],
        "backspace returns to the last checkpoint"
    );
    update(&mut app, key(KeyCode::Char('v')));
    assert_eq!(app.tab, Tab::Cluster);
    update(&mut app, key(KeyCode::Char('2')));
    assert_eq!(app.tab, Tab::Keys, "with the tabs shown, their keys work again");
}

#[test]
fn a_demo_step_that_fails_says_why_and_can_be_tried_again() {
    let mut app = presenting();
    update(&mut app, key(KeyCode::Char(' ')));
    update(&mut app, Action::Demo(DemoUpdate::Failed { step: 0, why: "no leader within 30s".into() }));
    let failed = app.demo.as_ref().and_then(|d| d.failed.clone()).expect("the failure is kept");
    assert!(failed.contains("step 1") && failed.contains("no leader"), "{failed}");
    assert_eq!(update(&mut app, key(KeyCode::Char(' '))), vec![Effect::Demo(DemoOp::Play(0))]);
}

#[test]
fn the_help_scrolls_on_a_small_terminal_down_to_its_last_line() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('?')));
    let first = render(&mut app, 80, 24);
    let last = crate::tui::view::HELP.last().expect("help lines").0;
    assert!(!first.contains(last) && first.contains("j/k scroll"), "the help does not fit and says so:\n{first}");
    for _ in 0..40 {
        update(&mut app, key(KeyCode::Char('j')));
    }
    let scrolled = render(&mut app, 80, 24);
    assert!(scrolled.contains(last), "scrolled to the end:\n{scrolled}");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

// ---- screens ----

#[test]
fn screen_lesson_pane_beside_the_cluster_tab() {
    let mut app = app_in_a_lesson();
    app.message = None;
    insta::assert_snapshot!(render(&mut app, 120, 30));
}

#[test]
fn screen_lesson_pane_under_the_tab_on_a_narrow_terminal() {
    let mut app = app_in_a_lesson();
    app.message = None;
    insta::assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn screen_lessons_tab_with_progress() {
    let mut app = app_in_a_lesson();
    app.message = None;
    update(&mut app, key(KeyCode::Char('6')));
    update(&mut app, key(KeyCode::Char('j')));
    insta::assert_snapshot!(render(&mut app, 100, 24));
}

#[test]
fn screen_presentation_mode_after_the_leader_was_killed() {
    let mut app = presenting();
    let mut view = healthy();
    view.members[1] = member("n2", None, Proc::Killed, 42);
    view.members[0].role = Some(Role::Leader);
    view.leader = Some("n1".into());
    view.term = Some(4);
    view.quorum = Quorum::Degraded { down: 1, voters: 3 };
    update(&mut app, Action::Cluster(view));
    for (step, said) in [
        (0, "three members"),
        (1, "a write"),
        (2, "n2 is gone: SIGKILL. n1 won. Term 3 became 4, 1.3 s after the kill."),
    ] {
        update(
            &mut app,
            Action::Demo(DemoUpdate::Done {
                step,
                said: said.into(),
                output: vec!["$ raftty kill n2".into(), "killed n2 (SIGKILL)".into()],
            }),
        );
    }
    insta::assert_snapshot!(render(&mut app, 100, 30));
}

#[test]
fn screen_healthy_cluster() {
    let mut app = app();
    app.events.push(event(1, "n2", "leader_elected", "of=3 votes_needed=2"));
    app.events.push(event(2, "n2", "commit_advanced", "from=40 to=41"));
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_events_filtered_to_refusals() {
    let mut app = app();
    app.events.push(event(1, "n2", "leader_elected", "of=3 votes_needed=2"));
    let refused = |secs: i64, member: &str, kind: &str, fields: &[(&str, &str)]| {
        EventView::from_raft(&crate::proto::rafttyadmin::RaftEvent {
            time_unix_micros: 1_700_000_000_000_000 + secs * 1_000_000,
            member_id: 1,
            member: member.into(),
            term: 3,
            kind: kind.into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
    };
    let expired = [("reason", "certificate expired"), ("port", "client"), ("from", "127.0.0.1:40112"), ("cn", "old")];
    app.events.push(refused(2, "n1", "client_refused", &expired));
    app.events.push(event(3, "n2", "commit_advanced", "from=40 to=41"));
    app.events.push(event(3, "n2", "vote_refused", "peer=n1 why=\"it is already in term 3\""));
    let denied = [("reason", "etcdserver: permission denied"), ("needed", "write /secret"), ("user", "bob")];
    app.events.push(refused(4, "n3", "request_refused", &denied));
    update(&mut app, key(KeyCode::Char('4')));
    for _ in 0..6 {
        update(&mut app, key(KeyCode::Char('f')));
    }
    assert_eq!(app.events.kind.name(), "refusals");
    let screen = render(&mut app, 120, 24);
    for other in ["leader_elected", "commit_advanced", "vote_refused"] {
        assert!(!screen.contains(other), "only refusals of clients and requests: {screen}");
    }
    assert!(screen.contains("user=bob needed=\"write /secret\" reason="), "who first, why last: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn screen_leader_killed() {
    let mut app = app();
    let mut view = healthy();
    view.members[1] = member("n2", None, Proc::Killed, 42);
    view.members[0].role = Some(Role::Candidate);
    view.members[0].term = Some(4);
    view.leader = None;
    view.quorum = Quorum::Lost { down: 1, voters: 3 };
    update(&mut app, Action::Cluster(view));
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_partition_applied() {
    let mut app = app();
    let mut view = healthy();
    view.faults.partition(&parse_partition("n1|n2,n3").unwrap());
    view.faults_in_words = view.faults.in_words(&["n1".into(), "n2".into(), "n3".into()]);
    view.quorum = Quorum::Degraded { down: 1, voters: 3 };
    view.members[0].lag = Some(5);
    update(&mut app, Action::Cluster(view));
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_messages_held_in_step_mode() {
    let mut app = app();
    let mut view = healthy();
    view.faults.step = Some(crate::lab::faults::StepSettings { auto_heartbeats: true });
    view.faults_in_words = view.faults.in_words(&["n1".into(), "n2".into(), "n3".into()]);
    update(&mut app, Action::Cluster(view));
    update(&mut app, key(KeyCode::Char('8')));
    let held = |id, from, to, kind, index: u64, summary: &str, age_ms| {
        let entries = if kind == "append" { 1 } else { 0 };
        let mut m = crate::tui::tabs::messages::tests::held(id, from, to, kind, entries);
        (m.first_index, m.last_index, m.summary, m.age_ms, m.heartbeat) = (index, index, summary.into(), age_ms, false);
        m
    };
    update(
        &mut app,
        Action::Held(vec![
            held("n1-7", "n1", "n3", "append", 5, "entry 5: put /stepped (3 bytes); commit 4", 4200),
            held("n1-9", "n2", "n1", "append-response", 5, "success: it holds entries up to 5", 1300),
        ]),
    );
    update(&mut app, key(KeyCode::Char('j')));
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_replay_after_the_leader_was_killed() {
    let mut app = app();
    let start = 1_796_211_719_500_000;
    let replay = crate::tui::replay::Replay::new((0..40).map(|i| start + i * 250_000).collect(), start);
    app.replay = Some(replay);
    for _ in 0..30 {
        let effects = update(&mut app, key(KeyCode::Right));
        assert!(matches!(effects.as_slice(), [Effect::ReplayTo(_)]), "→ moves the replay: {effects:?}");
    }
    let mut view = healthy();
    view.members[1].process = Proc::Killed;
    view.members[1].role = None;
    view.members[0].role = Some(Role::Leader);
    view.leader = Some("n1".into());
    view.term = Some(4);
    view.revision = None;
    view.quorum = Quorum::Degraded { down: 1, voters: 3 };
    update(&mut app, Action::Cluster(view));
    let refused = crate::tui::app::run_command_line(&mut app, "kill n3");
    assert!(refused.is_empty(), "a replay changes nothing");
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_key_tree_with_a_json_value() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('2')));
    let meta = KeyMeta { mod_revision: 9, version: 2 };
    let keys =
        ["/registry/pods/default/nginx", "/registry/pods/default/redis", "/registry/services/kubernetes", "/hello"]
            .iter()
            .map(|k| (k.to_string(), meta))
            .collect();
    update(&mut app, Action::Keys { keys, revision: 17, at: None, floor: 0 });
    app.keys.space.reveal("/registry/pods/default/nginx");
    for _ in 0..4 {
        update(&mut app, key(KeyCode::Char('j')));
    }
    let value = br#"{"kind":"Pod","metadata":{"name":"nginx","namespace":"default"},"spec":{"replicas":3}}"#;
    let detail = KeyDetail {
        key: "/registry/pods/default/nginx".into(),
        value: Some(value.to_vec()),
        create_revision: 4,
        mod_revision: 9,
        version: 2,
        lease: 0x694d,
        lease_ttl: Some(30),
        lease_granted_ttl: 60,
        ..Default::default()
    };
    let now = app.now;
    update(&mut app, Action::KeyDetail(detail));
    update(&mut app, Action::Tick(now + std::time::Duration::from_secs(12)));
    insta::assert_snapshot!(render(&mut app, 100, 26));
}

#[test]
fn screen_raft_log_with_an_uncommitted_tail_and_a_gap() {
    let mut app = app();
    let entries = |range: std::ops::RangeInclusive<u64>, term_from: u64| -> Vec<LogEntryView> {
        range
            .map(|i| LogEntryView {
                index: i,
                term: if i >= term_from { 3 } else { 2 },
                kind: "normal".into(),
                summary: format!("put /k{i} (1 bytes)"),
            })
            .collect()
    };
    let log = |entries: Vec<LogEntryView>, committed: u64| ReadLogResponse {
        last_index: entries.last().map_or(0, |e| e.index),
        entries,
        committed_index: committed,
        applied_index: committed,
        purged_index: 0,
        snapshot_index: 0,
    };
    update(&mut app, Action::Log { member: "n1".into(), log: log(entries(1..=8, 6), 6) });
    update(&mut app, Action::Log { member: "n2".into(), log: log(entries(1..=10, 6), 6) });
    update(&mut app, Action::Log { member: "n3".into(), log: log(entries(1..=6, 6), 6) });
    update(&mut app, key(KeyCode::Char('3')));
    insta::assert_snapshot!(render(&mut app, 100, 24));
}

/// A lesson's fresh lab has members of the same names: what the app showed of the old ones
/// must not pass for theirs (an old leader in the header, old entries "overwritten").
#[test]
fn a_lab_made_anew_forgets_the_old_members_roles_and_logs() {
    let mut app = app();
    // A log of `last` committed entries.
    let log_to = |last: u64| ReadLogResponse {
        entries: (1..=last)
            .map(|index| LogEntryView { index, term: 3, kind: "normal".into(), summary: format!("put /k{index}") })
            .collect(),
        last_index: last,
        committed_index: last,
        applied_index: last,
        ..Default::default()
    };
    update(&mut app, Action::Log { member: "n1".into(), log: log_to(8) });
    assert!(render(&mut app, 120, 30).lines().next().is_some_and(|l| l.contains("leader n2")));

    update(&mut app, Action::LabMadeAnew("made a fresh lab for leader-election".into()));
    let header = render(&mut app, 120, 30).lines().next().unwrap_or_default().to_string();
    assert!(!header.contains("leader n2"), "the old leader is not shown as the new lab's: {header}");
    assert!(header.contains("made a fresh lab for leader-election"), "the header says what happens: {header}");
    assert!(app.events.latest().any(|e| e.details.contains("made a fresh lab")), "the timeline says so too");

    update(&mut app, Action::Log { member: "n1".into(), log: log_to(2) });
    assert!(app.log.overwritten.is_empty(), "the old lab's entries were not overwritten by the new lab's log");
    let mut fresh = healthy();
    fresh.leader = Some("n1".into());
    update(&mut app, Action::Cluster(fresh));
    assert!(render(&mut app, 120, 30).lines().next().is_some_and(|l| l.contains("leader n1")), "the new lab's leader");
}

#[test]
fn screen_tiny_terminal() {
    let mut app = app();
    insta::assert_snapshot!(render(&mut app, 60, 15));
}

#[test]
fn screen_help() {
    let mut app = app();
    update(&mut app, key(KeyCode::Char('?')));
    insta::assert_snapshot!(render(&mut app, 100, 32));
}

#[test]
fn every_tab_draws_at_the_smallest_size_without_panicking() {
    let mut app = app();
    for tab in Tab::ALL {
        app.tab = tab;
        let screen = render(&mut app, 80, 24);
        assert!(screen.contains(" raftty "), "{tab:?} lost the header:\n{screen}");
    }
    let mut attached =
        App::new(Target::Attached { endpoints: vec!["https://e:2379".into()] }, ThemeName::Dark, Instant::now());
    attached.tab = Tab::RaftLog;
    assert!(render(&mut attached, 80, 24).contains("needs a raftty lab"));
}
