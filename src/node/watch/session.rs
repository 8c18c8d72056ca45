//! One gRPC watch stream: its watchers, its subscription to the store's feed, and the task
//! that serves both (see the module documentation for the rules it keeps).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::Stream;
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio::time::MissedTickBehavior;
use tonic::Status;

use crate::errors::EtcdError;
use crate::node::api::MAX_REQUEST_BYTES;
use crate::node::mvcc::RevisionEvents;
use crate::node::mvcc::WatchFeed;
use crate::node::watch::SharedCluster;
use crate::node::watch::SharedHistory;
use crate::node::watch::WatchSettings;
use crate::node::watch::fragment::split_fragments;
use crate::node::watch::watcher::Batch;
use crate::node::watch::watcher::Watcher;
use crate::proto::etcdserverpb::WatchCancelRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::etcdserverpb::watch_request::RequestUnion;

/// etcd's id for "no watch": failed creations and stream-wide progress notifications.
pub const NO_WATCH_ID: i64 = -1;
/// etcd's error for a client-chosen id already in use on the stream.
pub const DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

/// A stream that requires a leader ends after this many checks in a row found none: an
/// election takes a moment, and a reconnecting client costs more than a short wait (etcd
/// waits for three election timeouts too).
const LEADERLESS_CHECKS: u32 = 3;
/// How many revisions one read of history covers: reads hold the store's read lock, so
/// a watcher catching up takes it in small bites and writers are never kept waiting long.
const HISTORY_CHUNK: i64 = 64;
/// Feed messages already waiting are delivered together, up to this many.
const LIVE_BATCH: usize = 64;
/// Events of several revisions share a response until it reaches this size.
const RESPONSE_SOFT_LIMIT: usize = 256 * 1024;

/// What etcd 3.4 puts in a refused watch's cancel reason: the whole gRPC error, as Go prints it.
const PERMISSION_DENIED: &str = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";

/// The client went away: nothing more can be sent.
#[derive(Debug)]
pub struct Gone;

type Outbound = mpsc::Sender<Result<WatchResponse, Status>>;

pub struct Session {
    history: SharedHistory,
    cluster: SharedCluster,
    out: Outbound,
    settings: WatchSettings,
    watchers: BTreeMap<i64, Watcher>,
    next_auto_id: i64,
}

impl Session {
    pub fn new(history: SharedHistory, cluster: SharedCluster, out: Outbound, settings: WatchSettings) -> Session {
        Session { history, cluster, out, settings, watchers: BTreeMap::new(), next_auto_id: 0 }
    }

    /// Serves the stream until the client goes away (or, with `require_leader`, until the
    /// member has no leader, as etcd does for clients that ask for it).
    pub async fn run<S>(mut self, requests: S, require_leader: bool)
    where
        S: Stream<Item = Result<WatchRequest, Status>> + Send + Unpin,
    {
        // Subscribed before anything is read from the store, so no revision committed from
        // now on can slip between what history shows and what the feed brings.
        let mut feed = self.history.subscribe();
        let mut requests = requests;
        let mut requests_open = true;
        let mut progress = ticker(self.settings.progress_interval);
        let mut leader_check = ticker(self.settings.leader_check_interval);
        let out = self.out.clone();
        let mut leaderless_checks = 0;
        loop {
            let step = tokio::select! {
                biased;
                () = out.closed() => break,
                request = requests.next(), if requests_open => match request {
                    Some(Ok(request)) => self.on_request(request).await,
                    // A client that has nothing more to ask still wants its events (etcd
                    // keeps the stream open after a half-close too).
                    None => {
                        requests_open = false;
                        Ok(())
                    }
                    Some(Err(_)) => break,
                },
                // the rare ticks before the feed, which may always have something
                _ = leader_check.tick(), if require_leader => {
                    leaderless_checks = if self.cluster.has_leader().await { 0 } else { leaderless_checks + 1 };
                    if leaderless_checks >= LEADERLESS_CHECKS {
                        let _ = self.out.send(Err(EtcdError::NoLeader.into())).await;
                        break;
                    }
                    Ok(())
                }
                _ = progress.tick() => self.on_progress_tick().await,
                message = feed.recv() => self.on_feed(message, &mut feed).await,
            };
            if step.is_err() {
                break;
            }
        }
    }

