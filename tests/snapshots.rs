//! Snapshots: members snapshot their state, purge the log behind it, and a member that fell
//! too far behind is brought back by a snapshot streamed from the leader.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::HashKvRequest;
use raftty::proto::etcdserverpb::PutRequest;
use raftty::proto::etcdserverpb::RangeRequest;
use raftty::proto::etcdserverpb::RequestOp;
use raftty::proto::etcdserverpb::TxnRequest;
use raftty::proto::etcdserverpb::request_op::Request;

/// The log index of the newest snapshot file in a member's data dir.
fn newest_snapshot_index(lab: &TestLab, member: &str) -> Option<u64> {
    let dir = lab.dir().join("members").join(member).join("snapshots");
    snapshot_indexes(&dir).into_iter().max()
}

fn snapshot_indexes(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
            rest.split('-').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn a_lagging_member_catches_up_from_a_snapshot() {
    let lab = TestLab::up_with(3, &["--snapshot-every", "50"]);
    let leader = lab.leader();
    let lagging = ["n1", "n2", "n3"].into_iter().find(|m| *m != leader).unwrap();
    kill9(&lab, lagging);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cert = root_cert(&lab);
    let leader_url = lab.client_url(&leader);
    runtime.block_on(async {
        let mut client = EtcdClient::connect(&leader_url, &cert, Duration::from_secs(5)).await.unwrap();
        for i in 0..300 {
            let put =
                PutRequest { key: format!("snap/{i:04}").into(), value: format!("v{i}").into(), ..Default::default() };
            client.kv.put(put).await.expect("a write with a quorum of two succeeds");
        }
    });
    wait_for(Duration::from_secs(20), "the leader to snapshot past index 250", || {
        newest_snapshot_index(&lab, &leader).is_some_and(|i| i >= 250)
    });

    // The lagging member needs entries the leader has purged: only a snapshot can help.
    lab.raftty_ok(&["up"]);
    let lagging_url = lab.client_url(lagging);
    wait_for(Duration::from_secs(30), &format!("{lagging} to hold all 300 keys"), || {
        runtime.block_on(async {
            let Ok(mut c) = EtcdClient::connect(&lagging_url, &cert, Duration::from_secs(2)).await else {
                return false;
            };
            let range = RangeRequest {
                key: "snap/".into(),
                range_end: "snap0".into(),
                serializable: true,
                count_only: true,
                ..Default::default()
            };
            c.kv.range(range).await.is_ok_and(|r| r.into_inner().count == 300)
        })
    });
    let installed = newest_snapshot_index(&lab, lagging).expect("the lagging member keeps the snapshot it installed");
    assert!(installed >= 250, "{lagging} installed a snapshot at index {installed}");

    let hashes: Vec<u32> = ["n1", "n2", "n3"]
        .iter()
        .map(|m| {
            runtime.block_on(async {
                let mut c = EtcdClient::connect(&lab.client_url(m), &cert, Duration::from_secs(2)).await.unwrap();
                let revision = current_revision(&c).await;
                c.maintenance.hash_kv(HashKvRequest { revision }).await.unwrap().into_inner().hash
            })
        })
        .collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "members disagree after the snapshot: {hashes:?}");
}

/// A lab made without `--snapshot-every` snapshots every 10,000 entries while its state is
/// small, but no more often than the state it rewrites holds records: here a member that
/// restarts holding 15,000 of them waits for 15,000 entries.
#[test]
fn a_long_history_spreads_snapshots_out() {
    const RECORDS: usize = 15_000;
    let lab = TestLab::up(1);
    let cert = root_cert(&lab);
    let url = lab.client_url("n1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = EtcdClient::connect(&url, &cert, Duration::from_secs(5)).await.unwrap();
        for batch in (0..RECORDS).collect::<Vec<_>>().chunks(128) {
            let success = batch
                .iter()
                .map(|i| RequestOp {
                    request: Some(Request::RequestPut(PutRequest {
                        key: format!("history/{i:05}").into(),
                        value: "v".into(),
                        ..Default::default()
                    })),
                })
                .collect();
            client.kv.txn(TxnRequest { success, ..Default::default() }).await.expect("a txn of 128 puts");
        }
    });
    lab.raftty_ok(&["stop", "n1"]);
    lab.raftty_ok(&["start", "n1"]);
    lab.leader();

    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (url, cert, done) = (url.clone(), cert.clone(), done.clone());
            runtime.spawn(async move {
                let mut client = EtcdClient::connect(&url, &cert, Duration::from_secs(5)).await.unwrap();
                let mut i = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let put = PutRequest {
                        key: format!("load/{w}").into(),
                        value: i.to_string().into(),
                        ..Default::default()
                    };
                    client.kv.put(put).await.expect("a put on a healthy member");
                    i += 1;
                }
            })
        })
        .collect();
    wait_for(Duration::from_secs(240), "n1 to snapshot", || newest_snapshot_index(&lab, "n1").is_some());
    done.store(true, Ordering::Relaxed);
    for w in writers {
        runtime.block_on(w).expect("a writer ends cleanly");
    }
    let first = newest_snapshot_index(&lab, "n1").expect("the snapshot just seen");
    assert!(first >= RECORDS as u64, "with {RECORDS} records in the state, n1 snapshotted after only {first} entries");
}
