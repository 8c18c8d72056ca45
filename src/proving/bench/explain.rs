//! `raftty bench --explain`: where a single client's put spends its time, stage by stage, as
//! the leader saw it (`node/write_stages.rs`), beside what the client saw.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::lab::Lab;
use crate::lab::control;
use crate::pki::CertFiles;
use crate::proto::rafttyadmin::StageTiming;
use crate::proto::rafttyadmin::WriteStagesRequest;
use crate::proving::bench::load;
use crate::proving::bench::load::KeySpace;
use crate::proving::bench::load::Op;
use crate::proving::bench::load::Workload;

pub struct Explained {
    pub client_p50: Duration,
    pub client_p99: Duration,
    pub stages: Vec<StageTiming>,
    pub samples: u64,
}

/// Runs single-client puts on `leader` for `duration` and asks it where their time went.
pub async fn raftty(
    lab: &Lab,
    leader: &str,
    endpoint: &str,
    cert: &CertFiles,
    space: &Arc<KeySpace>,
    duration: Duration,
) -> Result<Explained> {
    let mut admin = control::admin_client(lab, leader, Duration::from_secs(5)).await?;
    admin.write_stages(WriteStagesRequest { reset: true }).await?;
    let w = Workload { op: Op::Put, clients: 1, duration, auth: false };
    let outcome = load::run(endpoint, cert, space, w, None).await?;
    let answer = admin.write_stages(WriteStagesRequest { reset: true }).await?.into_inner();
    Ok(Explained {
        client_p50: Duration::from_micros(outcome.latency.value_at_quantile(0.5)),
        client_p99: Duration::from_micros(outcome.latency.value_at_quantile(0.99)),
        stages: answer.stages,
        samples: answer.samples,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The breakdown as a table: the member's stages, and what is left of the client's time for
/// the way to the leader and back.
pub fn report(e: &Explained) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "\nwhere a single client's put goes ({} writes sampled on the leader; medians, ms)", e.samples);
    let _ = writeln!(out, "{:<48} {:>9} {:>9}", "stage", "p50", "p99");
    let member_total = e.stages.last().map(|s| Duration::from_micros(s.p50_micros)).unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<48} {:>9} {:>9}",
        "client to leader and back (network, TLS, gRPC)",
        ms(e.client_p50.saturating_sub(member_total)),
        "-"
    );
    for s in &e.stages {
        let _ = writeln!(
            out,
            "{:<48} {:>9} {:>9}",
            s.stage,
            ms(Duration::from_micros(s.p50_micros)),
            ms(Duration::from_micros(s.p99_micros))
        );
    }
    let _ = writeln!(out, "{:<48} {:>9} {:>9}", "as the client saw it", ms(e.client_p50), ms(e.client_p99));
    let _ = writeln!(
        out,
        "(stage medians need not add up to the total's median; the way to the leader is the client's median less the member's)"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_every_stage_and_the_way_to_the_leader() {
        let stages = crate::node::write_stages::STAGES
            .iter()
            .map(|s| StageTiming { stage: s.to_string(), p50_micros: 250, p99_micros: 900 })
            .collect();
        let e = Explained {
            client_p50: Duration::from_micros(1250),
            client_p99: Duration::from_millis(3),
            stages,
            samples: 42,
        };
        let text = report(&e);
        for stage in crate::node::write_stages::STAGES {
            assert!(text.contains(stage), "{stage} missing:\n{text}");
        }
        let way = text.lines().find(|l| l.starts_with("client to leader and back")).expect("the way to the leader");
        assert!(way.split_whitespace().any(|w| w == "1.000"), "the client's 1.25 ms less the member's 0.25: {way}");
        assert!(text.contains("42 writes sampled"));
    }
}
