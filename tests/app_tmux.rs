//! The real app in a real terminal: tmux runs `raftty`, `send-keys` types, `capture-pane`
//! reads the screen. Each test has its own tmux server (its own socket) and its own
//! RAFTTY_HOME, so they run in parallel with everything else.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use common::RAFTTY;

const WAIT: Duration = Duration::from_secs(60);

/// A tmux server with one window running a command; killed (with the lab) at the end.
struct Tmux {
    socket: String,
    home: tempfile::TempDir,
    lab: String,
}

impl Tmux {
    fn start(lab: &str, env: &[(&str, &str)], args: &[&str]) -> Tmux {
        Tmux::start_in(tempfile::tempdir().expect("a temporary home"), lab, env, args)
    }

    /// The app in `home`, where the test may have made the lab already.
    fn start_in(home: tempfile::TempDir, lab: &str, env: &[(&str, &str)], args: &[&str]) -> Tmux {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()),
            "these tests need tmux (make test installs it; or apt-get install tmux)"
        );
        let socket = format!("raftty-test-{}-{lab}", std::process::id());
        let mut line = format!("env RAFTTY_HOME={} RAFTTY_LAB={lab}", home.path().display());
        for (k, v) in env {
            line.push_str(&format!(" {k}={v}"));
        }
        line.push_str(&format!(" {RAFTTY}"));
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        // Keep the window after the app leaves, to read what it printed.
        line.push_str("; echo APP-EXITED-$?; sleep 600");
        let t = Tmux { socket, home, lab: lab.to_string() };
        let ok = t
            .tmux(&["-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", "120", "-y", "40", &line])
            .status
            .success();
        assert!(ok, "tmux did not start the app");
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "app"]).stdout).into_owned()
    }

    fn screen_with_escapes(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-e", "-t", "app"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self.tmux(&["send-keys", "-t", "app", k]).status.success(), "send-keys {k}");
        }
    }

    /// Types a `:` command and runs it.
    fn command(&self, line: &str) {
        self.keys(&[":"]);
        assert!(self.tmux(&["send-keys", "-t", "app", "-l", line]).status.success());
        self.keys(&["Enter"]);
    }

    /// Waits until the screen satisfies `condition`; fails showing the screen otherwise.
    fn wait_for(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if condition(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                // What the lab says of itself, beside what the app showed of it.
                let status = self.raftty(&["status"]);
                panic!(
                    "waited {WAIT:?} for {what}; the screen shows:\n{screen}\nand raftty status says:\n{}{}",
                    String::from_utf8_lossy(&status.stdout),
                    String::from_utf8_lossy(&status.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100)); // poll
        }
    }

    fn raftty(&self, args: &[&str]) -> std::process::Output {
        Command::new(RAFTTY)
            .args(args)
            .args(["--lab", &self.lab])
            .env("RAFTTY_HOME", self.home.path())
            .output()
            .expect("running raftty")
    }

    fn home(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        let _ = self.raftty(&["down"]);
    }
}

/// The name after "leader " in the header, if there is a leader.
fn header_leader(screen: &str) -> Option<String> {
    let first = screen.lines().next()?;
    let rest = &first[first.find(" leader ")? + " leader ".len()..];
    let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    (name != "none" && !name.is_empty()).then_some(name)
}

fn member_row<'a>(screen: &'a str, member: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(&format!(" {member} ")) && (l.contains("running") || l.contains("killed")))
}

