//! Prometheus metrics with etcd's names, served by every member on its metrics port, so
//! dashboards and alerts written for etcd work against a raftty lab.
//!
//! - `histogram.rs`: the lock-free histogram that storage and network record timings into.
//! - `peers.rs`: round trips to each peer, recorded by `raft/network.rs`.
//! - `families.rs`: figures read at scrape time (fsync and commit durations, database size,
//!   peer round trips) turned into Prometheus metric families.
//! - `raft.rs`: follows openraft's metrics channel for leadership, commit and apply.
//! - `http.rs`: the HTTPS endpoint (`/metrics`, `/health`), mutual TLS only.
//! - `scrape.rs`: the client behind `raftty metrics`.
//!
//! [`MemberMetrics`] owns one member's registry. Values come from real events: leadership,
//! commit and apply from Raft (with leader liveness from the peer service, see `raft.rs`),
//! pending and failed proposals from `Member::propose`, the rest from the stores and the
//! network when Prometheus scrapes.

pub mod families;
pub mod histogram;
pub mod http;
pub mod peers;
pub mod raft;

use std::sync::Arc;

use anyhow::Context;
use anyhow::Result;
use prometheus::Encoder;
use prometheus::IntCounter;
use prometheus::IntGauge;
use prometheus::IntGaugeVec;
use prometheus::Opts;
use prometheus::Registry;
use prometheus::TextEncoder;
use prometheus::process_collector::ProcessCollector;

use crate::node::api::ETCD_VERSION;
use crate::node::metrics::families::StorageCollector;
use crate::node::metrics::families::StorageSources;
use crate::node::raft::types::NodeId;

/// The content type of Prometheus' text exposition format, as etcd serves it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One member's metrics.
pub struct MemberMetrics {
    registry: Registry,
    has_leader: IntGauge,
    is_leader: IntGauge,
    is_learner: IntGauge,
    leader_changes: IntCounter,
    proposals_committed: IntGauge,
    proposals_applied: IntGauge,
    proposals_pending: IntGauge,
    proposals_failed: IntCounter,
    health_success: IntCounter,
    health_failures: IntCounter,
    leader_contact: raft::LeaderContact,
}

impl MemberMetrics {
    pub fn new(member_id: NodeId, storage: StorageSources) -> Result<Arc<MemberMetrics>> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> Result<IntGauge> {
            let gauge = IntGauge::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter> {
            let counter = IntCounter::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        // etcd names the committed and applied indexes `..._total` but declares them gauges;
        // dashboards query them by that name and type, so both are kept.
        let metrics = MemberMetrics {
            has_leader: gauge("etcd_server_has_leader", "1 while this member knows a leader, 0 otherwise.")?,
            is_leader: gauge("etcd_server_is_leader", "1 while this member is the leader, 0 otherwise.")?,
            is_learner: gauge(
                "etcd_server_is_learner",
                "1 while this member is a learner (a non-voting member), 0 otherwise.",
            )?,
            leader_changes: counter(
                "etcd_server_leader_changes_seen_total",
                "How many times this member has seen a new leader.",
            )?,
            proposals_committed: gauge(
                "etcd_server_proposals_committed_total",
                "Index of the last Raft log entry this member knows to be committed.",
            )?,
            proposals_applied: gauge(
                "etcd_server_proposals_applied_total",
                "Index of the last Raft log entry this member has applied.",
            )?,
            proposals_pending: gauge(
                "etcd_server_proposals_pending",
                "Client writes received by this member and waiting to be committed.",
            )?,
            proposals_failed: counter(
                "etcd_server_proposals_failed_total",
                "Client writes received by this member that did not get committed in time.",
            )?,
            health_success: counter("etcd_server_health_success", "Health checks of this member that passed.")?,
            health_failures: counter("etcd_server_health_failures", "Health checks of this member that failed.")?,
            leader_contact: raft::LeaderContact::default(),
            registry,
        };
        let info = |name: &str, help: &str, label: &str, value: &str| -> Result<()> {
            let info = IntGaugeVec::new(Opts::new(name, help), &[label])?;
            info.with_label_values(&[value]).set(1);
            metrics.registry.register(Box::new(info))?;
            Ok(())
        };
        info(
            "etcd_server_id",
            "1, labelled with this member's id in hex.",
            "server_id",
            &peers::peer_label(member_id),
        )?;
        info(
            "etcd_server_version",
            "1, labelled with the etcd version whose API this member speaks.",
            "server_version",
            ETCD_VERSION,
        )?;
        info(
            "etcd_cluster_version",
            "1, labelled with the etcd cluster version (major.minor) this member speaks.",
            "cluster_version",
            &cluster_version(ETCD_VERSION),
        )?;
        metrics.registry.register(Box::new(StorageCollector::new(storage)?))?;
        metrics.registry.register(Box::new(ProcessCollector::for_self()))?;
        Ok(Arc::new(metrics))
    }

    /// Every metric in Prometheus' text format.
    pub fn render(&self) -> Result<String> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).context("encoding metrics")?;
        String::from_utf8(out).context("encoding metrics")
    }

    /// Counts a client write from now until the returned guard is dropped; unless the write
    /// is marked as succeeded by then, it counts as failed. A client that gives up (its
    /// request is dropped) thus counts as a failure too, as in etcd.
    pub fn start_proposal(&self) -> PendingProposal<'_> {
        self.proposals_pending.inc();
        PendingProposal { metrics: self, succeeded: false }
    }

    fn record_health(&self, healthy: bool) {
        if healthy {
            self.health_success.inc();
        } else {
            self.health_failures.inc();
        }
    }
}

