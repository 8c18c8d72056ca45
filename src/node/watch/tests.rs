//! Watch sessions against a store stand-in whose feed and history the tests control.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::broadcast;
use tokio::sync::mpsc;
use tonic::Status;

use super::*;
use crate::proto::etcdserverpb::WatchCancelRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::WatchProgressRequest;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::mvccpb::Event;
use crate::proto::mvccpb::KeyValue;
use crate::proto::mvccpb::event::EventType;

// ---- a store whose revisions the test writes ----

struct FakeStore {
    state: Mutex<FakeState>,
    feed: broadcast::Sender<WatchFeed>,
}

struct FakeState {
    revision: i64,
    compacted: i64,
    history: Vec<RevisionEvents>,
    live: BTreeMap<Bytes, KeyValue>,
}

enum Change<'a> {
    Put(&'a str, &'a str),
    Delete(&'a str),
}

impl FakeStore {
    fn new(feed_capacity: usize) -> Arc<FakeStore> {
        let (feed, _) = broadcast::channel(feed_capacity);
        let state = FakeState { revision: 1, compacted: -1, history: Vec::new(), live: BTreeMap::new() };
        Arc::new(FakeStore { state: Mutex::new(state), feed })
    }

    fn put(&self, key: &str, value: &str) -> i64 {
        self.commit(&[Change::Put(key, value)])
    }

    fn delete(&self, key: &str) -> i64 {
        self.commit(&[Change::Delete(key)])
    }

    /// One revision with every change in it, like a transaction.
    fn commit(&self, changes: &[Change<'_>]) -> i64 {
        let mut s = self.state.lock().unwrap();
        let revision = s.revision + 1;
        let mut events = Vec::new();
        for change in changes {
            match change {
                Change::Put(key, value) => {
                    let key = Bytes::from(key.to_string());
                    let prev = s.live.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                        mod_revision: revision,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        value: Bytes::from(value.to_string()),
                        lease: 0,
                    };
                    s.live.insert(key, kv.clone());
                    events.push(Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: prev });
                }
                Change::Delete(key) => {
                    let key = Bytes::from(key.to_string());
                    if let Some(prev) = s.live.remove(&key) {
                        let kv = KeyValue { key, mod_revision: revision, ..Default::default() };
                        events.push(Event { r#type: EventType::Delete as i32, kv: Some(kv), prev_kv: Some(prev) });
                    }
                }
            }
        }
        assert!(!events.is_empty(), "a revision changes something");
        s.revision = revision;
        let published = RevisionEvents { revision, events };
        s.history.push(published.clone());
        drop(s);
        let _ = self.feed.send(WatchFeed::Revision(Arc::new(published)));
        revision
    }

    fn compact(&self, at: i64) {
        let mut s = self.state.lock().unwrap();
        s.compacted = at;
        // like etcd, revision `at` itself keeps only part of its events; drop it all here
        s.history.retain(|r| r.revision > at);
    }

    /// The state jumps ahead, as when a Raft snapshot is installed: the revisions in between
    /// never come through the feed.
    fn restore_ahead(&self, changes: usize) {
        let mut s = self.state.lock().unwrap();
        for n in 0..changes {
            let revision = s.revision + 1;
            let kv = KeyValue {
                key: Bytes::from(format!("snap{n}")),
                create_revision: revision,
                mod_revision: revision,
                version: 1,
                value: Bytes::from_static(b"v"),
                lease: 0,
            };
            s.revision = revision;
            s.history.push(RevisionEvents {
                revision,
                events: vec![Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: None }],
            });
        }
        let (revision, compact_revision) = (s.revision, s.compacted);
        drop(s);
        let _ = self.feed.send(WatchFeed::Restored { revision, compact_revision });
    }
}

impl History for FakeStore {
    fn subscribe(&self) -> broadcast::Receiver<WatchFeed> {
        self.feed.subscribe()
    }

    fn current_revision(&self) -> i64 {
        self.state.lock().unwrap().revision
    }

    fn compact_revision(&self) -> i64 {
        self.state.lock().unwrap().compacted
    }

