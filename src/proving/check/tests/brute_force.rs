//! The search against the definition: on small histories, a brute-force enumeration of
//! every order that respects real time (unanswered operations optional) must reach the
//! same verdict. This checks the search's shortcuts (memo with dominance, interchangeable
//! unanswered requests, floor limits, pinned writes, merged values) for both soundness
//! and completeness.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::builders::check;
use super::simulation::{Workload, simulate};
use crate::proving::check::model::{KeyState, Successors, step};
use crate::proving::check::partition::{KeyHistory, KeyOperation, partition_by_key_literally};
use crate::proving::check::{History, Linearizability, Outcome, Output, Request};

/// Whether some order of the key's operations explains every answer.
fn linearizable_by_enumeration(history: &KeyHistory) -> bool {
    let mut placed = vec![false; history.operations.len()];
    extend(&history.operations, &mut placed, KeyState::initial())
}

fn extend(operations: &[KeyOperation], placed: &mut [bool], state: KeyState) -> bool {
    let unplaced = || operations.iter().enumerate().filter(|(position, _)| !placed[*position]);
    let earliest_deadline = unplaced().filter_map(|(_, operation)| operation.deadline_ns).min();
    let Some(earliest_deadline) = earliest_deadline else {
        // Every answered operation is placed; the rest may never have happened.
        return true;
    };
    let candidates: Vec<usize> = unplaced()
        .filter(|(_, operation)| operation.invoked_at_ns <= earliest_deadline)
        .map(|(position, _)| position)
        .collect();
    for position in candidates {
        let operation = operations[position];
        let Ok(successors) = step(state, operation.action, operation.observed) else {
            continue;
        };
        for choice in 0..Successors::MAX {
            if let Some(next) = successors.get(choice) {
                placed[position] = true;
                let found = extend(operations, placed, next);
                placed[position] = false;
                if found {
                    return true;
                }
            }
        }
    }
    false
}

fn verdicts_agree(history: &History) -> Result<(), String> {
    let by_enumeration = partition_by_key_literally(history).iter().all(linearizable_by_enumeration);
    let by_search = match check(history) {
        Linearizability::Linearizable => true,
        Linearizability::NotLinearizable(_) => false,
        Linearizability::Unknown(undecided) => return Err(format!("undecided: {undecided:?}")),
    };
    if by_search == by_enumeration {
        Ok(())
    } else {
        Err(format!(
            "search says {by_search}, enumeration says {by_enumeration} for {}",
            serde_json::to_string_pretty(history).unwrap_or_default()
        ))
    }
}

/// One small change to a correct history, the kind a buggy store would make.
#[derive(Clone, Debug)]
enum Mutation {
    RevisionBy(i64),
    ModRevisionBy(i64),
    ValueFrom(usize),
    FlipSucceeded,
    ForgetAnswer,
    ShiftTimes(i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (-2i64..=2).prop_map(Mutation::RevisionBy),
        (-2i64..=2).prop_map(Mutation::ModRevisionBy),
        any::<usize>().prop_map(Mutation::ValueFrom),
        Just(Mutation::FlipSucceeded),
        Just(Mutation::ForgetAnswer),
        (-1_000_000i64..1_000_000).prop_map(Mutation::ShiftTimes),
    ]
}

fn mutate(history: &mut History, target: usize, mutation: &Mutation) {
    let values: Vec<String> = history
        .operations
        .iter()
        .filter_map(|operation| operation.request.written_value().map(str::to_owned))
        .collect();
    let Some(operation) = history.operations.get_mut(target) else {
        return;
    };
    let has_else_read = operation.request.has_else_read();
    match (mutation, &mut operation.outcome) {
        (Mutation::RevisionBy(delta), Outcome::Ok(output)) => match output {
            Output::Get { revision, .. }
            | Output::Put { revision }
            | Output::Delete { revision, .. }
            | Output::Txn { revision, .. } => *revision += delta,
        },
        (Mutation::ModRevisionBy(delta), Outcome::Ok(Output::Get { mod_revision, .. })) => *mod_revision += delta,
        (Mutation::ValueFrom(pick), Outcome::Ok(Output::Get { value, .. })) if !values.is_empty() => {
            *value = Some(values[pick % values.len()].clone())
        }
        (Mutation::FlipSucceeded, Outcome::Ok(Output::Txn { succeeded, .. })) if !has_else_read => {
            *succeeded = !*succeeded
        }
        (Mutation::ForgetAnswer, outcome) => *outcome = Outcome::Unknown,
        (Mutation::ShiftTimes(delta), _) => {
            let shift = |time: u64| time.saturating_add_signed(*delta);
            operation.invoked_at_ns = shift(operation.invoked_at_ns);
            operation.completed_at_ns = shift(operation.completed_at_ns).max(operation.invoked_at_ns);
        }
        _ => {}
    }
}

fn small_workload() -> impl Strategy<Value = Workload> {
    (1usize..6, 1usize..12, 0u32..400, 0u32..150, any::<bool>()).prop_map(
        |(clients, operations, unknown_per_mille, failed_per_mille, few_values)| Workload {
            clients,
            operations,
            keys: 1,
            unknown_per_mille,
            failed_per_mille,
            few_values,
            ..Workload::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES raises it for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(1000),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "src/proving/check/tests/brute_force.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_search_agrees_with_enumeration_on_small_mutated_histories(
        seed in any::<u64>(),
        workload in small_workload(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 0..3),
    ) {
        let mut history = simulate(seed, &workload).history;
        for (target, mutation) in &mutations {
            if !history.operations.is_empty() {
                let target = target.index(history.operations.len());
                mutate(&mut history, target, mutation);
            }
        }
        // Serializable reads and malformed outcomes are not the search's concern.
        history.operations.retain(|operation| {
            !matches!(operation.request, Request::Get { serializable: true, .. })
        });
        prop_assert!(history.validate().is_ok());
        let agreement = verdicts_agree(&history);
        prop_assert!(agreement.is_ok(), "{}", agreement.unwrap_err());
    }
}
