//! etcd's backend, bucket by bucket, as etcd 3.4 lays it out in its bbolt file, to and from
//! the data raftty keeps: every retained revision (tombstones too), the compaction point,
//! leases, members and the cluster version.
//!
//! - `key`: 8-byte big-endian main revision, `_`, 8-byte big-endian sub revision, and `t`
//!   after a tombstone; the value is the `mvccpb.KeyValue` (a tombstone's holds only the key);
//! - `meta`: `consistent_index` (8 bytes BE), `scheduledCompactRev` and `finishedCompactRev`
//!   (17-byte revisions);
//! - `lease`: 8-byte BE id -> `leasepb.Lease{ID, TTL}`;
//! - `members`: hex id -> the member as JSON; `cluster`: `clusterVersion` -> "3.4.0";
//! - `alarm`: each active alarm's `AlarmMember` as the key, with an empty value;
//! - `auth`: `authEnabled` (1 byte, only when on) and `authRevision` (8 bytes BE);
//!   `authUsers` and `authRoles`: name -> `authpb.User` / `authpb.Role` (bcrypt hashes);
//! - `members_removed`: empty, as a fresh etcd has it.

use anyhow::Context;
use anyhow::Result;
use prost::Message;
use serde::Deserialize;
use serde::Serialize;

use crate::bolt::Buckets;
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::mvccpb::KeyValue;
use crate::proto::rafttystore::AuthRecord;

/// `leasepb.Lease`, as etcd stores a lease in its `lease` bucket.
#[derive(Clone, PartialEq, Message)]
pub struct LeasePb {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// A member as etcd's `members` bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJson {
    pub id: u64,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "clientURLs", default, skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner", default, skip_serializing_if = "std::ops::Not::not")]
    pub is_learner: bool,
}

/// One change to one key: a put (the full key-value) or a delete (a tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub main: i64,
    pub sub: i64,
    pub tombstone: bool,
    pub kv: KeyValue,
}

/// What an etcd backend file holds, in raftty's terms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Backend {
    /// In revision order.
    pub changes: Vec<Change>,
    /// Revisions below this one are gone (0: never compacted).
    pub compact_revision: i64,
    pub consistent_index: u64,
    /// (id, granted TTL in seconds)
    pub leases: Vec<(i64, i64)>,
    pub members: Vec<MemberJson>,
    /// The active alarms, as (member id, alarm type).
    pub alarms: Vec<(u64, i32)>,
    /// Users, roles and whether auth is on (None: as a fresh etcd, no users).
    pub auth: Option<AuthRecord>,
}

pub const CLUSTER_VERSION: &str = "3.4.0";

/// etcd's 17-byte revision key: main, `_`, sub.
pub fn revision_key(main: i64, sub: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(&main.to_be_bytes());
    k.push(b'_');
    k.extend_from_slice(&sub.to_be_bytes());
    k
}

/// Parses a `key` bucket key: (main, sub, tombstone).
pub fn parse_revision_key(k: &[u8]) -> Result<(i64, i64, bool)> {
    anyhow::ensure!(
        (k.len() == 17 || (k.len() == 18 && k[17] == b't')) && k[8] == b'_',
        "a key-bucket key of {} bytes is no revision",
        k.len()
    );
    let main = i64::from_be_bytes(k[..8].try_into().expect("8 bytes"));
    let sub = i64::from_be_bytes(k[9..17].try_into().expect("8 bytes"));
    Ok((main, sub, k.len() == 18))
}

impl Backend {
    /// The newest main revision a change was made at (1 for an empty store, as etcd).
    pub fn revision(&self) -> i64 {
        self.changes.last().map_or(1, |c| c.main).max(self.compact_revision).max(1)
    }

    /// The store as it stood at revision `r`, which must lie between the compaction floor
    /// and the newest revision. Keys alive then whose lease the backup no longer holds are
    /// detached from it (no key may name a lease that does not exist); returns how many.
    pub fn at_revision(&self, r: i64) -> Result<(Backend, usize)> {
        let first = self.compact_revision.max(1);
        let last = self.revision();
        anyhow::ensure!(
            (first..=last).contains(&r),
            "revision {r} is outside what the backup holds: it can restore revisions {first} to {last}"
        );
        let mut b = self.clone();
        b.changes.retain(|c| c.main <= r);
        let leases: std::collections::HashSet<i64> = b.leases.iter().map(|(id, _)| *id).collect();
        let mut latest: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
        for (i, c) in b.changes.iter().enumerate() {
            latest.insert(c.kv.key.to_vec(), i);
        }
        let mut detached = 0;
        for i in latest.into_values() {
            let c = &mut b.changes[i];
            if !c.tombstone && c.kv.lease != 0 && !leases.contains(&c.kv.lease) {
                c.kv.lease = 0;
                detached += 1;
            }
        }
        Ok((b, detached))
    }

