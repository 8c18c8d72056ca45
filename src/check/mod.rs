//! # Checking a recorded history against etcd's guarantees
//!
//! `history.rs`: what the torture harness records; `recorder.rs`: recording it from many
//! concurrent client tasks. `model.rs`: the sequential specification of one etcd key.
//! `partition.rs`: one sub-history per key, in the model's terms. `search.rs` (with
//! `explored.rs`, its memo, and `placed.rs`, `bitset.rs`): the Wing–Gong–Lowe search;
//! `violation.rs`: explaining a failure; `linearizability.rs`: the check of a history.
//! `anomaly.rs`, `lost_writes.rs`, `revision_regressions.rs`, `read_consistency.rs`:
//! cheap whole-history checks.

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

pub use anomaly::{Anomaly, AnomalyKind};
pub use history::{
    AcknowledgedWrite, ClientId, History, InvalidHistory, KeyRead, ObservedRead, Operation,
    OperationRef, Outcome, Output, Request, Revision, format_time,
};
pub use linearizability::{
    CheckOptions, KeyReport, Linearizability, LinearizabilityReport, Undecided,
    check_linearizability,
};
pub use lost_writes::{FinalRead, lost_writes};
pub use read_consistency::{duplicate_revisions, read_inconsistencies};
pub use recorder::{HistoryRecorder, PendingOperation};
pub use revision_regressions::revision_regressions;
pub use search::BudgetExhausted;
pub use violation::{LinearizedStep, UnplacedOperation, Violation};
