//! The four disasters: what each destroys, what the learner is told, where to look, what a
//! good recovery may still lose, and the strike itself.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use serde::Serialize;

use crate::client::EtcdClient;
use crate::course::drill::Strike;
use crate::course::drill::now_ms;
use crate::lab::Lab;
use crate::lab::process::ProcessState;
use crate::proto::etcdserverpb::PutRequest;
use crate::proto::etcdserverpb::RangeRequest;

/// The quota of a nospace drill's lab: small, so a runaway client fills it in a second.
pub const NOSPACE_QUOTA_BYTES: i64 = 3 << 20;
/// What the runaway client of a nospace drill rewrites, with values of this size.
pub const JUNK_KEY: &str = "/drill/junk";
const JUNK_VALUE_BYTES: usize = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    TotalLoss,
    QuorumLoss,
    MemberDiskLoss,
    Nospace,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::TotalLoss, Kind::QuorumLoss, Kind::MemberDiskLoss, Kind::Nospace];

    pub fn name(self) -> &'static str {
        match self {
            Kind::TotalLoss => "total-loss",
            Kind::QuorumLoss => "quorum-loss",
            Kind::MemberDiskLoss => "member-disk-loss",
            Kind::Nospace => "nospace",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "no drill is called {s:?}: the drills are {} (`raftty drill list` tells them apart)",
                names.join(", ")
            )
        })
    }

    /// One line for `drill list`: the disaster, not the way out.
    pub fn summary(self) -> &'static str {
        match self {
            Kind::TotalLoss => "every member's disk is destroyed at once: the cluster is gone, only the backup is left",
            Kind::QuorumLoss => {
                "two of the three members' disks are gone for good: one member is left, without a quorum"
            }
            Kind::MemberDiskLoss => {
                "one member's disk is gone: the cluster still has a quorum, one failure from losing it"
            }
            Kind::Nospace => {
                "a runaway client fills the database past its quota: the NOSPACE alarm refuses every write"
            }
        }
    }

    /// What a good recovery may still lose, in general terms.
    pub fn allowance_in_general(self) -> &'static str {
        match self {
            Kind::TotalLoss => "the writes the continuous backup had not copied yet when the disks died",
            Kind::QuorumLoss => "the writes the surviving member had not applied yet when the others died",
            Kind::MemberDiskLoss => "nothing: the other two members had every acknowledged write",
            Kind::Nospace => "nothing: the alarm refuses writes, it loses none",
        }
    }

    /// Where to look first: which commands show the trouble (not the way out).
    pub fn where_to_look(self) -> &'static str {
        match self {
            Kind::TotalLoss => {
                "`raftty status` shows the members; `raftty backup list` shows what the backups can restore"
            }
            Kind::QuorumLoss => {
                "`raftty status` shows who is left; `etcdctl put` shows what clients see; `raftty --help` lists the tools"
            }
            Kind::MemberDiskLoss => "`raftty status` and `etcdctl member list` show the cluster's members",
            Kind::Nospace => "`etcdctl alarm list`, `etcdctl endpoint status -w table` and `raftty snapshot status`",
        }
    }

    /// Revealed one at a time by `raftty drill hint`, from a nudge to the commands.
    pub fn hints(self) -> &'static [&'static str] {
        match self {
            Kind::TotalLoss => &[
                "Nothing on the members' disks can help: the backup, kept off them, is all there is. \
                 `raftty backup list` shows its folder and the revisions it can restore.",
                "A restore makes a new cluster from a backup; an existing lab is replaced only when you say so \
                 (`raftty restore --help`).",
                "raftty restore <the backup's folder> --replace",
            ],
            Kind::QuorumLoss => &[
                "Restarting the dead members cannot work: their disks are empty, and a member with an empty disk \
                 that rejoins under its old identity may vote twice in one term. The survivor's data is what is left.",
                "etcd's answer is --force-new-cluster on the survivor: a cluster of one with its data, then new \
                 members added one by one. `raftty recover --help`.",
                "raftty recover <the survivor>",
            ],
            Kind::MemberDiskLoss => &[
                "The member cannot come back under its old identity with an empty disk (it would have forgotten \
                 its vote and its log). It must leave the cluster, and a new member take its place.",
                "Remove the dead member before adding one: adding first makes a cluster of four with one dead, \
                 which needs three to agree. `raftty member --help`.",
                "raftty member remove <the dead member>; raftty member add",
            ],
            Kind::Nospace => &[
                "The space is taken by history: every old value of a key is kept until the history is compacted. \
                 `etcdctl endpoint status -w table` shows each member's db size, `-w json` the current revision.",
                "Compaction frees space inside the file; only a defrag gives it back (member by member); the alarm \
                 stays until someone disarms it.",
                "etcdctl compact <current revision>; etcdctl defrag --cluster; etcdctl alarm disarm",
            ],
        }
    }

    /// The backend quota of the drill's lab (None: etcd's default).
    pub fn quota_bytes(self) -> Option<i64> {
        (self == Kind::Nospace).then_some(NOSPACE_QUOTA_BYTES)
    }

    /// Whether the destroyed members must leave the cluster for the recovery to count: one
    /// that came back with an empty disk under its old identity forgot its vote and log.
    pub fn victims_must_go(self) -> bool {
        matches!(self, Kind::QuorumLoss | Kind::MemberDiskLoss)
    }

    /// Strikes the lab now. `backup_dir` is the drill's continuous backup.
    pub async fn strike(self, lab: &Lab, backup_dir: &Path) -> Result<Strike> {
        let at_unix_ms = now_ms();
        let running: Vec<String> = lab
            .config
            .active_members()
            .filter(|m| lab.process(&m.name).state == ProcessState::Running)
            .map(|m| m.name.clone())
            .collect();
        anyhow::ensure!(running.len() >= 3, "the drill's lab has only {} running members", running.len());
        let mut rng = rand::rng();
        let mut strike = Strike {
            at_unix_ms,
            destroyed: vec![],
            survivor: None,
            kept_up_to_revision: None,
            quota_bytes: None,
            told: String::new(),
            ended_unix_ms: 0,
        };
        match self {
            Kind::TotalLoss => {
                destroy(lab, &running)?;
                let kept = settled("the backup's last revision", || async {
                    crate::backup::continuous::span(backup_dir).map(|(_, last)| last)
                })
                .await?;
                strike.kept_up_to_revision = Some(kept);
                strike.told = format!(
                    "Every member ({}) was killed and its data folder destroyed: the cluster is gone, and clients get \
                     nothing but refused connections. The continuous backup in {} was recording until the end \
                     (it reached revision {kept}).",
                    running.join(", "),
                    backup_dir.display()
                );
                strike.destroyed = running;
            }
            Kind::QuorumLoss => {
                let survivor = running.choose(&mut rng).context("no member runs")?.clone();
                let lost: Vec<String> = running.iter().filter(|m| **m != survivor).cloned().collect();
                destroy(lab, &lost)?;
                let url = lab.config.member(&survivor)?.client_url();
                let kept = settled(&format!("{survivor}'s applied revision"), || applied_revision(lab, &url)).await?;
                strike.kept_up_to_revision = Some(kept);
                strike.told = format!(
                    "{} were killed and their disks destroyed for good. {survivor} still runs with its data (it had \
                     applied up to revision {kept}), but one member of three is no majority: writes stall and \
                     linearizable reads time out.",
                    lost.join(" and ")
                );
                strike.survivor = Some(survivor);
                strike.destroyed = lost;
            }
            Kind::MemberDiskLoss => {
                let victim = running.choose(&mut rng).context("no member runs")?.clone();
                destroy(lab, std::slice::from_ref(&victim))?;
                strike.told = format!(
                    "{victim} was killed and its disk destroyed. The other two still make a quorum, so writes go \
                     on, but the cluster is one failure away from losing it."
                );
                strike.destroyed = vec![victim];
            }
            Kind::Nospace => {
                let quota = lab.config.quota_backend_bytes;
                let puts = fill_up(lab).await?;
                strike.quota_bytes = Some(quota);
                strike.told = format!(
                    "A runaway client rewrote {JUNK_KEY} {puts} times with {} values until the backend quota ({}) \
                     ran out. The NOSPACE alarm is raised: every member refuses every write with `etcdserver: mvcc: \
                     database space exceeded`, while reads still work.",
                    crate::progress::human_bytes(JUNK_VALUE_BYTES as u64),
                    mebibytes(quota)
                );
            }
        }
        strike.ended_unix_ms = now_ms();
        Ok(strike)
    }
}

