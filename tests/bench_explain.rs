//! `raftty bench --explain` breaks a single client's put into the stages the leader saw.
//! What it measures is for `make bench` to judge; here, that every stage is measured.

mod common;

use common::*;

#[test]
fn explain_names_every_stage_of_a_put_with_samples_from_the_leader() {
    let home = tempfile::tempdir().unwrap();
    let text = bench(home.path(), &["--explain", "--no-etcd", "--only", "put1", "--duration", "1s", "--keys", "100"]);
    for stage in raftty::node::write_stages::STAGES {
        assert!(text.contains(stage), "the stage {stage:?} is missing:\n{text}");
    }
    assert!(text.contains("client to leader and back"), "{text}");
    let sampled: u64 = text
        .lines()
        .find_map(|l| l.split(" writes sampled").next().filter(|_| l.contains("writes sampled")))
        .and_then(|head| head.rsplit('(').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of writes sampled:\n{text}"));
    assert!(sampled > 0, "the leader sampled no write:\n{text}");
}
