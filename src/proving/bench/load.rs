//! A load generator speaking the etcd API over mTLS: many concurrent clients sharing a few
//! HTTP/2 connections, each recording every request's latency. The same code drives raftty
//! and etcd, so the two are measured identically.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::Rng;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    GetLinearizable,
    GetSerializable,
}

#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub op: Op,
    pub clients: usize,
    pub duration: Duration,
    /// Auth on: every request carries a token of a user who is not root, and is checked.
    pub auth: bool,
}

impl Workload {
    pub fn label(&self) -> String {
        let what = match self.op {
            Op::Put => "put",
            Op::GetLinearizable => "get (linearizable)",
            Op::GetSerializable => "get (serializable)",
        };
        let s = if self.clients == 1 { "" } else { "s" };
        let auth = if self.auth { ", auth on" } else { "" };
        format!("{what}, {} client{s}{auth}", self.clients)
    }
}

/// What one workload achieved.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Keys and values as etcd's own benchmark makes them: a fixed key space, random values.
pub struct KeySpace {
    pub keys: u64,
    pub value: Bytes,
}

impl KeySpace {
    pub fn new(keys: u64, value_size: usize) -> KeySpace {
        let mut value = vec![0u8; value_size];
        rand::rng().fill(&mut value[..]);
        KeySpace { keys, value: value.into() }
    }

    fn key(&self, n: u64) -> Bytes {
        format!("bench/{n:08x}").into()
    }

    fn random_key(&self) -> Bytes {
        self.key(rand::rng().random_range(0..self.keys))
    }
}

/// Connections to share among clients: etcd's benchmark also multiplexes many clients over
/// fewer connections.
fn connection_count(clients: usize) -> usize {
    clients.clamp(1, 16)
}

/// Runs `w`, sending `token` (etcd's simple token) with every request when given.
pub async fn run(
    endpoint: &str,
    cert: &CertFiles,
    space: &Arc<KeySpace>,
    w: Workload,
    token: Option<&str>,
) -> Result<Outcome> {
    let token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        token.map(|t| t.parse()).transpose().map_err(|e| anyhow::anyhow!("a token that is not ASCII: {e}"))?;
    let mut connections = Vec::new();
    for _ in 0..connection_count(w.clients) {
        connections.push(EtcdClient::connect(endpoint, cert, Duration::from_secs(10)).await?);
    }
    let start = Instant::now();
    let deadline = start + w.duration;
    let mut tasks = Vec::new();
    for i in 0..w.clients {
        let mut client = connections[i % connections.len()].clone();
        let space = space.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ops, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let began = Instant::now();
                let ok = match w.op {
                    Op::Put => client
                        .kv
                        .put(with_token(
                            &token,
                            PutRequest { key: space.random_key(), value: space.value.clone(), ..Default::default() },
                        ))
                        .await
                        .is_ok(),
                    Op::GetLinearizable | Op::GetSerializable => {
                        let req = with_token(
                            &token,
                            RangeRequest {
                                key: space.random_key(),
                                serializable: w.op == Op::GetSerializable,
                                ..Default::default()
                            },
                        );
                        client.kv.range(req).await.is_ok()
                    }
                };
                if ok {
                    ops += 1;
                    latency.saturating_record(began.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (ops, errors, latency)
        }));
    }
    let mut total =
        Outcome { ops: 0, errors: 0, elapsed: Duration::ZERO, latency: Histogram::new_with_bounds(1, 60_000_000, 3)? };
    for t in tasks {
        let (ops, errors, latency) = t.await?;
        total.ops += ops;
        total.errors += errors;
        total.latency.add(latency)?;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

fn with_token<T>(token: &Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>, req: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(req);
    if let Some(t) = token {
        req.metadata_mut().insert("token", t.clone());
    }
    req
}

/// Writes every key once, so reads find values.
pub async fn fill(endpoint: &str, cert: &CertFiles, space: &Arc<KeySpace>) -> Result<()> {
    let clients = 64u64;
    let mut tasks = Vec::new();
    let conn = EtcdClient::connect(endpoint, cert, Duration::from_secs(10)).await?;
    for c in 0..clients {
        let mut client = conn.clone();
        let space = space.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while n < space.keys {
                client
                    .kv
                    .put(PutRequest { key: space.key(n), value: space.value.clone(), ..Default::default() })
                    .await?;
                n += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
