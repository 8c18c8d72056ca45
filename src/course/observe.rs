//! What a check looks at: the cluster at one moment ([`Moment`]: members, roles, terms, the
//! leader, the revision), and the probes some checks make of their own (a read, a write,
//! the members' recent events).
//!
//! The moment a step began is kept with the learner's progress, so "the leader changed"
//! means changed since this step started, even across `raftty lesson check` runs.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::lab::status::Quorum;
use crate::proto::etcdserverpb::AuthUserGetRequest;
use crate::proto::etcdserverpb::AuthenticateRequest;
use crate::proto::etcdserverpb::HashKvRequest;
use crate::proto::etcdserverpb::LeaseLeasesRequest;
use crate::proto::etcdserverpb::LeaseTimeToLiveRequest;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::WatchCreateRequest;
use crate::proto::mvccpb::Event;
use crate::proto::mvccpb::KeyValue;
use crate::proto::rafttyadmin::EventsRequest;
use crate::proto::rafttyadmin::RaftEvent;

/// How long a probe waits for a member that does not answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Where write probes write: a key of raftty's own, so lessons' keys are left alone.
pub const PROBE_KEY: &str = "/raftty/lesson-probe";

/// The cluster at one moment, as checks and explanations see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moment {
    pub unix_ms: i64,
    /// The leader a majority of the members follow.
    pub leader: Option<String>,
    /// The highest term any member reports.
    pub term: u64,
    pub revision: Option<i64>,
    pub quorum: bool,
    pub members: Vec<MemberMoment>,
    pub alarms: Vec<String>,
    /// The leases alive at this moment, by id, for "a lease that was alive has expired".
    #[serde(default)]
    pub leases: Vec<i64>,
    /// The lab's folder, and the folder where its backups go (`{lab_dir}`, `{backups}`).
    #[serde(default)]
    pub lab_dir: String,
    #[serde(default)]
    pub backups: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberMoment {
    pub name: String,
    /// running, paused, killed (kill -9) or exited (stopped)
    pub state: String,
    /// leader, follower, candidate, learner; none when it does not answer
    pub role: Option<String>,
    pub term: Option<u64>,
    pub db_size: Option<u64>,
    /// The member it names as its leader.
    #[serde(default)]
    pub follows: Option<String>,
}

impl Moment {
    pub fn member(&self, name: &str) -> Option<&MemberMoment> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn running(&self) -> usize {
        self.members.iter().filter(|m| m.state == "running").count()
    }

    /// A running member that follows, for solutions that act on "a follower".
    pub fn follower(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.state == "running" && m.role.as_deref() == Some("follower"))
            .map(|m| m.name.as_str())
    }

    /// A second running follower, the one `follower` is not: "the other follower".
    pub fn other_follower(&self) -> Option<&str> {
        self.members
            .iter()
            .filter(|m| m.state == "running" && m.role.as_deref() == Some("follower"))
            .nth(1)
            .map(|m| m.name.as_str())
    }

    /// The first member that is not running, for "bring back the one you killed".
    pub fn down(&self) -> Option<&str> {
        self.members.iter().find(|m| m.state != "running").map(|m| m.name.as_str())
    }

    /// Every running follower, comma-separated, for `raftty partition "{leader}|{followers}"`.
    pub fn followers(&self) -> String {
        let names: Vec<&str> = self
            .members
            .iter()
            .filter(|m| m.state == "running" && m.role.as_deref() == Some("follower"))
            .map(|m| m.name.as_str())
            .collect();
        names.join(",")
    }

    /// A running member, the leader first: "the survivor" once the others are gone.
    pub fn running_member(&self) -> Option<&str> {
        self.leader.as_deref().or_else(|| self.members.iter().find(|m| m.state == "running").map(|m| m.name.as_str()))
    }

    /// A running member that does not follow the cluster's leader: one cut off from it.
    pub fn outsider(&self) -> Option<&str> {
        let leader = self.leader.as_deref()?;
        self.members
            .iter()
            .find(|m| m.state == "running" && m.name != leader && m.follows.as_deref() != Some(leader))
            .map(|m| m.name.as_str())
    }

    pub fn learner(&self) -> Option<&str> {
        self.members.iter().find(|m| m.role.as_deref() == Some("learner")).map(|m| m.name.as_str())
    }

    /// The member added last (members are named n1, n2... in the order they joined).
    pub fn newest(&self) -> Option<&str> {
        self.members.last().map(|m| m.name.as_str())
    }
}

