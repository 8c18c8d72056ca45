//! `raftty bench --rounds N` alternates a single client's put between raftty and the real
//! etcd (Debian package etcd-server; `make test` installs it). What the numbers say is for
//! `make bench`; here, that every round ran on both and the median is printed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn rounds_alternate_raftty_and_etcd_and_print_the_median_ratio() {
    let found = Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "this test needs the real etcd: `make test` installs it (Debian package etcd-server)");
    let home = tempfile::tempdir().unwrap();
    let text = bench(home.path(), &["--only", "put1", "--duration", "1s", "--keys", "100", "--rounds", "2"]);
    assert!(text.contains("put, 1 client, in 2 alternating rounds (raftty, then etcd"), "{text}");
    for round in ["round 1:", "round 2:"] {
        let line = text.lines().find(|l| l.contains(round)).unwrap_or_else(|| panic!("no {round}\n{text}"));
        let ratio: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|r| r.strip_suffix('x'))
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no ratio at the end of {line:?}"));
        assert!(ratio > 0.0 && ratio.is_finite(), "both systems must have done puts in {line:?}");
    }
    assert!(text.contains("  median: "), "{text}");
    // The lab stayed up for the rounds: it must be gone now, no member left running.
    let home_text = home.path().to_string_lossy().into_owned();
    wait_for(Duration::from_secs(10), "the bench lab's members to exit", || members_running(&home_text) == 0);
}

/// Processes whose command line names this test's home: the bench lab's members.
fn members_running(home: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(home))
        .count()
}