#[test]
fn kill_the_leader_partition_put_a_key_and_leave_the_lab_running() {
    let t = Tmux::start("e2e", &[], &[]);
    let screen = t.wait_for("a healthy lab with a leader", |s| s.contains("healthy") && header_leader(s).is_some());
    let leader = header_leader(&screen).expect("a leader");

    t.command(&format!("kill {leader}"));
    let screen = t.wait_for("a new leader and the old one shown as killed", |s| {
        header_leader(s).is_some_and(|l| l != leader) && member_row(s, &leader).is_some_and(|r| r.contains("killed"))
    });
    assert!(screen.contains("degraded: 1 of 3 down"), "one of three is down:\n{screen}");

    t.command(&format!("start {leader}"));
    t.wait_for("every member running again", |s| s.contains("healthy"));
    t.command("partition n1|n2,n3");
    let screen = t.wait_for("the partition in the header and the network picture", |s| {
        s.contains("faults: partition n1 | n2,n3") && s.contains("cut both ways")
    });
    assert!(member_row(&screen, "n1").is_some_and(|r| r.contains("isolated")), "n1 is isolated:\n{screen}");
    t.command("heal");
    t.wait_for("no fault named once healed", |s| s.contains("no network faults") && !s.contains("faults: partition"));

    t.command("put /e2e/hello world");
    t.wait_for("the put acknowledged", |s| s.contains("OK (revision"));
    let backup = t.home().join("from-the-app.db");
    t.command(&format!("snapshot save {}", backup.display()));
    t.wait_for("the snapshot saved", |s| s.contains("Snapshot saved at"));
    let status = Command::new(RAFTTY).args(["snapshot", "status", "--json"]).arg(&backup).output().expect("status");
    assert!(status.status.success() && String::from_utf8_lossy(&status.stdout).contains("\"live_keys\": 1"));
    t.keys(&["2"]);
    t.wait_for("the key tree", |s| s.contains("Keys: ") && s.contains("▸ /"));
    t.keys(&["l", "j", "l", "j"]);
    let screen = t.wait_for("the key and its value", |s| s.contains("hello") && s.contains("world"));
    assert!(screen.contains("e2e/"), "the prefix shows in the tree:\n{screen}");

    t.keys(&["q"]);
    t.wait_for("the quit question", |s| s.contains("leave it running"));
    t.keys(&["l"]);
    t.wait_for("the app to leave", |s| s.contains("APP-EXITED-0") && s.contains("is still running"));
    let status = t.raftty(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let running = status["nodes"].as_array().expect("nodes").iter().filter(|n| n["state"] == "running").count();
    assert_eq!(running, 3, "every member keeps running after the app leaves: {status}");
    assert!(t.home().join("labs/e2e/lab.json").exists());
}

/// The SGR sequences in `raw` that set a colour (39 and 49, "the terminal's own default",
/// are not colours).
fn colour_escapes(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    for part in raw.split("\x1b[").skip(1) {
        let Some(end) = part.find('m') else { continue };
        let params: Vec<u32> = part[..end].split(';').filter_map(|p| p.parse().ok()).collect();
        let colour = params.iter().enumerate().any(|(i, p)| {
            matches!(p, 30..=37 | 40..=47 | 90..=97 | 100..=107)
                || (matches!(p, 38 | 48) && params.get(i + 1).is_some_and(|n| *n == 5 || *n == 2))
        });
        if colour {
            found.push(part[..end].to_string());
        }
    }
    found
}

#[test]
fn no_color_means_no_colour_escapes_and_roles_still_read() {
    let t = Tmux::start("mono", &[("NO_COLOR", "1")], &["--nodes", "1"]);
    t.wait_for("a one-member lab led by n1", |s| s.contains("healthy") && header_leader(s).as_deref() == Some("n1"));
    assert_eq!(colour_escapes("\x1b[1;32mok\x1b[39m \x1b[38;5;3mx"), ["1;32", "38;5;3"], "the check sees colours");
    let raw = t.screen_with_escapes();
    let colours = colour_escapes(&raw);
    assert!(colours.is_empty(), "colour escapes {colours:?} under NO_COLOR:\n{raw:?}");
    assert!(t.screen().contains("★ leader"), "the leader is told by symbol and word");
    t.keys(&["q"]);
    t.wait_for("the quit question", |s| s.contains("stop the lab"));
    t.keys(&["s"]);
    t.wait_for("the lab stopped", |s| s.contains("APP-EXITED-0") && s.contains("stopped n1"));
}

#[test]
fn attach_opens_the_app_on_any_etcd_cluster() {
    let lab = common::TestLab::up(1);
    let cert = common::root_cert(&lab);
    let endpoint = lab.client_url("n1");
    let (ca, crt, key) =
        (cert.ca.display().to_string(), cert.cert.display().to_string(), cert.key.display().to_string());
    lab.etcdctl_ok(&["put", "/attached/key", "seen"]);
    let t = Tmux::start(
        "attach",
        &[],
        &["attach", "--endpoints", &endpoint, "--cacert", &ca, "--cert", &crt, "--key", &key],
    );
    t.wait_for("the member and its leadership from Maintenance.Status", |s| {
        s.contains("attached to") && s.contains("★ leader") && s.contains("healthy")
    });
    t.keys(&["3"]);
    t.wait_for("the Raft log view saying it needs a lab", |s| s.contains("needs a raftty lab"));
    t.command("kill n1");
    t.wait_for("fault controls saying they need a lab", |s| s.contains("needs a raftty lab"));
    t.command("get /attached/key");
    t.wait_for("etcdctl's get over the etcd API", |s| {
        s.contains("get /attached/key: /attached/key") || s.contains("seen")
    });
    t.keys(&["q"]);
    t.wait_for("the quit question", |s| s.contains("Leave raftty?"));
    t.keys(&["y"]);
    t.wait_for("the app to leave", |s| s.contains("APP-EXITED-0"));
}

impl Tmux {
    /// Whether the pane is in the alternate screen (the app holds the terminal).
    fn alternate_on(&self) -> bool {
        String::from_utf8_lossy(&self.tmux(&["display", "-p", "-t", "app", "#{alternate_on}"]).stdout).trim() == "1"
    }

    /// The app's pid: the child of the pane's shell (`env` execs raftty in its place).
    fn app_pid(&self) -> i32 {
        let shell = String::from_utf8_lossy(&self.tmux(&["display", "-p", "-t", "app", "#{pane_pid}"]).stdout)
            .trim()
            .to_string();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).expect("the shell's children");
        children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("the app's pid")
    }
}

