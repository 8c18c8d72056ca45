//! etcd's watch guarantees under failure: watchers of every kind (prefix and single key,
//! from now and from old revisions, with filters and previous values, one on the leader that
//! is killed and resumes elsewhere, one disconnected on purpose and resumed twice) run while
//! clients put, txn and delete through every member and the leader is killed and restarted.
//! Afterwards the committed history is read back (a watch of everything from revision 1,
//! itself checked against a Range at every revision and against every acknowledged put) and
//! every watcher's stream is checked against it with `raftty::proving::check::watch`.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use raftty::client::EtcdClient;
use raftty::pki::CertFiles;
use raftty::proto::etcdserverpb::*;
use raftty::proto::mvccpb::KeyValue;
use raftty::proto::mvccpb::event::EventType;
use raftty::proving::check::watch::CommittedHistory;
use raftty::proving::check::watch::Segment;
use raftty::proving::check::watch::WatchSpec;
use raftty::proving::check::watch::check_watch;
use raftty::proving::torture::watchers::WatchPlan;
use raftty::proving::torture::watchers::read_history;
use raftty::proving::torture::watchers::run_watcher;
use raftty::proving::torture::workload::Endpoints;
use tokio::sync::watch as signal;

const PREFIX: &str = "/reg/";
const KEYS: u64 = 8;
const STREAM_TIMEOUT: Duration = Duration::from_secs(120);

fn key(n: u64) -> Bytes {
    Bytes::from(format!("{PREFIX}k{n}"))
}

/// A put a client was told succeeded, at the revision it was told.
#[derive(Debug, Clone)]
struct AckedPut {
    key: Bytes,
    value: Bytes,
    revision: i64,
}

/// One client writing through the members in turn (moving on when one fails): puts, creates
/// (a txn on mod_revision 0), multi-key txns, deletes and range deletes under the watched
/// prefix, and puts outside it.
async fn writer(id: u64, clients: Vec<EtcdClient>, acked: Arc<Mutex<Vec<AckedPut>>>, stop: Arc<AtomicBool>) {
    let mut n: u64 = 0;
    let mut which = id as usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mut client = clients[which % clients.len()].clone();
        let value = Bytes::from(format!("w{id}-{n}"));
        let k = key((n * 7 + id * 3) % KEYS);
        let outcome = match n % 6 {
            0 | 1 => {
                client.kv.put(PutRequest { key: k.clone(), value: value.clone(), ..Default::default() }).await.map(
                    |r| {
                        let revision = r.into_inner().header.map_or(0, |h| h.revision);
                        acked.lock().unwrap().push(AckedPut { key: k.clone(), value: value.clone(), revision });
                    },
                )
            }
            2 => {
                let create = TxnRequest {
                    compare: vec![Compare {
                        result: compare::CompareResult::Equal as i32,
                        target: compare::CompareTarget::Mod as i32,
                        key: k.clone(),
                        target_union: Some(compare::TargetUnion::ModRevision(0)),
                        ..Default::default()
                    }],
                    success: vec![put_op(k.clone(), value.clone())],
                    failure: vec![RequestOp {
                        request: Some(request_op::Request::RequestRange(RangeRequest {
                            key: k.clone(),
                            ..Default::default()
                        })),
                    }],
                };
                client.kv.txn(create).await.map(|_| ())
            }
            3 => {
                let (a, b, c) = (key(n % KEYS), key((n + 1) % KEYS), key((n + 2) % KEYS));
                let delete = RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                        key: c,
                        prev_kv: true,
                        ..Default::default()
                    })),
                };
                let txn = TxnRequest {
                    compare: vec![],
                    success: vec![put_op(a, value.clone()), put_op(b, value.clone()), delete],
                    failure: vec![],
                };
                client.kv.txn(txn).await.map(|_| ())
            }
            4 if n.is_multiple_of(4) => client
                .kv
                .delete_range(DeleteRangeRequest { key: key(2), range_end: key(5), ..Default::default() })
                .await
                .map(|_| ()),
            4 => client.kv.delete_range(DeleteRangeRequest { key: k, ..Default::default() }).await.map(|_| ()),
            _ => client
                .kv
                .put(PutRequest { key: format!("/other/{id}").into(), value, ..Default::default() })
                .await
                .map(|_| ()),
        };
        // the writer paces itself (and backs off after a failure, moving to the next
        // member) so the watchers see a steady stream rather than a flood
        let pause = if outcome.is_err() { Duration::from_millis(20) } else { Duration::from_millis(4) };
        if outcome.is_err() {
            which += 1;
        }
        tokio::time::sleep(pause).await; // poll
    }
}

