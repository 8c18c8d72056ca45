//! Small hand-written histories whose answer is known. A checker that always says yes
//! (or always no) fails here.

use std::time::Duration;

use super::builders::{HistoryBuilder, assert_linearizable, assert_not_linearizable};
use crate::proving::check::{BudgetExhausted, CheckOptions, Linearizability, check_linearizability};

#[test]
fn a_sequential_history_is_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 1), "v1", 2);
    h.get(2, (2, 3), Some("v1"), 2, 2);
    h.put(1, (4, 5), "v2", 3);
    h.get(2, (6, 7), Some("v2"), 3, 3);
    h.delete(1, (8, 9), 1, 4);
    h.get(2, (10, 11), None, 0, 4);
    h.delete(1, (12, 13), 0, 4);
    assert_linearizable(&h.history);
}

#[test]
fn an_empty_history_is_linearizable() {
    assert_linearizable(&HistoryBuilder::new().history);
}

#[test]
fn a_stale_read_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let put_v2 = h.put(2, (20, 30), "v2", 3);
    let stale_read = h.get(3, (40, 50), Some("v1"), 2, 3);
    let violation = assert_not_linearizable(&h.history);
    assert_eq!(violation.key, "k");
    assert_eq!(violation.linearized_prefix.len(), 2);
    assert_eq!(violation.could_not_be_placed[0].operation.index, stale_read);
    let account = violation.to_string();
    assert!(account.contains(&format!("#{put_v2} client 2 put \"v2\"")), "{account}");
    assert!(account.contains("completed at t=0.030000s before this operation started at t=0.040000s"), "{account}");
}

#[test]
fn a_stale_read_at_an_old_revision_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put(2, (20, 30), "v2", 3);
    let stale_read = h.get(3, (40, 50), Some("v1"), 2, 2);
    let violation = assert_not_linearizable(&h.history);
    assert!(
        violation.to_string().contains(&format!(
            "placing it takes the store to revision 3, after which #{stale_read} (answered at \
             revision 2) could never be placed"
        )),
        "{violation}"
    );
}

#[test]
fn a_read_concurrent_with_a_put_may_see_either_value() {
    for (value, mod_revision) in [("v1", 2), ("v2", 3)] {
        let mut h = HistoryBuilder::new();
        h.put(1, (0, 10), "v1", 2);
        h.put(2, (20, 60), "v2", 3);
        h.get(3, (30, 40), Some(value), mod_revision, mod_revision);
        assert_linearizable(&h.history);
    }
}

#[test]
fn a_lost_write_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put(2, (20, 30), "v2", 3);
    h.get(3, (40, 50), Some("v1"), 2, 3);
    h.get(1, (60, 70), Some("v1"), 2, 3);
    h.get(2, (80, 90), Some("v1"), 2, 3);
    assert_not_linearizable(&h.history);
}

#[test]
fn a_write_seen_then_unseen_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put(2, (20, 100), "v2", 3);
    h.get(3, (30, 40), Some("v2"), 3, 3);
    let unseen = h.get(3, (50, 60), Some("v1"), 2, 3);
    let violation = assert_not_linearizable(&h.history);
    assert!(violation.could_not_be_placed.iter().any(|unplaced| unplaced.operation.index == unseen), "{violation}");
}

#[test]
fn an_unanswered_write_seen_then_unseen_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_unknown(2, (20, 25), "v2");
    h.get(3, (30, 40), Some("v2"), 3, 3);
    h.get(3, (50, 60), Some("v1"), 2, 3);
    assert_not_linearizable(&h.history);
}

#[test]
fn a_compare_and_set_on_a_value_no_longer_current_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "a", 2);
    h.put(2, (20, 30), "b", 3);
    h.put_if_value(3, (40, 50), "a", "c", true, 4);
    let violation = assert_not_linearizable(&h.history);
    assert!(violation.to_string().contains("compare on the value was reported true"), "{violation}");
}

#[test]
fn a_compare_and_set_concurrent_with_the_overwrite_may_win() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "a", 2);
    h.put(2, (20, 40), "b", 4);
    h.put_if_value(3, (25, 50), "a", "c", true, 3);
    h.get(1, (60, 70), Some("b"), 4, 4);
    assert_linearizable(&h.history);
}

