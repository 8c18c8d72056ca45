//! The lease client of a torture run: grants leases, puts keys under them, revokes them, and
//! checks that once a revoke is acknowledged its keys are gone for every later reader.
//!
//! Leased keys live under their own prefix and stay out of the linearizability history:
//! expiry and revoke delete them outside any request the checker could see.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::LeaseGrantRequest;
use crate::proto::etcdserverpb::LeaseRevokeRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proving::check::Outcome;
use crate::proving::check::Output;
use crate::proving::torture::workload::Endpoints;
use crate::proving::torture::workload::REQUEST_TIMEOUT;
use crate::proving::torture::workload::Tally;

/// What the lease client found: its counts, and keys that outlived an acknowledged revoke.
#[derive(Debug, Default)]
pub struct LeaseReport {
    pub tally: Tally,
    pub violations: Vec<String>,
}

fn ok() -> Outcome {
    Outcome::Ok(Output::Put { revision: 0 })
}

pub async fn client(
    seed: u64,
    prefix: String,
    endpoints: Endpoints,
    cert: CertFiles,
    stop: Arc<AtomicBool>,
) -> LeaseReport {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1ea5e);
    let mut report = LeaseReport::default();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let url = {
            let list = endpoints.read().unwrap_or_else(|e| e.into_inner());
            if list.is_empty() {
                break;
            }
            list[rng.random_range(0..list.len())].clone()
        };
        let Ok(mut c) = EtcdClient::connect(&url, &cert, REQUEST_TIMEOUT).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ttl = rng.random_range(5..15);
        let Ok(granted) = c.lease.lease_grant(LeaseGrantRequest { ttl, id: 0 }).await else {
            report.tally.count("lease grant", &Outcome::Unknown);
            continue;
        };
        report.tally.count("lease grant", &ok());
        let lease = granted.into_inner().id;
        let keys: Vec<String> = (0..rng.random_range(1..4)).map(|i| format!("{prefix}{round}-{i}")).collect();
        for key in &keys {
            let put = PutRequest {
                key: key.clone().into_bytes().into(),
                value: "leased".into(),
                lease,
                ..Default::default()
            };
            let outcome = if c.kv.put(put).await.is_ok() { ok() } else { Outcome::Unknown };
            report.tally.count("put with lease", &outcome);
        }
        if rng.random_bool(0.5) {
            // Left to expire: the leader revokes it when its TTL runs out.
            continue;
        }
        match c.lease.lease_revoke(LeaseRevokeRequest { id: lease }).await {
            Ok(_) => {
                report.tally.count("lease revoke", &ok());
                // Acknowledged: no reader anywhere may see these keys any more.
                for key in &keys {
                    let range = RangeRequest { key: key.clone().into_bytes().into(), ..Default::default() };
                    if let Ok(resp) = c.kv.range(range).await
                        && !resp.get_ref().kvs.is_empty()
                    {
                        report.violations.push(format!(
                            "key {key} of lease {lease:x} is still there after the revoke was acknowledged (read through {url})"
                        ));
                    }
                }
            }
            Err(_) => report.tally.count("lease revoke", &Outcome::Unknown),
        }
    }
    report
}
