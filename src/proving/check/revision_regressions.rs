//! Revisions never go backwards: an operation that begins after another completed sees
//! at least the revision the other saw.
//!
//! This is stronger than "each client's revisions never decrease" and implies it for a
//! client that waits for each answer before its next request: real-time order across
//! all clients is what linearizability promises, and unlike the per-key search it also
//! relates operations on different keys.

use super::anomaly::{Anomaly, AnomalyKind};
use super::history::{History, format_time};

/// Every answered operation (serializable reads excepted: a lagging member may serve
/// them an older revision) that saw a lower revision than some operation that completed
/// before it was invoked. One anomaly per such operation, naming the highest revision
/// seen before it.
pub fn revision_regressions(history: &History) -> Vec<Anomaly> {
    // (time, revision, index) of every answer, by completion.
    let mut by_completion: Vec<(u64, i64, usize)> = history
        .operations
        .iter()
        .enumerate()
        .filter_map(|(index, operation)| Some((operation.deadline_ns()?, operation.observed_revision()?, index)))
        .collect();
    by_completion.sort_unstable();
    let mut by_invocation: Vec<(u64, i64, usize)> = history
        .operations
        .iter()
        .enumerate()
        .filter(|(_, operation)| !operation.is_serializable_read())
        .filter_map(|(index, operation)| Some((operation.invoked_at_ns, operation.observed_revision()?, index)))
        .collect();
    by_invocation.sort_unstable();

    let mut anomalies = Vec::new();
    let mut completed = by_completion.iter().peekable();
    // The highest revision among operations completed so far, and which one saw it.
    let mut highest: Option<(i64, usize)> = None;
    for &(invoked_at, revision, index) in &by_invocation {
        while let Some(&&(completed_at, seen, earlier)) = completed.peek() {
            if completed_at >= invoked_at {
                break;
            }
            if highest.is_none_or(|(highest_seen, _)| seen > highest_seen) {
                highest = Some((seen, earlier));
            }
            completed.next();
        }
        let Some((highest_seen, earlier)) = highest else {
            continue;
        };
        if revision < highest_seen {
            let (Some(earlier_operation), Some(later_operation)) =
                (history.operations.get(earlier), history.operations.get(index))
            else {
                continue;
            };
            let clients = if earlier_operation.client == later_operation.client {
                format!("client {}", later_operation.client)
            } else {
                format!("clients {} and {}", earlier_operation.client, later_operation.client)
            };
            let description = format!(
                "#{index} saw revision {revision}, although #{earlier} had seen revision \
                 {highest_seen} and completed at t={} before #{index} started at t={} ({clients})",
                format_time(earlier_operation.completed_at_ns),
                format_time(invoked_at)
            );
            anomalies.push(Anomaly::new(AnomalyKind::RevisionRegression, description, history, &[index, earlier]));
        }
    }
    anomalies
}