/// The leader that a majority of the voters follow: the member that says it leads and that
/// more than half of the voters (itself included) name as their leader. A member cut off
/// from the others may still believe in an old leader; the cluster has one all the same.
pub fn majority_leader(nodes: &[(String, Option<String>, bool)]) -> Option<String> {
    let voters = nodes.iter().filter(|(_, _, voter)| *voter).count();
    let mut named: Vec<&str> = nodes.iter().filter_map(|(_, l, voter)| l.as_deref().filter(|_| *voter)).collect();
    named.sort_unstable();
    named.dedup();
    named
        .into_iter()
        .find(|candidate| {
            let backing = nodes.iter().filter(|(_, l, voter)| *voter && l.as_deref() == Some(*candidate)).count();
            backing * 2 > voters
                && nodes.iter().any(|(name, l, _)| name == candidate && l.as_deref() == Some(*candidate))
        })
        .map(str::to_string)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The lab as its config says now: members are added and removed, and a restore or a
/// recover replaces the lab's folder, while a lesson's step goes on.
fn reopen(lab: &Lab) -> Option<Lab> {
    Lab::open_dir(&lab.dir).ok()
}

/// Looks at the lab now.
pub async fn moment(lab: &Lab) -> Result<Moment> {
    let reopened = reopen(lab);
    let lab = reopened.as_ref().unwrap_or(lab);
    let status = crate::lab::status::gather(lab, PROBE_TIMEOUT).await?;
    let members: Vec<MemberMoment> = status
        .nodes
        .iter()
        .map(|n| MemberMoment {
            name: n.name.clone(),
            state: match n.state {
                ProcessState::Running => "running",
                ProcessState::Paused => "paused",
                ProcessState::Exited if n.killed => "killed",
                ProcessState::Exited => "exited",
            }
            .to_string(),
            role: n.role.map(|r| r.to_string()),
            term: n.term,
            db_size: n.db_size,
            follows: n.leader.clone(),
        })
        .collect();
    let votes: Vec<(String, Option<String>, bool)> = status
        .nodes
        .iter()
        .map(|n| {
            let named = n.leader.clone().filter(|_| n.state == ProcessState::Running && n.role.is_some());
            (n.name.clone(), named, n.role != Some(crate::lab::status::Role::Learner))
        })
        .collect();
    let leader = majority_leader(&votes);
    let (revision, leases) = match &leader {
        Some(l) => (revision_on(lab, l).await, leases_on(lab, l).await.unwrap_or_default()),
        None => (None, Vec::new()),
    };
    let home = lab.dir.parent().and_then(Path::parent).unwrap_or(&lab.dir);
    Ok(Moment {
        unix_ms: now_ms(),
        term: members.iter().filter_map(|m| m.term).max().unwrap_or(0),
        quorum: matches!(status.quorum(), Quorum::Healthy | Quorum::Degraded { .. }),
        leader,
        revision,
        members,
        alarms: status.alarms.clone(),
        leases,
        lab_dir: lab.dir.display().to_string(),
        backups: crate::backup::catalog::folder(home, lab.name()).display().to_string(),
    })
}

async fn revision_on(lab: &Lab, member: &str) -> Option<i64> {
    let mut c = client(lab, member).await.ok()?;
    let req = RangeRequest { key: PROBE_KEY.into(), count_only: true, serializable: true, ..Default::default() };
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.kv.range(req)).await.ok()?.ok()?;
    resp.into_inner().header.map(|h| h.revision)
}

async fn client(lab: &Lab, member: &str) -> Result<EtcdClient> {
    let reopened = reopen(lab);
    let lab = reopened.as_ref().unwrap_or(lab);
    let url = lab.config.member(member)?.client_url();
    EtcdClient::connect(&url, &lab.root_cert(), PROBE_TIMEOUT).await
}

/// A member to ask when a check names none: the leader, else any running member.
fn some_member(now: &Moment) -> Option<String> {
    now.leader.clone().or_else(|| now.members.iter().find(|m| m.state == "running").map(|m| m.name.clone()))
}

