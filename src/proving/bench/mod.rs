//! `raftty bench`: throughput and latency of a 3-member lab, side by side with a 3-member
//! etcd on the same machine when `etcd` is on PATH. Numbers are compared as ratios: absolute
//! times depend on the machine, ratios much less.

pub mod app;
pub mod auth;
pub mod etcd;
pub mod explain;
pub mod failover;
pub mod load;
pub mod rounds;
pub mod snapshots;
pub mod watch;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::lab;
use crate::lab::Lab;
use crate::lab::Tempo;
use crate::pki::CertFiles;
use load::KeySpace;
use load::Op;
use load::Outcome;
use load::Workload;

pub struct BenchOptions {
    pub duration: Duration,
    pub with_etcd: bool,
    pub keys: u64,
    pub value_size: usize,
    /// Members of each cluster (3 unless told otherwise).
    pub members: usize,
    /// Only the workloads whose short names are listed (`put1`, `put16`, `put256`, `getl`, `gets1`,
    /// `gets`, `auth`, `fanout`, `failover`, `snapshot`, `app`); all of them when empty.
    pub only: Vec<String>,
    /// Also break a single client's put into stages, as the leader sees them.
    pub explain: bool,
    /// Rounds of a single client's put, alternating raftty and etcd (none when 0).
    pub rounds: usize,
}

