//! A member that finds damaged data, or data of another member, refuses to start, says why,
//! and leaves the files exactly as they were.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn member_dir(lab: &TestLab, member: &str) -> std::path::PathBuf {
    lab.dir().join("members").join(member)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn up_fails_saying(lab: &TestLab, needles: &[&str]) -> String {
    let out = lab.raftty(&["up"]);
    assert!(!out.status.success(), "up must fail:\n{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for needle in needles {
        assert!(err.contains(needle), "the error should say {needle:?}:\n{err}");
    }
    err
}

#[test]
fn a_member_refuses_another_members_data() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "k", "v"]);
    lab.raftty_ok(&["down"]);
    let n3 = member_dir(&lab, "n3");
    fs::remove_dir_all(&n3).unwrap();
    copy_dir(&member_dir(&lab, "n2"), &n3);
    let before = fs::read(n3.join("raft-log.redb")).unwrap();

    up_fails_saying(&lab, &["n3 failed to start", "n3 exited with status 1", "belongs to member"]);
    assert!(fs::read(n3.join("raft-log.redb")).unwrap() == before, "the refused data must be left untouched");
    // The other members are fine and serve.
    assert_eq!(lab.etcdctl_on("n1", &["get", "--print-value-only", "k"]).stdout, b"v\n");
}

#[test]
fn a_member_refuses_a_damaged_raft_log() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "k", "v"]);
    lab.raftty_ok(&["down"]);
    let log = member_dir(&lab, "n3").join("raft-log.redb");
    let mut bytes = fs::read(&log).unwrap();
    let len = bytes.len();
    bytes.truncate(len / 3);
    fs::write(&log, &bytes).unwrap();

    up_fails_saying(&lab, &["n3 failed to start", "raft-log.redb"]);
    assert!(fs::read(&log).unwrap() == bytes, "the damaged file must be left as it was");
}

#[test]
fn a_member_refuses_a_damaged_state_file() {
    let lab = TestLab::up(1);
    lab.etcdctl_ok(&["put", "k", "v"]);
    lab.raftty_ok(&["down"]);
    let state = member_dir(&lab, "n1").join("state.redb");
    fs::write(&state, b"this is not a redb database").unwrap();

    up_fails_saying(&lab, &["n1 failed to start", "state.redb"]);
    assert_eq!(fs::read(&state).unwrap(), b"this is not a redb database");
}

#[test]
fn a_member_killed_mid_write_replays_its_journal_but_refuses_a_damaged_one() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "k", "v"]);
    // kill -9 leaves the latest writes in the journal only (redb gets them at a checkpoint).
    lab.raftty_ok(&["kill", "n3"]);
    let journal = member_dir(&lab, "n3").join("raft-log.journal");
    let bytes = fs::read(&journal).unwrap();
    // The file is preallocated: its records end at its last byte that is not zero.
    let last = bytes.iter().rposition(|b| *b != 0).unwrap();
    assert!(last > 64, "a killed member's journal should hold records, they end at byte {last}");

    // A byte of the last record changed to another byte that is not zero either, so that it
    // reads as damage, not as sectors a crash left unwritten.
    let mut damaged = bytes.clone();
    damaged[last] = if damaged[last] == 0xff { 0xfe } else { 0xff };
    fs::write(&journal, &damaged).unwrap();
    up_fails_saying(&lab, &["n3 failed to start", "raft-log.journal", "does not match its checksum"]);
    assert!(fs::read(&journal).unwrap() == damaged, "the damaged journal must be left as it was");

    // With the journal as the crash left it, the member replays it and serves the write.
    fs::write(&journal, &bytes).unwrap();
    lab.raftty_ok(&["up"]);
    assert_eq!(lab.etcdctl_on("n3", &["get", "--print-value-only", "k"]).stdout, b"v\n");
}