/// `key` as read through `via` (or any member); Ok(None) when it is absent.
pub async fn read(
    lab: &Lab,
    now: &Moment,
    key: &str,
    via: Option<&str>,
    serializable: bool,
) -> Result<Option<KeyValue>> {
    let member = via.map(str::to_string).or_else(|| some_member(now)).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let req = RangeRequest { key: key.as_bytes().to_vec().into(), serializable, ..Default::default() };
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.kv.range(req))
        .await
        .map_err(|_| anyhow::anyhow!("{member} did not answer a read of {key} within {PROBE_TIMEOUT:?}"))?
        .map_err(|s| anyhow::anyhow!("{member} refused to read {key}: {}", s.message()))?;
    Ok(resp.into_inner().kvs.into_iter().next())
}

/// The leases `member` knows, by id.
async fn leases_on(lab: &Lab, member: &str) -> Option<Vec<i64>> {
    let mut c = client(lab, member).await.ok()?;
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.lease.lease_leases(LeaseLeasesRequest {})).await.ok()?.ok()?;
    Some(resp.into_inner().leases.iter().map(|l| l.id).collect())
}

/// The seconds lease `id` has left, asked of the leader (or any member); None once it has
/// expired or was revoked.
pub async fn lease_ttl(lab: &Lab, now: &Moment, id: i64) -> Result<Option<i64>> {
    let member = some_member(now).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let resp =
        tokio::time::timeout(PROBE_TIMEOUT, c.lease.lease_time_to_live(LeaseTimeToLiveRequest { id, keys: false }))
            .await
            .map_err(|_| anyhow::anyhow!("{member} did not answer about lease {id:x} within {PROBE_TIMEOUT:?}"))?;
    match resp {
        Ok(r) => Ok(Some(r.into_inner().ttl).filter(|ttl| *ttl > 0)),
        Err(s) if s.message().contains("lease not found") => Ok(None),
        Err(s) => anyhow::bail!("{member} could not say how long lease {id:x} has left: {}", s.message()),
    }
}

/// What a watch of `key` (to `range_end`, etcd's way of naming a prefix) opened at revision
/// `from` reports right away: the history from `from` on, up to now. Err says why no such
/// watch can be opened (such as a compacted `from`).
pub async fn watch_history(lab: &Lab, now: &Moment, key: &[u8], range_end: &[u8], from: i64) -> Result<Vec<Event>> {
    let member = some_member(now).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let create = WatchCreateRequest {
        key: key.to_vec().into(),
        range_end: range_end.to_vec().into(),
        start_revision: from.max(1),
        ..Default::default()
    };
    let (_requests, mut stream) = c.open_watch(create, true).await?;
    let upto = now.revision.unwrap_or(i64::MAX);
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    // Replayed history comes first; the progress notification asked for right after the
    // create says everything up to its revision was sent (etcd's bookmark guarantee).
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message()).await;
        let Ok(Ok(Some(answer))) = next else { break };
        if answer.canceled {
            if answer.compact_revision > 0 {
                anyhow::bail!(
                    "revision {from} was compacted (the history now starts at {}): a watch cannot resume from it",
                    answer.compact_revision
                );
            }
            anyhow::bail!("the watch was canceled: {}", answer.cancel_reason);
        }
        let progress = !answer.created && answer.events.is_empty();
        events.extend(answer.events);
        let reached = events.last().and_then(|e| e.kv.as_ref()).is_some_and(|kv| kv.mod_revision >= upto);
        if progress || reached {
            break;
        }
    }
    Ok(events)
}

/// Whether auth is on: a wrong password is refused for what it is only then.
pub async fn auth_enabled(lab: &Lab, now: &Moment) -> Result<bool> {
    let member = some_member(now).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let probe = AuthenticateRequest { name: "raftty-lesson-probe".into(), password: "-".into() };
    match tokio::time::timeout(PROBE_TIMEOUT, c.auth.authenticate(probe)).await {
        Err(_) => anyhow::bail!("{member} did not answer within {PROBE_TIMEOUT:?}"),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(s)) if s.message().contains("authentication is not enabled") => Ok(false),
        Ok(Err(s)) if s.message().contains("authentication failed") => Ok(true),
        Ok(Err(s)) => anyhow::bail!("{member}: {}", s.message()),
    }
}

