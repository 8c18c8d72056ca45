//! `etcdctl watch` against a lab, unchanged: a key, a prefix, history from a revision,
//! previous values, interactive mode with progress requests, compaction, and a watch on a
//! follower through a leader's death and then the loss of quorum.

mod common;
mod spawned;

use std::time::Duration;

use common::*;
use spawned::Spawned;
use spawned::lab_with_env;

const WAIT: Duration = Duration::from_secs(15);

/// The lab's current revision, as a Range header tells it.
fn revision(lab: &TestLab) -> i64 {
    let out = lab.etcdctl_ok(&["get", "revision-probe", "-w", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl -w json prints JSON");
    json["header"]["revision"].as_i64().expect("a header revision")
}

#[test]
fn etcdctl_watch_a_key_a_prefix_and_history_with_previous_values() {
    let lab = TestLab::up(3);
    lab.etcdctl_ok(&["put", "a", "1"]);
    lab.etcdctl_ok(&["put", "ab", "x"]);
    let start = revision(&lab);
    // Explicit start revisions: what each watch sees does not depend on when it starts.
    let mut key = Spawned::etcdctl(&lab, None, &["watch", "a", "--rev", &(start + 1).to_string()]);
    let mut prefix =
        Spawned::etcdctl(&lab, Some("n2"), &["watch", "--prefix", "a", "--rev", &(start - 1).to_string(), "--prev-kv"]);
    lab.etcdctl_ok(&["put", "a", "2"]);
    lab.etcdctl_ok(&["put", "ab", "y"]);
    lab.etcdctl_ok(&["del", "a"]);
    lab.etcdctl_ok(&["put", "b", "not watched"]);

    assert_eq!(key.stdout_lines(6, WAIT), ["PUT", "a", "2", "DELETE", "a", ""]);
    assert_eq!(
        prefix.stdout_lines(19, WAIT),
        [
            "PUT", "a", "1", // history: no previous value
            "PUT", "ab", "x", //
            "PUT", "a", "1", "a", "2", // live, with the previous value first
            "PUT", "ab", "x", "ab", "y", //
            "DELETE", "a", "2",
        ]
    );
    assert_eq!(prefix.stdout_lines(2, WAIT), ["a", ""]);
    assert!(key.drain(Duration::from_millis(300)).is_empty(), "nothing more for the single key");
}

#[test]
fn etcdctl_watch_interactive_with_a_progress_request() {
    let lab = TestLab::up(1);
    lab.etcdctl_ok(&["put", "k", "1"]);
    let mut watch = Spawned::etcdctl(&lab, None, &["watch", "-i"]);
    watch.write_line("watch k --rev 1");
    assert_eq!(watch.stdout_lines(3, WAIT), ["PUT", "k", "1"]);
    lab.etcdctl_ok(&["put", "k", "2"]);
    assert_eq!(watch.stdout_lines(3, WAIT), ["PUT", "k", "2"]);
    lab.etcdctl_ok(&["put", "other", "x"]);
    let now = revision(&lab);
    watch.write_line("progress");
    assert_eq!(watch.stdout_lines(1, WAIT), [format!("progress notify: {now}")]);
}

#[test]
fn etcdctl_watch_from_a_compacted_revision_is_cancelled() {
    let lab = TestLab::up(1);
    for n in 0..5 {
        lab.etcdctl_ok(&["put", "k", &n.to_string()]);
    }
    let compacted = revision(&lab) - 1;
    lab.etcdctl_ok(&["compact", &compacted.to_string()]);
    // below the compaction point, and (raftty is stricter than etcd here, see src/node/watch)
    // exactly at it: part of that revision's history is gone
    for start in [2, compacted] {
        let mut watch = Spawned::etcdctl(&lab, None, &["watch", "k", "--rev", &start.to_string()]);
        watch.wait_for_text("watch was canceled (etcdserver: mvcc: required revision has been compacted)", WAIT);
        assert_ne!(watch.wait_exit(WAIT), Some(0));
    }
    let mut watch = Spawned::etcdctl(&lab, None, &["watch", "k", "--rev", &(compacted + 1).to_string()]);
    assert_eq!(watch.stdout_lines(3, WAIT), ["PUT", "k", "4"]);
}

#[test]
fn a_watch_on_a_follower_outlives_the_leader_and_ends_when_quorum_is_lost() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    let followers: Vec<String> = ["n1", "n2", "n3"].iter().filter(|m| **m != leader).map(|m| m.to_string()).collect();
    let (watched, other) = (&followers[0], &followers[1]);
    let start = revision(&lab) + 1;
    let mut watch = Spawned::etcdctl(&lab, Some(watched), &["watch", "--prefix", "k", "--rev", &start.to_string()]);
    lab.etcdctl_ok(&["put", "k1", "before"]);
    assert_eq!(watch.stdout_lines(3, WAIT), ["PUT", "k1", "before"]);

    lab.raftty_ok(&["kill", &leader]);
    lab.wait_new_leader(&leader);
    let out = lab.etcdctl_on(other, &["put", "k2", "after"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(watch.stdout_lines(3, WAIT), ["PUT", "k2", "after"]);

    // etcdctl asks that the watch end when its member has no leader
    lab.raftty_ok(&["kill", other]);
    watch.wait_for_text("watch was canceled (etcdserver: no leader)", WAIT);
}

#[test]
fn quiet_watches_that_ask_for_it_get_progress_notifications() {
    use raftty::proto::etcdserverpb::watch_request::RequestUnion;
    use raftty::proto::etcdserverpb::*;
    use tokio_stream::StreamExt;

    // etcd's interval is ten minutes; members read a shorter one from their environment
    let lab = lab_with_env(1, &[("RAFTTY_WATCH_PROGRESS_INTERVAL", "300ms")]);
    lab.etcdctl_ok(&["put", "elsewhere", "1"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client =
            raftty::client::EtcdClient::connect(&lab.client_url("n1"), &root_cert(&lab), WAIT).await.unwrap();
        let (requests, incoming) = tokio::sync::mpsc::channel(1);
        let create = WatchCreateRequest { key: "a".into(), progress_notify: true, ..Default::default() };
        requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) }).await.unwrap();
        let mut stream =
            client.watch.watch(tokio_stream::wrappers::ReceiverStream::new(incoming)).await.unwrap().into_inner();
        let mut next = async || tokio::time::timeout(WAIT, stream.next()).await.unwrap().unwrap().unwrap();
        let created = next().await;
        assert!(created.created);
        let at = created.header.unwrap().revision;
        let progress = next().await;
        assert_eq!((progress.watch_id, progress.header.unwrap().revision), (created.watch_id, at));
        assert!(progress.events.is_empty() && !progress.canceled);
        client.kv.put(PutRequest { key: "elsewhere".into(), value: "2".into(), ..Default::default() }).await.unwrap();
        let progress = next().await;
        assert_eq!(progress.header.unwrap().revision, at + 1, "the bookmark follows the store");
    });
}