#[test]
fn a_failed_compare_while_the_value_matched_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "a", 2);
    h.put_if_value(2, (20, 30), "a", "c", false, 2);
    assert_not_linearizable(&h.history);
}

#[test]
fn an_unanswered_write_that_took_effect_is_accepted() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_unknown(2, (20, 30), "v2");
    // The read reveals the revision the unanswered put got, which a later update uses.
    h.get(3, (100, 110), Some("v2"), 3, 3);
    h.update(3, (120, 130), 3, "v3", 4, None);
    h.get(1, (140, 150), Some("v3"), 4, 4);
    assert_linearizable(&h.history);
}

#[test]
fn an_unanswered_write_that_never_took_effect_is_accepted() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_unknown(2, (20, 30), "v2");
    h.get(3, (100, 110), Some("v1"), 2, 2);
    h.put(3, (120, 130), "v3", 3);
    h.get(1, (200, 210), Some("v3"), 3, 3);
    assert_linearizable(&h.history);
}

#[test]
fn an_unanswered_write_may_take_effect_long_after_the_client_gave_up() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_unknown(2, (20, 30), "v2");
    h.get(3, (100, 110), Some("v1"), 2, 2);
    h.get(3, (200, 210), Some("v2"), 3, 3);
    assert_linearizable(&h.history);
}

#[test]
fn an_unanswered_write_cannot_take_effect_before_it_was_invoked() {
    let mut h = HistoryBuilder::new();
    h.get(1, (0, 10), Some("v2"), 2, 2);
    h.put_unknown(2, (20, 30), "v2");
    assert_not_linearizable(&h.history);
}

#[test]
fn an_unanswered_write_cannot_reveal_a_revision_older_than_a_completed_write() {
    let mut h = HistoryBuilder::new();
    h.put_unknown(1, (0, 100), "v1");
    h.put(2, (10, 20), "v2", 5);
    // v1 was written after v2 (it is read after v2 completed), so its revision is above 5.
    h.get(3, (30, 40), Some("v1"), 4, 6);
    assert_not_linearizable(&h.history);
}

#[test]
fn an_unanswered_delete_may_or_may_not_have_happened() {
    for (value, mod_revision, revision) in [(None, 0, 3), (Some("v1"), 2, 2)] {
        let mut h = HistoryBuilder::new();
        h.put(1, (0, 10), "v1", 2);
        h.delete_unknown(2, (20, 30));
        h.get(3, (40, 50), value, mod_revision, revision);
        assert_linearizable(&h.history);
    }
}

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 100), "v1", 3);
    h.put(2, (10, 50), "v2", 2);
    h.get(3, (60, 70), Some("v2"), 2, 2);
    h.get(3, (110, 120), Some("v1"), 3, 3);
    assert_linearizable(&h.history);
}

#[test]
fn a_failed_write_whose_value_is_read_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_failed(2, (20, 30), "v2");
    h.get(3, (40, 50), Some("v2"), 3, 3);
    assert_not_linearizable(&h.history);
}

#[test]
fn a_failed_write_that_nobody_sees_is_accepted() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_failed(2, (20, 30), "v2");
    h.get(3, (40, 50), Some("v1"), 2, 2);
    assert_linearizable(&h.history);
}

#[test]
fn revisions_must_follow_real_time_order() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "a", 5);
    h.put(2, (20, 30), "b", 4);
    assert_not_linearizable(&h.history);

    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "a", 5);
    h.get(2, (20, 30), Some("a"), 5, 4);
    assert_not_linearizable(&h.history);
}

#[test]
fn kubernetes_create_update_and_delete_are_linearizable() {
    let mut h = HistoryBuilder::new();
    h.create(1, (0, 10), "v1", true, 2);
    h.create(2, (5, 15), "other", false, 2);
    h.update(1, (20, 30), 2, "v2", 3, None);
    h.update(2, (25, 35), 2, "lost race", 3, Some((Some("v2"), 3)));
    h.delete_if(1, (40, 50), 3, 4, None);
    h.delete_if(2, (60, 70), 3, 4, Some((None, 0)));
    h.get(3, (80, 90), None, 0, 4);
    h.create(3, (100, 110), "v3", true, 5);
    assert_linearizable(&h.history);
}