    async fn on_request(&mut self, request: WatchRequest) -> Result<(), Gone> {
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => self.cancel(cancel).await,
            Some(RequestUnion::ProgressRequest(_)) => self.progress_request().await,
            // etcd ignores requests it does not understand rather than ending the stream
            None => Ok(()),
        }
    }

    async fn create(&mut self, req: WatchCreateRequest) -> Result<(), Gone> {
        let current = self.history.current_revision();
        let header = Some(self.cluster.header(current));
        let refuse = |reason: &str| WatchResponse {
            header,
            watch_id: NO_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        };
        let id = if req.watch_id == 0 {
            self.auto_id()
        } else if self.watchers.contains_key(&req.watch_id) {
            return self.send(refuse(DUPLICATE_ID)).await;
        } else {
            req.watch_id
        };
        if !self.cluster.may_read(&req.key, &req.range_end) {
            return self.send(refuse(PERMISSION_DENIED)).await;
        }
        let next_rev = match req.start_revision {
            0 => current + 1,
            // a negative start is no revision at all; read it as "everything retained"
            start => start.max(1),
        };
        let watcher = match Watcher::new(id, &req, next_rev) {
            Ok(w) => w,
            Err(reason) => return self.send(refuse(reason)).await,
        };
        self.watchers.insert(id, watcher);
        self.send(WatchResponse { header, watch_id: id, created: true, ..Default::default() }).await?;
        if next_rev <= current {
            self.catch_up_to(current).await?;
        }
        Ok(())
    }

    /// etcd's automatic ids: the lowest unused one from a counter that only goes up.
    fn auto_id(&mut self) -> i64 {
        while self.watchers.contains_key(&self.next_auto_id) {
            self.next_auto_id += 1;
        }
        let id = self.next_auto_id;
        self.next_auto_id += 1;
        id
    }

    async fn cancel(&mut self, req: WatchCancelRequest) -> Result<(), Gone> {
        // etcd answers nothing for an id it does not know
        if self.watchers.remove(&req.watch_id).is_none() {
            return Ok(());
        }
        let header = Some(self.cluster.header(self.history.current_revision()));
        self.send(WatchResponse { header, watch_id: req.watch_id, canceled: true, ..Default::default() }).await
    }

    /// A progress notification for the whole stream: first every watcher is brought up to
    /// the current revision, so the notification is a true bookmark for all of them.
    async fn progress_request(&mut self) -> Result<(), Gone> {
        let current = self.history.current_revision();
        self.catch_up_to(current).await?;
        let header = Some(self.cluster.header(current));
        self.send(WatchResponse { header, watch_id: NO_WATCH_ID, ..Default::default() }).await
    }

    /// The periodic notification of watchers that asked for it and heard nothing since the
    /// last tick.
    async fn on_progress_tick(&mut self) -> Result<(), Gone> {
        let mut due = Vec::new();
        for w in self.watchers.values_mut().filter(|w| w.progress_notify) {
            if w.quiet {
                due.push(w.id);
            }
            w.quiet = true;
        }
        if due.is_empty() {
            return Ok(());
        }
        let current = self.history.current_revision();
        self.catch_up_to(current).await?;
        let header = Some(self.cluster.header(current));
        for id in due {
            // catching up may have told it something after all, or cancelled it
            if self.watchers.get(&id).is_some_and(|w| w.quiet && w.next_rev > current) {
                self.send(WatchResponse { header, watch_id: id, ..Default::default() }).await?;
            }
        }
        Ok(())
    }

    async fn on_feed(
        &mut self,
        message: Result<WatchFeed, RecvError>,
        feed: &mut tokio::sync::broadcast::Receiver<WatchFeed>,
    ) -> Result<(), Gone> {
        match message {
            Ok(WatchFeed::Revision(first)) => {
                // Whatever else is already waiting goes out with it.
                let mut batch = vec![first];
                let mut then_catch_up = false;
                while batch.len() < LIVE_BATCH {
                    match feed.try_recv() {
                        Ok(WatchFeed::Revision(next)) => batch.push(next),
                        Ok(WatchFeed::Restored { .. }) | Err(TryRecvError::Lagged(_)) => {
                            then_catch_up = true;
                            break;
                        }
                        Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => break,
                    }
                }
                self.deliver_live(&batch).await?;
                if then_catch_up {
                    self.catch_up_to(self.history.current_revision()).await?;
                }
                Ok(())
            }
            // The feed moved on without us (we were slow), or the whole state was replaced by
            // a snapshot: what we missed is in history.
            Ok(WatchFeed::Restored { .. }) | Err(RecvError::Lagged(_)) => {
                self.catch_up_to(self.history.current_revision()).await
            }
            Err(RecvError::Closed) => {
                let _ = self.out.send(Err(EtcdError::Stopped.into())).await;
                Err(Gone)
            }
        }
    }

    /// Delivers revisions fresh from the feed; watchers that are behind the first of them
    /// catch up from history first.
    async fn deliver_live(&mut self, batch: &[Arc<RevisionEvents>]) -> Result<(), Gone> {
        let mut start = 0;
        while start < batch.len() {
            // a run of consecutive revisions (the feed has no gaps, but never assume it)
            let mut end = start + 1;
            while end < batch.len() && batch[end].revision == batch[end - 1].revision + 1 {
                end += 1;
            }
            let run = &batch[start..end];
            let (first, last) = (run[0].revision, run[run.len() - 1].revision);
            self.catch_up_to(first - 1).await?;
            let ids: Vec<i64> = self.watchers.keys().copied().collect();
            for id in ids {
                let Some(w) = self.watchers.get_mut(&id) else { continue };
                if w.next_rev > last {
                    continue;
                }
                let batches = w.take(run.iter().map(|r| r.as_ref()), last, RESPONSE_SOFT_LIMIT);
                let fragment = w.fragment;
                self.send_batches(id, fragment, batches).await?;
            }
            start = end;
        }
        Ok(())
    }

    /// Brings every watcher that is behind `target` up to it from history, a chunk at a time,
    /// cancelling those whose history was compacted away.
    async fn catch_up_to(&mut self, target: i64) -> Result<(), Gone> {
        loop {
            let Some(from) = self.watchers.values().map(|w| w.next_rev).filter(|r| *r <= target).min() else {
                return Ok(());
            };
            let compacted = self.history.compact_revision();
            if from <= compacted {
                self.cancel_compacted(compacted).await?;
                continue;
            }
            let to = target.min(from.saturating_add(HISTORY_CHUNK - 1));
            let revisions = match self.history.events(from, to) {
                Ok(revisions) => revisions,
                // compacted between the two reads: the next round sees the new point
                Err(EtcdError::Compacted) => {
                    let compacted = self.history.compact_revision().max(from);
                    self.cancel_compacted(compacted).await?;
                    continue;
                }
                Err(e) => {
                    let _ = self.out.send(Err(e.into())).await;
                    return Err(Gone);
                }
            };
            let ids: Vec<i64> = self.watchers.keys().copied().collect();
            for id in ids {
                let Some(w) = self.watchers.get_mut(&id) else { continue };
                if w.next_rev > to {
                    continue;
                }
                let batches = w.take(&revisions, to, RESPONSE_SOFT_LIMIT);
                let fragment = w.fragment;
                self.send_batches(id, fragment, batches).await?;
            }
        }
    }

    /// Cancels every watcher that still needs a revision at or below `compacted`, telling
    /// each the compaction point, as etcd does.
    async fn cancel_compacted(&mut self, compacted: i64) -> Result<(), Gone> {
        let doomed: Vec<i64> = self.watchers.values().filter(|w| w.next_rev <= compacted).map(|w| w.id).collect();
        let header = Some(self.cluster.header(self.history.current_revision()));
        for id in doomed {
            self.watchers.remove(&id);
            self.send(WatchResponse {
                header,
                watch_id: id,
                canceled: true,
                compact_revision: compacted,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    async fn send_batches(&self, id: i64, fragment: bool, batches: Vec<Batch>) -> Result<(), Gone> {
        for batch in batches {
            let response = WatchResponse {
                header: Some(self.cluster.header(batch.through)),
                watch_id: id,
                events: batch.events,
                ..Default::default()
            };
            if fragment {
                for part in split_fragments(response, MAX_REQUEST_BYTES) {
                    self.send(part).await?;
                }
            } else {
                self.send(response).await?;
            }
        }
        Ok(())
    }

    async fn send(&self, response: WatchResponse) -> Result<(), Gone> {
        self.out.send(Ok(response)).await.map_err(|_| Gone)
    }
}

fn ticker(period: std::time::Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