/// A quota as `raftty up --quota-backend-bytes` takes it.
fn mebibytes(bytes: i64) -> String {
    if bytes > 0 && bytes % (1 << 20) == 0 { format!("{} MiB", bytes >> 20) } else { format!("{bytes} bytes") }
}

/// Kills the members and deletes their data folders: their disks are gone. Every SIGKILL
/// goes out before any wait, so the disaster takes them together rather than one by one.
fn destroy(lab: &Lab, members: &[String]) -> Result<()> {
    for m in members {
        anyhow::ensure!(
            lab.signal_member(m, nix::sys::signal::Signal::SIGKILL).with_context(|| format!("killing {m}"))?,
            "{m} was not running"
        );
        lab.mark_killed(m)?;
    }
    for m in members {
        anyhow::ensure!(lab.wait_exit(m, Duration::from_secs(10)), "{m} did not die after SIGKILL");
    }
    for m in members {
        let dir = lab.member_data_dir(m);
        std::fs::remove_dir_all(&dir).with_context(|| format!("destroying {}", dir.display()))?;
    }
    Ok(())
}

/// A value read until it has stopped changing: with the writers dead it can only catch up
/// with what was already on its way (a watch event in flight, an entry being applied).
async fn settled<F, Fut>(what: &str, mut read: F) -> Result<i64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<i64>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = read().await?;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = read().await?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(700) {
            return Ok(last);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} kept changing for 10 s after the strike");
    }
}