#[test]
fn an_update_that_succeeds_on_a_stale_mod_revision_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.create(1, (0, 10), "v1", true, 2);
    h.update(1, (20, 30), 2, "v2", 3, None);
    h.update(2, (40, 50), 2, "v3", 4, None);
    assert_not_linearizable(&h.history);
}

#[test]
fn a_create_that_succeeds_on_a_present_key_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.create(1, (0, 10), "v1", true, 2);
    h.create(2, (20, 30), "v2", true, 3);
    assert_not_linearizable(&h.history);
}

#[test]
fn an_else_branch_that_reads_the_compared_revision_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.create(1, (0, 10), "v1", true, 2);
    h.update(2, (20, 30), 2, "v2", 2, Some((Some("v1"), 2)));
    let violation = assert_not_linearizable(&h.history);
    assert!(violation.to_string().contains("else branch read that very mod_revision 2"), "{violation}");
}

#[test]
fn a_delete_that_reports_the_wrong_count_is_not_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.delete(2, (20, 30), 0, 2);
    assert_not_linearizable(&h.history);
}

#[test]
fn a_serializable_read_may_be_stale_but_a_linearizable_one_may_not() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put(2, (20, 30), "v2", 3);
    h.serializable_get(3, (40, 50), Some("v1"), 2, 2);
    assert_linearizable(&h.history);
    h.get(3, (60, 70), Some("v1"), 2, 2);
    assert_not_linearizable(&h.history);
}

#[test]
fn keys_are_checked_independently() {
    let mut h = HistoryBuilder::new();
    h.key("a").put(1, (0, 10), "a1", 2);
    h.key("b").put(2, (5, 15), "b1", 3);
    h.key("a").get(3, (20, 30), Some("a1"), 2, 3);
    h.key("b").get(3, (40, 50), None, 0, 3);
    let violation = assert_not_linearizable(&h.history);
    assert_eq!(violation.key, "b");
    let report = check_linearizability(&h.history, &CheckOptions::default()).unwrap();
    assert_eq!(report.keys.len(), 2);
    assert_eq!(report.keys[0].result, Linearizability::Linearizable);
    assert_eq!(report.violations().count(), 1);
}

#[test]
fn a_malformed_history_is_refused_rather_than_judged() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let mut history = h.history.clone();
    history.operations[0].outcome =
        crate::proving::check::Outcome::Ok(crate::proving::check::Output::Delete { deleted: 1, revision: 2 });
    let error = check_linearizability(&history, &CheckOptions::default()).unwrap_err();
    assert_eq!(error.index, 0);
}

#[test]
fn an_exhausted_budget_is_unknown_never_linearizable() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.get(2, (20, 30), Some("v1"), 2, 2);
    for (options, exhausted) in [
        (CheckOptions { time_budget_per_key: Duration::ZERO, ..CheckOptions::default() }, BudgetExhausted::Time),
        (CheckOptions { max_states_per_key: 0, ..CheckOptions::default() }, BudgetExhausted::States),
    ] {
        let report = check_linearizability(&h.history, &options).unwrap();
        match report.verdict() {
            Linearizability::Unknown(undecided) => {
                assert_eq!(undecided.key, "k");
                assert_eq!(undecided.exhausted, exhausted);
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
        assert_eq!(report.undecided_keys().collect::<Vec<_>>(), vec!["k"]);
    }
}

/// Not an assertion of wording beyond the essentials: prints the account so a person
/// can judge it (`cargo test --lib check::tests::scenarios::show -- --nocapture`).
#[test]
fn show_a_violation_account() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put(2, (20, 30), "v2", 3);
    h.get(4, (25, 45), Some("v2"), 3, 3);
    h.put_unknown(4, (32, 38), "v3");
    h.get(3, (40, 50), Some("v1"), 2, 3);
    let report = check_linearizability(&h.history, &CheckOptions::default()).unwrap();
    let text = report.to_string();
    println!("{text}");
    assert!(text.starts_with("NOT linearizable"), "{text}");
}
