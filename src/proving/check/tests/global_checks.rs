//! The cheap whole-history checks, on hand-written histories.

use super::builders::HistoryBuilder;
use crate::proving::check::{
    AnomalyKind, FinalRead, duplicate_revisions, lost_writes, read_inconsistencies, revision_regressions,
};

fn final_read(key: &str, value: Option<&str>, mod_revision: i64, revision: i64) -> FinalRead {
    FinalRead { key: key.to_owned(), value: value.map(str::to_owned), mod_revision, revision }
}

fn kinds(anomalies: &[crate::proving::check::Anomaly]) -> Vec<AnomalyKind> {
    anomalies.iter().map(|anomaly| anomaly.kind).collect()
}

#[test]
fn an_acknowledged_write_missing_at_the_end_is_lost() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let acknowledged = h.put(2, (20, 30), "v2", 3);
    let lost = lost_writes(&h.history, &[final_read("k", Some("v1"), 2, 3)]);
    assert_eq!(kinds(&lost), vec![AnomalyKind::LostWrite]);
    assert_eq!(lost[0].operations[0].index, acknowledged);
    assert!(lost[0].to_string().contains("the key holds an older write"), "{}", lost[0]);

    assert!(lost_writes(&h.history, &[final_read("k", Some("v2"), 3, 3)]).is_empty());
    // The key missing from the final range counts as absent.
    assert_eq!(kinds(&lost_writes(&h.history, &[])), vec![AnomalyKind::LostWrite]);
}

#[test]
fn a_later_write_without_an_answer_may_have_overwritten_the_last_acknowledged_one() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.put_unknown(2, (20, 30), "v2");
    assert!(lost_writes(&h.history, &[final_read("k", Some("v2"), 5, 5)]).is_empty());
    h.delete_unknown(3, (40, 50));
    assert!(lost_writes(&h.history, &[final_read("k", None, 0, 6)]).is_empty());
}

#[test]
fn an_acknowledged_delete_undone_at_the_end_is_lost() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.delete(1, (20, 30), 1, 3);
    let lost = lost_writes(&h.history, &[final_read("k", Some("v1"), 2, 3)]);
    assert_eq!(kinds(&lost), vec![AnomalyKind::LostWrite]);
    assert!(lost_writes(&h.history, &[final_read("k", None, 0, 3)]).is_empty());
}

#[test]
fn every_final_read_of_a_key_is_checked() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let members_agree = [final_read("k", Some("v1"), 2, 2), final_read("k", Some("v1"), 2, 2)];
    assert!(lost_writes(&h.history, &members_agree).is_empty());
    let one_member_behind = [final_read("k", Some("v1"), 2, 2), final_read("k", None, 0, 1)];
    assert_eq!(kinds(&lost_writes(&h.history, &one_member_behind)), vec![AnomalyKind::LostWrite]);
}

#[test]
fn a_client_seeing_an_older_revision_later_is_a_regression() {
    let mut h = HistoryBuilder::new();
    let first = h.put(1, (0, 10), "v1", 5);
    let second = h.get(1, (20, 30), Some("v0"), 3, 4);
    let regressions = revision_regressions(&h.history);
    assert_eq!(kinds(&regressions), vec![AnomalyKind::RevisionRegression]);
    let involved: Vec<usize> = regressions[0].operations.iter().map(|operation| operation.index).collect();
    assert_eq!(involved, vec![second, first]);
    assert!(regressions[0].description.contains("client 1"), "{}", regressions[0]);
}

#[test]
fn revisions_of_concurrent_operations_may_be_in_any_order() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 30), "v1", 5);
    h.get(2, (10, 20), None, 0, 4);
    h.put(3, (40, 50), "v2", 6);
    h.serializable_get(3, (60, 70), Some("v1"), 5, 5);
    assert!(revision_regressions(&h.history).is_empty());
}

