//! The workshop demos must work every time: each is played through on real members, every
//! step waiting for its outcome, then taken back to its last checkpoint and played on again,
//! as a presenter's backspace does.

mod common;

use std::process::Command;
use std::process::Output;

use common::*;

fn raftty(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(RAFTTY).args(args).env("RAFTTY_HOME", home).output().expect("running raftty")
}

fn verify(id: &str) {
    let home = tempfile::tempdir().expect("a home");
    let out = raftty(home.path(), &["demo", id, "--verify"]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains(&format!("{id}: ok")),
        "the demo {id} did not play through: {}",
        describe(&out)
    );
}

#[test]
fn the_demos_are_listed_with_their_steps() {
    let home = tempfile::tempdir().expect("a home");
    let out = raftty(home.path(), &["demo"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for id in ["failover", "partition", "backup-restore"] {
        assert!(text.lines().any(|l| l.starts_with(id) && l.contains("steps")), "{id} is listed:\n{text}");
    }
    let out = raftty(home.path(), &["demo", "no-such-demo", "--yes"]);
    assert!(!out.status.success(), "an unknown demo is refused");
    assert!(describe(&out).contains("there is no demo \"no-such-demo\"; the demos are:"), "{}", describe(&out));
}

#[test]
fn failover_plays_through_and_back() {
    verify("failover");
}

#[test]
fn partition_plays_through_and_back() {
    verify("partition");
}

#[test]
fn backup_restore_plays_through_and_back() {
    verify("backup-restore");
}
