//! # Checking a recorded history against etcd's guarantees
//!
//! `history.rs`: what the torture harness records; `recorder.rs`: recording it from many
//! concurrent client tasks. `model.rs`: the sequential specification of one etcd key.
//! `partition.rs`: one sub-history per key, in the model's terms. `search.rs` (with
//! `explored.rs`, its memo, and `placed.rs`, `bitset.rs`): the Wing–Gong–Lowe search;
//! `violation.rs`: explaining a failure; `linearizability.rs`: the check of a history.

mod bitset;
mod explored;
mod history;
mod linearizability;
mod model;
mod partition;
mod placed;
mod recorder;
mod search;
mod violation;

pub use history::{
    AcknowledgedWrite, ClientId, History, InvalidHistory, KeyRead, ObservedRead, Operation,
    OperationRef, Outcome, Output, Request, Revision, format_time,
};
pub use linearizability::{
    CheckOptions, KeyReport, Linearizability, LinearizabilityReport, Undecided,
    check_linearizability,
};
pub use recorder::{HistoryRecorder, PendingOperation};
pub use search::BudgetExhausted;
pub use violation::{LinearizedStep, UnplacedOperation, Violation};