#[test]
fn a_read_missing_a_write_below_its_revision_is_stale() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let missed = h.put(1, (20, 30), "v2", 3);
    let stale = h.serializable_get(2, (5, 40), Some("v1"), 2, 3);
    let anomalies = read_inconsistencies(&h.history);
    assert_eq!(kinds(&anomalies), vec![AnomalyKind::StaleRead]);
    let involved: Vec<usize> = anomalies[0].operations.iter().map(|operation| operation.index).collect();
    assert_eq!(involved, vec![stale, missed]);
}

#[test]
fn a_read_of_an_absent_key_after_a_put_below_its_revision_is_stale() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.get(2, (20, 30), None, 0, 2);
    assert_eq!(kinds(&read_inconsistencies(&h.history)), vec![AnomalyKind::StaleRead]);
    h.delete_unknown(3, (0, 5));
    assert!(read_inconsistencies(&h.history).is_empty());
}

#[test]
fn a_value_no_write_explains_is_a_phantom() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.get(2, (20, 30), Some("nobody wrote this"), 3, 3);
    assert_eq!(kinds(&read_inconsistencies(&h.history)), vec![AnomalyKind::PhantomRead]);

    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    h.get(2, (20, 30), Some("v2"), 2, 3);
    assert_eq!(kinds(&read_inconsistencies(&h.history)), vec![AnomalyKind::PhantomRead]);

    let mut h = HistoryBuilder::new();
    h.key("a").put(1, (0, 10), "v1", 2);
    h.key("b").get(2, (20, 30), Some("v1"), 2, 3);
    let anomalies = read_inconsistencies(&h.history);
    assert_eq!(kinds(&anomalies), vec![AnomalyKind::PhantomRead]);
    assert!(anomalies[0].description.contains("a write to key \"a\""), "{}", anomalies[0]);
}

#[test]
fn a_value_from_a_write_without_an_answer_is_explained() {
    let mut h = HistoryBuilder::new();
    h.put_unknown(1, (0, 10), "v1");
    h.get(2, (20, 30), Some("v1"), 7, 9);
    assert!(read_inconsistencies(&h.history).is_empty());
}

#[test]
fn a_read_contradicting_itself_is_malformed() {
    let mut h = HistoryBuilder::new();
    h.get(1, (0, 10), Some("v1"), 0, 3);
    h.get(1, (0, 10), None, 4, 4);
    h.get(1, (0, 10), Some("v1"), 5, 4);
    let anomalies = read_inconsistencies(&h.history);
    assert_eq!(kinds(&anomalies), vec![AnomalyKind::MalformedRead; 3]);
}

#[test]
fn the_else_branch_of_a_transaction_is_a_read_too() {
    let mut h = HistoryBuilder::new();
    h.create(1, (0, 10), "v1", true, 2);
    h.update(1, (20, 30), 2, "v2", 3, None);
    h.update(2, (40, 50), 1, "v3", 3, Some((Some("v1"), 2)));
    assert_eq!(kinds(&read_inconsistencies(&h.history)), vec![AnomalyKind::StaleRead]);
}

#[test]
fn two_writes_with_one_revision_are_duplicates() {
    let mut h = HistoryBuilder::new();
    h.key("a").put(1, (0, 10), "v1", 2);
    h.key("b").put(2, (0, 10), "v1", 2);
    h.key("b").put(2, (20, 30), "v2", 3);
    let anomalies = duplicate_revisions(&h.history);
    assert_eq!(kinds(&anomalies), vec![AnomalyKind::DuplicateRevision]);
    assert_eq!(anomalies[0].operations.len(), 2);
}

#[test]
fn a_final_read_can_join_the_history_as_a_get() {
    let mut h = HistoryBuilder::new();
    h.put(1, (0, 10), "v1", 2);
    let phantom = final_read("k", Some("v9"), 3, 3);
    assert!(lost_writes(&h.history, std::slice::from_ref(&phantom)).is_empty());
    h.history.push(phantom.to_operation(99, 20 * super::builders::MS, 30 * super::builders::MS));
    assert_eq!(kinds(&read_inconsistencies(&h.history)), vec![AnomalyKind::PhantomRead]);
    assert!(matches!(super::builders::check(&h.history), crate::proving::check::Linearizability::NotLinearizable(_)));
}