fn put_op(key: Bytes, value: Bytes) -> RequestOp {
    RequestOp { request: Some(request_op::Request::RequestPut(PutRequest { key, value, ..Default::default() })) }
}

/// Checks the history against what a Range at every revision shows on `url`.
async fn check_history_against_ranges(history: &CommittedHistory, url: &str, cert: &CertFiles) {
    let mut client = EtcdClient::connect(url, cert, STREAM_TIMEOUT).await.unwrap();
    // make sure this member has applied everything first
    client.kv.range(RangeRequest { key: "probe".into(), ..Default::default() }).await.unwrap();
    for revision in 1..=history.through() {
        let req = RangeRequest {
            key: Bytes::from_static(b"\0"),
            range_end: Bytes::from_static(b"\0"),
            revision,
            serializable: true,
            ..Default::default()
        };
        let kvs: Vec<KeyValue> = client.kv.range(req).await.unwrap().into_inner().kvs;
        let expected: Vec<KeyValue> = history.state_at(revision).into_values().collect();
        assert_eq!(kvs, expected, "the history disagrees with a Range at revision {revision}");
    }
}

#[test]
fn watch_guarantees_hold_while_clients_write_and_the_leader_is_killed() {
    let lab = TestLab::up(3);
    let cert = root_cert(&lab);
    let names = ["n1", "n2", "n3"];
    let urls: Vec<(String, String)> = names.iter().map(|n| (n.to_string(), lab.client_url(n))).collect();
    let leader = lab.leader();
    let followers: Vec<String> = names.iter().filter(|m| **m != leader).map(|m| m.to_string()).collect();
    let (f1, f2) = (followers[0].clone(), followers[1].clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _entered = runtime.enter();

    let clients: Vec<EtcdClient> =
        urls.iter().map(|(_, u)| EtcdClient::connect_lazy(u, &cert, Duration::from_secs(5)).unwrap()).collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..3).map(|id| runtime.spawn(writer(id, clients.clone(), acked.clone(), stop.clone()))).collect();
    let acked_count = || acked.lock().unwrap().len();
    let wait_acks = |more: usize, what: &str| {
        let target = acked_count() + more;
        wait_for(Duration::from_secs(60), &format!("{more} more acknowledged puts {what}"), || acked_count() >= target);
    };

    let (last_tx, last_rx) = signal::channel(i64::MAX);
    let url_of = |name: &String| urls.iter().find(|(n, _)| n == name).map(|(_, u)| u.clone()).unwrap();
    let on = |members: Vec<String>| -> Endpoints { Arc::new(RwLock::new(members.iter().map(url_of).collect())) };
    let spawn_watcher = |plan: WatchPlan| runtime.spawn(run_watcher(plan, cert.clone(), last_rx.clone()));
    let prefix = || WatchSpec::prefix(PREFIX);
    let mut plans = vec![
        WatchPlan {
            name: "prefix from now, prev_kv".into(),
            spec: prefix().with_prev_kv(),
            start: 0,
            endpoints: on(vec![f1.clone(), f2.clone()]),
            disconnect_after: None,
        },
        WatchPlan {
            name: "one key from revision 1".into(),
            spec: WatchSpec::key(key(3)),
            start: 1,
            endpoints: on(vec![f2.clone(), f1.clone()]),
            disconnect_after: None,
        },
        WatchPlan {
            name: "prefix on the leader, resumed elsewhere".into(),
            spec: prefix().with_prev_kv(),
            start: 1,
            endpoints: on(vec![leader.clone(), f1.clone(), f2.clone()]),
            disconnect_after: None,
        },
        WatchPlan {
            name: "deletes only, disconnected and resumed".into(),
            spec: WatchSpec { no_put: true, ..prefix() },
            start: 1,
            endpoints: on(vec![f2.clone(), f1.clone()]),
            disconnect_after: Some((3, 2)),
        },
        WatchPlan {
            name: "everything, prev_kv".into(),
            spec: WatchSpec { range_end: Bytes::from_static(b"\0"), ..WatchSpec::key("\0").with_prev_kv() },
            start: 1,
            endpoints: on(vec![f1.clone(), f2.clone()]),
            disconnect_after: None,
        },
    ];
    let mut watchers: Vec<_> = plans.iter().cloned().map(spawn_watcher).collect();

    wait_acks(50, "before the late watcher");
    let now = runtime.block_on(current_revision(&clients[0]));
    let late = WatchPlan {
        name: "prefix from an old revision, puts only".into(),
        spec: WatchSpec { no_delete: true, ..prefix() },
        start: now - 20,
        endpoints: on(vec![f1.clone(), f2.clone()]),
        disconnect_after: None,
    };
    plans.push(late.clone());
    watchers.push(spawn_watcher(late));

    wait_acks(50, "before the leader is killed");
    lab.raftty_ok(&["kill", &leader]);
    lab.wait_new_leader(&leader);
    wait_acks(50, "after the leader was killed");
    lab.raftty_ok(&["start", &leader]);
    wait_acks(30, "after the old leader came back");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        runtime.block_on(w).unwrap();
    }

    let final_revision = runtime.block_on(async {
        let c = EtcdClient::connect(&lab.client_url(&f1), &cert, STREAM_TIMEOUT).await.unwrap();
        current_revision(&c).await
    });
    last_tx.send(final_revision).unwrap();
    let observed: Vec<Vec<Segment>> = watchers
        .into_iter()
        .map(|w| {
            runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), w).await })
                .expect("watchers finish")
                .unwrap()
                .expect("a watcher runs")
        })
        .collect();

    let history = runtime.block_on(read_history(&lab.client_url(&f2), &cert, final_revision)).unwrap();
    history.check_consistency().unwrap_or_else(|e| panic!("the committed history does not hold together: {e}"));
    runtime.block_on(check_history_against_ranges(&history, &lab.client_url(&f1), &cert));
    for put in acked.lock().unwrap().iter() {
        let found = history.at(put.revision).iter().any(|e| {
            e.r#type == EventType::Put as i32
                && e.kv.as_ref().is_some_and(|kv| kv.key == put.key && kv.value == put.value)
        });
        assert!(found, "acknowledged {put:?} is not in the history");
    }

    let checked = AtomicU64::new(0);
    for (plan, segments) in plans.iter().zip(&observed) {
        let summary = check_watch(&history, &plan.name, &plan.spec, segments).unwrap_or_else(|v| panic!("{v}"));
        assert!(summary.covered >= final_revision, "{}: covered only {summary:?}", plan.name);
        checked.fetch_add(summary.events as u64, Ordering::Relaxed);
        eprintln!("{}: {} segments, {summary:?}", plan.name, segments.len());
    }
    let resumed = &observed[2];
    assert!(
        resumed.len() >= 2 && resumed[0].label == lab.client_url(&leader),
        "the leader's watcher resumed elsewhere"
    );
    assert!(observed[3].len() >= 3, "the disconnected watcher resumed twice");
    assert!(history.event_count() > 200, "a meaningful history: {} events", history.event_count());
    eprintln!(
        "history: {} events through revision {final_revision}; {} watched events checked",
        history.event_count(),
        checked.load(Ordering::Relaxed)
    );
}
