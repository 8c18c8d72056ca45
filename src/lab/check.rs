//! `raftty check`: do all running members hold the same data?
//!
//! Every member's HashKV is taken at the same revision (the leader's current one). Members
//! that have not applied that revision yet get a moment to catch up; then each member
//! either agrees with the majority, differs from it, or is behind.

use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::errors::EtcdError;
use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::lab::status;
use crate::proto::etcdserverpb::HashKvRequest;
use crate::proto::etcdserverpb::RangeRequest;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Agrees { hash: u32 },
    Differs { hash: u32 },
    Behind { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub revision: i64,
    pub members: BTreeMap<String, Verdict>,
}

impl CheckReport {
    pub fn all_agree(&self) -> bool {
        self.members.values().all(|v| matches!(v, Verdict::Agrees { .. }))
    }

    pub fn render(&self) -> String {
        let mut out = format!("HashKV at revision {}:\n", self.revision);
        for (name, verdict) in &self.members {
            let line = match verdict {
                Verdict::Agrees { hash } => format!("{name}  {hash:08x}  agrees"),
                Verdict::Differs { hash } => format!("{name}  {hash:08x}  DIFFERS from the majority"),
                Verdict::Behind { reason } => format!("{name}  --------  behind: {reason}"),
            };
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str(if self.all_agree() { "all running members agree\n" } else { "members do NOT agree\n" });
        out
    }
}

/// Checks the lab, giving members that are behind up to `catch_up` to reach the revision.
pub async fn check(lab: &Lab, catch_up: Duration) -> Result<CheckReport> {
    let status = status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.leader().context("no member leads right now; cannot pick a revision to compare at")?;
    let cert = lab.root_cert();
    let leader_url = lab.config.member(leader)?.client_url();
    let mut client = EtcdClient::connect(&leader_url, &cert, Duration::from_secs(5)).await?;
    // A linearizable read: the leader's revision, with everything committed applied.
    let revision = client
        .kv
        .range(RangeRequest { key: "raftty/check".into(), ..Default::default() })
        .await?
        .into_inner()
        .header
        .map(|h| h.revision)
        .unwrap_or(0);

    let running: Vec<_> = status
        .nodes
        .iter()
        .filter(|n| n.state == ProcessState::Running)
        .map(|n| (n.name.clone(), n.client_url.clone()))
        .collect();
    let hashes = futures::future::join_all(running.iter().map(|(name, url)| {
        let cert = cert.clone();
        async move { (name.clone(), hash_at(url, &cert, revision, catch_up).await) }
    }))
    .await;

    Ok(CheckReport { revision, members: classify(hashes) })
}

/// Each member agrees with the most common hash, differs from it, or could not answer.
fn classify(hashes: Vec<(String, Result<u32, String>)>) -> BTreeMap<String, Verdict> {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for hash in hashes.iter().filter_map(|(_, h)| h.as_ref().ok()) {
        *counts.entry(*hash).or_default() += 1;
    }
    let majority = counts.iter().max_by_key(|(_, n)| **n).map(|(h, _)| *h);
    hashes
        .into_iter()
        .map(|(name, h)| {
            let verdict = match h {
                Ok(hash) if Some(hash) == majority => Verdict::Agrees { hash },
                Ok(hash) => Verdict::Differs { hash },
                Err(reason) => Verdict::Behind { reason },
            };
            (name, verdict)
        })
        .collect()
}

/// A member's HashKV at `revision`, waiting while it has not applied that far.
async fn hash_at(url: &str, cert: &crate::pki::CertFiles, revision: i64, catch_up: Duration) -> Result<u32, String> {
    let deadline = Instant::now() + catch_up;
    let mut last = String::new();
    while Instant::now() < deadline {
        match EtcdClient::connect(url, cert, Duration::from_secs(2)).await {
            Ok(mut c) => match c.maintenance.hash_kv(HashKvRequest { revision }).await {
                Ok(r) => return Ok(r.into_inner().hash),
                Err(e) if e.message() == EtcdError::FutureRevision.to_string() => {
                    last = format!("has not applied revision {revision} yet");
                }
                // Waiting cannot help: etcd hashes only revisions above the compaction floor.
                Err(e) if e.message() == EtcdError::Compacted.to_string() => {
                    return Err(format!(
                        "revision {revision} is its compaction floor, and HashKV needs a revision above it (as in \
                         etcd): check again after the next write"
                    ));
                }
                Err(e) => last = e.message().to_string(),
            },
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_majority_hash_decides_who_differs() {
        let members = classify(vec![
            ("n1".into(), Ok(7)),
            ("n2".into(), Ok(7)),
            ("n3".into(), Ok(9)),
            ("n4".into(), Err("has not applied revision 12 yet".into())),
        ]);
        assert_eq!(members["n1"], Verdict::Agrees { hash: 7 });
        assert_eq!(members["n3"], Verdict::Differs { hash: 9 });
        assert!(matches!(members["n4"], Verdict::Behind { .. }));
        let report = CheckReport { revision: 12, members };
        assert!(!report.all_agree());
        let text = report.render();
        assert!(text.contains("n3  00000009  DIFFERS") && text.contains("members do NOT agree"), "{text}");
    }
}
