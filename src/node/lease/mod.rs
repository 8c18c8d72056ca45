//! Leases: keys with a lifetime. What a lease *is* (its TTL, its keys) is replicated state in
//! the MVCC store; *when* it expires is decided by one member only, the leader, as etcd's
//! lessor does.
//!
//! - Grant, revoke and checkpoint are Raft commands (see [`crate::node::mvcc::lease`]): every
//!   member applies them alike, and a revoke deletes the lease's keys in one revision.
//! - The leader keeps a clock per lease ([`schedule::Schedule`]). Keep-alives must reach it:
//!   a follower forwards them over the peer port ([`peer`]), through the lab's simulated
//!   network, so a partition hurts keep-alives as it would for real. When a lease's time is
//!   up, the leader proposes its revoke; all members then delete the same keys at the same
//!   revision.
//! - A new leader starts every clock again from the lease's remaining time (checkpointed, or
//!   else its full TTL) plus an election timeout: nobody could renew while there was no
//!   leader, so nothing expires just because the old leader died.
//! - Leases with more than [`LeaseSettings::checkpoint_interval`] left have their remaining
//!   time checkpointed through Raft now and then (etcd 3.4's optional checkpoints), so a
//!   leader change does not give a long lease its whole TTL again.

pub mod peer;
pub mod schedule;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use crate::errors::EtcdError;
use crate::node::member::Member;
use crate::node::mvcc::LeaseInfo;
use crate::node::raft::types::NodeId;
use crate::proto::etcdserverpb::LeaseCheckpoint;
use crate::proto::etcdserverpb::LeaseCheckpointRequest;
use crate::proto::etcdserverpb::LeaseRevokeRequest;
use crate::proto::etcdserverpb::LeaseTimeToLiveResponse;
use crate::proto::rafttypb::Command;
use crate::proto::rafttypb::command::Op;
use schedule::Schedule;

/// etcd checkpoints the remaining time of long leases every five minutes.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// The environment variable that overrides the checkpoint interval (for tests).
pub const CHECKPOINT_INTERVAL_ENV: &str = "RAFTTY_LEASE_CHECKPOINT_INTERVAL";
/// The longest interval a setting may have.
const LONGEST_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// etcd's largest checkpoint command.
const CHECKPOINT_BATCH: usize = 1000;
/// How often the leader looks for expired leases (etcd: every 500 ms; a lab is small, and
/// expiry shows sooner).
const TICK: Duration = Duration::from_millis(100);
/// How long before an expired lease whose revoke failed is tried again.
const REVOKE_RETRY: Duration = Duration::from_secs(1);
/// How often a keep-alive that found its lease expired looks whether the revoke is done.
const REVOKE_POLL: Duration = Duration::from_millis(20);
/// Pause between attempts to reach a leader that did not answer (etcd: 50 ms).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// etcd's minimum TTL: 1.5 election timeouts, rounded up to whole seconds. A shorter
    /// lease could expire during an ordinary leader election.
    pub min_ttl: i64,
    /// What a new leader adds to every lease (one election timeout).
    pub extend: Duration,
    /// How often long leases have their remaining time checkpointed; `None`: never.
    pub checkpoint_interval: Option<Duration>,
    /// The longest a forwarded request waits for one leader before trying again (a leader
    /// may change meanwhile).
    pub attempt_timeout: Duration,
}

impl LeaseSettings {
    pub fn for_member(election_timeout: Duration) -> anyhow::Result<LeaseSettings> {
        let checkpoint_interval = match std::env::var(CHECKPOINT_INTERVAL_ENV) {
            Ok(text) if text == "off" => None,
            Ok(text) => Some(
                humantime::parse_duration(&text)
                    .map_err(|e| anyhow::anyhow!("{CHECKPOINT_INTERVAL_ENV}={text:?} is not a duration: {e}"))?,
            ),
            Err(_) => Some(DEFAULT_CHECKPOINT_INTERVAL),
        };
        Ok(LeaseSettings {
            min_ttl: min_ttl(election_timeout),
            extend: election_timeout,
            // clamped so that adding it to a clock cannot overflow: a month is as good as never
            checkpoint_interval: checkpoint_interval.filter(|d| !d.is_zero()).map(|d| d.min(LONGEST_INTERVAL)),
            attempt_timeout: (2 * election_timeout).max(Duration::from_secs(1)),
        })
    }
}