impl BenchOptions {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

const LAB: &str = "bench";

fn workloads(options: &BenchOptions) -> Vec<Workload> {
    let duration = options.duration;
    let w = |op, clients, auth| Workload { op, clients, duration, auth };
    let all = [
        ("put1", w(Op::Put, 1, false)),
        ("put16", w(Op::Put, 16, false)),
        ("put256", w(Op::Put, 256, false)),
        ("getl", w(Op::GetLinearizable, 16, false)),
        ("gets", w(Op::GetSerializable, 16, false)),
        // One client's serializable get: the round trip through TLS and gRPC without Raft,
        // what every put pays on top of its replication.
        ("gets1", w(Op::GetSerializable, 1, false)),
        // The same as put16 and gets, with auth on: what checking every request costs.
        ("auth", w(Op::Put, 16, true)),
        ("auth", w(Op::GetSerializable, 16, true)),
    ];
    all.into_iter().filter(|(name, _)| options.wants(name)).map(|(_, w)| w).collect()
}

/// What one system did on every workload, plus its start-up time and memory.
struct Results {
    name: String,
    cold_start: Duration,
    idle_rss_mb: Vec<f64>,
    /// The same once every key of the key space was written (and the writes settled).
    filled_rss_mb: Vec<f64>,
    workloads: Vec<(Workload, Outcome)>,
    failover: Vec<Duration>,
    fanout: Option<watch::FanoutReport>,
    snapshot: Option<snapshots::SnapshotTimes>,
    /// raftty only: a single client's put, stage by stage.
    explained: Option<explain::Explained>,
}

/// Watchers on one prefix, and writes to it, for the fan-out measurement.
const FANOUT_WATCHERS: usize = 1000;
const FANOUT_WRITES: usize = 2000;

/// Leader kills per system: enough for a median.
const FAILOVER_RUNS: usize = 5;

pub async fn run(options: BenchOptions) -> Result<()> {
    let scratch = tempfile::Builder::new().prefix("raftty-bench-").tempdir()?;
    let home = scratch.path().join("home");
    let space = Arc::new(KeySpace::new(options.keys, options.value_size));

    println!(
        "raftty bench: {} members each, {} s per workload, {} keys, {} byte values",
        options.members,
        options.duration.as_secs(),
        options.keys,
        options.value_size
    );
    let started = Instant::now();
    let (lab, _) = lab::supervisor::up(
        &home,
        LAB,
        lab::supervisor::LabShape { nodes: Some(options.members), tempo: Some(Tempo::ETCD), ..Default::default() },
    )
    .await?;
    let raftty_cold = started.elapsed();
    let result = bench_raftty(&lab, &space, &options, raftty_cold).await;
    let app = if options.wants("app") {
        eprintln!("the terminal app: frame times, idle CPU");
        let home = home.clone();
        Some(tokio::task::spawn_blocking(move || app::report(&home, LAB)).await?)
    } else {
        None
    };
    let etcd_version = etcd::etcd_version().filter(|_| options.with_etcd);
    // Alternating rounds need both systems up at once; otherwise etcd runs alone.
    let alternate = options.rounds > 0 && etcd_version.is_some() && result.is_ok();
    if !alternate {
        let _ = lab::supervisor::down(&home, LAB, false);
    }
    let raftty = result?;

    let etcd = match (options.with_etcd, etcd_version) {
        (false, _) => None,
        (true, None) => {
            println!("(no `etcd` on PATH: install the Debian package etcd-server to compare side by side)");
            None
        }
        (true, Some(version)) => {
            println!("comparing with etcd {version}");
            Some(bench_etcd(&lab, &scratch.path().join("etcd"), &space, &options, &version).await)
        }
    };
    let rounds = match &etcd {
        Some(Ok((results, cluster))) if alternate => {
            alternate_put1(&lab, cluster, &space, &options).await.map(|r| rounds::report(&r, &results.name))
        }
        _ => Ok(String::new()),
    };
    if alternate {
        let _ = lab::supervisor::down(&home, LAB, false);
    }
    let etcd = etcd.transpose()?;
    let rounds = rounds?;
    let etcd = etcd.map(|(results, _)| results);
    print!("{}", report(&raftty, etcd.as_ref(), options.keys));
    print!("{rounds}");
    if let Some(e) = &raftty.explained {
        print!("{}", explain::report(e));
    }
    if let Some(app) = app {
        print!("{app}");
    }
    Ok(())
}

async fn bench_raftty(lab: &Lab, space: &Arc<KeySpace>, options: &BenchOptions, cold: Duration) -> Result<Results> {
    let status = lab::status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.leader().context("the bench lab has no leader")?.to_string();
    let endpoint = lab.config.member(&leader)?.client_url();
    let pids: Vec<u32> = status.nodes.iter().filter_map(|n| n.pid).map(|p| p as u32).collect();
    let store = Measured { name: "raftty".into(), endpoint, cold_start: cold, pids };
    let mut results = measure(store, &lab.root_cert(), space, options).await?;
    if options.explain {
        eprintln!("raftty: a single client's put, stage by stage");
        let endpoint = lab.config.member(&leader)?.client_url();
        results.explained =
            Some(explain::raftty(lab, &leader, &endpoint, &lab.root_cert(), space, options.duration).await?);
    }
    if options.wants("failover") {
        eprintln!("raftty: failover");
        results.failover = failover::raftty(lab, FAILOVER_RUNS).await?;
    }
    if options.wants("snapshot") {
        eprintln!("raftty: snapshot of {} keys, and its restore", snapshots::KEYS);
        let scratch = tempfile::tempdir()?;
        let file = scratch.path().join("raftty.db");
        let endpoint = lab.config.member(&leader)?.client_url();
        let (bytes, save) = snapshots::save(&endpoint, &lab.root_cert(), &file).await?;
        let restore = Some(snapshots::raftty_restore(&file, scratch.path()).await?);
        results.snapshot = Some(snapshots::SnapshotTimes { bytes, save, restore });
    }
    Ok(results)
}

/// A single client's put, `options.rounds` times on each system, alternating.
async fn alternate_put1(
    lab: &Lab,
    cluster: &etcd::EtcdCluster,
    space: &Arc<KeySpace>,
    options: &BenchOptions,
) -> Result<Vec<rounds::Round>> {
    let status = lab::status::gather(lab, Duration::from_secs(2)).await?;
    let leader = status.leader().context("the bench lab has no leader")?.to_string();
    let raftty = lab.config.member(&leader)?.client_url();
    let cert = lab.root_cert();
    let etcd = cluster.wait_ready(&cert, Duration::from_secs(30)).await?;
    let put1 = Workload { op: Op::Put, clients: 1, duration: options.duration, auth: false };
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        eprintln!("put, 1 client: round {round} of {}", options.rounds);
        let raftty = load::run(&raftty, &cert, space, put1, None).await?;
        let etcd = load::run(&etcd, &cert, space, put1, None).await?;
        rounds.push(rounds::Round { raftty, etcd });
    }
    Ok(rounds)
}

