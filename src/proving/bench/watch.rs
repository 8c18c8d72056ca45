//! Watch fan-out: what many watchers on one prefix cost the writers, and how soon each
//! watcher hears of each write. The same code measures raftty and etcd.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio_stream::StreamExt;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::watch_request::RequestUnion;

/// What [`watch_fanout`] measured.
#[derive(Debug, Clone)]
pub struct FanoutReport {
    pub watchers: usize,
    pub writes: usize,
    /// Puts per second with nobody watching.
    pub writes_per_sec_alone: f64,
    /// Puts per second while every watcher watches the prefix written to.
    pub writes_per_sec_watched: f64,
    /// From a put being sent to a watcher receiving its event, over every (watcher, put).
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub delivery_max_ms: f64,
    /// Events that never arrived (each watcher should get every put once).
    pub missing_events: u64,
}

impl std::fmt::Display for FanoutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} watchers, {} puts: {:.0} puts/s alone, {:.0} puts/s watched; delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.watchers,
            self.writes,
            self.writes_per_sec_alone,
            self.writes_per_sec_watched,
            self.delivery_p50_ms,
            self.delivery_p99_ms,
            self.delivery_max_ms
        )?;
        if self.missing_events > 0 {
            write!(f, "; {} events missing", self.missing_events)?;
        }
        Ok(())
    }
}

/// Measures watch fan-out against the member at `endpoint`: `writes` puts of `value_size`
/// bytes from 16 concurrent clients, first with nobody watching, then with `watchers` watch
/// streams on the prefix they write to (spread over connections of at most 100 streams, as
/// HTTP/2 servers limit concurrent streams per connection). Each value carries the put's
/// number, so every watcher times every event against the moment its put was sent.
pub async fn watch_fanout(
    endpoint: &str,
    cert: &CertFiles,
    watchers: usize,
    writes: usize,
    value_size: usize,
) -> Result<FanoutReport> {
    const WRITERS: usize = 16;
    const STREAMS_PER_CONNECTION: usize = 100;
    let timeout = Duration::from_secs(30);
    let run = format!("fanout-{:08x}", rand::random::<u32>());
    let writer = EtcdClient::connect(endpoint, cert, timeout).await?;

    let quiet_prefix = format!("{run}/quiet/");
    let alone = put_all(&writer, &quiet_prefix, writes, value_size, WRITERS, None).await?;

    let prefix = format!("{run}/watched/");
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let mut connections = Vec::new();
    for _ in 0..watchers.div_ceil(STREAMS_PER_CONNECTION) {
        connections.push(EtcdClient::connect(endpoint, cert, Duration::from_secs(3600)).await?);
    }
    let mut streams = Vec::new();
    for i in 0..watchers {
        let mut client = connections[i / STREAMS_PER_CONNECTION].clone();
        let (requests, incoming) = tokio::sync::mpsc::channel(1);
        let create = WatchCreateRequest {
            key: Bytes::from(prefix.clone()),
            range_end: crate::proving::check::watch::prefix_end(prefix.as_bytes()),
            ..Default::default()
        };
        requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) }).await?;
        let mut stream = client.watch.watch(tokio_stream::wrappers::ReceiverStream::new(incoming)).await?.into_inner();
        // the watch exists once its creation is confirmed: no put may go unwatched
        match stream.next().await {
            Some(Ok(r)) if r.created && !r.canceled => {}
            other => anyhow::bail!("watch {i} was not created: {other:?}"),
        }
        streams.push((requests, stream));
    }

    let mut receivers = Vec::new();
    for (requests, mut stream) in streams {
        let sent_at = sent_at.clone();
        receivers.push(tokio::spawn(async move {
            let _keep_open = requests;
            let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds");
            let mut received = 0usize;
            while received < writes {
                let Some(Ok(response)) = stream.next().await else { break };
                let now = epoch.elapsed().as_micros() as u64;
                for event in &response.events {
                    let index = event.kv.as_ref().and_then(|kv| kv.value.get(..8)).map(|b| {
                        let mut n = [0u8; 8];
                        n.copy_from_slice(b);
                        u64::from_le_bytes(n) as usize
                    });
                    if let Some(sent) = index.and_then(|i| sent_at.get(i)) {
                        latency.saturating_record(now.saturating_sub(sent.load(Ordering::Relaxed)).max(1));
                    }
                    received += 1;
                }
            }
            (received, latency)
        }));
    }

    let watched = put_all(&writer, &prefix, writes, value_size, WRITERS, Some((&sent_at, epoch))).await?;

    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut received_total = 0u64;
    let grace = Duration::from_secs(10) + Duration::from_millis(writes as u64);
    for receiver in receivers {
        // a watcher still missing events after the grace period counts them as missing
        if let Ok(joined) = tokio::time::timeout(grace, receiver).await {
            let (received, h) = joined.context("a watcher task failed")?;
            received_total += received as u64;
            latency.add(h)?;
        }
    }
    let expected = (watchers * writes) as u64;
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(FanoutReport {
        watchers,
        writes,
        writes_per_sec_alone: alone,
        writes_per_sec_watched: watched,
        delivery_p50_ms: ms(latency.value_at_quantile(0.50)),
        delivery_p99_ms: ms(latency.value_at_quantile(0.99)),
        delivery_max_ms: ms(latency.max()),
        missing_events: expected.saturating_sub(received_total),
    })
}

/// Puts `writes` keys under `prefix` from `clients` concurrent clients; returns puts per
/// second. With `stamps`, records when each put was sent (microseconds since the epoch
/// given), its number being the first 8 bytes of its value.
async fn put_all(
    connection: &EtcdClient,
    prefix: &str,
    writes: usize,
    value_size: usize,
    clients: usize,
    stamps: Option<(&Arc<Vec<AtomicU64>>, Instant)>,
) -> Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = connection.clone();
        let next = next.clone();
        let prefix = prefix.to_string();
        let stamps = stamps.map(|(s, epoch)| (s.clone(), epoch));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= writes {
                    return anyhow::Ok(());
                }
                let mut value = vec![b'x'; value_size.max(8)];
                value[..8].copy_from_slice(&(n as u64).to_le_bytes());
                if let Some((stamps, epoch)) = &stamps
                    && let Some(slot) = stamps.get(n)
                {
                    slot.store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                let key = format!("{prefix}{:04}", n % 1000);
                client.kv.put(PutRequest { key: key.into(), value: value.into(), ..Default::default() }).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(writes as f64 / started.elapsed().as_secs_f64())
}