/// The roles of `user` (None: there is no such user), asked with the lab's root certificate.
pub async fn user_roles(lab: &Lab, now: &Moment, user: &str) -> Result<Option<Vec<String>>> {
    let member = some_member(now).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let get = AuthUserGetRequest { name: user.to_string() };
    match tokio::time::timeout(PROBE_TIMEOUT, c.auth.user_get(get)).await {
        Err(_) => anyhow::bail!("{member} did not answer within {PROBE_TIMEOUT:?}"),
        Ok(Ok(r)) => Ok(Some(r.into_inner().roles)),
        Ok(Err(s)) if s.message().contains("user name not found") => Ok(None),
        Ok(Err(s)) => anyhow::bail!("{member}: {}", s.message()),
    }
}

/// The compaction floor: the oldest revision a read or watch can still ask for.
pub async fn compact_revision(lab: &Lab, now: &Moment) -> Result<i64> {
    let member = some_member(now).context("no member runs")?;
    let mut c = client(lab, &member).await?;
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.maintenance.hash_kv(HashKvRequest { revision: 0 }))
        .await
        .map_err(|_| anyhow::anyhow!("{member} did not answer within {PROBE_TIMEOUT:?}"))?
        .map_err(|s| anyhow::anyhow!("{member}: {}", s.message()))?;
    Ok(resp.into_inner().compact_revision)
}

/// Whether every running member's HashKV agrees at the leader's revision; the report in
/// words when not.
pub async fn hashes_agree(lab: &Lab) -> Result<std::result::Result<usize, String>> {
    let reopened = reopen(lab);
    let lab = reopened.as_ref().unwrap_or(lab);
    let report = crate::lab::check::check(lab, Duration::from_secs(3)).await?;
    if report.all_agree() {
        return Ok(Ok(report.members.len()));
    }
    let odd: Vec<String> = report
        .members
        .iter()
        .filter_map(|(name, v)| match v {
            crate::lab::check::Verdict::Agrees { .. } => None,
            crate::lab::check::Verdict::Differs { .. } => Some(format!("{name} holds different data")),
            crate::lab::check::Verdict::Behind { reason } => Some(format!("{name} is behind ({reason})")),
        })
        .collect();
    Ok(Err(format!("at revision {}: {}", report.revision, odd.join(", "))))
}

/// Writes the probe key through `via` (or any member); whether it committed within `wait`.
pub async fn write_commits(lab: &Lab, now: &Moment, via: Option<&str>, wait: Duration) -> bool {
    let reopened = reopen(lab);
    let lab = reopened.as_ref().unwrap_or(lab);
    let Some(member) = via.map(str::to_string).or_else(|| some_member(now)) else { return false };
    let Ok(url) = lab.config.member(&member).map(|m| m.client_url()) else { return false };
    let Ok(mut c) = EtcdClient::connect(&url, &lab.root_cert(), wait).await else { return false };
    let put = PutRequest { key: PROBE_KEY.into(), value: now_ms().to_string().into(), ..Default::default() };
    matches!(tokio::time::timeout(wait, c.kv.put(put)).await, Ok(Ok(_)))
}

/// The events every running member still remembers from `since_ms` on.
pub async fn events_since(lab: &Lab, since_ms: i64) -> Vec<RaftEvent> {
    let reopened = reopen(lab);
    let lab = reopened.as_ref().unwrap_or(lab);
    let names: Vec<String> = lab.config.active_members().map(|m| m.name.clone()).collect();
    let per_member = names.iter().map(|name| async move {
        let mut out = Vec::new();
        let Ok(mut admin) = crate::lab::control::admin_client(lab, name, PROBE_TIMEOUT).await else { return out };
        let Ok(stream) = admin.events(EventsRequest { include_recent: true }).await else { return out };
        let mut stream = stream.into_inner();
        // The backlog comes at once; a pause means it is over and what follows is live.
        while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
            if e.time_unix_micros / 1000 >= since_ms {
                out.push(e);
            }
        }
        out
    });
    futures::future::join_all(per_member).await.into_iter().flatten().collect()
}
