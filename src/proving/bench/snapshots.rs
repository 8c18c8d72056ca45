//! Backups, side by side: the time to stream a snapshot of 100,000 keys from the leader
//! (the same client code against raftty and etcd), and the time from that file to a
//! one-member cluster serving it again (`raftty restore` against `etcdctl snapshot restore`
//! plus starting etcd).

use std::path::Path;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::RequestOp;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::request_op::Request;

pub const KEYS: usize = 100_000;

pub struct SnapshotTimes {
    pub bytes: usize,
    pub save: Duration,
    pub restore: Option<Duration>,
}

impl SnapshotTimes {
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.save.as_secs_f64().max(1e-9)
    }
}

/// Writes 100,000 keys of 256 bytes under `/snapshot-bench/`, 128 to a txn.
pub async fn fill(client: &mut EtcdClient) -> Result<()> {
    let value = Bytes::from(vec![b'v'; 256]);
    for batch in (0..KEYS).collect::<Vec<_>>().chunks(128) {
        let success = batch
            .iter()
            .map(|i| RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: Bytes::from(format!("/snapshot-bench/{:02}/key-{i:06}", i % 100)),
                    value: value.clone(),
                    ..Default::default()
                })),
            })
            .collect();
        client.kv.txn(TxnRequest { success, ..Default::default() }).await.context("filling the key space")?;
    }
    Ok(())
}

/// Streams a snapshot from `endpoint` into `file`.
pub async fn save(endpoint: &str, cert: &CertFiles, file: &Path) -> Result<(usize, Duration)> {
    let mut client = EtcdClient::connect(endpoint, cert, Duration::from_secs(600)).await?;
    fill(&mut client).await?;
    let started = Instant::now();
    let saved = crate::backup::stream::save(&mut client, file, |_| {}).await?;
    Ok((saved.bytes, started.elapsed()))
}

/// `raftty restore` of `file` into a fresh one-member lab, until it serves.
pub async fn raftty_restore(file: &Path, scratch: &Path) -> Result<Duration> {
    let home = scratch.join("restore-home");
    let started = Instant::now();
    let options = crate::lab::restore::RestoreOptions {
        source: file.to_path_buf(),
        lab: "restored".into(),
        nodes: 1,
        to_revision: None,
        replace: false,
        skip_hash_check: false,
    };
    let report = crate::lab::restore::restore(&home, options, |_| {}).await;
    let took = started.elapsed();
    let _ = crate::lab::supervisor::down(&home, "restored", true);
    report?;
    Ok(took)
}

/// `etcdctl snapshot restore` of `file`, then etcd started on it, until it serves.
pub async fn etcd_restore(file: &Path, scratch: &Path) -> Result<Duration> {
    let ports = crate::lab::ports::pick_free_ports(2, &Default::default())?;
    let (peer, client) = (format!("http://127.0.0.1:{}", ports[0]), format!("http://127.0.0.1:{}", ports[1]));
    let data = scratch.join("etcd-restored");
    let started = Instant::now();
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(file)
        .arg("--data-dir")
        .arg(&data)
        .args(["--name", "r1", "--initial-cluster", &format!("r1={peer}"), "--initial-advertise-peer-urls", &peer])
        .output()
        .context("running etcdctl snapshot restore")?;
    anyhow::ensure!(out.status.success(), "etcdctl snapshot restore: {}", String::from_utf8_lossy(&out.stderr));
    let mut etcd = Command::new("etcd")
        .args(["--name", "r1", "--data-dir"])
        .arg(&data)
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("r1={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting etcd")?;
    let result = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = EtcdClient::connect_lazy_maybe_tls(&client, None, Duration::from_secs(1)) {
                let probe = RangeRequest { key: Bytes::from_static(b"health"), ..Default::default() };
                if c.kv.range(probe).await.is_ok() {
                    return Ok(started.elapsed());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the restored etcd did not serve within a minute");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    .await;
    let _ = etcd.kill();
    let _ = etcd.wait();
    result
}
