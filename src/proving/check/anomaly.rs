//! What the cheap whole-history checks report: one misbehaviour of the store and the
//! operations that show it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{History, OperationRef};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// What went wrong, in a sentence that names the operations by `#index`.
    pub description: String,
    /// The operations involved, the one that shows the anomaly first.
    pub operations: Vec<OperationRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An acknowledged write is missing from the final state.
    LostWrite,
    /// An operation saw an older revision than one that completed before it began.
    RevisionRegression,
    /// A read at revision R misses a write with a revision at or below R.
    StaleRead,
    /// A read returned a value or revision that no write explains.
    PhantomRead,
    /// Two acknowledged writes got the same revision.
    DuplicateRevision,
    /// A read's own fields contradict each other (e.g. a present key with
    /// mod_revision 0, or a mod_revision newer than the response revision).
    MalformedRead,
}

impl Anomaly {
    pub(crate) fn new(kind: AnomalyKind, description: String, history: &History, indexes: &[usize]) -> Self {
        Anomaly {
            kind,
            description,
            operations: indexes.iter().filter_map(|&index| OperationRef::of(history, index)).collect(),
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AnomalyKind::LostWrite => "lost write",
            AnomalyKind::RevisionRegression => "revision regression",
            AnomalyKind::StaleRead => "stale read",
            AnomalyKind::PhantomRead => "phantom read",
            AnomalyKind::DuplicateRevision => "duplicate revision",
            AnomalyKind::MalformedRead => "malformed read",
        };
        f.write_str(name)
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.kind, self.description)?;
        for operation in &self.operations {
            writeln!(f, "  {operation}")?;
        }
        Ok(())
    }
}
