//! Damaged data: a member whose Raft log, state file or snapshot has been damaged (bytes
//! flipped, file cut short) refuses to start with a message naming the file, leaves the
//! file as it is, and the lab says so; the rest of the cluster carries on unharmed.

mod common;

use std::fs;
use std::path::Path;
use std::path::PathBuf;

use common::*;

fn data_dir(lab: &TestLab, member: &str) -> PathBuf {
    lab.dir().join("members").join(member)
}

/// Flips one byte in every 4 KiB page after the first: whatever pages the file's live data
/// sits in, some of it is damaged.
fn flip_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = fs::read(path).unwrap();
    let mut offset = 4096 + 777;
    while offset < bytes.len() {
        bytes[offset] ^= 0xff;
        offset += 4096;
    }
    fs::write(path, &bytes).unwrap();
    bytes
}

fn cut_short(path: &Path) -> Vec<u8> {
    let mut bytes = fs::read(path).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(path, &bytes).unwrap();
    bytes
}

/// A lab of three with some data and one stopped member, `n3`, ready to be damaged.
fn lab_with_data(snapshot_every: &str) -> TestLab {
    let lab = TestLab::up_with(3, &["--snapshot-every", snapshot_every]);
    for i in 0..40 {
        lab.etcdctl_ok(&["put", &format!("k{i:02}"), "some value to keep"]);
    }
    lab.raftty_ok(&["stop", "n3"]);
    lab
}

/// `up` must fail on n3 naming `file`, `status` must report why, the damaged file must be
/// untouched, and the two healthy members must still serve.
fn refused(lab: &TestLab, damaged: &Path, bytes: &[u8], file: &str) {
    let out = lab.raftty(&["up"]);
    assert!(!out.status.success(), "a damaged member must not start:\n{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("n3 failed to start") && err.contains(file), "the error should name {file}:\n{err}");
    assert!(fs::read(damaged).unwrap() == bytes, "the damaged file must be left as it was");
    let n3 = lab.node("n3");
    assert_eq!(n3["state"], "exited");
    assert!(n3["error"].as_str().unwrap_or_default().contains("refused to start"), "{n3}");
    let table = lab.raftty_ok(&["status"]);
    assert!(table.contains("n3 exited: refused to start"), "{table}");
    assert_eq!(stdout(&lab.etcdctl_on("n1", &["get", "--print-value-only", "k39"])), "some value to keep\n");
    let check = lab.raftty(&["check"]);
    assert!(check.status.success(), "the healthy members agree:\n{}", describe(&check));
}

#[test]
fn a_raft_log_with_flipped_bytes_is_refused() {
    let lab = lab_with_data("10000");
    let file = data_dir(&lab, "n3").join("raft-log.redb");
    let bytes = flip_bytes(&file);
    refused(&lab, &file, &bytes, "raft-log.redb");
}

#[test]
fn a_state_file_with_flipped_bytes_is_refused() {
    let lab = lab_with_data("10000");
    let file = data_dir(&lab, "n3").join("state.redb");
    let bytes = flip_bytes(&file);
    refused(&lab, &file, &bytes, "state.redb");
}

#[test]
fn a_state_file_cut_short_is_refused() {
    let lab = lab_with_data("10000");
    let file = data_dir(&lab, "n3").join("state.redb");
    let bytes = cut_short(&file);
    refused(&lab, &file, &bytes, "state.redb");
}

#[test]
fn a_damaged_snapshot_is_refused_before_it_can_be_restored_or_sent() {
    let lab = lab_with_data("10");
    let snapshots = data_dir(&lab, "n3").join("snapshots");
    let newest = fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .max()
        .expect("n3 built a snapshot");
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    refused(&lab, &newest, &bytes, "snapshot");
}
