//! Round-trip times to each peer, recorded by the network layer and exported as etcd's
//! `etcd_network_peer_round_trip_time_seconds{To="<member id in hex>"}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

use crate::node::metrics::histogram::Histogram;
use crate::node::metrics::histogram::HistogramSnapshot;
use crate::node::raft::types::NodeId;

/// One histogram per peer, created the first time that peer is dialled and kept for the
/// member's lifetime, so its counts never go back (even if the peer is removed).
#[derive(Debug, Default)]
pub struct PeerRoundTrips {
    peers: Mutex<BTreeMap<NodeId, Arc<Histogram>>>,
}

impl PeerRoundTrips {
    /// The histogram of round trips to `peer`; connections hold it so that recording a round
    /// trip takes no lock.
    pub fn to_peer(&self, peer: NodeId) -> Arc<Histogram> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .entry(peer)
            // etcd's buckets: 0.1 ms doubling up to about 3.3 s.
            .or_insert_with(|| Arc::new(Histogram::exponential(0.0001, 2.0, 16)))
            .clone()
    }

    /// Every peer's histogram, in member id order, with the id as etcd prints it.
    pub fn snapshot(&self) -> Vec<(String, HistogramSnapshot)> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.iter().map(|(id, h)| (peer_label(*id), h.snapshot())).collect()
    }
}

/// The value of the `To` label: the member id in lowercase hex without padding, as etcd's
/// `types.ID.String()` and etcdctl print it.
pub fn peer_label(id: NodeId) -> String {
    format!("{id:x}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(histogram: &Histogram, elapsed: Duration) {
        histogram.observe(elapsed.as_secs_f64());
    }

    #[test]
    fn peers_are_labelled_like_etcd_and_keep_their_counts() {
        let trips = PeerRoundTrips::default();
        record(&trips.to_peer(0x8e9e05c52164694d), Duration::from_micros(150));
        record(&trips.to_peer(0xa), Duration::from_millis(2));
        record(&trips.to_peer(0xa), Duration::from_millis(3));
        let snapshot = trips.snapshot();
        let labels: Vec<&str> = snapshot.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["a", "8e9e05c52164694d"]);
        assert_eq!(snapshot[0].1.count, 2);
        assert_eq!(snapshot[1].1.count, 1);
        // 150 µs falls in the 0.2 ms bucket, not the 0.1 ms one.
        assert_eq!(snapshot[1].1.buckets[0], (0.0001, 0));
        assert_eq!(snapshot[1].1.buckets[1], (0.0002, 1));
    }
}
