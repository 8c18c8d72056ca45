//! The nemesis: seeded random faults, one at a time, each held for a while and then
//! repaired, while the clients keep going.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Result;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::seq::SliceRandom;

use crate::lab::Lab;
use crate::lab::control;
use crate::lab::faults::Slowness;
use crate::lab::membership;
use crate::lab::process::ProcessState;
use crate::lab::status;
use crate::lab::supervisor;
use crate::proving::torture::workload::Endpoints;

/// The kinds of fault the nemesis can inject (`--nemesis` names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a member, start it again later.
    Kill,
    /// SIGSTOP a member, SIGCONT it later.
    Pause,
    /// Split the members into two random groups.
    Partition,
    /// Cut the leader off from everyone.
    IsolateLeader,
    /// Lose the messages from one member to another, one way.
    Cut,
    /// Delay, jitter and drop a member's messages.
    Slow,
    /// Remove a member, then add a new one.
    Membership,
    /// Kill every member, then start them all.
    KillAll,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Partition,
        Fault::IsolateLeader,
        Fault::Cut,
        Fault::Slow,
        Fault::Membership,
        Fault::KillAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::IsolateLeader => "isolate-leader",
            Fault::Cut => "cut",
            Fault::Slow => "slow",
            Fault::Membership => "membership",
            Fault::KillAll => "kill-all",
        }
    }

    pub fn parse_list(s: &str) -> Result<Vec<Fault>> {
        if s == "all" {
            return Ok(Fault::ALL.to_vec());
        }
        s.split(',')
            .map(|name| {
                Fault::ALL.iter().copied().find(|f| f.name() == name.trim()).ok_or_else(|| {
                    let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                    anyhow::anyhow!("unknown fault {name:?}; the nemesis knows {} (or all)", names.join(", "))
                })
            })
            .collect()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct Injected {
    pub fault: Fault,
    pub detail: String,
    pub at: Duration,
}

/// Injects faults until `stop`, then repairs whatever is still broken. Returns the faults
/// injected, in order.
pub async fn run(
    lab: &mut Lab,
    faults: &[Fault],
    seed: u64,
    endpoints: Endpoints,
    stop: Arc<AtomicBool>,
) -> Result<Vec<Injected>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0x5eed));
    let started = Instant::now();
    let mut injected = Vec::new();
    if faults.is_empty() {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return Ok(injected);
    }
    while !stop.load(Ordering::Relaxed) {
        // Let the cluster settle between faults.
        pause_for(&stop, Duration::from_millis(rng.random_range(500..2000))).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let fault = *faults.choose(&mut rng).expect("faults is not empty");
        let hold = Duration::from_millis(rng.random_range(1000..4000));
        let detail = inject(lab, fault, &mut rng, hold, &endpoints, &stop).await?;
        injected.push(Injected { fault, detail, at: started.elapsed() });
    }
    repair(lab).await?;
    Ok(injected)
}

