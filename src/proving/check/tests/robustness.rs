//! No input makes a check panic: arbitrary, even nonsensical, histories (mismatched
//! outputs, negative or huge revisions, times in any order) are judged or refused.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::proving::check::{
    CheckOptions, FinalRead, History, KeyRead, Operation, Outcome, Output, Request, check_linearizability,
    duplicate_revisions, lost_writes, read_inconsistencies, revision_regressions,
};

fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..8, any::<i64>()]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-c]{0,2}"]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("k".to_owned()), Just("j".to_owned())]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (key(), any::<bool>()).prop_map(|(key, serializable)| Request::Get { key, serializable }),
        (key(), text()).prop_map(|(key, value)| Request::Put { key, value }),
        key().prop_map(|key| Request::Delete { key }),
        (key(), text(), text()).prop_map(|(key, expected_value, value)| Request::PutIfValue {
            key,
            expected_value,
            value
        }),
        (key(), text()).prop_map(|(key, value)| Request::Create { key, value }),
        (key(), revision(), text()).prop_map(|(key, expected_mod_revision, value)| {
            Request::UpdateIfModRevision { key, expected_mod_revision, value }
        }),
        (key(), revision())
            .prop_map(|(key, expected_mod_revision)| { Request::DeleteIfModRevision { key, expected_mod_revision } }),
    ]
}

fn read() -> impl Strategy<Value = KeyRead> {
    (proptest::option::of(text()), revision()).prop_map(|(value, mod_revision)| KeyRead { value, mod_revision })
}

fn output() -> impl Strategy<Value = Output> {
    prop_oneof![
        (proptest::option::of(text()), revision(), revision())
            .prop_map(|(value, mod_revision, revision)| Output::Get { value, mod_revision, revision }),
        revision().prop_map(|revision| Output::Put { revision }),
        (-1i64..3, revision()).prop_map(|(deleted, revision)| Output::Delete { deleted, revision }),
        (any::<bool>(), revision(), proptest::option::of(read()))
            .prop_map(|(succeeded, revision, else_read)| Output::Txn { succeeded, revision, else_read }),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => output().prop_map(Outcome::Ok),
        1 => Just(Outcome::Failed),
        1 => Just(Outcome::Unknown),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    (0u64..4, prop_oneof![0u64..100, any::<u64>()], 0u64..100, request(), outcome()).prop_map(
        |(client, invoked_at_ns, duration, request, outcome)| Operation {
            client,
            invoked_at_ns,
            completed_at_ns: invoked_at_ns.saturating_add(duration),
            request,
            outcome,
        },
    )
}

fn final_read() -> impl Strategy<Value = FinalRead> {
    (key(), proptest::option::of(text()), revision(), revision())
        .prop_map(|(key, value, mod_revision, revision)| FinalRead { key, value, mod_revision, revision })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES raises it for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(500),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "src/proving/check/tests/robustness.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_history_makes_a_check_panic(
        operations in prop::collection::vec(operation(), 0..25),
        mismatched in prop::collection::vec((any::<prop::sample::Index>(), request()), 0..3),
        final_reads in prop::collection::vec(final_read(), 0..3),
    ) {
        let mut history = History { operations };
        // Some operations answered as if they were another request.
        for (pick, request) in mismatched {
            if !history.operations.is_empty() {
                let index = pick.index(history.operations.len());
                history.operations[index].request = request;
            }
        }
        let options = CheckOptions {
            time_budget_per_key: Duration::from_millis(200),
            ..CheckOptions::default()
        };
        let _ = check_linearizability(&history, &options).map(|report| report.to_string());
        let mut valid = history.clone();
        valid.operations.retain(|operation| {
            History { operations: vec![operation.clone()] }.validate().is_ok()
        });
        let report = check_linearizability(&valid, &options);
        prop_assert!(report.is_ok());
        let _ = report.map(|report| report.to_string());
        for anomaly in lost_writes(&history, &final_reads)
            .into_iter()
            .chain(revision_regressions(&history))
            .chain(read_inconsistencies(&history))
            .chain(duplicate_revisions(&history))
        {
            let _ = anomaly.to_string();
        }
        let _ = serde_json::to_string(&history);
    }
}