    fn events(&self, from: i64, to: i64) -> Result<Vec<RevisionEvents>, EtcdError> {
        let s = self.state.lock().unwrap();
        if from <= s.compacted {
            return Err(EtcdError::Compacted);
        }
        Ok(s.history.iter().filter(|r| r.revision >= from && r.revision <= to).cloned().collect())
    }
}

struct FakeCluster {
    leader: AtomicBool,
}

impl ClusterView for FakeCluster {
    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader { cluster_id: 1, member_id: 2, revision, raft_term: 3 }
    }

    fn has_leader(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(std::future::ready(self.leader.load(Ordering::Relaxed)))
    }
}

// ---- a client of one session ----

struct Client {
    requests: Option<mpsc::Sender<Result<WatchRequest, Status>>>,
    responses: mpsc::Receiver<Result<WatchResponse, Status>>,
    cluster: Arc<FakeCluster>,
}

fn settings() -> WatchSettings {
    WatchSettings { progress_interval: Duration::from_secs(3600), leader_check_interval: Duration::from_millis(20) }
}

fn connect(store: &Arc<FakeStore>) -> Client {
    connect_with(store, 64, settings(), false)
}

fn connect_with(store: &Arc<FakeStore>, queue: usize, settings: WatchSettings, require_leader: bool) -> Client {
    let (requests, incoming) = mpsc::channel(16);
    let (out, responses) = mpsc::channel(queue);
    let cluster = Arc::new(FakeCluster { leader: AtomicBool::new(true) });
    let session = Session::new(store.clone(), cluster.clone(), out, settings);
    tokio::spawn(session.run(tokio_stream::wrappers::ReceiverStream::new(incoming), require_leader));
    Client { requests: Some(requests), responses, cluster }
}

fn create(key: &str) -> WatchCreateRequest {
    WatchCreateRequest { key: Bytes::from(key.to_string()), ..Default::default() }
}

fn prefix(key: &str) -> WatchCreateRequest {
    let mut end = key.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    WatchCreateRequest { key: Bytes::from(key.to_string()), range_end: Bytes::from(end), ..Default::default() }
}

impl Client {
    async fn send(&self, request: RequestUnion) {
        let requests = self.requests.as_ref().expect("requests still open");
        requests.send(Ok(WatchRequest { request_union: Some(request) })).await.unwrap();
    }

    /// Creates a watch and returns its id, checking the creation answer.
    async fn watch(&mut self, req: WatchCreateRequest) -> i64 {
        self.send(RequestUnion::CreateRequest(req)).await;
        let created = self.next().await;
        assert!(created.created && !created.canceled, "not created: {created:?}");
        created.watch_id
    }

    async fn next(&mut self) -> WatchResponse {
        match tokio::time::timeout(Duration::from_secs(5), self.responses.recv()).await {
            Ok(Some(Ok(r))) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    async fn next_status(&mut self) -> Status {
        match tokio::time::timeout(Duration::from_secs(5), self.responses.recv()).await {
            Ok(Some(Err(status))) => status,
            other => panic!("expected the stream to end with an error, got {other:?}"),
        }
    }

    async fn quiet(&mut self) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(150), self.responses.recv()).await {
            panic!("expected nothing, got {r:?}");
        }
    }

    /// Every event up to and including `revision`, checking each response on the way.
    async fn events_through(&mut self, id: i64, revision: i64) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let r = self.next().await;
            assert_eq!(r.watch_id, id, "{r:?}");
            assert!(!r.canceled, "{r:?}");
            events.extend(r.events);
            if r.header.unwrap().revision >= revision {
                return events;
            }
        }
    }
}

impl Client {
    /// Events per watch until `count` events arrived (revisions waiting together may share
    /// a response, so responses are not counted).
    async fn events_by_watch(&mut self, count: usize) -> BTreeMap<i64, Vec<i64>> {
        let mut seen: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        let mut total = 0;
        while total < count {
            let r = self.next().await;
            total += r.events.len();
            seen.entry(r.watch_id).or_default().extend(revisions(&r.events));
        }
        seen
    }
}