    /// The bbolt file etcd would have written.
    pub fn to_bolt(&self) -> Vec<u8> {
        let mut b = Buckets::new();
        let mut bucket = |name: &str, entries: Vec<(Vec<u8>, Vec<u8>)>| {
            b.insert(name.as_bytes().to_vec(), entries);
        };
        let keys = self
            .changes
            .iter()
            .map(|c| {
                let mut k = revision_key(c.main, c.sub);
                let v = if c.tombstone {
                    k.push(b't');
                    KeyValue { key: c.kv.key.clone(), ..Default::default() }.encode_to_vec()
                } else {
                    c.kv.encode_to_vec()
                };
                (k, v)
            })
            .collect();
        bucket("key", keys);
        let mut meta = vec![(b"consistent_index".to_vec(), self.consistent_index.to_be_bytes().to_vec())];
        if self.compact_revision > 0 {
            let rev = revision_key(self.compact_revision, 0);
            meta.push((b"finishedCompactRev".to_vec(), rev.clone()));
            meta.push((b"scheduledCompactRev".to_vec(), rev));
        }
        bucket("meta", meta);
        let mut leases: Vec<(Vec<u8>, Vec<u8>)> = self
            .leases
            .iter()
            .map(|(id, ttl)| {
                (id.to_be_bytes().to_vec(), LeasePb { id: *id, ttl: *ttl, remaining_ttl: 0 }.encode_to_vec())
            })
            .collect();
        leases.sort();
        bucket("lease", leases);
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = self
            .members
            .iter()
            .map(|m| (format!("{:x}", m.id).into_bytes(), serde_json::to_vec(m).expect("a member serializes")))
            .collect();
        members.sort();
        bucket("members", members);
        bucket("cluster", vec![(b"clusterVersion".to_vec(), CLUSTER_VERSION.as_bytes().to_vec())]);
        let auth = self.auth.clone().unwrap_or_default();
        let mut auth_meta = vec![(b"authRevision".to_vec(), auth.revision.max(1).to_be_bytes().to_vec())];
        if auth.enabled {
            auth_meta.insert(0, (b"authEnabled".to_vec(), vec![1]));
        }
        bucket("auth", auth_meta);
        let mut users: Vec<(Vec<u8>, Vec<u8>)> =
            auth.users.iter().map(|u| (u.name.to_vec(), u.encode_to_vec())).collect();
        users.sort();
        bucket("authUsers", users);
        let mut roles: Vec<(Vec<u8>, Vec<u8>)> =
            auth.roles.iter().map(|r| (r.name.to_vec(), r.encode_to_vec())).collect();
        roles.sort();
        bucket("authRoles", roles);
        let mut alarms: Vec<(Vec<u8>, Vec<u8>)> = self
            .alarms
            .iter()
            .map(|&(member_id, alarm)| (AlarmMember { member_id, alarm }.encode_to_vec(), vec![]))
            .collect();
        alarms.sort();
        bucket("alarm", alarms);
        bucket("members_removed", vec![]);
        crate::bolt::write(&b)
    }