/// The revision a member has applied, by a serializable read that needs no quorum.
async fn applied_revision(lab: &Lab, url: &str) -> Result<i64> {
    let mut c = EtcdClient::connect(url, &lab.root_cert(), Duration::from_secs(2)).await?;
    let read = RangeRequest { key: "health".into(), serializable: true, count_only: true, ..Default::default() };
    let header = c.kv.range(read).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner().header;
    Ok(header.map_or(0, |h| h.revision))
}

/// The runaway client: rewrites one key with big values until the quota refuses it.
/// Returns how many writes it took.
async fn fill_up(lab: &Lab) -> Result<usize> {
    let value = bytes::Bytes::from(vec![b'x'; JUNK_VALUE_BYTES]);
    let most = (lab.config.quota_backend_bytes.max(NOSPACE_QUOTA_BYTES) as usize / JUNK_VALUE_BYTES) * 4;
    let mut puts = 0;
    let mut failures = 0;
    'connections: loop {
        // Through the leader, found afresh after a failure: an election must not stop it.
        let status = crate::lab::status::gather(lab, Duration::from_secs(2)).await?;
        let leader = status.leader().map(str::to_string);
        let url = match &leader {
            Some(l) => lab.config.member(l)?.client_url(),
            None => lab.endpoints().first().cloned().context("the lab has no members")?,
        };
        let mut c = EtcdClient::connect(&url, &lab.root_cert(), Duration::from_secs(10)).await?;
        while puts < most {
            let put = PutRequest { key: JUNK_KEY.into(), value: value.clone(), ..Default::default() };
            match c.kv.put(put).await {
                Ok(_) => puts += 1,
                Err(s) if s.code() == tonic::Code::ResourceExhausted => return Ok(puts),
                Err(s) if failures < 5 => {
                    failures += 1;
                    tracing::debug!("the runaway client's write failed ({}); trying again", s.message());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'connections;
                }
                Err(s) => anyhow::bail!("the runaway client's writes keep failing: {}", s.message()),
            }
        }
        anyhow::bail!("{most} writes of {JUNK_VALUE_BYTES} bytes did not exhaust the quota")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_and_an_unknown_one_lists_the_others() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.name(), "stored under the name people type");
            assert_eq!(k.hints().len(), 3);
        }
        let e = Kind::parse("fire").unwrap_err();
        assert!(e.contains("\"fire\"") && e.contains("total-loss, quorum-loss, member-disk-loss, nospace"), "{e}");
    }
}