fn revisions(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision).collect()
}

fn keys(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| String::from_utf8_lossy(&e.kv.as_ref().unwrap().key).into_owned()).collect()
}

// ---- the tests ----

#[tokio::test]
async fn a_watch_from_now_gets_each_new_revision_once_in_order() {
    let store = FakeStore::new(64);
    store.put("a", "old");
    let mut c = connect(&store);
    let id = c.watch(create("a")).await;
    assert_eq!(id, 0, "the first automatic id");
    store.put("a", "1");
    store.put("b", "ignored");
    store.put("a", "2");
    let mut events = Vec::new();
    while events.len() < 2 {
        let r = c.next().await;
        assert_eq!(r.watch_id, id);
        assert_eq!(r.header.unwrap().revision, revisions(&r.events).last().copied().unwrap());
        events.extend(r.events);
    }
    assert_eq!(revisions(&events), vec![3, 5]);
    assert!(events[0].prev_kv.is_none(), "prev_kv only when asked");
    c.quiet().await;
}

#[tokio::test]
async fn old_start_revisions_replay_history_then_continue_live() {
    let store = FakeStore::new(64);
    for n in 0..5 {
        store.put(&format!("k{n}"), "v");
    }
    let mut c = connect(&store);
    let all = c.watch(WatchCreateRequest { start_revision: 1, ..prefix("k") }).await;
    let events = c.events_through(all, 6).await;
    assert_eq!(revisions(&events), vec![2, 3, 4, 5, 6]);
    let from4 = c.watch(WatchCreateRequest { start_revision: 4, ..create("k3") }).await;
    let events = c.events_through(from4, 6).await;
    assert_eq!(keys(&events), vec!["k3"]);
    store.put("k3", "again");
    let seen = c.events_by_watch(2).await;
    assert_eq!(seen, BTreeMap::from([(all, vec![7]), (from4, vec![7])]));
}

#[tokio::test]
async fn a_future_start_revision_waits_for_it() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let id = c.watch(WatchCreateRequest { start_revision: 4, ..create("a") }).await;
    store.put("a", "2");
    store.put("a", "3");
    store.put("a", "4");
    let r = c.next().await;
    assert_eq!((r.watch_id, revisions(&r.events)), (id, vec![4]));
}

#[tokio::test]
async fn all_events_of_a_revision_travel_together_with_prev_kv() {
    let store = FakeStore::new(64);
    store.put("p/a", "1");
    store.put("p/b", "1");
    let mut c = connect(&store);
    let id = c.watch(WatchCreateRequest { prev_kv: true, ..prefix("p/") }).await;
    store.commit(&[Change::Put("p/a", "2"), Change::Delete("p/b"), Change::Put("p/c", "1"), Change::Put("q", "x")]);
    let r = c.next().await;
    assert_eq!(r.watch_id, id);
    assert_eq!(keys(&r.events), vec!["p/a", "p/b", "p/c"], "one response, only the prefix");
    assert_eq!(r.events[0].prev_kv.as_ref().unwrap().value, "1");
    assert_eq!(r.events[1].r#type, EventType::Delete as i32);
    assert_eq!(r.events[1].prev_kv.as_ref().unwrap().value, "1");
    assert!(r.events[2].prev_kv.is_none(), "a creation has no previous value");
}

#[tokio::test]
async fn filters_drop_puts_or_deletes() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let no_put = c.watch(WatchCreateRequest { filters: vec![FilterType::Noput as i32], ..create("a") }).await;
    let no_delete = c.watch(WatchCreateRequest { filters: vec![FilterType::Nodelete as i32], ..create("a") }).await;
    store.put("a", "1");
    store.delete("a");
    let seen = c.events_by_watch(2).await;
    assert_eq!(seen, BTreeMap::from([(no_delete, vec![2]), (no_put, vec![3])]));
    c.quiet().await;
}

