//! Failover: how long after the leader dies (SIGKILL) does a write through the survivors
//! succeed again? The client retries every 300 ms, as a script running etcdctl in a loop
//! would, so the numbers compare with etcd's measured the same way.

use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::control;
use crate::lab::status;
use crate::lab::supervisor;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::StatusRequest;
use crate::proving::bench::etcd::EtcdCluster;

pub const RETRY_EVERY: Duration = Duration::from_millis(300);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const GIVE_UP: Duration = Duration::from_secs(30);

/// Writes through `endpoints` in turn, an attempt every [`RETRY_EVERY`], until one succeeds;
/// returns how long that took from `since`.
async fn first_write(endpoints: &[String], cert: &CertFiles, since: Instant) -> Result<Duration> {
    let mut attempt = 0usize;
    loop {
        let started = Instant::now();
        let url = &endpoints[attempt % endpoints.len()];
        let put = async {
            let mut c = EtcdClient::connect(url, cert, ATTEMPT_TIMEOUT).await?;
            c.kv.put(PutRequest { key: "bench/failover".into(), value: "x".into(), ..Default::default() }).await?;
            anyhow::Ok(())
        };
        if let Ok(Ok(())) = tokio::time::timeout(ATTEMPT_TIMEOUT, put).await {
            return Ok(since.elapsed());
        }
        anyhow::ensure!(since.elapsed() < GIVE_UP, "no write succeeded within {GIVE_UP:?} of the leader's death");
        attempt += 1;
        tokio::time::sleep(RETRY_EVERY.saturating_sub(started.elapsed())).await;
    }
}

/// Kills the lab's leader `runs` times, measuring each failover and restarting the old leader.
pub async fn raftty(lab: &Lab, runs: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let status = status::gather(lab, Duration::from_secs(2)).await?;
        let leader = status.leader().context("no leader to kill")?.to_string();
        let survivors: Vec<String> =
            lab.config.active_members().filter(|m| m.name != leader).map(|m| m.client_url()).collect();
        control::kill(lab, &leader)?;
        times.push(first_write(&survivors, &lab.root_cert(), Instant::now()).await?);
        lab.spawn_member(&leader)?;
        supervisor::wait_ready(lab, std::slice::from_ref(&leader), supervisor::READY_TIMEOUT).await?;
    }
    Ok(times)
}

/// The same for a running etcd cluster.
pub async fn etcd(cluster: &mut EtcdCluster, cert: &CertFiles, runs: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let leader_url = cluster.wait_ready(cert, Duration::from_secs(30)).await?;
        let leader = cluster.members.iter().position(|m| m.client_url == leader_url).context("leader not found")?;
        let survivors: Vec<String> =
            cluster.members.iter().filter(|m| m.client_url != leader_url).map(|m| m.client_url.clone()).collect();
        cluster.members[leader].kill()?;
        times.push(first_write(&survivors, cert, Instant::now()).await?);
        cluster.members[leader].restart()?;
        // Wait until the restarted member is back in the cluster before the next run.
        let url = cluster.members[leader].client_url.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = async {
                let mut c = EtcdClient::connect(&url, cert, Duration::from_secs(1)).await?;
                anyhow::Ok(c.maintenance.status(StatusRequest {}).await?.into_inner().leader != 0)
            };
            if answered.await.unwrap_or(false) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "etcd member {} did not come back",
                cluster.members[leader].name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(times)
}

/// The median of some durations (the mean of the two middle ones for an even count).
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}
