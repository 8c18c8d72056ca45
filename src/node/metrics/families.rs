//! Metric families read from storage and the network at scrape time: their values already
//! live in the log store, the state file and the peer connections, so rather than copying
//! them into Prometheus types on every event, they are converted when someone scrapes.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::core::Desc;
use prometheus::proto;

use crate::node::metrics::histogram::HistogramSnapshot;
use crate::node::metrics::peers::PeerRoundTrips;
use crate::node::mvcc::store::MvccStore;
use crate::node::raft::log_store::LogStoreStats;

pub const WAL_FSYNC: &str = "etcd_disk_wal_fsync_duration_seconds";
pub const BACKEND_COMMIT: &str = "etcd_disk_backend_commit_duration_seconds";
pub const DB_TOTAL_SIZE: &str = "etcd_mvcc_db_total_size_in_bytes";
pub const PEER_ROUND_TRIP: &str = "etcd_network_peer_round_trip_time_seconds";
/// etcd's label for the peer a round trip went to.
pub const PEER_LABEL: &str = "To";

/// Where the storage and network figures of one member come from.
pub struct StorageSources {
    pub wal: Arc<LogStoreStats>,
    pub state: Arc<MvccStore>,
    pub peers: Arc<PeerRoundTrips>,
}

/// A Prometheus collector over [`StorageSources`].
pub struct StorageCollector {
    sources: StorageSources,
    descs: Vec<Desc>,
}

impl StorageCollector {
    pub fn new(sources: StorageSources) -> prometheus::Result<StorageCollector> {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(
                name.to_string(),
                help.to_string(),
                labels.iter().map(|l| l.to_string()).collect(),
                HashMap::new(),
            )
        };
        let descs = vec![
            desc(WAL_FSYNC, "Seconds each durable commit of the Raft log took, fsync included.", &[])?,
            desc(BACKEND_COMMIT, "Seconds each commit that made the applied key-value state durable took.", &[])?,
            desc(DB_TOTAL_SIZE, "Size in bytes of the file holding the key-value state and its history.", &[])?,
            desc(
                PEER_ROUND_TRIP,
                "Seconds from sending a heartbeat or pre-vote to a peer to its answer.",
                &[PEER_LABEL],
            )?,
        ];
        Ok(StorageCollector { sources, descs })
    }

    fn help(&self, name: &str) -> String {
        self.descs.iter().find(|d| d.fq_name == name).map(|d| d.help.clone()).unwrap_or_default()
    }
}

impl Collector for StorageCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let peers = self
            .sources
            .peers
            .snapshot()
            .into_iter()
            .map(|(to, h)| histogram_metric(&[(PEER_LABEL, to.as_str())], &h))
            .collect();
        vec![
            family(
                WAL_FSYNC,
                self.help(WAL_FSYNC),
                proto::MetricType::HISTOGRAM,
                vec![histogram_metric(&[], &self.sources.wal.commit_seconds())],
            ),
            family(
                BACKEND_COMMIT,
                self.help(BACKEND_COMMIT),
                proto::MetricType::HISTOGRAM,
                vec![histogram_metric(&[], &self.sources.state.disk_commit_seconds())],
            ),
            family(
                DB_TOTAL_SIZE,
                self.help(DB_TOTAL_SIZE),
                proto::MetricType::GAUGE,
                vec![gauge_metric(self.sources.state.db_size_bytes() as f64)],
            ),
            // With no peer dialled yet this family is empty, and the registry leaves it out.
            family(PEER_ROUND_TRIP, self.help(PEER_ROUND_TRIP), proto::MetricType::HISTOGRAM, peers),
        ]
    }
}

pub fn family(name: &str, help: String, kind: proto::MetricType, metrics: Vec<proto::Metric>) -> proto::MetricFamily {
    let mut family = proto::MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help);
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn gauge_metric(value: f64) -> proto::Metric {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    proto::Metric::from_gauge(gauge)
}

/// One histogram sample set; `+Inf` is left to the encoder, which writes it from the count.
pub fn histogram_metric(labels: &[(&str, &str)], snapshot: &HistogramSnapshot) -> proto::Metric {
    let buckets = snapshot
        .buckets
        .iter()
        .map(|(upper_bound, cumulative)| {
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*upper_bound);
            bucket.set_cumulative_count(*cumulative);
            bucket
        })
        .collect();
    let mut histogram = proto::Histogram::default();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(snapshot.count);
    histogram.set_sample_sum(snapshot.sum);
    let mut metric = proto::Metric::from_label(
        labels
            .iter()
            .map(|(name, value)| {
                let mut pair = proto::LabelPair::default();
                pair.set_name(name.to_string());
                pair.set_value(value.to_string());
                pair
            })
            .collect(),
    );
    metric.set_histogram(histogram);
    metric
}

#[cfg(test)]
mod tests {
    use prometheus::Encoder;
    use prometheus::TextEncoder;

    use super::*;
    use crate::node::metrics::histogram::Histogram;

    fn text(families: &[proto::MetricFamily]) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(families, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_histogram_renders_in_prometheus_text_with_cumulative_buckets_and_inf() {
        let h = Histogram::exponential(0.001, 2.0, 3);
        h.observe(0.0015);
        h.observe(0.0005);
        h.observe(1.0);
        let family =
            family(WAL_FSYNC, "help".into(), proto::MetricType::HISTOGRAM, vec![histogram_metric(&[], &h.snapshot())]);
        assert_eq!(
            text(&[family]),
            "# HELP etcd_disk_wal_fsync_duration_seconds help\n\
             # TYPE etcd_disk_wal_fsync_duration_seconds histogram\n\
             etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 1\n\
             etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 2\n\
             etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 2\n\
             etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n\
             etcd_disk_wal_fsync_duration_seconds_sum 1.002\n\
             etcd_disk_wal_fsync_duration_seconds_count 3\n"
        );
    }

    #[test]
    fn peer_histograms_carry_etcds_to_label_before_le() {
        let trips = PeerRoundTrips::default();
        trips.to_peer(0xbeef).observe(0.00005);
        let (to, snapshot) = trips.snapshot().remove(0);
        let family = family(
            PEER_ROUND_TRIP,
            "help".into(),
            proto::MetricType::HISTOGRAM,
            vec![histogram_metric(&[(PEER_LABEL, &to)], &snapshot)],
        );
        let text = text(&[family]);
        assert!(
            text.contains("etcd_network_peer_round_trip_time_seconds_bucket{To=\"beef\",le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("etcd_network_peer_round_trip_time_seconds_count{To=\"beef\"} 1\n"), "{text}");
    }
}
