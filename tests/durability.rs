//! A write acknowledged to a client survives kill -9 of any member: a stream of writes runs
//! while a follower and then the leader are killed with SIGKILL and restarted; afterwards
//! every acknowledged write is on every member and the members' HashKV agree.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::HashKvRequest;
use raftty::proto::etcdserverpb::PutRequest;
use raftty::proto::etcdserverpb::RangeRequest;

/// Writes `key-<n>` for n = 0, 1, 2... round-robin through the members, recording each
/// write the cluster acknowledged. A failed write is retried under a new key (its outcome
/// is unknown, so it proves nothing either way).
async fn write_stream(clients: Vec<EtcdClient>, acked: Arc<Mutex<BTreeSet<u64>>>, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let mut client = clients[i % clients.len()].clone();
        let put =
            PutRequest { key: format!("key-{n:06}").into(), value: format!("value-{n}").into(), ..Default::default() };
        let outcome = tokio::time::timeout(Duration::from_secs(5), client.kv.put(put)).await;
        match outcome {
            Ok(Ok(_)) => {
                acked.lock().unwrap().insert(n);
            }
            _ => i += 1,
        }
        n += 1;
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_of_a_follower_then_the_leader() {
    let lab = TestLab::up(3);
    let cert = root_cert(&lab);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let members = ["n1", "n2", "n3"];
    let clients: Vec<EtcdClient> = members
        .iter()
        .map(|m| EtcdClient::connect_lazy(&lab.client_url(m), &cert, Duration::from_secs(5)).unwrap())
        .collect();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = runtime.spawn(write_stream(clients.clone(), acked.clone(), stop.clone()));
    let acked_count = || acked.lock().unwrap().len();
    let wait_acks = |more: usize, what: &str| {
        let target = acked_count() + more;
        wait_for(Duration::from_secs(60), &format!("{more} more acknowledged writes {what}"), || {
            acked_count() >= target
        });
    };

    wait_acks(100, "before any failure");
    let leader = lab.leader();
    let follower = members.iter().find(|m| **m != leader).unwrap().to_string();
    kill9(&lab, &follower);
    wait_acks(100, "with a follower killed");
    lab.raftty_ok(&["up"]);
    wait_acks(50, "after the follower came back");

    let leader = lab.leader();
    kill9(&lab, &leader);
    wait_acks(100, "after the leader was killed");
    lab.raftty_ok(&["up"]);
    wait_acks(50, "after the old leader came back");

    stop.store(true, Ordering::Relaxed);
    runtime.block_on(writer).unwrap();
    let acked = acked.lock().unwrap().clone();

    // Every member, read locally (serializable), holds every acknowledged write.
    for (member, client) in members.iter().zip(&clients) {
        let mut missing = Vec::new();
        wait_for(Duration::from_secs(30), &format!("{member} to hold every acknowledged write"), || {
            let mut c = client.clone();
            let range = RangeRequest {
                key: "key-".into(),
                range_end: "key.".into(),
                serializable: true,
                keys_only: true,
                ..Default::default()
            };
            let Ok(resp) = runtime.block_on(c.kv.range(range)) else {
                return false;
            };
            let present: BTreeSet<u64> = resp
                .into_inner()
                .kvs
                .iter()
                .filter_map(|kv| std::str::from_utf8(&kv.key).ok()?.strip_prefix("key-")?.parse().ok())
                .collect();
            missing = acked.difference(&present).copied().collect();
            missing.is_empty()
        });
        assert!(missing.is_empty(), "{member} lost acknowledged writes {missing:?}");
    }

    // And the members agree byte for byte at a common revision.
    let revision = runtime.block_on(current_revision(&clients[0]));
    let mut hashes = Vec::new();
    for client in &clients {
        let mut c = client.clone();
        let mut last_err = String::new();
        let mut hash = None;
        wait_for(Duration::from_secs(30), "every member to reach the common revision", || {
            match runtime.block_on(c.maintenance.hash_kv(HashKvRequest { revision })) {
                Ok(r) => {
                    hash = Some(r.into_inner().hash);
                    true
                }
                Err(e) => {
                    last_err = e.message().to_string();
                    false
                }
            }
        });
        hashes.push(hash.expect(&last_err));
    }
    assert!(
        hashes.iter().all(|h| *h == hashes[0]),
        "HashKV differs between members at revision {revision}: {hashes:?}"
    );
    assert!(acked.len() >= 400, "the test wrote too little to prove anything: {}", acked.len());
}
