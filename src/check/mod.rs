//! # Checking a recorded history against etcd's guarantees
//!
//! `history.rs`: what the torture harness records; `recorder.rs`: recording it from many
//! concurrent client tasks. `model.rs`: the sequential specification of one etcd key.
//! `partition.rs`: one sub-history per key, in the model's terms.

mod history;
mod model;
mod partition;
mod recorder;

pub use history::{
    AcknowledgedWrite, ClientId, History, InvalidHistory, KeyRead, ObservedRead, Operation,
    OperationRef, Outcome, Output, Request, Revision, format_time,
};
pub use recorder::{HistoryRecorder, PendingOperation};
