//! What a check looks at: the cluster at one moment ([`Moment`]: members, roles, terms, the
//! leader, the revision), and the probes some checks make of their own (a read, a write,
//! the members' recent events).
//!
//! The moment a step began is kept with the learner's progress, so "the leader changed"
//! means changed since this step started, even across `raftty lesson check` runs.

use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::lab::status::Quorum;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;
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

    /// The first member that is not running, for "bring back the one you killed".
    pub fn down(&self) -> Option<&str> {
        self.members.iter().find(|m| m.state != "running").map(|m| m.name.as_str())
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Looks at the lab now.
pub async fn moment(lab: &Lab) -> Result<Moment> {
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
        })
        .collect();
    // The leader a majority follows: during a partition the old leader, cut off, may still
    // believe it leads.
    let leader = status.majority_leader().map(str::to_string);
    let revision = match &leader {
        Some(l) => revision_on(lab, l).await,
        None => None,
    };
    Ok(Moment {
        unix_ms: now_ms(),
        term: members.iter().filter_map(|m| m.term).max().unwrap_or(0),
        quorum: matches!(status.quorum(), Quorum::Healthy | Quorum::Degraded { .. }),
        leader,
        revision,
        members,
        alarms: status.alarms.clone(),
    })
}

async fn revision_on(lab: &Lab, member: &str) -> Option<i64> {
    let mut c = client(lab, member).await.ok()?;
    let req = RangeRequest { key: PROBE_KEY.into(), count_only: true, serializable: true, ..Default::default() };
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.kv.range(req)).await.ok()?.ok()?;
    resp.into_inner().header.map(|h| h.revision)
}

async fn client(lab: &Lab, member: &str) -> Result<EtcdClient> {
    let url = lab.config.member(member)?.client_url();
    EtcdClient::connect(&url, &lab.root_cert(), PROBE_TIMEOUT).await
}

/// A member to ask when a check names none: the leader, else any running member.
fn some_member(now: &Moment) -> Option<String> {
    now.leader.clone().or_else(|| now.members.iter().find(|m| m.state == "running").map(|m| m.name.clone()))
}

/// The value of `key` read through `via` (or any member); Ok(None) when it is absent.
pub async fn read(lab: &Lab, now: &Moment, key: &str, via: Option<&str>, serializable: bool) -> Result<Option<String>> {
    let member =
        via.map(str::to_string).or_else(|| some_member(now)).ok_or_else(|| anyhow::anyhow!("no member runs"))?;
    let mut c = client(lab, &member).await?;
    let req = RangeRequest { key: key.as_bytes().to_vec().into(), serializable, ..Default::default() };
    let resp = tokio::time::timeout(PROBE_TIMEOUT, c.kv.range(req))
        .await
        .map_err(|_| anyhow::anyhow!("{member} did not answer a read of {key} within {PROBE_TIMEOUT:?}"))??;
    Ok(resp.into_inner().kvs.first().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
}

/// Writes the probe key through `via` (or any member); whether it committed within `wait`.
pub async fn write_commits(lab: &Lab, now: &Moment, via: Option<&str>, wait: Duration) -> bool {
    let Some(member) = via.map(str::to_string).or_else(|| some_member(now)) else { return false };
    let Ok(url) = lab.config.member(&member).map(|m| m.client_url()) else { return false };
    let Ok(mut c) = EtcdClient::connect(&url, &lab.root_cert(), wait).await else { return false };
    let put = PutRequest { key: PROBE_KEY.into(), value: now_ms().to_string().into(), ..Default::default() };
    matches!(tokio::time::timeout(wait, c.kv.put(put)).await, Ok(Ok(_)))
}

/// The events every running member still remembers from `since_ms` on.
pub async fn events_since(lab: &Lab, since_ms: i64) -> Vec<RaftEvent> {
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
