//! Watchers that run through faults: each keeps one etcd watch going, resuming on another
//! member (from the revision after the last one it was told about) whenever its connection
//! ends, and records everything it receives as segments for `check::watch`.

use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;
use tokio::sync::watch as signal;
use tokio_stream::StreamExt;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::WatchProgressRequest;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proving::check::watch::CommittedHistory;
use crate::proving::check::watch::Segment;
use crate::proving::check::watch::WatchSpec;
use crate::proving::torture::workload::Endpoints;

/// How long one watch connection may stay open.
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a watcher asks for a progress notification (a bookmark of what it has).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// One watcher: what it watches, from where, and where it may connect.
#[derive(Clone)]
pub struct WatchPlan {
    pub name: String,
    pub spec: WatchSpec,
    /// 0: from now.
    pub start: i64,
    /// Client URLs to use in turn; read afresh at each reconnection.
    pub endpoints: Endpoints,
    /// Drop the connection on purpose after this many responses, for this many segments.
    pub disconnect_after: Option<(usize, usize)>,
}

/// How a segment ended.
enum End {
    /// It covered the final revision.
    Done,
    /// The member went away, or the connection was dropped on purpose.
    Interrupted,
}

/// Runs a watch until it has covered the revision sent through `last` (once the writers
/// have stopped), resuming on the next endpoint each time a connection ends.
pub async fn run_watcher(plan: WatchPlan, cert: CertFiles, last: signal::Receiver<i64>) -> Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut covered: Option<i64> = None;
    let mut attempt = 0usize;
    loop {
        let url = {
            let list = plan.endpoints.read().unwrap_or_else(|e| e.into_inner());
            anyhow::ensure!(!list.is_empty(), "watch {} has no member to connect to", plan.name);
            list[attempt % list.len()].clone()
        };
        let forced = plan.disconnect_after.filter(|(_, times)| segments.len() < *times).map(|(after, _)| after);
        let start = covered.map_or(plan.start, |c| c + 1);
        attempt += 1;
        let (segment, end) = run_segment(&plan, &url, &cert, start, forced, last.clone()).await?;
        if let Some(segment) = segment {
            covered = Some(covered_by(&segment));
            segments.push(segment);
        }
        match end {
            End::Done => return Ok(segments),
            End::Interrupted => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        anyhow::ensure!(attempt < 2000, "watch {} cannot stay connected", plan.name);
    }
}

/// What a segment is known to have told: up to its last event or bookmark.
pub fn covered_by(segment: &Segment) -> i64 {
    let mut covered = segment.start_revision - 1;
    for r in &segment.responses {
        if r.created || r.canceled {
            continue;
        }
        let revision = match r.events.last() {
            Some(e) => e.kv.as_ref().map_or(0, |kv| kv.mod_revision),
            None => r.header.as_ref().map_or(0, |h| h.revision),
        };
        covered = covered.max(revision);
    }
    covered
}

async fn run_segment(
    plan: &WatchPlan,
    url: &str,
    cert: &CertFiles,
    start: i64,
    forced: Option<usize>,
    mut last: signal::Receiver<i64>,
) -> Result<(Option<Segment>, End)> {
    let Ok(mut client) = EtcdClient::connect(url, cert, STREAM_TIMEOUT).await else {
        return Ok((None, End::Interrupted));
    };
    let (requests, incoming) = tokio::sync::mpsc::channel(4);
    let create = plan.spec.to_request(start);
    let _ = requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) }).await;
    let Ok(response) = client.watch.watch(tokio_stream::wrappers::ReceiverStream::new(incoming)).await else {
        return Ok((None, End::Interrupted));
    };
    let mut stream = response.into_inner();
    let mut segment: Option<Segment> = None;
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(r)) => {
                    match segment.as_mut() {
                        // A member without a leader refuses new watches: try another.
                        None if r.created && r.canceled => return Ok((None, End::Interrupted)),
                        None if r.created => {
                            let start_revision = if start == 0 { r.header.as_ref().map_or(0, |h| h.revision) + 1 } else { start };
                            segment = Some(Segment { label: url.to_string(), start_revision, responses: vec![r] });
                        }
                        None => anyhow::bail!("watch {}: a response before the creation: {r:?}", plan.name),
                        Some(s) => s.responses.push(r),
                    }
                    let s = segment.as_ref().context("a segment after the creation")?;
                    if forced.is_some_and(|after| s.responses.len() > after) {
                        return Ok((segment, End::Interrupted));
                    }
                    if covered_by(s) >= *last.borrow() {
                        return Ok((segment, End::Done));
                    }
                }
                _ => return Ok((segment, End::Interrupted)),
            },
            _ = progress.tick() => {
                let request = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) };
                if requests.send(request).await.is_err() {
                    return Ok((segment, End::Interrupted));
                }
            }
            _ = last.changed() => {}
        }
    }
}

/// The committed history up to `through`: a watch of everything from revision 1 with
/// previous values, on `url`.
pub async fn read_history(url: &str, cert: &CertFiles, through: i64) -> Result<CommittedHistory> {
    let mut client = EtcdClient::connect(url, cert, STREAM_TIMEOUT).await?;
    let (requests, incoming) = tokio::sync::mpsc::channel(4);
    let everything = WatchSpec { range_end: Bytes::from_static(b"\0"), ..WatchSpec::key("\0").with_prev_kv() };
    requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(everything.to_request(1))) }).await?;
    requests.send(WatchRequest { request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})) }).await?;
    let mut stream = client.watch.watch(tokio_stream::wrappers::ReceiverStream::new(incoming)).await?.into_inner();
    let mut events = Vec::new();
    while let Some(r) = stream.next().await {
        let r = r?;
        anyhow::ensure!(!r.canceled, "the history watch was cancelled: {r:?}");
        let bookmark = r.events.is_empty() && !r.created;
        events.extend(r.events.into_iter().filter(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision <= through)));
        if bookmark && r.header.is_some_and(|h| h.revision >= through) {
            break;
        }
    }
    CommittedHistory::from_events(events, through).map_err(|e| anyhow::anyhow!("the history is malformed: {e}"))
}