#[test]
fn a_signal_or_ctrl_c_gives_the_terminal_back() {
    let t = Tmux::start("sigterm", &[], &["--nodes", "1"]);
    t.wait_for("a healthy lab", |s| s.contains("healthy"));
    assert!(t.alternate_on(), "the app draws on the alternate screen");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(t.app_pid()), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    t.wait_for("the app to leave on SIGTERM", |s| s.contains("APP-EXITED-0") && s.contains("is still running"));
    assert!(!t.alternate_on(), "the terminal is back to its normal screen");

    let t = Tmux::start("ctrlc", &[], &["--nodes", "1"]);
    t.wait_for("a healthy lab", |s| s.contains("healthy"));
    t.keys(&["C-c"]);
    t.wait_for("the app to leave on Ctrl-C, leaving the lab running", |s| {
        s.contains("APP-EXITED-0") && s.contains("is still running")
    });
    assert!(!t.alternate_on());
}

/// The drill from the backups tab: a snapshot, a continuous backup, more writes, then a
/// restore to a revision between them, with the app still watching the restored lab.
#[test]
fn the_backups_tab_snapshots_backs_up_and_restores_the_lab_to_a_revision() {
    let t = Tmux::start("drill", &[], &[]);
    t.wait_for("a healthy lab with a leader", |s| s.contains("healthy") && header_leader(s).is_some());
    t.command("put /drill/a 1");
    t.wait_for("the first put", |s| s.contains("OK (revision 2)"));
    t.keys(&["7"]);
    t.wait_for("the backups tab", |s| s.contains("No backups yet"));
    t.keys(&["s"]);
    t.wait_for("the snapshot listed", |s| s.contains("Snapshot saved at") && s.contains("snapshot    1 to 2"));
    t.keys(&["b"]);
    t.wait_for("the continuous backup running", |s| s.contains("continuous backup: at revision 2"));
    t.command("put /drill/b 2");
    t.wait_for("the second put", |s| s.contains("OK (revision 3)"));
    t.command("put /drill/c 3");
    t.wait_for("the third put", |s| s.contains("OK (revision 4)"));
    t.wait_for("the backup caught up", |s| s.contains("continuous backup: at revision 4"));

    let dir = t.home().join("backups/drill/continuous");
    t.command(&format!("restore {} --to-revision 3", dir.display()));
    t.wait_for("the question before replacing the lab", |s| s.contains("replace lab drill by the one in"));
    t.keys(&["y"]);
    let screen = t.wait_for("the restore done", |s| s.contains("restored lab drill from") && s.contains("revision 3"));
    assert!(screen.contains("certificates are the old lab's"), "{screen}");
    t.wait_for("the restored lab healthy under the app", |s| s.contains("healthy") && s.contains("rev 3"));

    let env = t.raftty(&["env"]);
    let env: Vec<(String, String)> = String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let keys = common::etcdctl_with_env(&env, &["get", "--prefix", "/drill/", "--keys-only"]);
    assert_eq!(
        common::stdout(&keys).split_whitespace().collect::<Vec<_>>(),
        ["/drill/a", "/drill/b"],
        "the lab as of revision 3"
    );
    t.keys(&["Escape", "q"]);
    t.wait_for("the quit question", |s| s.contains("leave it running"));
    t.keys(&["l"]);
    t.wait_for("the app to leave", |s| s.contains("APP-EXITED-0"));
}

