//! `raftty torture`: a Jepsen-style run against a real lab.
//!
//! Concurrent clients send a seeded mix of requests (`workload.rs`) and record every one
//! with its invocation and completion time and outcome, while a nemesis injects seeded
//! random faults (`nemesis.rs`). When the time is up the faults are repaired and the
//! history is checked: linearizability per key (the `check` module), no acknowledged write
//! lost, revisions never going backwards, reads consistent with revision order, and every
//! member's HashKV equal. A violation is saved with the whole history (`report.rs`).

pub mod leases;
pub mod nemesis;
pub mod report;
pub mod watchers;
pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::Tempo;
use crate::lab::status;
use crate::lab::supervisor;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proving::check::CheckOptions;
use crate::proving::check::FinalRead;
use crate::proving::check::HistoryRecorder;
use crate::proving::check::watch::Segment;
use crate::proving::check::watch::WatchSpec;
use crate::proving::check::watch::check_watch;
use nemesis::Fault;
use report::TortureReport;
use watchers::WatchPlan;
use workload::Keys;
use workload::Tally;

pub struct TortureOptions {
    pub seed: u64,
    pub duration: Duration,
    pub clients: usize,
    pub nodes: usize,
    pub nemesis: Vec<Fault>,
    /// Where the lab lives; a temporary folder when not given.
    pub home: Option<PathBuf>,
    /// Where a violation's history and account are saved.
    pub out: PathBuf,
    pub keys: usize,
}

const LAB: &str = "torture";

pub async fn run(options: &TortureOptions) -> Result<TortureReport> {
    let scratch = tempfile::Builder::new().prefix("raftty-torture-").tempdir()?;
    let home = options.home.clone().unwrap_or_else(|| scratch.path().to_path_buf());
    if Lab::exists(&home, LAB) {
        supervisor::down(&home, LAB, true)?;
    }
    let shape = supervisor::LabShape {
        nodes: Some(options.nodes),
        tempo: Some(Tempo::ETCD),
        snapshot_every: Some(500),
        ..Default::default()
    };
    let (mut lab, _) = supervisor::up(&home, LAB, shape).await?;
    let result = torture(&mut lab, options).await;
    let _ = supervisor::down(&home, LAB, options.home.is_none());
    result
}

