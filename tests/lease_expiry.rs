//! Lease expiry is the leader's decision, replicated: with the leader killed right after two
//! leases were granted, the new leader extends them rather than expiring them at once; the
//! lease nobody keeps alive then expires and its keys disappear once, in one revision, the
//! same on every member (the killed one too, once back); the lease kept alive from a
//! follower survives well past its TTL.

mod common;
mod spawned;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::watch_request::RequestUnion;
use raftty::proto::etcdserverpb::*;
use raftty::proto::mvccpb::event::EventType;
use spawned::Spawned;
use spawned::lab_with_env;
use tokio_stream::StreamExt;

const WAIT: Duration = Duration::from_secs(20);
const TTL: i64 = 3;

fn granted_id(out: &str) -> String {
    out.split_whitespace().nth(1).unwrap_or_else(|| panic!("no lease id in {out:?}")).to_string()
}

/// (revision of the key's value, or None) as `member` has it at `revision` (0: now),
/// without asking the leader.
fn read_on(lab: &TestLab, member: &str, key: &str, revision: i64) -> Option<i64> {
    let rev = revision.to_string();
    let mut args = vec!["get", key, "--consistency", "s", "-w", "json"];
    if revision > 0 {
        args.extend(["--rev", rev.as_str()]);
    }
    let out = lab.etcdctl_on(member, &args);
    assert!(out.status.success(), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    json["kvs"][0]["mod_revision"].as_i64()
}

#[test]
fn expiry_under_a_leader_kill_deletes_once_everywhere_and_spares_kept_alive_leases() {
    let lab = TestLab::up(3);
    let cert = root_cert(&lab);
    let leader = lab.leader();
    let survivors: Vec<String> = ["n1", "n2", "n3"].iter().filter(|m| **m != leader).map(|m| m.to_string()).collect();

    let doomed = granted_id(&lab.etcdctl_ok(&["lease", "grant", &TTL.to_string()]));
    let kept = granted_id(&lab.etcdctl_ok(&["lease", "grant", &TTL.to_string()]));
    for key in ["a1", "a2", "a3"] {
        lab.etcdctl_ok(&["put", "--lease", &doomed, key, "v"]);
    }
    for key in ["b1", "b2"] {
        lab.etcdctl_ok(&["put", "--lease", &kept, key, "v"]);
    }
    let mut keeper = Spawned::etcdctl(&lab, Some(&survivors[1]), &["lease", "keep-alive", &kept]);
    keeper.wait_for_text("keepalived", WAIT);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let watched = Arc::new(Mutex::new(Vec::<WatchResponse>::new()));
    let mut client = runtime
        .block_on(EtcdClient::connect(&lab.client_url(&survivors[0]), &cert, WAIT))
        .expect("connecting to a follower");
    // everything from now on, as a follower's watcher sees it
    let (requests, incoming) = tokio::sync::mpsc::channel(4);
    let create = WatchCreateRequest { key: "\0".into(), range_end: "\0".into(), prev_kv: true, ..Default::default() };
    runtime.block_on(requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) })).unwrap();
    let mut stream = runtime
        .block_on(client.watch.watch(tokio_stream::wrappers::ReceiverStream::new(incoming)))
        .expect("a watch")
        .into_inner();
    let sink = watched.clone();
    runtime.spawn(async move {
        while let Some(Ok(response)) = stream.next().await {
            sink.lock().unwrap().push(response);
        }
    });
    wait_for(WAIT, "the watch to be created", || watched.lock().unwrap().iter().any(|r| r.created));

    lab.raftty_ok(&["kill", &leader]);
    // The first answer about the lease comes from the new leader: it restarted the lease's
    // clock with its whole TTL plus an election timeout, so it has more than its TTL left
    // (without the extension it would show at most TTL - 1).
    let doomed_id = i64::from_str_radix(&doomed, 16).unwrap();
    let ttl = runtime
        .block_on(client.lease.lease_time_to_live(LeaseTimeToLiveRequest { id: doomed_id, keys: false }))
        .expect("time to live from the new leader")
        .into_inner();
    assert_eq!(ttl.granted_ttl, TTL);
    assert!(ttl.ttl >= TTL, "the new leader extended the lease: {ttl:?}");
    for member in &survivors {
        assert!(read_on(&lab, member, "a1", 0).is_some(), "nothing expires at the leader change");
    }

    wait_for(WAIT, "the unrenewed lease to expire", || survivors.iter().all(|m| read_on(&lab, m, "a1", 0).is_none()));

    // The watcher saw each key deleted once, all three in one revision and one response.
    let deletes: Vec<(i64, String, usize)> = watched
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.events
                .iter()
                .filter(|e| e.r#type == EventType::Delete as i32)
                .map(move |e| {
                    let kv = e.kv.as_ref().unwrap();
                    (kv.mod_revision, String::from_utf8_lossy(&kv.key).into_owned(), i)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    let revoked_at = deletes[0].0;
    assert!(deletes.iter().all(|(rev, _, response)| *rev == revoked_at && *response == deletes[0].2), "{deletes:?}");
    assert_eq!(deletes.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["a1", "a2", "a3"]);

    // The kept-alive lease outlived its TTL by far, through the leader change.
    for member in &survivors {
        assert!(read_on(&lab, member, "b1", 0).is_some(), "b1 on {member}");
    }
    let out = lab.etcdctl_ok(&["lease", "timetolive", &kept]);
    assert!(out.contains(&format!("granted with TTL({TTL}s)")), "{out}");

    // Every member, the killed one included once back, deleted the keys at that revision.
    lab.raftty_ok(&["start", &leader]);
    wait_for(WAIT, "the old leader to catch up", || read_on(&lab, &leader, "a1", 0).is_none());
    for member in ["n1", "n2", "n3"] {
        for key in ["a1", "a2", "a3"] {
            assert!(read_on(&lab, member, key, revoked_at - 1).is_some(), "{key} before the revoke on {member}");
            assert!(read_on(&lab, member, key, revoked_at).is_none(), "{key} at the revoke on {member}");
        }
    }
    let out = lab.raftty_ok(&["check"]);
    assert!(out.contains("all running members agree"), "{out}");
}

/// With checkpoints (etcd 3.4's `--experimental-enable-lease-checkpoint`), a long lease's
/// remaining time is recorded through Raft, and a new leader resumes from it instead of
/// giving the lease its whole TTL again.
#[test]
fn a_new_leader_resumes_a_long_lease_from_its_checkpoint() {
    let lab = lab_with_env(3, &[("RAFTTY_LEASE_CHECKPOINT_INTERVAL", "1s")]);
    let leader = lab.leader();
    let survivor = ["n1", "n2", "n3"].into_iter().find(|m| *m != leader).unwrap();
    let id = granted_id(&lab.etcdctl_ok(&["lease", "grant", "60"]));
    // Checkpoints round up to whole seconds: by the third, at least two seconds are gone.
    wait_for(WAIT, "three lease checkpoints", || {
        lab.raftty_ok(&["log", &leader]).matches("lease checkpoint").count() >= 3
    });
    lab.raftty_ok(&["kill", &leader]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ttl = runtime.block_on(async {
        let mut client = EtcdClient::connect(&lab.client_url(survivor), &root_cert(&lab), WAIT).await.unwrap();
        let id = i64::from_str_radix(&id, 16).unwrap();
        client.lease.lease_time_to_live(LeaseTimeToLiveRequest { id, keys: false }).await.unwrap().into_inner()
    });
    assert_eq!(ttl.granted_ttl, 60);
    // from its full TTL it would have 60 s and the election timeout left
    assert!((50..=59).contains(&ttl.ttl), "{ttl:?}");
}
