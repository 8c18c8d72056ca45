//! The lessons, as a learner and as `make test` take them: every lesson that ships is played
//! in a fresh lab (each step's check fails before its solution and passes after it), and a
//! learner goes through one headless, with wrong moves that must not pass.

mod common;

use std::process::Command;
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A home of its own for the lessons' labs, whose labs are all stopped when the test ends.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap() }
    }

    fn raftty(&self, args: &[&str]) -> Output {
        Command::new(RAFTTY).args(args).env("RAFTTY_HOME", self.dir.path()).output().expect("running raftty")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.raftty(args);
        assert!(out.status.success(), "raftty {args:?}: {}", describe(&out));
        stdout(&out)
    }

    /// Runs etcdctl against `lab` as a learner does, after `eval "$(raftty env)"`.
    fn etcdctl(&self, lab: &str, args: &[&str]) -> Output {
        let env = self.ok(&["--lab", lab, "env"]);
        let vars: Vec<(String, String)> = env
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        etcdctl_with_env(&vars, args)
    }

    /// Starts lesson `id` on `lab` and plays the solutions of the steps before `step`, as a
    /// learner who asked for each one would.
    fn at_step(&self, lab: &str, id: &str, step: usize) {
        self.ok(&["--lab", lab, "lesson", "start", id, "--yes"]);
        for done in 1..step {
            self.ok(&["lesson", "solution", "--play"]);
            wait_for(Duration::from_secs(30), &format!("step {done} of {id} to pass after its solution"), || {
                self.raftty(&["lesson", "check"]).status.success()
            });
        }
    }

    /// `lesson check` must fail, saying `missing`.
    fn check_refuses(&self, why: &str, missing: &str) {
        let out = self.raftty(&["lesson", "check"]);
        assert!(!out.status.success(), "{why}: the check passed: {}", describe(&out));
        assert!(stdout(&out).contains(missing), "{why}: the check must say {missing:?}: {}", describe(&out));
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Ok(labs) = std::fs::read_dir(self.dir.path().join("labs")) {
            for lab in labs.flatten() {
                let name = lab.file_name().to_string_lossy().into_owned();
                let _ = self.raftty(&["--lab", &name, "down"]);
            }
        }
    }
}