    /// Reads an etcd backend file (a snapshot without its trailer, or `member/snap/db`).
    pub fn from_bolt(db: &[u8]) -> Result<Backend> {
        let buckets = crate::bolt::BoltFile::open(db)?.buckets()?;
        let get = |name: &str| buckets.get(name.as_bytes()).map(Vec::as_slice).unwrap_or_default();
        let mut backend = Backend::default();
        for (k, v) in get("key") {
            let (main, sub, tombstone) = parse_revision_key(k)?;
            let kv = KeyValue::decode(v.as_slice())
                .with_context(|| format!("the value at revision {main}.{sub} is no KeyValue"))?;
            backend.changes.push(Change { main, sub, tombstone, kv });
        }
        for (k, v) in get("meta") {
            match k.as_slice() {
                b"consistent_index" if v.len() == 8 => {
                    backend.consistent_index = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                }
                b"finishedCompactRev" => backend.compact_revision = parse_revision_key(v)?.0,
                _ => {}
            }
        }
        for (_, v) in get("lease") {
            let lease = LeasePb::decode(v.as_slice()).context("a lease that is no leasepb.Lease")?;
            backend.leases.push((lease.id, lease.ttl));
        }
        for (_, v) in get("members") {
            backend.members.push(serde_json::from_slice(v).context("a member that is no etcd member JSON")?);
        }
        let mut auth = AuthRecord::default();
        for (k, v) in get("auth") {
            match k.as_slice() {
                b"authEnabled" => auth.enabled = v.first() == Some(&1),
                b"authRevision" if v.len() == 8 => {
                    auth.revision = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"))
                }
                _ => {}
            }
        }
        for (_, v) in get("authUsers") {
            auth.users.push(crate::proto::authpb::User::decode(v.as_slice()).context("a user that is no authpb.User")?);
        }
        for (_, v) in get("authRoles") {
            auth.roles.push(crate::proto::authpb::Role::decode(v.as_slice()).context("a role that is no authpb.Role")?);
        }
        if auth.enabled || !auth.users.is_empty() || !auth.roles.is_empty() {
            backend.auth = Some(auth);
        }
        for (k, _) in get("alarm") {
            let alarm = AlarmMember::decode(k.as_slice()).context("an alarm that is no etcdserverpb.AlarmMember")?;
            backend.alarms.push((alarm.member_id, alarm.alarm));
        }
        Ok(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_real_etcd_wrote_reads_as_its_history() {
        let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etcd-3.4.23.snapshot")).unwrap();
        let backend = Backend::from_bolt(&data[..data.len() - 32]).unwrap();
        let summary: Vec<(i64, bool, String)> = backend
            .changes
            .iter()
            .map(|c| (c.main, c.tombstone, String::from_utf8_lossy(&c.kv.key).into_owned()))
            .collect();
        let expected = [(3, false, "/a"), (4, false, "/b"), (5, true, "/b"), (6, false, "/leased"), (7, false, "/c")];
        assert_eq!(summary, expected.map(|(r, t, k)| (r, t, k.to_string())));
        assert_eq!(backend.compact_revision, 3);
        assert_eq!(backend.revision(), 7);
        assert_eq!(backend.leases.len(), 1);
        assert_eq!(backend.leases[0].1, 100);
        assert_eq!(backend.changes[3].kv.lease, backend.leases[0].0);
        assert_eq!(backend.members[0].name, "default");
    }

    #[test]
    fn what_raftty_writes_reads_back_the_same() {
        let kv = |key: &str, rev: i64| KeyValue {
            key: key.as_bytes().to_vec().into(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value: b"v".to_vec().into(),
            lease: 0,
        };
        let backend = Backend {
            changes: vec![
                Change { main: 2, sub: 0, tombstone: false, kv: kv("/a", 2) },
                Change { main: 2, sub: 1, tombstone: false, kv: kv("/b", 2) },
                Change {
                    main: 3,
                    sub: 0,
                    tombstone: true,
                    kv: KeyValue { key: b"/a".to_vec().into(), ..Default::default() },
                },
            ],
            compact_revision: 2,
            consistent_index: 42,
            leases: vec![(7, 60)],
            members: vec![MemberJson {
                id: 0xabc,
                peer_urls: vec!["https://127.0.0.1:1".into()],
                name: "n1".into(),
                client_urls: vec!["https://127.0.0.1:2".into()],
                is_learner: false,
            }],
            alarms: vec![(0xabc, 1)],
            auth: Some(AuthRecord {
                enabled: true,
                revision: 7,
                users: vec![crate::proto::authpb::User {
                    name: b"root".to_vec().into(),
                    password: b"$2a$10$hash".to_vec().into(),
                    roles: vec!["root".into()],
                    options: None,
                }],
                roles: vec![crate::proto::authpb::Role { name: b"root".to_vec().into(), key_permission: vec![] }],
            }),
        };
        assert_eq!(Backend::from_bolt(&backend.to_bolt()).unwrap(), backend);
    }
}
