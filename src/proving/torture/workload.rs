//! The torture clients: concurrent etcd clients sending a seeded mix of single-key requests
//! (reads, writes, deletes, compare-and-set, Kubernetes-style create/update/delete, ranges)
//! and recording each with its invocation and completion time and outcome.
//!
//! Recording follows the checker's rules (`check` module docs): every write stores a value
//! no other write uses, a request is `Failed` only when etcd rejected it before it could
//! apply, everything else that did not answer is `Unknown`, and nothing is retried.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tonic::Code;

use crate::client::EtcdClient;
use crate::pki::CertFiles;
use crate::proto::etcdserverpb::compare::CompareResult;
use crate::proto::etcdserverpb::compare::CompareTarget;
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::etcdserverpb::request_op;
use crate::proto::etcdserverpb::response_op;
use crate::proto::etcdserverpb::*;
use crate::proving::check::HistoryRecorder;
use crate::proving::check::KeyRead;
use crate::proving::check::Outcome;
use crate::proving::check::Output;
use crate::proving::check::Request;

/// How long a client waits for an answer before it records the request as unknown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The key space of one run: few keys, so clients contend on them.
#[derive(Debug, Clone)]
pub struct Keys {
    pub prefix: String,
    pub count: usize,
}

impl Keys {
    pub fn key(&self, i: usize) -> String {
        format!("{}k{i:02}", self.prefix)
    }

    pub fn all(&self) -> Vec<String> {
        (0..self.count).map(|i| self.key(i)).collect()
    }

    /// The range covering every key of the run.
    pub fn range_end(&self) -> Vec<u8> {
        let mut end = self.prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        end
    }
}

/// Counts of what the clients did, by kind of request and outcome.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub by_kind: BTreeMap<&'static str, [u64; 3]>,
}