/// etcd's `minLeaseTTL`: 1.5 election timeouts in whole seconds, rounded up, at least 1.
pub fn min_ttl(election_timeout: Duration) -> i64 {
    let millis = election_timeout.as_millis().saturating_mul(3) / 2;
    i64::try_from(millis.div_ceil(1000)).unwrap_or(i64::MAX).max(1)
}

/// Why the leader's lessor could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRefusal {
    /// This member is not (or not yet, or no longer) the leader: ask the leader.
    NotLeader,
    NotFound,
    Timeout,
}

pub struct Lessor {
    member: Arc<Member>,
    settings: LeaseSettings,
    /// `Some` while this member is the leader and keeps the lease clocks.
    primary: Mutex<Option<Primary>>,
    ids: IdGenerator,
}

struct Primary {
    schedule: Schedule,
    /// When long leases are checkpointed next; `None` when checkpoints are off.
    next_checkpoint: Option<Instant>,
}

impl Lessor {
    /// Creates the member's lessor and starts its clock.
    pub fn start(member: Arc<Member>, settings: LeaseSettings) -> Arc<Lessor> {
        let ids = IdGenerator::new(member.id);
        let lessor = Arc::new(Lessor { member, settings, primary: Mutex::new(None), ids });
        tokio::spawn(lessor.clone().run());
        lessor
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    pub fn member(&self) -> &Arc<Member> {
        &self.member
    }

    /// A fresh lease id for a client that did not choose one.
    pub fn new_id(&self) -> i64 {
        self.ids.next()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Primary>> {
        self.primary.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease(&self, id: i64) -> Option<LeaseInfo> {
        self.member.state_machine.mvcc().lease(id)
    }

    async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let leading = leads(&self.member);
            let was_primary = self.lock().is_some();
            match (was_primary, leading) {
                (false, true) => self.promote(),
                (true, false) => {
                    // etcd's Demote: the clocks stop; the next leader starts its own.
                    *self.lock() = None;
                    tracing::info!("lessor: no longer the leader; lease expiry is left to the next one");
                }
                _ => {}
            }
            if leading {
                self.keep_time();
            }
        }
    }

    fn promote(&self) {
        let store = self.member.state_machine.mvcc();
        let leases: Vec<(i64, Duration)> = store
            .lease_ids()
            .into_iter()
            .filter_map(|id| store.lease(id))
            .map(|l| (l.id, Duration::from_secs(remaining_or_ttl(&l))))
            .collect();
        let count = leases.len();
        let now = Instant::now();
        let schedule = Schedule::promote(leases, now, self.settings.extend);
        let next_checkpoint = self.settings.checkpoint_interval.map(|interval| now + interval);
        *self.lock() = Some(Primary { schedule, next_checkpoint });
        tracing::info!("lessor: leading; {count} leases get their remaining time plus {:?}", self.settings.extend);
    }

    /// One tick of the leader's clock: learn about new and revoked leases, revoke expired
    /// ones, checkpoint long ones when it is time.
    fn keep_time(self: &Arc<Self>) {
        let store = self.member.state_machine.mvcc();
        let existing: HashSet<i64> = store.lease_ids().into_iter().collect();
        let untracked: Vec<i64> = {
            let guard = self.lock();
            let Some(primary) = guard.as_ref() else { return };
            existing.iter().copied().filter(|id| !primary.schedule.is_tracked(*id)).collect()
        };
        let fresh: Vec<(i64, Duration)> = untracked
            .into_iter()
            .filter_map(|id| store.lease(id))
            .map(|l| (l.id, Duration::from_secs(remaining_or_ttl(&l))))
            .collect();
        let now = Instant::now();
        let (due, checkpoints) = {
            let mut guard = self.lock();
            let Some(primary) = guard.as_mut() else { return };
            primary.schedule.retain(&existing);
            for (id, remaining) in fresh {
                primary.schedule.track(id, remaining, now);
            }
            let limit = schedule::REVOKES_PER_SECOND * TICK.as_millis() as usize / 1000;
            let due = primary.schedule.take_due(now, limit.max(1));
            let checkpoints = match (self.settings.checkpoint_interval, primary.next_checkpoint) {
                (Some(interval), Some(due)) if now >= due => {
                    primary.next_checkpoint = Some(now + interval);
                    primary.schedule.checkpoints(now, interval, CHECKPOINT_BATCH)
                }
                _ => Vec::new(),
            };
            (due, checkpoints)
        };
        for id in due {
            let lessor = self.clone();
            tokio::spawn(async move { lessor.revoke_expired(id).await });
        }
        if !checkpoints.is_empty() {
            let checkpoints =
                checkpoints.into_iter().map(|(id, remaining_ttl)| LeaseCheckpoint { id, remaining_ttl }).collect();
            self.spawn_checkpoint(checkpoints);
        }
    }

    async fn revoke_expired(&self, id: i64) {
        let command = Command { op: Some(Op::LeaseRevoke(LeaseRevokeRequest { id })), user: String::new() };
        match self.member.propose(command).await {
            // a refusal here can only be "not found": someone revoked it first
            Ok(_) => tracing::info!("lease {id:016x} expired and was revoked"),
            Err(e) => {
                tracing::warn!("revoking expired lease {id:016x}: {e}; trying again");
                if let Some(primary) = self.lock().as_mut() {
                    primary.schedule.revoke_failed(id, Instant::now(), REVOKE_RETRY);
                }
            }
        }
    }

    fn spawn_checkpoint(&self, checkpoints: Vec<LeaseCheckpoint>) {
        let member = self.member.clone();
        tokio::spawn(async move {
            let command =
                Command { op: Some(Op::LeaseCheckpoint(LeaseCheckpointRequest { checkpoints })), user: String::new() };
            if let Err(e) = member.propose(command).await {
                tracing::debug!("lease checkpoint: {e}");
            }
        });
    }

    /// The leader's half of a keep-alive: restarts the lease's clock and returns its TTL.
    /// A lease whose time is up is about to be revoked; like etcd, the answer waits for
    /// that and is then "not found".
    pub async fn renew_here(&self, id: i64, deadline: Instant) -> Result<i64, LeaseRefusal> {
        loop {
            let lease = self.lease(id);
            let now = Instant::now();
            {
                let mut guard = self.lock();
                let Some(primary) = guard.as_mut() else { return Err(LeaseRefusal::NotLeader) };
                let Some(lease) = lease else { return Err(LeaseRefusal::NotFound) };
                if !primary.schedule.is_expired(id, now) {
                    primary.schedule.renew(id, Duration::from_secs(lease.ttl.max(0) as u64), now);
                    drop(guard);
                    if lease.remaining_ttl > 0 {
                        // A renewed lease has its whole TTL again: a new leader must not
                        // fall back to the old checkpoint (etcd clears it the same way).
                        self.spawn_checkpoint(vec![LeaseCheckpoint { id, remaining_ttl: 0 }]);
                    }
                    return Ok(lease.ttl);
                }
            }
            if now >= deadline {
                return Err(LeaseRefusal::Timeout);
            }
            tokio::time::sleep(REVOKE_POLL).await;
        }
    }

    /// The leader's answer to LeaseTimeToLive.
    pub fn time_to_live_here(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse, LeaseRefusal> {
        let lease = self.lease(id);
        let guard = self.lock();
        let Some(primary) = guard.as_ref() else { return Err(LeaseRefusal::NotLeader) };
        let Some(lease) = lease else { return Err(LeaseRefusal::NotFound) };
        let remaining = primary
            .schedule
            .remaining(id, Instant::now())
            // granted a moment ago, before the clock saw it
            .unwrap_or(Duration::from_secs(remaining_or_ttl(&lease)));
        Ok(LeaseTimeToLiveResponse {
            header: None,
            id,
            // etcd truncates to whole seconds
            ttl: i64::try_from(remaining.as_secs()).unwrap_or(i64::MAX),
            granted_ttl: lease.ttl,
            keys: if keys { lease.keys } else { Vec::new() },
        })
    }

    /// A keep-alive from a client of this member, wherever the leader is: the lease's TTL,
    /// or `LeaseNotFound`.
    pub async fn keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        self.on_leader(
            |deadline| self.renew_here(id, deadline),
            |leader, url, deadline| peer::renew(&self.member, leader, url, id, deadline, self.settings.attempt_timeout),
        )
        .await
    }

    /// LeaseTimeToLive from a client of this member, answered by the leader.
    pub async fn time_to_live(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        self.on_leader(
            |_| async move { self.time_to_live_here(id, keys) },
            |leader, url, deadline| {
                peer::time_to_live(&self.member, leader, url, id, keys, deadline, self.settings.attempt_timeout)
            },
        )
        .await
    }

    /// Runs a request on the leader: here when this member leads, over the peer port
    /// otherwise; tried again (both are idempotent) until the member's request timeout when
    /// the leader changes or cannot be reached.
    async fn on_leader<T, L, LF, R, RF>(&self, local: L, remote: R) -> Result<T, EtcdError>
    where
        L: Fn(Instant) -> LF,
        LF: Future<Output = Result<T, LeaseRefusal>>,
        R: Fn(NodeId, String, Instant) -> RF,
        RF: Future<Output = Result<T, LeaseRefusal>>,
    {
        let deadline = Instant::now() + self.member.request_timeout;
        loop {
            let outcome = match self.leader(deadline).await {
                None => Err(LeaseRefusal::NotLeader),
                Some((leader, _)) if leader == self.member.id => local(deadline).await,
                Some((leader, url)) => remote(leader, url, deadline).await,
            };
            match outcome {
                Ok(answer) => return Ok(answer),
                Err(LeaseRefusal::NotFound) => return Err(EtcdError::LeaseNotFound),
                Err(LeaseRefusal::Timeout) => return Err(EtcdError::Timeout),
                Err(LeaseRefusal::NotLeader) if Instant::now() >= deadline => {
                    return Err(if self.member_knows_leader() { EtcdError::Timeout } else { EtcdError::NoLeader });
                }
                Err(LeaseRefusal::NotLeader) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
    }

    fn member_knows_leader(&self) -> bool {
        self.member.raft.metrics().borrow_watched().current_leader.is_some()
    }

    /// The leader and its peer URL, waiting (until `deadline`) for one to be known.
    async fn leader(&self, deadline: Instant) -> Option<(NodeId, String)> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let metrics = self
            .member
            .raft
            .wait(Some(remaining.min(RETRY_PAUSE * 4)))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .ok()?;
        let leader = metrics.current_leader?;
        let url = metrics.membership_config.membership().get_node(&leader).map(|n| n.peer_url.clone())?;
        Some((leader, url))
    }
}

/// Whether this member is the leader a client can rely on: it leads and a quorum still
/// acknowledges it (a leader cut off from the others cannot commit revokes, and must not
/// accept keep-alives the real leader never hears of).
pub fn leads(member: &Member) -> bool {
    member.live_leader() == Some(member.id)
}

/// What a new leader gives a lease: its checkpointed remaining time, or else its TTL.
fn remaining_or_ttl(lease: &LeaseInfo) -> u64 {
    let seconds = if lease.remaining_ttl > 0 { lease.remaining_ttl } else { lease.ttl };
    u64::try_from(seconds).unwrap_or(0)
}

/// Server-chosen lease ids: unique per member (the member id's low bits on top) and
/// increasing (a counter seeded from the clock, so a restarted member does not repeat
/// itself); always positive and never 0, which means "no lease". A collision with a
/// client-chosen id is caught by the state machine, and the grant tries another.
struct IdGenerator {
    prefix: u64,
    counter: AtomicU64,
}

const COUNTER_BITS: u32 = 47;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

impl IdGenerator {
    fn new(member_id: NodeId) -> IdGenerator {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        IdGenerator {
            prefix: (member_id & 0xffff) << COUNTER_BITS,
            counter: AtomicU64::new((millis << 4) & COUNTER_MASK),
        }
    }

    fn next(&self) -> i64 {
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed) & COUNTER_MASK;
            let id = (self.prefix | n) as i64;
            if id > 0 {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_ttl_follows_the_election_timeout_like_etcd() {
        assert_eq!(min_ttl(Duration::from_millis(1000)), 2);
        assert_eq!(min_ttl(Duration::from_millis(500)), 1);
        assert_eq!(min_ttl(Duration::from_millis(10_000)), 15);
        assert_eq!(min_ttl(Duration::from_millis(100)), 1);
    }

    #[test]
    fn generated_ids_are_positive_distinct_and_carry_the_member() {
        let ids = IdGenerator::new(0xabcd_1234);
        let a = ids.next();
        let b = ids.next();
        assert!(a > 0 && b > 0 && a != b);
        assert_eq!((a as u64) >> COUNTER_BITS, 0x1234);
        let zero_member = IdGenerator { prefix: 0, counter: AtomicU64::new(0) };
        assert_eq!(zero_member.next(), 1, "0 means no lease and is skipped");
    }
}