/// Measures etcd, and hands back the cluster still running (it stops when dropped).
async fn bench_etcd(
    lab: &Lab,
    dir: &std::path::Path,
    space: &Arc<KeySpace>,
    options: &BenchOptions,
    version: &str,
) -> Result<(Results, etcd::EtcdCluster)> {
    let cert = lab.root_cert();
    let started = Instant::now();
    let mut cluster = etcd::EtcdCluster::start(dir, &lab.pki()?, options.members)?;
    let endpoint = cluster.wait_ready(&cert, Duration::from_secs(30)).await?;
    let store =
        Measured { name: format!("etcd {version}"), endpoint, cold_start: started.elapsed(), pids: cluster.pids() };
    let mut results = measure(store, &cert, space, options).await?;
    if options.wants("failover") {
        eprintln!("etcd: failover");
        results.failover = failover::etcd(&mut cluster, &cert, FAILOVER_RUNS).await?;
    }
    if options.wants("snapshot") {
        eprintln!("etcd: snapshot of {} keys, and its restore", snapshots::KEYS);
        let leader = cluster.wait_ready(&cert, Duration::from_secs(30)).await?;
        let file = dir.join("etcd-snapshot.db");
        let (bytes, save) = snapshots::save(&leader, &cert, &file).await?;
        let restore = Some(snapshots::etcd_restore(&file, dir).await?);
        results.snapshot = Some(snapshots::SnapshotTimes { bytes, save, restore });
    }
    Ok((results, cluster))
}

/// A running cluster about to be measured.
struct Measured {
    name: String,
    endpoint: String,
    cold_start: Duration,
    pids: Vec<u32>,
}

/// What is measured the same way on raftty and etcd: idle memory, the load workloads and
/// the watch fan-out.
async fn measure(store: Measured, cert: &CertFiles, space: &Arc<KeySpace>, options: &BenchOptions) -> Result<Results> {
    let idle = store.pids.iter().map(|p| rss_mb(*p)).collect();
    load::fill(&store.endpoint, cert, space).await?;
    let filled = store.pids.iter().map(|p| rss_mb(*p)).collect();
    let mut results = Results {
        name: store.name,
        cold_start: store.cold_start,
        idle_rss_mb: idle,
        filled_rss_mb: filled,
        workloads: Vec::new(),
        failover: Vec::new(),
        fanout: None,
        snapshot: None,
        explained: None,
    };
    let who = results.name.split(' ').next().unwrap_or_default().to_string();
    let (plain, checked): (Vec<Workload>, Vec<Workload>) = workloads(options).into_iter().partition(|w| !w.auth);
    for w in plain {
        eprintln!("{who}: {}", w.label());
        results.workloads.push((w, load::run(&store.endpoint, cert, space, w, None).await?));
    }
    if !checked.is_empty() {
        let token = auth::enable(&store.endpoint, cert).await?;
        for w in checked {
            eprintln!("{who}: {}", w.label());
            results.workloads.push((w, load::run(&store.endpoint, cert, space, w, Some(&token)).await?));
        }
        auth::disable(&store.endpoint, cert).await?;
    }
    if options.wants("fanout") {
        eprintln!("{who}: watch fan-out to {FANOUT_WATCHERS} watchers");
        results.fanout =
            Some(watch::watch_fanout(&store.endpoint, cert, FANOUT_WATCHERS, FANOUT_WRITES, options.value_size).await?);
    }
    Ok(results)
}

