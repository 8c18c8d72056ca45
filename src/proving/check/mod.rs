//! # Checking a recorded history against etcd's guarantees
//!
//! The torture harness records what concurrent clients asked and were told
//! ([`History`], most easily through a [`HistoryRecorder`]), then asks two questions:
//!
//! - Is the history linearizable? [`check_linearizability`] splits it by key and runs a
//!   Wing–Gong–Lowe search (as in Jepsen's Knossos and porcupine) against a model of an
//!   etcd key that knows values, mod_revisions and the store's revision. Requests without
//!   an answer may take effect at any time after their invocation, or never. Each key has
//!   a budget; when it runs out the answer is "unknown", never a guess. A
//!   [`Violation`] explains a failure in terms of the operations involved.
//! - Do the cheap whole-history properties hold? [`lost_writes`],
//!   [`revision_regressions`], [`read_inconsistencies`] and [`duplicate_revisions`]
//!   return [`Anomaly`]s; they relate operations across keys, which the per-key search
//!   cannot, and cost next to nothing.
//!
//! ## Recording a history (for the torture harness)
//!
//! - One [`HistoryRecorder`] per run, shared by all clients. Call
//!   [`HistoryRecorder::invoke`] just before sending a request and
//!   [`HistoryRecorder::complete`] as soon as its answer arrives; a request whose
//!   answer never comes stays [`Outcome::Unknown`].
//! - Every write stores a value no other write uses (`"c3-1729"`): a read then names the
//!   write it saw, which keeps the search small and the reports clear.
//! - [`Outcome::Ok`] carries the response header's revision, and for a get the key's
//!   value and `mod_revision` (absent: `None` and 0); for a txn whether it succeeded and,
//!   when it failed, what its else branch read.
//! - [`Outcome::Failed`] only when the request was surely not applied: errors raised
//!   while validating it (`InvalidArgument`, `PermissionDenied`, a compacted revision,
//!   `ResourceExhausted` for the quota). Timeouts, `Unavailable`, "leader changed",
//!   "request timed out" and lost connections are [`Outcome::Unknown`]. Client-side
//!   retries of writes must be off: a retried put may be applied twice.
//! - Serializable gets are recorded with `serializable: true`; they are left out of the
//!   linearizability check and checked against revisions only.
//! - Operations are single-key. Keys start absent (use a fresh prefix per run), and keys
//!   attached to leases must be kept out of the history, since expiry and revoke delete
//!   them outside any recorded request.
//! - Once the faults have healed, read every key into [`FinalRead`]s for
//!   [`lost_writes`], and append them to the history with [`FinalRead::to_operation`]
//!   so the other checks see them too. Save the history with `serde_json`.
//!
//! ## Layout
//!
//! - `history.rs`: what is recorded; `recorder.rs`: recording it from many tasks.
//! - `model.rs`: the sequential specification of one etcd key.
//! - `partition.rs`: one sub-history per key, in the model's terms.
//! - `search.rs` (with `explored.rs`, its memo, and `placed.rs`, `bitset.rs`): the
//!   search; `violation.rs`: explaining a failure;
//!   `linearizability.rs`: the check of a whole history.
//! - `anomaly.rs`, `lost_writes.rs`, `revision_regressions.rs`, `read_consistency.rs`:
//!   the whole-history checks.

mod anomaly;
mod bitset;
mod explored;
mod history;
mod linearizability;
mod lost_writes;
mod model;
mod partition;
mod placed;
mod read_consistency;
mod recorder;
mod revision_regressions;
mod search;
mod violation;
pub mod watch;

#[cfg(test)]
mod tests;

pub use anomaly::{Anomaly, AnomalyKind};
pub use history::{
    AcknowledgedWrite, ClientId, History, InvalidHistory, KeyRead, ObservedRead, Operation, OperationRef, Outcome,
    Output, Request, Revision, format_time,
};
pub use linearizability::{
    CheckOptions, KeyReport, Linearizability, LinearizabilityReport, Undecided, check_linearizability,
};
pub use lost_writes::{FinalRead, lost_writes};
pub use read_consistency::{duplicate_revisions, read_inconsistencies};
pub use recorder::{HistoryRecorder, PendingOperation};
pub use revision_regressions::revision_regressions;
pub use search::BudgetExhausted;
pub use violation::{LinearizedStep, UnplacedOperation, Violation};