#[tokio::test]
async fn whole_key_space_and_from_key_ranges() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let everything =
        WatchCreateRequest { key: Bytes::new(), range_end: Bytes::from_static(b"\0"), ..Default::default() };
    let all = c.watch(everything).await;
    let from_m = c.watch(WatchCreateRequest { range_end: Bytes::from_static(b"\0"), ..create("m") }).await;
    store.put("a", "1");
    store.put("z", "1");
    let seen = c.events_by_watch(3).await;
    assert_eq!(seen, BTreeMap::from([(all, vec![2, 3]), (from_m, vec![3])]));
}

#[tokio::test]
async fn ids_chosen_by_the_client_are_kept_and_duplicates_refused() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    assert_eq!(c.watch(WatchCreateRequest { watch_id: 1, ..create("a") }).await, 1);
    assert_eq!(c.watch(create("a")).await, 0);
    assert_eq!(c.watch(create("a")).await, 2, "automatic ids skip ids in use");
    c.send(RequestUnion::CreateRequest(WatchCreateRequest { watch_id: 2, ..create("b") })).await;
    let r = c.next().await;
    assert!(r.created && r.canceled);
    assert_eq!(r.watch_id, -1);
    assert_eq!(r.cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream");
    c.send(RequestUnion::CreateRequest(WatchCreateRequest { range_end: Bytes::from_static(b"a"), ..create("b") }))
        .await;
    let r = c.next().await;
    assert!(r.created && r.canceled && r.watch_id == -1);
    assert_eq!(r.cancel_reason, "mvcc: watcher range is empty");
}

#[tokio::test]
async fn a_cancelled_watch_hears_nothing_more() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let a = c.watch(create("a")).await;
    let b = c.watch(create("a")).await;
    c.send(RequestUnion::CancelRequest(WatchCancelRequest { watch_id: a })).await;
    let r = c.next().await;
    assert!(r.canceled && r.watch_id == a && r.compact_revision == 0);
    c.send(RequestUnion::CancelRequest(WatchCancelRequest { watch_id: 99 })).await;
    store.put("a", "1");
    let r = c.next().await;
    assert_eq!(r.watch_id, b, "nothing for the unknown id, no events for the cancelled one");
    c.quiet().await;
}

#[tokio::test]
async fn a_start_at_or_below_the_compaction_point_is_cancelled_with_it() {
    let store = FakeStore::new(64);
    for n in 0..6 {
        store.put("a", &n.to_string());
    }
    store.compact(5);
    let mut c = connect(&store);
    for start in [2, 5] {
        let id = c.watch(WatchCreateRequest { start_revision: start, ..create("a") }).await;
        let r = c.next().await;
        assert_eq!((r.watch_id, r.canceled, r.compact_revision), (id, true, 5), "start {start}");
        assert!(r.events.is_empty());
    }
    let id = c.watch(WatchCreateRequest { start_revision: 6, ..create("a") }).await;
    let r = c.next().await;
    assert_eq!((r.watch_id, revisions(&r.events)), (id, vec![6, 7]));
    assert!(!r.canceled);
}

/// A client that does not read: its session waits on its full queue, the feed moves on
/// without it, and once the client reads again it gets every revision exactly once, in
/// order, from history. Meanwhile writes and a second, prompt session are not held up.
#[tokio::test]
async fn a_slow_watcher_catches_up_from_history_without_slowing_anyone() {
    let store = FakeStore::new(4);
    let mut slow = connect_with(&store, 1, settings(), false);
    let mut prompt = connect(&store);
    let slow_id = slow.watch(prefix("k")).await;
    let prompt_id = prompt.watch(prefix("k")).await;
    let mut prompt_seen = Vec::new();
    for n in 0..200 {
        store.put(&format!("k{}", n % 7), &n.to_string());
        if n % 10 == 9 {
            while prompt_seen.len() < n + 1 {
                let r = prompt.next().await;
                assert_eq!(r.watch_id, prompt_id);
                prompt_seen.extend(revisions(&r.events));
            }
        }
    }
    assert_eq!(prompt_seen, (2..=201).collect::<Vec<_>>());
    let events = slow.events_through(slow_id, 201).await;
    assert_eq!(revisions(&events), (2..=201).collect::<Vec<_>>(), "no gap, no repeat, in order");
}

