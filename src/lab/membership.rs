//! Growing and shrinking a lab's cluster, the way an operator does it with etcd: add the new
//! member as a learner, start it, let it catch up, promote it; or remove a member and stop
//! its process. Everything goes through the etcd Cluster API, so `etcdctl member ...` shows
//! exactly the same steps.

use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::client::EtcdClient;
use crate::errors::EtcdError;
use crate::lab::Lab;
use crate::lab::control;
use crate::lab::process::ProcessState;
use crate::lab::status;
use crate::proto::etcdserverpb::MemberAddRequest;
use crate::proto::etcdserverpb::MemberListRequest;
use crate::proto::etcdserverpb::MemberPromoteRequest;
use crate::proto::etcdserverpb::MemberRemoveRequest;
use crate::proto::rafttyadmin::StateRequest;

/// How long a new member may take to catch up before `member add` gives up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// What `member add` reports while it waits for the new member to catch up.
pub struct CatchUp {
    pub member: String,
    pub matched: u64,
    pub leader_last: u64,
}

/// A client of some running member other than `except`, with the lab's root certificate.
async fn any_member(lab: &Lab, except: Option<&str>) -> Result<EtcdClient> {
    for m in lab.config.active_members() {
        if Some(m.name.as_str()) == except || lab.process(&m.name).state != ProcessState::Running {
            continue;
        }
        if let Ok(c) = EtcdClient::connect(&m.client_url(), &lab.root_cert(), Duration::from_secs(5)).await {
            return Ok(c);
        }
    }
    anyhow::bail!("no running member of lab {} answers", lab.name())
}

/// Adds a member: a learner first, then (unless `learner_only`) a voter once it has caught
/// up. Returns the new member's name.
pub async fn add(lab: &mut Lab, learner_only: bool, mut progress: impl FnMut(&CatchUp)) -> Result<String> {
    let mut client = any_member(lab, None).await?;
    let new = lab.new_member(false)?;
    let added =
        client.cluster.member_add(MemberAddRequest { peer_ur_ls: vec![new.peer_url()], is_learner: true }).await;
    let id = match added {
        Ok(resp) => resp.into_inner().member.map(|m| m.id).context("MemberAdd returned no member")?,
        Err(e) => {
            lab.config.members.pop();
            return Err(anyhow::anyhow!("adding {}: {}", new.name, e.message()));
        }
    };
    // The cluster chose the id; the lab records it so the member starts as that member.
    if let Some(m) = lab.config.members.iter_mut().find(|m| m.name == new.name) {
        m.id = id;
    }
    lab.config.save(&lab.dir)?;
    lab.spawn_member(&new.name)?;
    control::wait_answering(lab, &new.name, Duration::from_secs(30)).await?;
    wait_caught_up(lab, &new.name, id, &mut progress).await?;
    // Publishing its name is a membership change of the member's own: made while a promotion
    // is between its two steps (joint, then final configuration), it makes the second step
    // fail ("last membership log id mismatch"). So the member publishes first.
    wait_published(lab, &new.name, id).await?;
    if !learner_only {
        promote(lab, &new.name).await?;
    }
    Ok(new.name)
}

/// Waits until the cluster's member list shows the new member under its name, as it
/// publishes it once it runs.
async fn wait_published(lab: &Lab, member: &str, id: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut client = any_member(lab, None).await?;
        let members = client.cluster.member_list(MemberListRequest {}).await?.into_inner().members;
        if members.iter().any(|m| m.id == id && m.name == member && !m.client_ur_ls.is_empty()) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{member} joined but never published its name");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Promotes a learner to voter, retrying while etcd says it is not in sync yet.
pub async fn promote(lab: &Lab, member: &str) -> Result<()> {
    let id = lab.config.member(member)?.id;
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let mut client = any_member(lab, None).await?;
        match client.cluster.member_promote(MemberPromoteRequest { id }).await {
            Ok(_) => return Ok(()),
            Err(e) if e.message() == EtcdError::LearnerNotReady.to_string() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => anyhow::bail!("promoting {member}: {}", e.message()),
        }
    }
}

async fn wait_caught_up(lab: &Lab, member: &str, id: u64, progress: &mut impl FnMut(&CatchUp)) -> Result<()> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let status = status::gather(lab, Duration::from_secs(2)).await?;
        if let Some(leader) = status.leader() {
            let mut admin = control::admin_client(lab, leader, Duration::from_secs(2)).await?;
            let state = admin.state(StateRequest {}).await?.into_inner();
            let matched = state.matched.get(&id).copied().unwrap_or(0);
            let report = CatchUp { member: member.to_string(), matched, leader_last: state.last_log_index };
            progress(&report);
            if matched >= state.last_log_index {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{member} did not catch up with the leader within {CATCH_UP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes `member` from the cluster, stops its process and marks it removed in the lab:
/// its name and id are never used again.
pub async fn remove(lab: &mut Lab, member: &str) -> Result<()> {
    let m = lab.config.member(member)?.clone();
    anyhow::ensure!(!m.removed, "{member} was already removed");
    let mut client = any_member(lab, Some(member)).await?;
    client
        .cluster
        .member_remove(MemberRemoveRequest { id: m.id })
        .await
        .map_err(|e| anyhow::anyhow!("removing {member}: {}", e.message()))?;
    lab.stop_member(member, Duration::from_secs(10))?;
    if let Some(m) = lab.config.members.iter_mut().find(|x| x.name == member) {
        m.removed = true;
    }
    lab.config.save(&lab.dir)?;
    Ok(())
}
