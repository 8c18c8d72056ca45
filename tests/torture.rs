//! A short torture run per seed, as part of every test run: real members, random faults
//! (kills, pauses, partitions, cuts, slow links, membership changes, losing every member),
//! and the whole history checked for linearizability and lost writes. `make torture` runs
//! longer ones.

use std::process::Command;

const RAFTTY: &str = env!("CARGO_BIN_EXE_raftty");

fn torture(seed: u64) {
    let out_dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(RAFTTY)
        .args(["torture", "--seed", &seed.to_string(), "--duration", "20s", "--clients", "6"])
        .arg("--out")
        .arg(out_dir.path())
        .env("RAFTTY_HOME", home.path())
        .output()
        .expect("running raftty torture");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "torture seed {seed} failed:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("PASSED"), "{report}");
    assert!(report.contains("linearizability:                 passed"), "{report}");
    let total: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("operations (").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()))
        .expect("an operation count");
    assert!(total > 500, "too few operations to prove anything: {total}\n{report}");
    assert!(!report.contains("faults injected (0)"), "no fault was injected:\n{report}");
}

#[test]
fn torture_seed_1() {
    torture(1);
}

#[test]
fn torture_seed_2() {
    torture(2);
}
