//! A crash loop: cycle after cycle, kill -9 a random member or every member while clients
//! write, bring them back, and check that every write ever acknowledged is still there.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::PutRequest;
use raftty::proto::etcdserverpb::RangeRequest;
use rand::Rng;
use rand::SeedableRng;

const MEMBERS: [&str; 3] = ["n1", "n2", "n3"];
const CYCLES: usize = 8;

/// Writes `w-<n>` round-robin through the members while `stop` is false, recording what was
/// acknowledged. Unanswered writes prove nothing either way and are not retried.
async fn writer(clients: Vec<EtcdClient>, acked: Arc<Mutex<BTreeSet<u64>>>, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut c = clients[n as usize % clients.len()].clone();
        let put = PutRequest { key: format!("w-{n:07}").into(), value: "v".into(), ..Default::default() };
        match tokio::time::timeout(Duration::from_secs(3), c.kv.put(put)).await {
            Ok(Ok(_)) => {
                acked.lock().unwrap().insert(n);
            }
            // a failed write backs off briefly rather than spinning on a member that is down
            _ => tokio::time::sleep(Duration::from_millis(20)).await, // poll
        }
        n += 1;
    }
}

#[test]
fn every_acknowledged_write_survives_repeated_crashes() {
    let lab = TestLab::up_with(3, &["--snapshot-every", "200"]);
    let cert = root_cert(&lab);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let clients: Vec<EtcdClient> = MEMBERS
        .iter()
        .map(|m| EtcdClient::connect_lazy(&lab.client_url(m), &cert, Duration::from_secs(3)).unwrap())
        .collect();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writing = runtime.spawn(writer(clients.clone(), acked.clone(), stop.clone()));
    let count = || acked.lock().unwrap().len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);

    for cycle in 0..CYCLES {
        let before = count();
        wait_for(Duration::from_secs(30), &format!("writes to flow before crash {cycle}"), || count() >= before + 30);
        if cycle % 3 == 2 {
            for m in MEMBERS {
                kill9(&lab, m);
            }
        } else {
            kill9(&lab, MEMBERS[rng.random_range(0..MEMBERS.len())]);
        }
        lab.raftty_ok(&["up"]);

        // Everything acknowledged so far must be readable, linearizably, from every member.
        let expected = acked.lock().unwrap().clone();
        for (member, client) in MEMBERS.iter().zip(&clients) {
            let mut missing = Vec::new();
            wait_for(Duration::from_secs(30), &format!("{member} to answer after crash {cycle}"), || {
                let mut c = client.clone();
                let range =
                    RangeRequest { key: "w-".into(), range_end: "w.".into(), keys_only: true, ..Default::default() };
                let Ok(resp) = runtime.block_on(c.kv.range(range)) else { return false };
                let present: BTreeSet<u64> = resp
                    .into_inner()
                    .kvs
                    .iter()
                    .filter_map(|kv| std::str::from_utf8(&kv.key).ok()?.strip_prefix("w-")?.parse().ok())
                    .collect();
                missing = expected.difference(&present).copied().collect();
                true
            });
            assert!(missing.is_empty(), "after crash {cycle}, {member} lost acknowledged writes {missing:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(writing).unwrap();
    assert!(count() >= CYCLES * 30, "too few writes to prove anything: {}", count());
}