/// A client write in progress; see [`MemberMetrics::start_proposal`].
#[must_use = "a proposal is pending only while its guard lives"]
pub struct PendingProposal<'m> {
    metrics: &'m MemberMetrics,
    succeeded: bool,
}

impl PendingProposal<'_> {
    pub fn succeeded(mut self) {
        self.succeeded = true;
    }
}

impl Drop for PendingProposal<'_> {
    fn drop(&mut self) {
        self.metrics.proposals_pending.dec();
        if !self.succeeded {
            self.metrics.proposals_failed.inc();
        }
    }
}

/// etcd reports its cluster version as major.minor of the server version.
fn cluster_version(server_version: &str) -> String {
    let mut parts = server_version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => server_version.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::node::metrics::peers::PeerRoundTrips;
    use crate::node::mvcc::store::MvccStore;
    use crate::node::raft::log_store::LogStoreStats;
    use crate::node::raft::types::StoreIdentity;

    /// A member's metrics over a real (empty) state file in a temporary folder, which lives
    /// as long as the returned guard.
    pub(crate) fn member_metrics() -> (tempfile::TempDir, Arc<MemberMetrics>) {
        let dir = tempfile::tempdir().unwrap();
        let identity = StoreIdentity { cluster_id: 1, member_id: 0xabc };
        let state = MvccStore::open(&dir.path().join("state.redb"), identity).unwrap();
        let metrics = MemberMetrics::new(
            0xabc,
            StorageSources {
                wal: Arc::new(LogStoreStats::default()),
                state: Arc::new(state),
                peers: Arc::new(PeerRoundTrips::default()),
            },
        )
        .unwrap();
        (dir, metrics)
    }

    /// The value of the sample line `series` (name and labels) in `text`.
    pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(series))
            .find_map(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn proposals_are_pending_while_in_flight_and_failed_unless_they_succeed() {
        let (_dir, m) = member_metrics();
        let ok = m.start_proposal();
        let dropped = m.start_proposal();
        let text = m.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_proposals_pending"), Some(2.0));
        ok.succeeded();
        drop(dropped);
        let text = m.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_proposals_pending"), Some(0.0));
        assert_eq!(sample(&text, "etcd_server_proposals_failed_total"), Some(1.0));
    }

    #[test]
    fn the_exposition_has_etcds_families_types_and_info_labels() {
        let (_dir, m) = member_metrics();
        let text = m.render().unwrap();
        for (name, kind) in [
            ("etcd_server_has_leader", "gauge"),
            ("etcd_server_is_leader", "gauge"),
            ("etcd_server_leader_changes_seen_total", "counter"),
            ("etcd_server_proposals_committed_total", "gauge"),
            ("etcd_server_proposals_applied_total", "gauge"),
            ("etcd_server_proposals_pending", "gauge"),
            ("etcd_server_proposals_failed_total", "counter"),
            ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
            ("etcd_disk_backend_commit_duration_seconds", "histogram"),
            ("etcd_mvcc_db_total_size_in_bytes", "gauge"),
            ("process_resident_memory_bytes", "gauge"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no {kind} {name} in:\n{text}");
        }
        assert_eq!(sample(&text, "etcd_server_id{server_id=\"abc\"}"), Some(1.0));
        assert_eq!(sample(&text, "etcd_cluster_version{cluster_version=\"3.4\"}"), Some(1.0));
        assert!(sample(&text, "etcd_mvcc_db_total_size_in_bytes").unwrap() > 0.0);
        assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
        // No peer has been dialled: no round-trip family rather than an empty one.
        assert!(!text.contains("etcd_network_peer_round_trip_time_seconds"));
    }

    #[test]
    fn cluster_version_is_major_dot_minor() {
        assert_eq!(cluster_version("3.4.23"), "3.4");
        assert_eq!(cluster_version("3"), "3");
    }
}
