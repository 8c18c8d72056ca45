//! Maintenance.Snapshot as etcd streams it (the bbolt file in 32 KiB chunks, each with the
//! bytes still to come, then one message holding the SHA-256 of all of them), built from
//! one consistent view of a member's store; and the client side, `raftty snapshot save`.

use std::path::Path;

use anyhow::Context;
use anyhow::Result;
use tokio_stream::StreamExt;

use crate::backup::etcd_db::Backend;
use crate::backup::etcd_db::Change;
use crate::backup::etcd_db::MemberJson;
use crate::backup::snapshot_file;
use crate::client::EtcdClient;
use crate::node::mvcc::StoreError;
use crate::node::mvcc::store::StoreSnapshot;
use crate::progress::Progress;
use crate::progress::Unit;
use crate::proto::etcdserverpb::SnapshotRequest;
use crate::proto::etcdserverpb::SnapshotResponse;

/// etcd's chunk size.
pub const CHUNK: usize = 32 * 1024;

/// The backend etcd would hold for this view of a member's store.
pub fn backend_of(
    view: &StoreSnapshot,
    members: Vec<MemberJson>,
    consistent_index: u64,
) -> Result<Backend, StoreError> {
    let mut changes = Vec::new();
    view.for_each_revision::<StoreError>(|rev, record| {
        let kv = record.kv.unwrap_or_default();
        changes.push(Change { main: rev.main, sub: rev.sub, tombstone: record.tombstone, kv });
        Ok(())
    })?;
    let leases = view.leases()?.into_iter().map(|l| (l.id, l.ttl)).collect();
    let alarms = view.state().alarms.iter().map(|a| (a.member_id, a.alarm)).collect();
    let auth = view.state().auth.clone().filter(|a| a.enabled || !a.users.is_empty() || !a.roles.is_empty());
    Ok(Backend {
        changes,
        compact_revision: view.state().compact_revision,
        consistent_index,
        leases,
        members,
        alarms,
        auth,
    })
}

/// The messages of one snapshot stream for the bbolt file `db`.
pub fn responses(db: Vec<u8>) -> Vec<SnapshotResponse> {
    let sha = snapshot_file::sha256(&db);
    let total = db.len();
    let mut sent = 0;
    let mut out = Vec::with_capacity(total / CHUNK + 2);
    for chunk in db.chunks(CHUNK) {
        sent += chunk.len();
        out.push(SnapshotResponse {
            header: None,
            remaining_bytes: (total - sent) as u64,
            blob: bytes::Bytes::copy_from_slice(chunk),
        });
    }
    out.push(SnapshotResponse { header: None, remaining_bytes: 0, blob: bytes::Bytes::copy_from_slice(&sha) });
    out
}

pub struct Saved {
    pub bytes: usize,
    pub revision: i64,
}

/// Saves a snapshot from the member behind `client` to `path`, checked as etcdctl checks
/// it (whole pages plus a SHA-256 that matches) before it takes the final name.
pub async fn save(client: &mut EtcdClient, path: &Path, mut progress: impl FnMut(Progress)) -> Result<Saved> {
    let mut stream = client
        .maintenance
        .snapshot(SnapshotRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))
        .context("asking for a snapshot")?
        .into_inner();
    let mut file = Vec::new();
    let mut total = None;
    while let Some(message) = stream.next().await {
        let message = message.map_err(|s| anyhow::anyhow!("{}", s.message())).context("receiving the snapshot")?;
        file.extend_from_slice(&message.blob);
        // The first message says how much is to come; the checksum follows the last.
        let total = *total.get_or_insert(file.len() as u64 + message.remaining_bytes + snapshot_file::TRAILER as u64);
        progress(Progress::Amount { done: file.len() as u64, total: total.max(file.len() as u64), unit: Unit::Bytes });
    }
    anyhow::ensure!(
        file.len() % 512 == snapshot_file::TRAILER,
        "sha256 checksum not found: the stream ended after {} bytes, not whole pages and a checksum",
        file.len()
    );
    let db = snapshot_file::db_of(&file, false)?;
    // The store's revision (1 when empty), which etcdctl's status shows as 0 for an empty store.
    let revision = Backend::from_bolt(db)?.revision();
    snapshot_file::write_atomically(path, &file)?;
    Ok(Saved { bytes: file.len(), revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_count_down_and_end_with_the_sha256() {
        let db = vec![1u8; 3 * CHUNK + 100];
        let r = responses(db.clone());
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].remaining_bytes as usize, 2 * CHUNK + 100);
        assert_eq!(r[3].blob.len(), 100);
        assert_eq!(r[3].remaining_bytes, 0);
        assert_eq!(r[4].blob.as_ref(), snapshot_file::sha256(&db));
        let all: Vec<u8> = r.iter().flat_map(|m| m.blob.to_vec()).collect();
        assert_eq!(&all[..db.len()], db.as_slice());
    }
}
