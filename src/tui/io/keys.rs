//! The keyspace for the Keys tab: read in pages (an unpaginated range of a big keyspace
//! would hit gRPC's message limit), then kept live by one Watch of every key; one key's
//! value and lease; one key's whole history, from a Watch that starts at revision 1.

use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;
use tokio_stream::StreamExt;

use crate::client::EtcdClient;
use crate::proto::etcdserverpb::HashKvRequest;
use crate::proto::etcdserverpb::LeaseTimeToLiveRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::mvccpb::event::EventType;
use crate::tui::app::Action;
use crate::tui::io::Io;
use crate::tui::keyspace::KeyMeta;
use crate::tui::tabs::keys::KeyDetail;
use crate::tui::tabs::keys::KeyVersion;

const PAGE: i64 = 5000;
/// Longest a watch stream stays open before it is renewed.
const STREAM_FOR: Duration = Duration::from_secs(3600);

/// Some member that answers, the leader first.
async fn any_client(io: &Io) -> Result<EtcdClient> {
    let mut last = None;
    for endpoint in io.endpoints() {
        match io.client(&endpoint) {
            Ok(c) => {
                let mut probe = c.clone();
                let ok = tokio::time::timeout(
                    Duration::from_secs(1),
                    probe.kv.range(RangeRequest {
                        key: Bytes::from_static(b"health"),
                        serializable: true,
                        ..Default::default()
                    }),
                )
                .await;
                match ok {
                    Ok(Ok(_)) => return Ok(c),
                    Ok(Err(e)) => last = Some(anyhow::anyhow!("{endpoint}: {}", e.message())),
                    Err(_) => last = Some(anyhow::anyhow!("{endpoint} did not answer")),
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no member to ask")))
}

/// Every key (without values) at `revision` (0: now), page by page; and the revision read.
pub async fn load_all(client: &mut EtcdClient, revision: i64) -> Result<(Vec<(String, KeyMeta)>, i64)> {
    let mut keys = Vec::new();
    let mut from = Bytes::from_static(b"\0");
    let mut at = revision;
    loop {
        let request = RangeRequest {
            key: from.clone(),
            range_end: Bytes::from_static(b"\0"),
            limit: PAGE,
            revision: at,
            keys_only: true,
            ..Default::default()
        };
        let answer = client.kv.range(request).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner();
        // Every page is read at the revision of the first, so the tree is one point in time.
        if at == 0 {
            at = answer.header.as_ref().map_or(0, |h| h.revision);
        }
        let more = answer.more;
        let last = answer.kvs.last().map(|kv| kv.key.clone());
        for kv in answer.kvs {
            let meta = KeyMeta { mod_revision: kv.mod_revision, version: kv.version };
            keys.push((String::from_utf8_lossy(&kv.key).into_owned(), meta));
        }
        match last {
            Some(last) if more => {
                let mut next = last.to_vec();
                next.push(0);
                from = Bytes::from(next);
            }
            _ => return Ok((keys, at)),
        }
    }
}

/// The compaction floor, from HashKV (which reports it); 0 when unknown.
async fn floor(client: &mut EtcdClient) -> i64 {
    match tokio::time::timeout(Duration::from_secs(5), client.maintenance.hash_kv(HashKvRequest { revision: 0 })).await
    {
        Ok(Ok(a)) => a.into_inner().compact_revision,
        _ => 0,
    }
}

/// Loads the tree (at `revision`, or live), and when live follows every change.
pub async fn follow(io: &Io, revision: Option<i64>) {
    let mut failures = 0;
    loop {
        match follow_once(io, revision).await {
            Ok(()) if revision.is_some() => return,
            Ok(()) => failures = 0,
            // While a lab starts nobody answers yet: only a lasting failure is news.
            Err(e) => {
                failures += 1;
                if failures == 3 || revision.is_some() {
                    io.send(Action::KeysFailed(format!("{e:#}")));
                }
                if revision.is_some() {
                    return;
                }
            }
        }
        if io.tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow_once(io: &Io, at: Option<i64>) -> Result<()> {
    let mut client = any_client(io).await?;
    let floor = if at.is_some() { floor(&mut client).await } else { 0 };
    let wanted = at.map(|r| r.max(floor).max(1));
    let (keys, revision) = load_all(&mut client, wanted.unwrap_or(0)).await?;
    io.send(Action::Keys { keys, revision, at: wanted, floor });
    if at.is_some() {
        return Ok(());
    }
    let create = WatchCreateRequest {
        key: Bytes::from_static(b"\0"),
        range_end: Bytes::from_static(b"\0"),
        start_revision: revision + 1,
        ..Default::default()
    };
    let (requests, mut stream) = tokio::time::timeout(STREAM_FOR, client.open_watch(create, false))
        .await
        .context("the watch did not start")??;
    while let Some(answer) = stream.next().await {
        let answer = answer.map_err(|s| anyhow::anyhow!("watch: {}", s.message()))?;
        anyhow::ensure!(!answer.canceled, "the watch was cancelled: {}", answer.cancel_reason);
        for e in answer.events {
            let Some(kv) = e.kv else { continue };
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            if e.r#type == EventType::Delete as i32 {
                io.send(Action::KeyDeleted { key, revision: kv.mod_revision });
            } else {
                let meta = KeyMeta { mod_revision: kv.mod_revision, version: kv.version };
                io.send(Action::KeyPut { key, meta, revision: kv.mod_revision });
            }
        }
        if io.tx.is_closed() {
            return Ok(());
        }
    }
    drop(requests);
    Ok(())
}

pub async fn fetch_key(io: &Io, key: String, revision: Option<i64>) {
    match read_key(io, &key, revision).await {
        Ok(d) => io.send(Action::KeyDetail(d)),
        Err(e) => io.send(Action::KeysFailed(format!("reading {key}: {e:#}"))),
    }
}

async fn read_key(io: &Io, key: &str, revision: Option<i64>) -> Result<KeyDetail> {
    let mut client = any_client(io).await?;
    let request = RangeRequest {
        key: Bytes::from(key.as_bytes().to_vec()),
        revision: revision.unwrap_or(0),
        ..Default::default()
    };
    let answer = client.kv.range(request).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner();
    let mut detail = KeyDetail { key: key.to_string(), at_revision: revision, ..Default::default() };
    if let Some(kv) = answer.kvs.into_iter().next() {
        detail.value = Some(kv.value.to_vec());
        detail.create_revision = kv.create_revision;
        detail.mod_revision = kv.mod_revision;
        detail.version = kv.version;
        detail.lease = kv.lease;
        if kv.lease != 0 && revision.is_none() {
            let ttl = client.lease.lease_time_to_live(LeaseTimeToLiveRequest { id: kv.lease, keys: false }).await;
            if let Ok(ttl) = ttl {
                let ttl = ttl.into_inner();
                detail.lease_ttl = (ttl.ttl >= 0).then_some(ttl.ttl);
                detail.lease_granted_ttl = ttl.granted_ttl;
            }
        }
    }
    Ok(detail)
}

pub async fn fetch_history(io: &Io, key: String) {
    match read_history(io, &key).await {
        Ok((versions, floor)) => io.send(Action::KeyHistory { key, versions, floor }),
        Err(e) => io.send(Action::KeysFailed(format!("history of {key}: {e:#}"))),
    }
}

/// Every version of `key` the store still holds: a Watch from revision 1 (or from the
/// compaction floor) replays them, and a progress notification says when it has caught up.
async fn read_history(io: &Io, key: &str) -> Result<(Vec<KeyVersion>, i64)> {
    let mut client = any_client(io).await?;
    let mut start = 1;
    for _ in 0..3 {
        let (versions, compacted) = watch_history(&mut client, key, start).await?;
        match compacted {
            Some(floor) => start = floor,
            None => return Ok((versions, start.max(1) - 1)),
        }
    }
    anyhow::bail!("the history kept being compacted while it was read")
}

async fn watch_history(client: &mut EtcdClient, key: &str, start: i64) -> Result<(Vec<KeyVersion>, Option<i64>)> {
    let now = client
        .kv
        .range(RangeRequest { key: Bytes::from(key.as_bytes().to_vec()), count_only: true, ..Default::default() })
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .header
        .map_or(0, |h| h.revision);
    let create =
        WatchCreateRequest { key: Bytes::from(key.as_bytes().to_vec()), start_revision: start, ..Default::default() };
    let (_requests, mut stream) = client.open_watch(create, true).await?;
    let mut versions = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next =
            tokio::time::timeout_at(deadline, stream.next()).await.context("the history watch did not catch up")?;
        let Some(answer) = next else { anyhow::bail!("the history watch ended early") };
        let answer = answer.map_err(|s| anyhow::anyhow!("watch: {}", s.message()))?;
        if answer.canceled {
            anyhow::ensure!(answer.compact_revision > 0, "the history watch was cancelled: {}", answer.cancel_reason);
            return Ok((vec![], Some(answer.compact_revision)));
        }
        let bookmark = answer.events.is_empty() && !answer.created;
        for e in answer.events {
            let Some(kv) = e.kv else { continue };
            if kv.mod_revision > now {
                continue;
            }
            let deleted = e.r#type == EventType::Delete as i32;
            versions.push(KeyVersion {
                revision: kv.mod_revision,
                deleted,
                value: kv.value.to_vec(),
                version: kv.version,
            });
        }
        let reached = versions.last().is_some_and(|v| v.revision >= now);
        if reached || (bookmark && answer.header.is_some_and(|h| h.revision >= now)) {
            return Ok((versions, None));
        }
    }
}