async fn torture(lab: &mut Lab, options: &TortureOptions) -> Result<TortureReport> {
    let keys = Keys { prefix: format!("torture/{:x}/", options.seed), count: options.keys };
    let recorder = Arc::new(HistoryRecorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let endpoints = Arc::new(RwLock::new(lab.endpoints()));
    let cert = lab.root_cert();
    let started = Instant::now();

    let clients: Vec<_> = (0..options.clients as u64)
        .map(|id| {
            tokio::spawn(workload::client(
                id,
                options.seed,
                keys.clone(),
                endpoints.clone(),
                cert.clone(),
                recorder.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let leases = tokio::spawn(leases::client(
        options.seed,
        format!("{}lease/", keys.prefix),
        endpoints.clone(),
        cert.clone(),
        stop.clone(),
    ));
    let (last_tx, last_rx) = tokio::sync::watch::channel(i64::MAX);
    let plans = watch_plans(&keys, &endpoints);
    let watchers: Vec<_> = plans
        .iter()
        .cloned()
        .map(|plan| tokio::spawn(watchers::run_watcher(plan, cert.clone(), last_rx.clone())))
        .collect();
    let timer = {
        let stop = stop.clone();
        let duration = options.duration;
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let injected = nemesis::run(lab, &options.nemesis, options.seed, endpoints.clone(), stop.clone()).await;
    stop.store(true, Ordering::Relaxed);
    timer.abort();
    let mut tally = Tally::default();
    for c in clients {
        tally.merge(&c.await?);
    }
    let lease_report = leases.await?;
    tally.merge(&lease_report.tally);
    let injected = injected?;
    // Whatever the nemesis left (it repairs after its last fault), the checks need a whole
    // cluster: every member running, no fault, a leader.
    nemesis::repair(lab).await?;

    let final_reads = final_reads(lab, &keys).await?;
    let recorder = Arc::try_unwrap(recorder).map_err(|_| anyhow::anyhow!("a client still holds the recorder"))?;
    let mut history = recorder.into_history();
    let end = started.elapsed().as_nanos() as u64;
    for read in &final_reads {
        history.push(read.to_operation(u64::MAX, end, end));
    }
    let linearizability = crate::proving::check::check_linearizability(&history, &CheckOptions::default())
        .map_err(|e| anyhow::anyhow!("the recorded history is malformed: {e}"))?;
    let anomalies: Vec<_> = crate::proving::check::lost_writes(&history, &final_reads)
        .into_iter()
        .chain(crate::proving::check::revision_regressions(&history))
        .chain(crate::proving::check::read_inconsistencies(&history))
        .chain(crate::proving::check::duplicate_revisions(&history))
        .collect();
    let hashes = crate::lab::check::check(lab, Duration::from_secs(20)).await?;
    let through = final_reads.first().map(|r| r.revision).unwrap_or(0);
    let (watched_events, watch_violations) = check_watchers(lab, &plans, watchers, last_tx, through).await?;
    Ok(TortureReport {
        seed: options.seed,
        duration: started.elapsed(),
        tally,
        injected,
        linearizability,
        anomalies,
        hashes,
        watched_events,
        watch_violations,
        lease_violations: lease_report.violations,
        history,
        out: options.out.clone(),
    })
}

/// Reads every key of the run, linearizably, once the cluster is whole again.
async fn final_reads(lab: &Lab, keys: &Keys) -> Result<Vec<FinalRead>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let status = status::gather(lab, Duration::from_secs(2)).await?;
            let leader = status.leader().context("no leader")?.to_string();
            let url = lab.config.member(&leader)?.client_url();
            let mut c = EtcdClient::connect(&url, &lab.root_cert(), Duration::from_secs(5)).await?;
            let req = RangeRequest {
                key: keys.prefix.clone().into_bytes().into(),
                range_end: keys.range_end().into(),
                ..Default::default()
            };
            let resp = c.kv.range(req).await?.into_inner();
            let revision = resp.header.map(|h| h.revision).unwrap_or(0);
            Ok::<_, anyhow::Error>(
                keys.all()
                    .into_iter()
                    .map(|key| {
                        let kv = resp.kvs.iter().find(|kv| kv.key.as_ref() == key.as_bytes());
                        FinalRead {
                            value: kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
                            mod_revision: kv.map(|kv| kv.mod_revision).unwrap_or(0),
                            revision,
                            key,
                        }
                    })
                    .collect(),
            )
        };
        match attempt.await {
            Ok(reads) => return Ok(reads),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("final read: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.context("reading the final state after the faults were repaired")),
        }
    }
}

/// The watchers of a run: prefix and single key, from now and from the first revision,
/// with previous values and filters, one dropped on purpose and resumed.
fn watch_plans(keys: &Keys, endpoints: &workload::Endpoints) -> Vec<WatchPlan> {
    let prefix = || WatchSpec::prefix(keys.prefix.clone().into_bytes());
    let plan = |name: &str, spec: WatchSpec, start: i64, disconnect_after| WatchPlan {
        name: name.to_string(),
        spec,
        start,
        endpoints: endpoints.clone(),
        disconnect_after,
    };
    vec![
        plan("prefix from now, prev_kv", prefix().with_prev_kv(), 0, None),
        plan("one key from revision 1", WatchSpec::key(keys.key(0).into_bytes()), 1, None),
        plan("deletes only, dropped and resumed", WatchSpec { no_put: true, ..prefix() }, 1, Some((5, 3))),
        plan("puts only, prev_kv", WatchSpec { no_delete: true, ..prefix().with_prev_kv() }, 1, None),
    ]
}

/// Lets the watchers finish at `through`, reads the committed history back and checks
/// every watcher against it. Returns the events checked and the violations found.
async fn check_watchers(
    lab: &Lab,
    plans: &[WatchPlan],
    watchers: Vec<tokio::task::JoinHandle<Result<Vec<Segment>>>>,
    last: tokio::sync::watch::Sender<i64>,
    through: i64,
) -> Result<(usize, Vec<String>)> {
    let _ = last.send(through);
    let mut observed = Vec::new();
    for w in watchers {
        let segments = tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .context("a watcher did not catch up with the final revision in 2 minutes")???;
        observed.push(segments);
    }
    // Keys still attached to leases can expire after the final reads, so a watcher may have
    // been told of revisions past `through`: the history must cover them too.
    let through = observed.iter().flatten().map(watchers::covered_by).fold(through, i64::max);
    let status = status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.leader().context("no leader to read the history from")?.to_string();
    let history = watchers::read_history(&lab.config.member(&leader)?.client_url(), &lab.root_cert(), through).await?;
    let mut violations = Vec::new();
    if let Err(e) = history.check_consistency() {
        violations.push(format!("the committed history does not hold together: {e}"));
    }
    let mut events = 0;
    for (plan, segments) in plans.iter().zip(&observed) {
        match check_watch(&history, &plan.name, &plan.spec, segments) {
            Ok(summary) => events += summary.events,
            Err(v) => violations.push(v.to_string()),
        }
    }
    Ok((events, violations))
}