impl Tally {
    pub fn count(&mut self, kind: &'static str, outcome: &Outcome) {
        let slot = match outcome {
            Outcome::Ok(_) => 0,
            Outcome::Failed => 1,
            Outcome::Unknown => 2,
        };
        self.by_kind.entry(kind).or_default()[slot] += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.by_kind {
            let e = self.by_kind.entry(k).or_default();
            for i in 0..3 {
                e[i] += v[i];
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().map(|v| v.iter().sum::<u64>()).sum()
    }
}

/// Where clients send their requests; the nemesis updates it when members come and go.
pub type Endpoints = Arc<RwLock<Vec<String>>>;

/// One torture client: runs until `stop`, returns what it did.
pub async fn client(
    id: u64,
    seed: u64,
    keys: Keys,
    endpoints: Endpoints,
    cert: CertFiles,
    recorder: Arc<HistoryRecorder>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut tally = Tally::default();
    let mut counter = 0u64;
    // The last mod_revision this client saw per key: what a Kubernetes client would update
    // or delete with.
    let mut known: BTreeMap<String, i64> = BTreeMap::new();
    let mut conn: Option<EtcdClient> = None;
    let mut endpoint = rng.random_range(0..usize::MAX);
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = connection(&mut conn, &endpoints, endpoint, &cert).await else {
            endpoint = endpoint.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let key = keys.key(rng.random_range(0..keys.count));
        counter += 1;
        let value = format!("c{id}-{counter}");
        let roll = rng.random_range(0..100);
        let (kind, outcome) = match roll {
            0..25 => ("get", get(c, &recorder, id, &key, false, &mut known).await),
            25..35 => ("get (serializable)", get(c, &recorder, id, &key, true, &mut known).await),
            35..55 => ("put", put(c, &recorder, id, &key, &value).await),
            55..60 => ("delete", delete(c, &recorder, id, &key).await),
            60..70 => {
                let expected = format!("c{id}-{}", counter.saturating_sub(rng.random_range(1..4)));
                ("compare-and-set", put_if_value(c, &recorder, id, &key, &expected, &value).await)
            }
            70..76 => ("k8s create", create(c, &recorder, id, &key, &value).await),
            76..86 => {
                let rev = known.get(&key).copied().unwrap_or(0);
                ("k8s update", update(c, &recorder, id, &key, rev, &value, &mut known).await)
            }
            86..92 => {
                let rev = known.get(&key).copied().unwrap_or(0);
                ("k8s delete", delete_if(c, &recorder, id, &key, rev, &mut known).await)
            }
            _ => ("range", range(c, &recorder, id, &keys, &mut known).await),
        };
        if !matches!(outcome, Outcome::Ok(_)) {
            // This member may be down or cut off: try another, as a real client would, after
            // a short pause rather than in a tight loop.
            conn = None;
            endpoint = endpoint.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tally.count(kind, &outcome);
    }
    tally
}

async fn connection<'c>(
    conn: &'c mut Option<EtcdClient>,
    endpoints: &Endpoints,
    index: usize,
    cert: &CertFiles,
) -> Option<&'c mut EtcdClient> {
    if conn.is_none() {
        let url = {
            let list = endpoints.read().unwrap_or_else(|e| e.into_inner());
            if list.is_empty() {
                return None;
            }
            list[index % list.len()].clone()
        };
        *conn = EtcdClient::connect_lazy(&url, cert, REQUEST_TIMEOUT).ok();
    }
    conn.as_mut()
}

/// How a gRPC error maps to the checker's outcomes: only etcd's validation errors mean the
/// request certainly did not apply.
fn failure(status: &tonic::Status) -> Outcome {
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::PermissionDenied | Code::ResourceExhausted => Outcome::Failed,
        // The member was down: the request never left this client.
        _ if crate::client::never_sent(status) => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

fn revision(header: &Option<ResponseHeader>) -> i64 {
    header.as_ref().map(|h| h.revision).unwrap_or(0)
}

async fn get(
    c: &mut EtcdClient,
    rec: &HistoryRecorder,
    id: u64,
    key: &str,
    serializable: bool,
    known: &mut BTreeMap<String, i64>,
) -> Outcome {
    let op = rec.invoke(id, Request::Get { key: key.to_string(), serializable });
    let outcome = match c
        .kv
        .range(RangeRequest { key: key.as_bytes().to_vec().into(), serializable, ..Default::default() })
        .await
    {
        Ok(resp) => {
            let resp = resp.into_inner();
            let kv = resp.kvs.first();
            let mod_revision = kv.map(|kv| kv.mod_revision).unwrap_or(0);
            known.insert(key.to_string(), mod_revision);
            Outcome::Ok(Output::Get {
                value: kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
                mod_revision,
                revision: revision(&resp.header),
            })
        }
        Err(s) => failure(&s),
    };
    rec.complete(op, outcome.clone());
    outcome
}

async fn put(c: &mut EtcdClient, rec: &HistoryRecorder, id: u64, key: &str, value: &str) -> Outcome {
    let op = rec.invoke(id, Request::Put { key: key.to_string(), value: value.to_string() });
    let req = PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        ..Default::default()
    };
    let outcome = match c.kv.put(req).await {
        Ok(resp) => Outcome::Ok(Output::Put { revision: revision(&resp.into_inner().header) }),
        Err(s) => failure(&s),
    };
    rec.complete(op, outcome.clone());
    outcome
}

async fn delete(c: &mut EtcdClient, rec: &HistoryRecorder, id: u64, key: &str) -> Outcome {
    let op = rec.invoke(id, Request::Delete { key: key.to_string() });
    let outcome =
        match c.kv.delete_range(DeleteRangeRequest { key: key.as_bytes().to_vec().into(), ..Default::default() }).await
        {
            Ok(resp) => {
                let resp = resp.into_inner();
                Outcome::Ok(Output::Delete { deleted: resp.deleted, revision: revision(&resp.header) })
            }
            Err(s) => failure(&s),
        };
    rec.complete(op, outcome.clone());
    outcome
}

fn compare(key: &str, target: CompareTarget, union: TargetUnion) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.as_bytes().to_vec().into(),
        target_union: Some(union),
        range_end: Default::default(),
    }
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            ..Default::default()
        })),
    }
}

fn get_op(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        })),
    }
}

/// Sends a txn and turns its answer into the checker's output; `else_read` tells whether
/// the failure branch reads the key.
async fn txn(
    c: &mut EtcdClient,
    req: TxnRequest,
    else_read: bool,
    key: &str,
    known: &mut BTreeMap<String, i64>,
) -> Outcome {
    match c.kv.txn(req).await {
        Ok(resp) => {
            let resp = resp.into_inner();
            let read = if !resp.succeeded && else_read {
                let kv = resp.responses.first().and_then(|r| match &r.response {
                    Some(response_op::Response::ResponseRange(range)) => Some(range.kvs.first().cloned()),
                    _ => None,
                });
                let kv = kv.flatten();
                let mod_revision = kv.as_ref().map(|kv| kv.mod_revision).unwrap_or(0);
                known.insert(key.to_string(), mod_revision);
                Some(KeyRead { value: kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()), mod_revision })
            } else {
                None
            };
            if resp.succeeded {
                known.insert(key.to_string(), revision(&resp.header));
            }
            Outcome::Ok(Output::Txn { succeeded: resp.succeeded, revision: revision(&resp.header), else_read: read })
        }
        Err(s) => failure(&s),
    }
}