async fn pause_for(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn members(lab: &Lab) -> Vec<String> {
    lab.config.active_members().map(|m| m.name.clone()).collect()
}

async fn leader(lab: &Lab) -> Option<String> {
    status::gather(lab, Duration::from_secs(2)).await.ok()?.leader().map(str::to_string)
}

/// Applies one fault, holds it for `hold`, repairs it. Returns a description.
async fn inject(
    lab: &mut Lab,
    fault: Fault,
    rng: &mut StdRng,
    hold: Duration,
    endpoints: &Endpoints,
    stop: &AtomicBool,
) -> Result<String> {
    let all = members(lab);
    let victim = all.choose(rng).cloned().unwrap_or_default();
    let detail = match fault {
        Fault::Kill => {
            control::kill(lab, &victim)?;
            pause_for(stop, hold).await;
            control::start(lab, &victim).await?;
            format!("kill -9 {victim}, restarted after {hold:?}")
        }
        Fault::Pause => {
            control::pause(lab, &victim)?;
            pause_for(stop, hold).await;
            control::resume(lab, &victim)?;
            format!("paused {victim} for {hold:?}")
        }
        Fault::Partition => {
            let mut shuffled = all.clone();
            shuffled.shuffle(rng);
            let cut = rng.random_range(1..shuffled.len().max(2));
            let groups = vec![shuffled[..cut].to_vec(), shuffled[cut..].to_vec()];
            let spec = format!("{}|{}", groups[0].join(","), groups[1].join(","));
            control::change_faults(lab, |f| {
                f.partition(&groups);
                Ok(())
            })
            .await?;
            pause_for(stop, hold).await;
            heal(lab).await?;
            format!("partition {spec} for {hold:?}")
        }
        Fault::IsolateLeader => {
            let Some(l) = leader(lab).await else { return Ok("isolate-leader skipped: no leader".into()) };
            let rest: Vec<String> = all.iter().filter(|m| **m != l).cloned().collect();
            control::change_faults(lab, |f| {
                f.partition(&[vec![l.clone()], rest.clone()]);
                Ok(())
            })
            .await?;
            pause_for(stop, hold).await;
            heal(lab).await?;
            format!("isolated leader {l} for {hold:?}")
        }
        Fault::Cut => {
            let to = all.iter().filter(|m| **m != victim).collect::<Vec<_>>().choose(rng).map(|s| s.to_string());
            let Some(to) = to else { return Ok("cut skipped: one member".into()) };
            control::change_faults(lab, |f| {
                f.cut(&victim, &to);
                Ok(())
            })
            .await?;
            pause_for(stop, hold).await;
            heal(lab).await?;
            format!("cut {victim} -> {to} for {hold:?}")
        }
        Fault::Slow => {
            let slowness = Slowness {
                delay_ms: rng.random_range(20..300),
                jitter_ms: rng.random_range(0..50),
                loss_percent: [0.0, 0.0, 5.0, 20.0].choose(rng).copied().unwrap_or(0.0),
            };
            control::change_faults(lab, |f| {
                f.set_slow(&victim, slowness);
                Ok(())
            })
            .await?;
            pause_for(stop, hold).await;
            heal(lab).await?;
            format!(
                "slowed {victim} ({}ms ±{}ms, {}% loss) for {hold:?}",
                slowness.delay_ms, slowness.jitter_ms, slowness.loss_percent
            )
        }
        Fault::Membership => {
            let Some(l) = leader(lab).await else { return Ok("membership skipped: no leader".into()) };
            let removable: Vec<&String> = all.iter().filter(|m| **m != l).collect();
            let Some(gone) = removable.choose(rng).map(|s| s.to_string()) else {
                return Ok("membership skipped: a single member".into());
            };
            membership::remove(lab, &gone).await?;
            set_endpoints(lab, endpoints);
            let added = membership::add(lab, false, |_| {}).await?;
            set_endpoints(lab, endpoints);
            format!("removed {gone}, added {added}")
        }
        Fault::KillAll => {
            for m in &all {
                control::kill(lab, m)?;
            }
            pause_for(stop, hold / 2).await;
            for m in &all {
                lab.spawn_member(m)?;
            }
            supervisor::wait_ready(lab, &all, supervisor::READY_TIMEOUT).await?;
            "killed every member, restarted them all".to_string()
        }
    };
    Ok(detail)
}

fn set_endpoints(lab: &Lab, endpoints: &Endpoints) {
    *endpoints.write().unwrap_or_else(|e| e.into_inner()) = lab.endpoints();
}

async fn heal(lab: &Lab) -> Result<()> {
    control::change_faults(lab, |f| {
        f.heal();
        Ok(())
    })
    .await?;
    Ok(())
}

/// Undoes everything: no network faults, no paused member, every member running, a leader.
pub async fn repair(lab: &Lab) -> Result<()> {
    heal(lab).await?;
    let mut started = Vec::new();
    for m in members(lab) {
        match lab.process(&m).state {
            ProcessState::Paused => control::resume(lab, &m)?,
            ProcessState::Exited => {
                lab.spawn_member(&m)?;
                started.push(m);
            }
            ProcessState::Running => {}
        }
    }
    supervisor::wait_ready(lab, &started, supervisor::READY_TIMEOUT).await?;
    Ok(())
}

/// Counts injected faults by kind, for the summary.
pub fn count(injected: &[Injected]) -> BTreeMap<Fault, usize> {
    let mut counts = BTreeMap::new();
    for i in injected {
        *counts.entry(i.fault).or_default() += 1;
    }
    counts
}