/// Resident memory of a process, in MB, from /proc.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().to_string()))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(raftty: &Results, etcd: Option<&Results>, keys: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let header = match etcd {
        Some(e) => format!(
            "{:<40} {:>22}   {:>22}   {:>14}",
            "workload",
            format!("{} ops/s (p50/p99 ms)", raftty.name),
            format!("{} ops/s (p50/p99 ms)", e.name),
            "ratio ops, p99"
        ),
        None => format!("{:<40} {:>22}", "workload", format!("{} ops/s (p50/p99 ms)", raftty.name)),
    };
    let _ = writeln!(out, "{header}");
    let cell = |o: &Outcome| format!("{:.0} ({:.1}/{:.1})", o.ops_per_sec(), o.p50_ms(), o.p99_ms());
    for (i, (w, r)) in raftty.workloads.iter().enumerate() {
        match etcd.and_then(|e| e.workloads.get(i)) {
            Some((_, e)) => {
                let ratio = r.ops_per_sec() / e.ops_per_sec();
                let p99 = r.p99_ms() / e.p99_ms();
                let _ = writeln!(
                    out,
                    "{:<40} {:>22}   {:>22}   {:>6.2}x {:>5.2}x",
                    w.label(),
                    cell(r),
                    cell(e),
                    ratio,
                    p99
                );
            }
            None => {
                let _ = writeln!(out, "{:<40} {:>22}", w.label(), cell(r));
            }
        }
        if r.errors > 0 {
            let _ = writeln!(out, "  ({} raftty requests failed)", r.errors);
        }
    }
    // What auth costs each system: each auth-on workload against the same one with auth off.
    let auth_cost = |r: &Results| {
        let cells: Vec<String> = r
            .workloads
            .iter()
            .filter(|(w, _)| w.auth)
            .filter_map(|(w, on)| {
                let (_, off) = r.workloads.iter().find(|(o, _)| !o.auth && o.op == w.op && o.clients == w.clients)?;
                let label = Workload { auth: false, ..*w }.label();
                Some(format!("{label} {:.2}x", on.ops_per_sec() / off.ops_per_sec()))
            })
            .collect();
        cells.join(", ")
    };
    if raftty.workloads.iter().any(|(w, _)| w.auth) {
        let _ = writeln!(out, "auth on, as a share of the same workload with auth off:");
        let _ = writeln!(out, "  raftty: {}", auth_cost(raftty));
        if let Some(e) = etcd {
            let _ = writeln!(out, "  {}: {}", e.name, auth_cost(e));
        }
    }
    let mem = |r: &Results| {
        let each = |rss: &[f64]| rss.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join("/");
        format!("{} idle, {} after {keys} puts", each(&r.idle_rss_mb), each(&r.filled_rss_mb))
    };
    let _ = writeln!(out);
    let failover = |r: &Results| {
        let mut sorted = r.failover.clone();
        sorted.sort();
        match (sorted.first(), sorted.last()) {
            (Some(lo), Some(hi)) => format!(
                "median {:.2} s ({:.2} to {:.2})",
                failover::median(&sorted).as_secs_f64(),
                lo.as_secs_f64(),
                hi.as_secs_f64()
            ),
            _ => "-".to_string(),
        }
    };
    let fanout = |r: &Results| match &r.fanout {
        Some(f) => format!(
            "{:.0} puts/s alone, {:.0} watched; delivery p50 {:.1} ms, p99 {:.1} ms{}",
            f.writes_per_sec_alone,
            f.writes_per_sec_watched,
            f.delivery_p50_ms,
            f.delivery_p99_ms,
            if f.missing_events > 0 { format!(", {} events MISSING", f.missing_events) } else { String::new() }
        ),
        None => "-".to_string(),
    };
    if raftty.fanout.is_some() {
        let _ = writeln!(out, "watch fan-out ({FANOUT_WATCHERS} watchers on one prefix, 16 writers):");
        let _ = writeln!(out, "  raftty: {}", fanout(raftty));
        if let Some(e) = etcd {
            let _ = writeln!(out, "  {}: {}", e.name, fanout(e));
        }
    }
    match etcd {
        Some(e) => {
            let _ = writeln!(
                out,
                "failover (kill -9 the leader, retry every 300 ms, {FAILOVER_RUNS} runs): raftty {}, {} {}",
                failover(raftty),
                e.name,
                failover(e)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "failover (kill -9 the leader, retry every 300 ms, {FAILOVER_RUNS} runs): raftty {}",
                failover(raftty)
            );
        }
    }
    match etcd {
        Some(e) => {
            let _ = writeln!(
                out,
                "cold start to healthy: raftty {:.2} s, {} {:.2} s",
                raftty.cold_start.as_secs_f64(),
                e.name,
                e.cold_start.as_secs_f64()
            );
            let _ = writeln!(out, "memory per member (MB): raftty {}; {} {}", mem(raftty), e.name, mem(e));
        }
        None => {
            let _ = writeln!(out, "cold start to healthy: raftty {:.2} s", raftty.cold_start.as_secs_f64());
            let _ = writeln!(out, "memory per member (MB): raftty {}", mem(raftty));
        }
    }
    if let Some(r) = &raftty.snapshot {
        let cell = |t: &snapshots::SnapshotTimes| {
            let restore =
                t.restore.map(|d| format!(", restored and serving in {:.2} s", d.as_secs_f64())).unwrap_or_default();
            format!(
                "{:.0} MB/s ({:.1} MB in {:.2} s){restore}",
                t.mb_per_sec(),
                t.bytes as f64 / 1e6,
                t.save.as_secs_f64()
            )
        };
        let _ = writeln!(out, "snapshot of {} keys, save: raftty {}", snapshots::KEYS, cell(r));
        if let Some(e) = etcd.and_then(|e| e.snapshot.as_ref()) {
            let _ = writeln!(out, "{:>31} etcd {}", "", cell(e));
            let restore = match (r.restore, e.restore) {
                (Some(a), Some(b)) => format!(", restore {:.2}x as long", a.as_secs_f64() / b.as_secs_f64()),
                _ => String::new(),
            };
            let _ =
                writeln!(out, "{:>31} ratio: save {:.2}x etcd's speed{restore}", "", r.mb_per_sec() / e.mb_per_sec());
        }
    }
    out
}