/// A learner takes a lesson in the app: starts leader-election from tab 6, kills the
/// leader with `:kill` from the Cluster tab, and sees the step pass with its explanation
/// in the pane beside the tab.
#[test]
fn a_lesson_started_from_tab_6_passes_when_the_leader_is_killed() {
    let t = Tmux::start("lesson", &[], &[]);
    t.wait_for("a healthy lab with a leader", |s| s.contains("healthy") && header_leader(s).is_some());
    t.keys(&["6"]);
    t.wait_for("the lessons listed", |s| s.contains("leader-election"));
    // Down the list until leader-election is the one chosen (its steps show at the right),
    // one move at a time: each waits for the chosen lesson shown to change.
    let chosen = |screen: &str| -> Option<String> {
        let line = screen.lines().find(|l| l.contains("A fresh lab of") || l.starts_with("┌ Lessons"))?;
        let rest = &line[line.find("┐┌ ")? + "┐┌ ".len()..];
        Some(rest.split(' ').next()?.to_string())
    };
    let mut shown = chosen(&t.wait_for("a lesson chosen", |s| chosen(s).is_some())).expect("a lesson");
    for _ in 0..30 {
        if shown == "leader-election" {
            break;
        }
        t.keys(&["j"]);
        let before = shown.clone();
        shown = chosen(&t.wait_for("the next lesson chosen", |s| chosen(s).is_some_and(|c| c != before)))
            .expect("a lesson");
    }
    assert_eq!(shown, "leader-election", "leader-election is in the list");
    t.keys(&["Enter"]);
    t.wait_for("the question before the lab is made anew", |s| s.contains("start leader-election on a fresh lab?"));
    t.keys(&["y"]);
    let screen = t.wait_for("step 1 and its first judgement", |s| {
        s.contains("Step 1 of 5: Cause an election") && s.contains("not yet:")
    });
    assert!(screen.contains("Goal: Get a new leader elected"), "the goal shows:\n{screen}");

    t.keys(&["1"]);
    let screen = t.wait_for("the pane beside the Cluster tab", |s| {
        s.contains("Members") && s.contains("Leader election · step 1 of 5") && header_leader(s).is_some()
    });
    let leader = header_leader(&screen).expect("a leader");
    t.command(&format!("kill {leader}"));
    // The explanation and the pane's new title may reach the screen in different frames.
    let screen = t.wait_for("the step passed, with its explanation, and the pane on step 2", |s| {
        s.contains("✓ step 1 passed: Cause an election")
            && s.contains("The term went from")
            && s.contains("Leader election · step 2 of 5")
    });
    assert!(
        screen.contains(&format!("{leader} is down")),
        "step 2 names the member that went down ({leader}):\n{screen}"
    );

    // The headless commands see the same progress, from the same file.
    let status = t.raftty(&["lesson", "status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("step 2 of 5"), "raftty lesson status agrees:\n{status}");
    t.keys(&["q"]);
    t.wait_for("the quit question", |s| s.contains("leave it running"));
    t.keys(&["s"]);
    t.wait_for("the app to leave", |s| s.contains("APP-EXITED-0"));
}

/// A presenter's demo: presentation mode, space through the failover, backspace back to
/// the first checkpoint on a fresh lab.
#[test]
fn a_demo_is_paced_by_space_and_goes_back_with_backspace() {
    let t = Tmux::start("demo", &[], &["demo", "failover", "--yes"]);
    t.wait_for("presentation mode on a healthy lab", |s| {
        s.contains("FAILOVER") && s.contains("SPACE: A healthy cluster") && s.contains("★ LEADER")
    });
    t.keys(&["Space"]);
    t.wait_for("the first step told", |s| s.contains("1. A healthy cluster") && s.contains("SPACE: A write"));
    t.keys(&["Space"]);
    t.wait_for("the write done", |s| s.contains("2. A write") && s.contains("SPACE: Kill the leader"));
    t.keys(&["Space"]);
    let screen = t.wait_for("the failover narrated with live numbers", |s| {
        s.contains("3. Kill the leader") && s.contains("✗ KILLED") && s.contains("after the kill")
    });
    assert!(screen.contains("BACKSPACE: back to A healthy cluster"), "{screen}");
    t.keys(&["BSpace"]);
    t.wait_for("back at the first checkpoint, every member running again", |s| {
        s.contains("1. A healthy cluster") && !s.contains("KILLED") && s.contains("SPACE: A write")
    });
    t.keys(&["q"]);
    t.wait_for("the quit question", |s| s.contains("leave it running"));
    t.keys(&["s"]);
    t.wait_for("the app to leave", |s| s.contains("APP-EXITED-0"));
}

#[test]
fn step_mode_in_the_app_holds_a_put_until_its_messages_are_delivered() {
    let t = Tmux::start("step", &[], &["--tempo", "slow"]);
    t.wait_for("a healthy lab with a leader", |s| s.contains("healthy") && header_leader(s).is_some());
    t.keys(&["8"]);
    t.wait_for("the messages tab with step mode off", |s| s.contains("step mode is off"));
    t.keys(&["s"]);
    t.wait_for("step mode on, heartbeats flowing", |s| s.contains("step mode on, heartbeats flow by themselves"));

    t.command("put /tmux/stepped yes");
    let screen = t.wait_for("the put's appends held on both links", |s| {
        s.matches("put /tmux/stepped").count() >= 2 && s.contains("1 append")
    });
    assert!(!screen.contains("OK (revision"), "the put was acknowledged while its appends waited:\n{screen}");
    t.keys(&["Enter"]);
    let screen = t.wait_for("a follower's answer waiting on its way back", |s| s.contains("append-response"));
    assert!(!screen.contains("OK (revision"), "the put was acknowledged before its answer was delivered:\n{screen}");

    t.command("step deliver --kind append-response");
    t.wait_for("the put acknowledged once the answer reached the leader", |s| s.contains("OK (revision"));
    t.keys(&["s"]);
    t.wait_for("step mode off again", |s| s.contains("step mode is off"));
    let listed = t.raftty(&["step", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]", "nothing is held once step mode is off");
}

#[test]
fn replay_steps_through_a_recorded_leader_kill_and_changes_nothing() {
    let home = tempfile::tempdir().expect("a temporary home");
    let raftty = |args: &[&str]| {
        let out = Command::new(RAFTTY).args(args).args(["--lab", "rec"]).env("RAFTTY_HOME", home.path()).output();
        let out = out.expect("running raftty");
        assert!(out.status.success(), "raftty {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    raftty(&["up"]);
    let status: serde_json::Value = serde_json::from_str(&raftty(&["status", "--json"])).expect("status JSON");
    let leader = status["nodes"].as_array().unwrap().iter().find(|n| n["role"] == "leader").map(|n| n["name"].clone());
    let leader = leader.and_then(|l| l.as_str().map(str::to_string)).expect("a leader");
    raftty(&["kill", &leader]);
    // The recording reaches the kill and the election after it before the app opens on it.
    let deadline = Instant::now() + WAIT;
    while !raftty(&["replay", "--at", "+60s"]).lines().any(|l| l.contains(" leader ") && !l.starts_with(&leader)) {
        assert!(Instant::now() < deadline, "the recording never showed a new leader after {leader} was killed");
        std::thread::sleep(Duration::from_millis(100)); // poll
    }

    let t = Tmux::start_in(home, "rec", &[], &["replay"]);
    t.wait_for("the replay at its first moment", |s| s.contains("REPLAY") && s.contains("moment 1/"));
    t.keys(&["End"]);
    let screen = t.wait_for("the end of the recording: the old leader killed, another leading", |s| {
        member_row(s, &leader).is_some_and(|r| r.contains("killed")) && header_leader(s).is_some_and(|l| l != leader)
    });
    assert!(screen.contains("degraded: 1 of 3 down"), "one of three is down at the end:\n{screen}");
    t.keys(&["Home", "Right", "Right"]);
    t.wait_for("two moments on from the start", |s| s.contains("moment 3/"));
    t.command(&format!("kill {leader}"));
    t.wait_for("the refusal to change anything", |s| s.contains("this is a replay"));
    t.keys(&["q"]);
    t.wait_for("the app to leave at once", |s| s.contains("APP-EXITED-0"));
}