#[tokio::test]
async fn a_slow_watcher_whose_history_is_compacted_is_cancelled_after_a_gapless_prefix() {
    let store = FakeStore::new(4);
    let mut slow = connect_with(&store, 1, settings(), false);
    let id = slow.watch(prefix("k")).await;
    for n in 0..100 {
        store.put(&format!("k{}", n % 3), "v");
    }
    store.compact(60);
    let mut seen = Vec::new();
    loop {
        let r = slow.next().await;
        assert_eq!(r.watch_id, id);
        if r.canceled {
            assert_eq!(r.compact_revision, 60);
            break;
        }
        seen.extend(revisions(&r.events));
    }
    let expected: Vec<i64> = (2..2 + seen.len() as i64).collect();
    assert_eq!(seen, expected, "what was delivered has no gap");
    assert!(seen.last().is_none_or(|last| *last < 61));
}

#[tokio::test]
async fn a_snapshot_restore_is_caught_up_from_history() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let id = c.watch(prefix("snap")).await;
    store.restore_ahead(3);
    let events = c.events_through(id, 4).await;
    assert_eq!(revisions(&events), vec![2, 3, 4]);
    assert_eq!(keys(&events), vec!["snap0", "snap1", "snap2"]);
}

#[tokio::test]
async fn a_progress_request_is_a_bookmark_for_every_watch_of_the_stream() {
    let store = FakeStore::new(64);
    store.put("a", "1");
    let mut c = connect(&store);
    let id = c.watch(WatchCreateRequest { start_revision: 1, ..create("a") }).await;
    c.send(RequestUnion::ProgressRequest(WatchProgressRequest {})).await;
    let r = c.next().await;
    assert_eq!((r.watch_id, revisions(&r.events)), (id, vec![2]), "events up to R come first");
    let p = c.next().await;
    assert_eq!((p.watch_id, p.header.unwrap().revision), (-1, 2));
    assert!(p.events.is_empty() && !p.created && !p.canceled);
}

#[tokio::test]
async fn quiet_watches_get_periodic_progress_notifications() {
    let store = FakeStore::new(64);
    store.put("other", "1");
    let fast = WatchSettings { progress_interval: Duration::from_millis(100), ..settings() };
    let mut c = connect_with(&store, 64, fast, false);
    let notified = c.watch(WatchCreateRequest { progress_notify: true, ..create("a") }).await;
    let _silent = c.watch(create("a")).await;
    let p = c.next().await;
    assert_eq!((p.watch_id, p.header.unwrap().revision), (notified, 2));
    assert!(p.events.is_empty());
    store.put("other", "2");
    let p = c.next().await;
    assert_eq!((p.watch_id, p.header.unwrap().revision), (notified, 3));
}

#[tokio::test]
async fn require_leader_ends_the_stream_when_the_leader_is_gone() {
    let store = FakeStore::new(64);
    let mut c = connect_with(&store, 64, settings(), true);
    c.watch(create("a")).await;
    c.cluster.leader.store(false, Ordering::Relaxed);
    let status = c.next_status().await;
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.message(), "etcdserver: no leader");
}

#[tokio::test]
async fn a_short_election_does_not_end_a_stream_that_requires_a_leader() {
    let store = FakeStore::new(64);
    let slow_checks = WatchSettings { leader_check_interval: Duration::from_millis(50), ..settings() };
    let mut c = connect_with(&store, 64, slow_checks, true);
    let id = c.watch(create("a")).await;
    c.cluster.leader.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(60)).await;
    c.cluster.leader.store(true, Ordering::Relaxed);
    c.quiet().await;
    store.put("a", "1");
    assert_eq!(c.next().await.watch_id, id);
}