async fn put_if_value(
    c: &mut EtcdClient,
    rec: &HistoryRecorder,
    id: u64,
    key: &str,
    expected: &str,
    value: &str,
) -> Outcome {
    let op = rec.invoke(
        id,
        Request::PutIfValue { key: key.to_string(), expected_value: expected.to_string(), value: value.to_string() },
    );
    let req = TxnRequest {
        compare: vec![compare(key, CompareTarget::Value, TargetUnion::Value(expected.as_bytes().to_vec().into()))],
        success: vec![put_op(key, value)],
        failure: vec![],
    };
    let outcome = txn(c, req, false, key, &mut BTreeMap::new()).await;
    rec.complete(op, outcome.clone());
    outcome
}

async fn create(c: &mut EtcdClient, rec: &HistoryRecorder, id: u64, key: &str, value: &str) -> Outcome {
    let op = rec.invoke(id, Request::Create { key: key.to_string(), value: value.to_string() });
    let req = TxnRequest {
        compare: vec![compare(key, CompareTarget::Mod, TargetUnion::ModRevision(0))],
        success: vec![put_op(key, value)],
        failure: vec![],
    };
    let outcome = txn(c, req, false, key, &mut BTreeMap::new()).await;
    rec.complete(op, outcome.clone());
    outcome
}

async fn update(
    c: &mut EtcdClient,
    rec: &HistoryRecorder,
    id: u64,
    key: &str,
    rev: i64,
    value: &str,
    known: &mut BTreeMap<String, i64>,
) -> Outcome {
    let op = rec.invoke(
        id,
        Request::UpdateIfModRevision { key: key.to_string(), expected_mod_revision: rev, value: value.to_string() },
    );
    let req = TxnRequest {
        compare: vec![compare(key, CompareTarget::Mod, TargetUnion::ModRevision(rev))],
        success: vec![put_op(key, value)],
        failure: vec![get_op(key)],
    };
    let outcome = txn(c, req, true, key, known).await;
    rec.complete(op, outcome.clone());
    outcome
}

async fn delete_if(
    c: &mut EtcdClient,
    rec: &HistoryRecorder,
    id: u64,
    key: &str,
    rev: i64,
    known: &mut BTreeMap<String, i64>,
) -> Outcome {
    let op = rec.invoke(id, Request::DeleteIfModRevision { key: key.to_string(), expected_mod_revision: rev });
    let delete = RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..Default::default()
        })),
    };
    let req = TxnRequest {
        compare: vec![compare(key, CompareTarget::Mod, TargetUnion::ModRevision(rev))],
        success: vec![delete],
        failure: vec![get_op(key)],
    };
    let outcome = txn(c, req, true, key, known).await;
    rec.complete(op, outcome.clone());
    outcome
}

/// A linearizable range over every key of the run, recorded as one read per key (present
/// or absent) at the same moment: a range is a consistent snapshot, so each key's part of
/// it must be linearizable on its own.
async fn range(
    c: &mut EtcdClient,
    rec: &HistoryRecorder,
    id: u64,
    keys: &Keys,
    known: &mut BTreeMap<String, i64>,
) -> Outcome {
    let ops: Vec<_> = keys
        .all()
        .into_iter()
        .map(|k| (k.clone(), rec.invoke(id, Request::Get { key: k, serializable: false })))
        .collect();
    let req = RangeRequest {
        key: keys.prefix.clone().into_bytes().into(),
        range_end: keys.range_end().into(),
        ..Default::default()
    };
    match c.kv.range(req).await {
        Ok(resp) => {
            let resp = resp.into_inner();
            let rev = revision(&resp.header);
            let found: BTreeMap<String, (String, i64)> = resp
                .kvs
                .iter()
                .map(|kv| {
                    (
                        String::from_utf8_lossy(&kv.key).into_owned(),
                        (String::from_utf8_lossy(&kv.value).into_owned(), kv.mod_revision),
                    )
                })
                .collect();
            for (key, op) in ops {
                let (value, mod_revision) = match found.get(&key) {
                    Some((v, m)) => (Some(v.clone()), *m),
                    None => (None, 0),
                };
                known.insert(key, mod_revision);
                rec.complete(op, Outcome::Ok(Output::Get { value, mod_revision, revision: rev }));
            }
            Outcome::Ok(Output::Get { value: None, mod_revision: 0, revision: rev })
        }
        Err(s) => {
            let outcome = failure(&s);
            for (_, op) in ops {
                rec.complete(op, outcome.clone());
            }
            outcome
        }
    }
}
