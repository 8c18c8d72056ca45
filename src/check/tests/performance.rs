//! Timings on histories the size of a torture run, in the debug build the tests use.
//! Run with `--nocapture` to see them.

use std::time::{Duration, Instant};

use super::builders::check;
use super::simulation::{Workload, simulate};
use crate::check::{
    Linearizability, Outcome, Output, Request, lost_writes, read_inconsistencies,
    revision_regressions,
};

/// Generous for a shared, loaded machine; the measured times are far lower.
const LIMIT: Duration = Duration::from_secs(30);

fn time_checks(name: &str, workload: &Workload) {
    let simulated = simulate(7, workload);
    let started = Instant::now();
    let verdict = check(&simulated.history);
    let search = started.elapsed();
    assert_eq!(verdict, Linearizability::Linearizable, "{name}");
    let started = Instant::now();
    assert!(lost_writes(&simulated.history, &simulated.final_reads).is_empty());
    assert!(revision_regressions(&simulated.history).is_empty());
    assert!(read_inconsistencies(&simulated.history).is_empty());
    let global = started.elapsed();
    println!(
        "{name}: {} operations, {} clients, {} keys: linearizability {:.3}s, global checks {:.3}s",
        workload.operations,
        workload.clients,
        workload.keys,
        search.as_secs_f64(),
        global.as_secs_f64()
    );
    assert!(search < LIMIT, "{name}: linearizability took {search:?}");
}

#[test]
fn ten_thousand_operations_on_fifty_keys_check_quickly() {
    time_checks(
        "10k ops / 50 keys",
        &Workload {
            clients: 10,
            operations: 10_000,
            keys: 50,
            unknown_per_mille: 20,
            failed_per_mille: 10,
            ..Workload::default()
        },
    );
}

#[test]
fn ten_clients_on_one_hot_key_check_quickly() {
    time_checks(
        "2k ops / 1 hot key",
        &Workload {
            clients: 10,
            operations: 2_000,
            keys: 1,
            unknown_per_mille: 20,
            failed_per_mille: 10,
            ..Workload::default()
        },
    );
}

/// How the search scales on one hot key, for correct histories and for the same
/// histories with one read corrupted (which forces an exhaustive search up to that
/// read). Slow, so ignored by default:
/// `cargo test --lib scaling_on_one_hot_key -- --ignored --nocapture`.
#[test]
#[ignore]
fn scaling_on_one_hot_key() {
    let only = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<usize>().ok())
    };
    for unknown_per_mille in [0, 20, 50, 100] {
        if only("SCALING_UNKNOWN").is_some_and(|only| only != unknown_per_mille as usize) {
            continue;
        }
        for operations in [1_000, 5_000, 10_000] {
            if only("SCALING_OPERATIONS").is_some_and(|only| only != operations) {
                continue;
            }
            let workload = Workload {
                clients: 10,
                operations,
                keys: 1,
                unknown_per_mille,
                failed_per_mille: 10,
                ..Workload::default()
            };
            let mut history = simulate(7, &workload).history;
            let (correct, correct_time) = timed(&history);
            let last_read = history
                .operations
                .iter()
                .rposition(|operation| {
                    matches!(
                        operation.request,
                        Request::Get {
                            serializable: false,
                            ..
                        }
                    ) && matches!(operation.outcome, Outcome::Ok(_))
                })
                .expect("a read");
            if let Outcome::Ok(Output::Get { value, .. }) =
                &mut history.operations[last_read].outcome
            {
                *value = Some("never written".to_owned());
            }
            let (corrupted, corrupted_time) = timed(&history);
            println!(
                "{operations} ops, {unknown_per_mille}\u{2030} unanswered: correct -> {} in {correct_time:.3}s; \
                 last read corrupted -> {} in {corrupted_time:.3}s",
                verdict_name(&correct),
                verdict_name(&corrupted)
            );
        }
    }
}

fn timed(history: &crate::check::History) -> (Linearizability, f64) {
    let started = Instant::now();
    let verdict = check(history);
    (verdict, started.elapsed().as_secs_f64())
}

fn verdict_name(verdict: &Linearizability) -> &'static str {
    match verdict {
        Linearizability::Linearizable => "linearizable",
        Linearizability::NotLinearizable(_) => "NOT linearizable",
        Linearizability::Unknown(_) => "unknown (budget)",
    }
}