#[test]
fn every_lesson_that_ships_fails_before_its_solution_and_passes_after_it() {
    let home = Home::new();
    let listed: Vec<Value> = serde_json::from_str(&home.ok(&["lesson", "list", "--json"])).expect("lesson list --json");
    let ids: Vec<String> = listed.iter().map(|l| l["id"].as_str().expect("an id").to_string()).collect();
    for l in &listed {
        assert!(l["steps"].as_u64().unwrap_or(0) >= 2, "every lesson has at least 2 steps: {l}");
        assert!(l["title"].is_string(), "{l}");
    }
    // Two at a time: each lesson runs its own lab (in a home of its own), and this machine
    // has two cores.
    let failures: Vec<String> = ids
        .chunks(2)
        .flat_map(|pair| {
            let runs: Vec<_> = pair
                .iter()
                .map(|id| {
                    let id = id.clone();
                    std::thread::spawn(move || {
                        let home = Home::new();
                        let out = home.raftty(&["lesson", "verify", &id]);
                        (id, out)
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().expect("a verify thread")).collect::<Vec<_>>()
        })
        .filter(|(_, out)| !out.status.success())
        .map(|(id, out)| format!("lesson {id}:\n{}", describe(&out)))
        .collect();
    assert!(failures.is_empty(), "lessons that do not verify:\n{}", failures.join("\n"));
}

#[test]
fn a_learner_takes_leader_election_headless_and_a_wrong_move_does_not_pass() {
    let home = Home::new();
    let started = home.ok(&["--lab", "class", "lesson", "start", "leader-election", "--yes"]);
    assert!(started.contains("step 1 of 5: Cause an election"), "{started}");
    let status: Value = serde_json::from_str(&home.ok(&["--lab", "class", "status", "--json"])).unwrap();
    let leader = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "leader")
        .and_then(|n| n["name"].as_str())
        .expect("a leader")
        .to_string();
    let follower = ["n1", "n2", "n3"].into_iter().find(|n| *n != leader).unwrap();

    let out = home.raftty(&["lesson", "check"]);
    assert!(!out.status.success(), "nothing done yet: {}", describe(&out));
    assert!(stdout(&out).contains(&format!("not yet: no new leader yet: {leader} still leads")), "{}", describe(&out));
    // Stopping a follower causes no election: the check must not pass.
    home.ok(&["--lab", "class", "stop", follower]);
    let out = home.raftty(&["lesson", "check"]);
    assert!(!out.status.success(), "a stopped follower is not a new leader: {}", describe(&out));
    home.ok(&["--lab", "class", "start", follower]);

    let hint = home.ok(&["lesson", "hint"]);
    assert!(hint.starts_with("hint 1 of 2:"), "{hint}");
    assert!(home.ok(&["lesson", "status"]).contains("hint 1 of 2:"), "revealed hints stay revealed");

    home.ok(&["--lab", "class", "kill", &leader]);
    let mut passed = String::new();
    wait_for(Duration::from_secs(20), "`lesson check` to pass once a new leader is elected", || {
        let out = home.raftty(&["lesson", "check"]);
        passed = stdout(&out);
        out.status.success()
    });
    assert!(passed.contains("step 1 passed."), "{passed}");
    assert!(passed.contains("The term went from ") && passed.contains("leads now"), "live numbers: {passed}");
    assert!(passed.contains(&format!("{leader} is down")), "step 2 names the member that is down: {passed}");

    // Progress is a plain-text file, and survives: another process reads it.
    let progress = std::fs::read_to_string(home.dir.path().join("lessons/progress.toml")).unwrap();
    assert!(progress.contains("current = \"leader-election\"") && progress.contains("solved = [1]"), "{progress}");
    let listed: Vec<Value> = serde_json::from_str(&home.ok(&["lesson", "list", "--json"])).unwrap();
    let this = listed.iter().find(|l| l["id"] == "leader-election").unwrap();
    assert_eq!((this["step"].as_u64(), this["solved"].as_u64()), (Some(1), Some(1)), "{this}");

    // A shown solution does the step, but it is not counted as solved by the learner.
    assert!(home.ok(&["lesson", "solution"]).contains(&format!("raftty start {leader}")));
    home.ok(&["lesson", "solution", "--play"]);
    wait_for(Duration::from_secs(20), "`lesson check` to pass once the old leader follows", || {
        home.raftty(&["lesson", "check"]).status.success()
    });
    let progress = std::fs::read_to_string(home.dir.path().join("lessons/progress.toml")).unwrap();
    assert!(progress.contains("solved = [1]") && progress.contains("shown = [2]"), "{progress}");
    assert!(home.ok(&["lesson", "reset"]).contains("step 3 begins again"));
}

#[test]
fn an_instructor_scaffolds_a_lesson_that_is_valid_and_refused_when_broken() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = path_str(dir.path());
    let made = home.ok(&["lesson", "new", "my-drill", "--dir", &dir_arg]);
    assert!(made.contains("my-drill.toml"), "{made}");
    let listed = home.ok(&["lesson", "--lessons", &dir_arg, "list"]);
    assert!(listed.lines().any(|l| l.starts_with("my-drill ")), "the new lesson is listed: {listed}");
    let verified = home.ok(&["lesson", "verify", "--dir", &dir_arg, "my-drill"]);
    assert!(verified.contains("my-drill: ok (2 steps)"), "the scaffold plays as it is: {verified}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "id = \"broken\"\nformat = 1\ntitle = \"x\"\nsummary = \"x\"\n[[step]]\ntitle = \"x\"\n")
        .unwrap();
    let out = home.raftty(&["lesson", "--lessons", &dir_arg, "list"]);
    assert!(!out.status.success(), "a broken lesson is refused: {}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("broken.toml is not a valid lesson"), "the error names the file: {said}");
}

#[test]
fn wrong_moves_do_not_pass_the_steps_they_look_like() {
    let home = Home::new();

    // A 3|1 split leaves a majority: it is not the stalemate of an even split.
    home.at_step("split", "even-split", 1);
    home.ok(&["--lab", "split", "partition", "n1,n2,n3|n4"]);
    home.check_refuses("a 3|1 split", "still leads");
    home.ok(&["--lab", "split", "down", "--purge"]);

    // Two blind puts reach the value, but not an update guarded by the revision it read.
    home.at_step("txn", "mvcc-txn", 2);
    for _ in 0..2 {
        let out = home.etcdctl("txn", &["put", "/registry/deployments/default/web", "replicas=3"]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    home.check_refuses("two blind puts", "/registry/deployments/default/web is at version 3, not 2");
    home.ok(&["--lab", "txn", "down", "--purge"]);

    // Deleting a leased key by hand leaves its lease alive: nothing expired.
    home.at_step("leases", "leases", 3);
    let out = home.etcdctl("leases", &["del", "/locks/report"]);
    assert!(out.status.success(), "{}", describe(&out));
    home.check_refuses("a key deleted by hand", "lease(s) alive when the step began are all still alive");
    home.ok(&["--lab", "leases", "down", "--purge"]);
}
