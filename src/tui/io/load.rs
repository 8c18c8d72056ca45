//! `:load N`: N puts per second to keys under `/load/`, so replication can be watched
//! under traffic; its rate and latency are reported every second.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use crate::proto::etcdserverpb::PutRequest;
use crate::tui::app::Action;
use crate::tui::app::LoadStats;
use crate::tui::io::Io;

/// Keys the load cycles through, so the keyspace does not grow without end.
const KEYS: u64 = 100;
/// Puts in flight at once; past that the load falls behind rather than piling up.
const IN_FLIGHT: usize = 64;

struct Window {
    latencies: Histogram<u64>,
    errors: u64,
}

pub fn set(io: &Arc<Io>, rate: Option<u32>) {
    let task = rate.map(|rate| {
        let io = io.clone();
        tokio::spawn(async move { run(io, rate).await })
    });
    let old = std::mem::replace(&mut *io.load_task.lock().unwrap_or_else(|e| e.into_inner()), task);
    if let Some(old) = old {
        old.abort();
    }
    if rate.is_none() {
        io.send(Action::Load(None));
    }
}

async fn run(io: Arc<Io>, rate: u32) {
    let window = Arc::new(Mutex::new(Window {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        errors: 0,
    }));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    let mut sent: u64 = 0;
    let mut since = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                let Some(endpoint) = io.endpoints().into_iter().next() else { continue };
                let Ok(mut client) = io.client(&endpoint) else { continue };
                let window = window.clone();
                let key = format!("/load/key-{:03}", sent % KEYS);
                sent += 1;
                tokio::spawn(async move {
                    let start = Instant::now();
                    let put = PutRequest { key: Bytes::from(key), value: Bytes::from(format!("{sent}")), ..Default::default() };
                    let ok = client.kv.put(put).await.is_ok();
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    if ok {
                        let _ = w.latencies.record(start.elapsed().as_micros().max(1) as u64);
                    } else {
                        w.errors += 1;
                    }
                    drop(permit);
                });
            }
            _ = report.tick() => {
                let elapsed = since.elapsed().as_secs_f64();
                since = Instant::now();
                let stats = {
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    let stats = LoadStats {
                        target_per_sec: rate,
                        done_per_sec: w.latencies.len() as f64 / elapsed.max(0.001),
                        p50_ms: w.latencies.value_at_quantile(0.5) as f64 / 1000.0,
                        p99_ms: w.latencies.value_at_quantile(0.99) as f64 / 1000.0,
                        errors: w.errors,
                    };
                    w.latencies.reset();
                    stats
                };
                io.send(Action::Load(Some(stats)));
            }
        }
    }
}