#[tokio::test]
async fn events_keep_coming_after_the_client_stops_sending() {
    let store = FakeStore::new(64);
    let mut c = connect(&store);
    let id = c.watch(create("a")).await;
    c.requests = None;
    store.put("a", "1");
    let r = c.next().await;
    assert_eq!((r.watch_id, revisions(&r.events)), (id, vec![2]));
}

#[tokio::test]
async fn a_watcher_asking_for_fragments_gets_a_big_revision_in_pieces() {
    let store = FakeStore::new(64);
    let big = "x".repeat(400 * 1024);
    let mut c = connect(&store);
    let whole = c.watch(prefix("big")).await;
    let pieces = c.watch(WatchCreateRequest { fragment: true, ..prefix("big") }).await;
    let changes: Vec<Change<'_>> =
        ["big1", "big2", "big3", "big4", "big5"].iter().map(|k| Change::Put(k, big.as_str())).collect();
    store.commit(&changes);
    let r = c.next().await;
    assert_eq!((r.watch_id, r.events.len(), r.fragment), (whole, 5, false));
    let mut parts = Vec::new();
    loop {
        let r = c.next().await;
        assert_eq!(r.watch_id, pieces);
        assert!(r.encoded_len() < crate::node::api::MAX_REQUEST_BYTES);
        let last = !r.fragment;
        parts.push(r);
        if last {
            break;
        }
    }
    assert!(parts.len() > 1);
    let joined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
    assert_eq!(keys(&joined), vec!["big1", "big2", "big3", "big4", "big5"]);
}

// ---- pure parts ----

fn event(key: &str, value_len: usize, revision: i64) -> Event {
    let kv = KeyValue {
        key: Bytes::from(key.to_string()),
        mod_revision: revision,
        value: Bytes::from(vec![b'v'; value_len]),
        ..Default::default()
    };
    Event { r#type: EventType::Put as i32, kv: Some(kv), prev_kv: None }
}

#[test]
fn small_responses_and_single_events_are_not_fragmented() {
    let small = WatchResponse { events: vec![event("a", 10, 2), event("b", 10, 2)], ..Default::default() };
    assert_eq!(split_fragments(small.clone(), 1000), vec![small]);
    let huge = WatchResponse { events: vec![event("a", 5000, 2)], ..Default::default() };
    assert_eq!(split_fragments(huge.clone(), 1000), vec![huge]);
}

#[test]
fn fragments_stay_under_the_limit_keep_order_and_mark_all_but_the_last() {
    let events: Vec<Event> = (0..20).map(|n| event(&format!("k{n:02}"), 300, 2)).collect();
    let response = WatchResponse { watch_id: 7, events: events.clone(), ..Default::default() };
    let parts = split_fragments(response, 1000);
    assert!(parts.len() >= 7, "{} parts", parts.len());
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part.watch_id, 7);
        assert_eq!(part.fragment, i + 1 < parts.len());
        assert!(!part.events.is_empty());
        assert!(part.encoded_len() < 1000, "part {i} is {} bytes", part.encoded_len());
    }
    let joined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
    assert_eq!(joined, events);
}

#[test]
fn a_watcher_takes_whole_revisions_and_moves_past_them() {
    let revs: Vec<RevisionEvents> =
        (2..=6).map(|r| RevisionEvents { revision: r, events: vec![event("a", 100, r), event("b", 100, r)] }).collect();
    let mut w = Watcher::new(0, &create("a"), 3).unwrap();
    let batches = w.take(&revs, 6, 1 << 20);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].through, 6);
    assert_eq!(revisions(&batches[0].events), vec![3, 4, 5, 6]);
    assert_eq!(w.next_rev, 7);
    assert!(w.take(&revs, 6, 1 << 20).is_empty(), "never twice");
    // a small soft limit cuts between revisions only, and each cut is a bookmark
    let mut w = Watcher::new(0, &prefix("a"), 2).unwrap();
    let batches = w.take(&revs, 8, 150);
    let throughs: Vec<i64> = batches.iter().map(|b| b.through).collect();
    assert_eq!(throughs, vec![3, 5, 8]);
    assert_eq!(w.next_rev, 9, "moved past revisions that had nothing for it");
}
