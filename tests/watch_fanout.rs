//! The watch fan-out measurement `raftty bench` runs, on a small scale: every watcher gets
//! every put, and the numbers are sane.

mod common;

use common::*;

#[test]
fn watch_fanout_delivers_every_put_to_every_watcher() {
    let lab = TestLab::up(1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(raftty::proving::bench::watch::watch_fanout(&lab.client_url("n1"), &root_cert(&lab), 150, 200, 64))
        .expect("fan-out measurement");
    eprintln!("{report}");
    assert_eq!(report.missing_events, 0, "{report}");
    assert!(report.writes_per_sec_alone > 0.0 && report.writes_per_sec_watched > 0.0, "{report}");
    assert!(report.delivery_p50_ms > 0.0 && report.delivery_p50_ms <= report.delivery_p99_ms, "{report}");
}
