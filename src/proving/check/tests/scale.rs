//! Histories the size of a torture run: the checker must reach a verdict on them (not give
//! up at its search budget), right both ways. How long it takes is for `--nocapture` eyes,
//! never an assertion.

use super::builders::check;
use super::simulation::{Workload, simulate};
use crate::proving::check::{
    History, Linearizability, Outcome, Output, Request, lost_writes, read_inconsistencies, revision_regressions,
};

fn assert_all_checks_pass(name: &str, workload: &Workload) {
    let simulated = simulate(7, workload);
    assert_eq!(check(&simulated.history), Linearizability::Linearizable, "{name}");
    assert!(lost_writes(&simulated.history, &simulated.final_reads).is_empty(), "{name}: lost writes");
    assert!(revision_regressions(&simulated.history).is_empty(), "{name}: revision regressions");
    assert!(read_inconsistencies(&simulated.history).is_empty(), "{name}: read inconsistencies");
}

#[test]
fn ten_thousand_operations_on_fifty_keys_are_linearizable() {
    assert_all_checks_pass(
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
fn ten_clients_on_one_hot_key_are_linearizable() {
    assert_all_checks_pass(
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

/// The last linearizable read of a long hot-key history is made to return a value nobody
/// wrote. It must never pass: the search finds it with a torture run's share of unanswered
/// operations; with many more, the search may run out of budget (undecided, which fails a
/// run too) and the revision-order check still names the read.
#[test]
fn one_bad_read_at_the_end_of_a_long_hot_key_history_never_passes() {
    for unknown_per_mille in [0, 20, 100] {
        let workload = Workload {
            clients: 10,
            operations: 2_000,
            keys: 1,
            unknown_per_mille,
            failed_per_mille: 10,
            ..Workload::default()
        };
        let mut history = simulate(7, &workload).history;
        assert_eq!(check(&history), Linearizability::Linearizable, "{unknown_per_mille}‰ unanswered, as simulated");
        corrupt_last_read(&mut history);
        let verdict = check(&history);
        let found = matches!(verdict, Linearizability::NotLinearizable(_));
        if unknown_per_mille <= 20 {
            assert!(found, "{unknown_per_mille}‰ unanswered, last read corrupted: {verdict:?}");
        } else {
            assert!(found || matches!(verdict, Linearizability::Unknown(_)), "{verdict:?}");
        }
        let named = read_inconsistencies(&history);
        assert!(
            named.iter().any(|a| a.to_string().contains("never written")),
            "{unknown_per_mille}‰ unanswered: the revision check missed the corrupted read: {named:?}"
        );
    }
}

fn corrupt_last_read(history: &mut History) {
    let last_read = history
        .operations
        .iter()
        .rposition(|operation| {
            matches!(operation.request, Request::Get { serializable: false, .. })
                && matches!(operation.outcome, Outcome::Ok(_))
        })
        .expect("a linearizable read");
    if let Outcome::Ok(Output::Get { value, .. }) = &mut history.operations[last_read].outcome {
        *value = Some("never written".to_owned());
    }
}
