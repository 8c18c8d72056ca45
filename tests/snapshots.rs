//! Snapshots: members snapshot their state, purge the log behind it, and a member that fell
//! too far behind is brought back by a snapshot streamed from the leader.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::HashKvRequest;
use raftty::proto::etcdserverpb::PutRequest;
use raftty::proto::etcdserverpb::RangeRequest;

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
