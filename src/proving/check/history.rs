//! What concurrent clients asked an etcd cluster, when, and what they were told.
//!
//! A [`History`] is the raw material of every check in this module. Each [`Operation`]
//! touches exactly one key, which lets the linearizability check split the history by key
//! (linearizability is compositional: a history is linearizable if and only if each key's
//! sub-history is).
//!
//! Times are monotonic nanoseconds from any fixed origin (for example an `Instant` taken
//! when the run started). The invocation time must be taken before the request is sent
//! and the completion time after the answer arrived, so that the interval surely contains
//! the moment the cluster executed the request.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which client issued an operation. Only used to label operations in reports and to
/// group them; the checks never assume a client waits for one answer before asking again.
pub type ClientId = u64;

/// An etcd revision: the store's global write counter (etcd's `int64`).
pub type Revision = i64;

/// Everything the clients of one run did, in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub operations: Vec<Operation>,
}

/// One request to the cluster and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub client: ClientId,
    /// Taken just before the request was sent.
    pub invoked_at_ns: u64,
    /// Taken just after the answer arrived, or when the client gave up waiting. For an
    /// [`Outcome::Unknown`] it is only informative: such a request may take effect at any
    /// time after its invocation, as Jepsen treats it.
    pub completed_at_ns: u64,
    pub request: Request,
    pub outcome: Outcome,
}

/// A single-key etcd request, in the shapes the torture harness sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Range on one key. A serializable read may be served by a lagging member, so it is
    /// left out of the linearizability check and only checked against revision order.
    Get {
        key: String,
        #[serde(default)]
        serializable: bool,
    },
    Put {
        key: String,
        value: String,
    },
    /// DeleteRange on one key.
    Delete {
        key: String,
    },
    /// Txn `value(key) == expected_value -> put(key, value)`, no else branch. As in etcd,
    /// comparing the value of a key that does not exist is false.
    PutIfValue {
        key: String,
        expected_value: String,
        value: String,
    },
    /// Kubernetes create: Txn `mod(key) == 0 -> put(key, value)`, no else branch.
    Create {
        key: String,
        value: String,
    },
    /// Kubernetes update: Txn `mod(key) == expected_mod_revision -> put(key, value)`,
    /// else `get(key)`.
    UpdateIfModRevision {
        key: String,
        expected_mod_revision: Revision,
        value: String,
    },
    /// Kubernetes delete: Txn `mod(key) == expected_mod_revision -> delete(key)`,
    /// else `get(key)`.
    DeleteIfModRevision {
        key: String,
        expected_mod_revision: Revision,
    },
}

/// What the client learned about its request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The cluster answered.
    Ok(Output),
    /// The cluster definitely rejected the request: it had no effect. Only use this for
    /// errors raised before the request could be applied (invalid arguments, for example);
    /// when in doubt, record [`Outcome::Unknown`].
    Failed,
    /// No answer (timeout, lost connection, leader change...): the request may or may not
    /// have taken effect, at any time after it was invoked.
    Unknown,
}

/// The answer to a request. Its variant must fit the request (see [`History::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// The key's value (`None`: absent) and `mod_revision` (0 when absent), and the
    /// response header's revision.
    Get { value: Option<String>, mod_revision: Revision, revision: Revision },
    /// The response header's revision, which is the put's own revision.
    Put { revision: Revision },
    /// How many keys were deleted (0 or 1) and the response header's revision.
    Delete { deleted: i64, revision: Revision },
    /// Whether the compare held, the response header's revision, and, when the compare
    /// failed and the request has an else branch, what that branch read.
    Txn { succeeded: bool, revision: Revision, else_read: Option<KeyRead> },
}

/// A key as a read saw it: `value` is `None` when the key was absent (then
/// `mod_revision` is 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRead {
    pub value: Option<String>,
    pub mod_revision: Revision,
}

/// An operation with its index in the history, the `#index` of reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRef {
    pub index: usize,
    pub operation: Operation,
}

impl OperationRef {
    pub fn of(history: &History, index: usize) -> Option<Self> {
        Some(OperationRef { index, operation: history.operations.get(index)?.clone() })
    }
}

impl fmt::Display for OperationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.index, self.operation)
    }
}

/// A history that cannot be checked because the recording itself is wrong: a bug in
/// the harness, not in the store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("operation #{index} is malformed: {problem}")]
pub struct InvalidHistory {
    pub index: usize,
    pub problem: String,
}

/// A key's state as a read reported it, whether from a get or a txn's else branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedRead<'a> {
    pub value: Option<&'a str>,
    pub mod_revision: Revision,
    /// The response header's revision: the store revision the read was served at.
    pub revision: Revision,
}

/// The effect of a write the cluster acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcknowledgedWrite<'a> {
    /// `Some(value)` for a put, `None` for a delete.
    pub value: Option<&'a str>,
    pub revision: Revision,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation and returns its index, the number reports refer to as `#i`.
    pub fn push(&mut self, operation: Operation) -> usize {
        self.operations.push(operation);
        self.operations.len() - 1
    }

    /// Checks that every operation is well formed: answered operations completed after
    /// they were invoked, and every output has the shape its request calls for.
    pub fn validate(&self) -> Result<(), InvalidHistory> {
        for (index, operation) in self.operations.iter().enumerate() {
            operation.problem().map_or(Ok(()), |problem| Err(InvalidHistory { index, problem }))?;
        }
        Ok(())
    }
}

impl Operation {
    pub fn key(&self) -> &str {
        self.request.key()
    }

    /// When the operation must have taken effect by, if it did: `None` for an
    /// [`Outcome::Unknown`], whose completion is treated as infinitely late.
    pub fn deadline_ns(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Unknown => None,
            Outcome::Ok(_) | Outcome::Failed => Some(self.completed_at_ns),
        }
    }

    /// The response header's revision, if the cluster answered.
    pub fn observed_revision(&self) -> Option<Revision> {
        match &self.outcome {
            Outcome::Ok(output) => Some(output.revision()),
            Outcome::Failed | Outcome::Unknown => None,
        }
    }

    /// Whether this is a read whose answer may legitimately be stale.
    pub fn is_serializable_read(&self) -> bool {
        matches!(self.request, Request::Get { serializable: true, .. })
    }

    /// The key's state as this operation read it: a get's answer or a failed txn's else
    /// branch.
    pub fn observed_read(&self) -> Option<ObservedRead<'_>> {
        match &self.outcome {
            Outcome::Ok(Output::Get { value, mod_revision, revision })
                if matches!(self.request, Request::Get { .. }) =>
            {
                Some(ObservedRead { value: value.as_deref(), mod_revision: *mod_revision, revision: *revision })
            }
            Outcome::Ok(Output::Txn { succeeded: false, revision, else_read: Some(read) })
                if self.request.has_else_read() =>
            {
                Some(ObservedRead {
                    value: read.value.as_deref(),
                    mod_revision: read.mod_revision,
                    revision: *revision,
                })
            }
            _ => None,
        }
    }

    /// The change this operation made, if the cluster acknowledged one. Deletes that found
    /// nothing to delete changed nothing and are not writes.
    pub fn acknowledged_write(&self) -> Option<AcknowledgedWrite<'_>> {
        let Outcome::Ok(output) = &self.outcome else {
            return None;
        };
        let revision = output.revision();
        let value = match (&self.request, output) {
            (Request::Put { value, .. }, Output::Put { .. }) => Some(value.as_str()),
            (Request::Delete { .. }, Output::Delete { deleted, .. }) if *deleted > 0 => None,
            (
                Request::PutIfValue { value, .. }
                | Request::Create { value, .. }
                | Request::UpdateIfModRevision { value, .. },
                Output::Txn { succeeded: true, .. },
            ) => Some(value.as_str()),
            // A mod_revision of 0 means the key was absent: the delete found nothing.
            (Request::DeleteIfModRevision { expected_mod_revision, .. }, Output::Txn { succeeded: true, .. })
                if *expected_mod_revision != 0 =>
            {
                None
            }
            _ => return None,
        };
        Some(AcknowledgedWrite { value, revision })
    }

    /// Whether the operation may have changed the key (it is a write that was not
    /// definitely rejected).
    pub fn may_have_written(&self) -> bool {
        !self.request.is_read_only() && !matches!(self.outcome, Outcome::Failed)
    }

    fn problem(&self) -> Option<String> {
        if let Outcome::Ok(_) | Outcome::Failed = self.outcome
            && self.completed_at_ns < self.invoked_at_ns
        {
            return Some(format!(
                "it completed at {} before it was invoked at {}",
                format_time(self.completed_at_ns),
                format_time(self.invoked_at_ns)
            ));
        }
        let Outcome::Ok(output) = &self.outcome else {
            return None;
        };
        let fits = match (&self.request, output) {
            (Request::Get { .. }, Output::Get { .. })
            | (Request::Put { .. }, Output::Put { .. })
            | (Request::Delete { .. }, Output::Delete { .. }) => true,
            (Request::PutIfValue { .. } | Request::Create { .. }, Output::Txn { else_read, .. }) => else_read.is_none(),
            (
                Request::UpdateIfModRevision { .. } | Request::DeleteIfModRevision { .. },
                Output::Txn { succeeded, else_read, .. },
            ) => *succeeded == else_read.is_none(),
            _ => false,
        };
        (!fits).then(|| format!("the output {output} does not fit the request {}", self.request))
    }
}

impl Request {
    pub fn key(&self) -> &str {
        match self {
            Request::Get { key, .. }
            | Request::Put { key, .. }
            | Request::Delete { key }
            | Request::PutIfValue { key, .. }
            | Request::Create { key, .. }
            | Request::UpdateIfModRevision { key, .. }
            | Request::DeleteIfModRevision { key, .. } => key,
        }
    }

    /// The value this request stores if it writes.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Request::Put { value, .. }
            | Request::PutIfValue { value, .. }
            | Request::Create { value, .. }
            | Request::UpdateIfModRevision { value, .. } => Some(value),
            Request::Get { .. } | Request::Delete { .. } | Request::DeleteIfModRevision { .. } => None,
        }
    }

    pub fn is_read_only(&self) -> bool {
        matches!(self, Request::Get { .. })
    }

    /// Whether the request deletes the key when it takes effect.
    pub fn may_delete(&self) -> bool {
        matches!(self, Request::Delete { .. } | Request::DeleteIfModRevision { .. })
    }

    /// Whether a failed compare runs a get in the else branch.
    pub fn has_else_read(&self) -> bool {
        matches!(self, Request::UpdateIfModRevision { .. } | Request::DeleteIfModRevision { .. })
    }
}

impl Output {
    /// The response header's revision.
    pub fn revision(&self) -> Revision {
        match self {
            Output::Get { revision, .. }
            | Output::Put { revision }
            | Output::Delete { revision, .. }
            | Output::Txn { revision, .. } => *revision,
        }
    }
}

/// Formats monotonic nanoseconds as seconds with microsecond precision, e.g. `1.000250s`.
pub fn format_time(nanoseconds: u64) -> String {
    format!("{}.{:06}s", nanoseconds / 1_000_000_000, (nanoseconds % 1_000_000_000) / 1_000)
}

/// Formats a key's value as reads report it.
pub(crate) fn format_value(value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "absent".to_owned(),
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Get { serializable: false, .. } => write!(f, "get"),
            Request::Get { serializable: true, .. } => write!(f, "get (serializable)"),
            Request::Put { value, .. } => write!(f, "put {value:?}"),
            Request::Delete { .. } => write!(f, "delete"),
            Request::PutIfValue { expected_value, value, .. } => {
                write!(f, "txn value=={expected_value:?} ? put {value:?}")
            }
            Request::Create { value, .. } => write!(f, "txn mod==0 ? put {value:?}"),
            Request::UpdateIfModRevision { expected_mod_revision, value, .. } => {
                write!(f, "txn mod=={expected_mod_revision} ? put {value:?} : get")
            }
            Request::DeleteIfModRevision { expected_mod_revision, .. } => {
                write!(f, "txn mod=={expected_mod_revision} ? delete : get")
            }
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Get { value: Some(value), mod_revision, revision } => {
                write!(f, "{value:?} (mod_revision {mod_revision}) at revision {revision}")
            }
            Output::Get { value: None, mod_revision, revision } => {
                write!(f, "absent at revision {revision}")?;
                if *mod_revision != 0 {
                    write!(f, " (but mod_revision {mod_revision})")?;
                }
                Ok(())
            }
            Output::Put { revision } => write!(f, "revision {revision}"),
            Output::Delete { deleted, revision } => {
                write!(f, "deleted {deleted} at revision {revision}")
            }
            Output::Txn { succeeded: true, revision, .. } => write!(f, "succeeded at revision {revision}"),
            Output::Txn { succeeded: false, revision, else_read } => {
                write!(f, "compare false at revision {revision}")?;
                if let Some(read) = else_read {
                    write!(f, ", read {}", format_value(read.value.as_deref()))?;
                    if read.value.is_some() || read.mod_revision != 0 {
                        write!(f, " (mod_revision {})", read.mod_revision)?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(output) => write!(f, "{output}"),
            Outcome::Failed => write!(f, "rejected (no effect)"),
            Outcome::Unknown => write!(f, "unknown (no answer)"),
        }
    }
}

/// `client 3 put "v2" -> revision 7 [t=1.000000s..1.000450s]`
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {} -> {} [t={}..",
            self.client,
            self.request,
            self.outcome,
            format_time(self.invoked_at_ns)
        )?;
        match self.outcome {
            Outcome::Unknown => write!(f, "never (gave up at {})]", format_time(self.completed_at_ns)),
            Outcome::Ok(_) | Outcome::Failed => {
                write!(f, "{}]", format_time(self.completed_at_ns))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(request: Request, outcome: Outcome) -> Operation {
        Operation { client: 1, invoked_at_ns: 10, completed_at_ns: 20, request, outcome }
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let mut history = History::new();
        history.push(operation(
            Request::UpdateIfModRevision {
                key: "/registry/pods/a".into(),
                expected_mod_revision: 4,
                value: "v".into(),
            },
            Outcome::Ok(Output::Txn {
                succeeded: false,
                revision: 9,
                else_read: Some(KeyRead { value: Some("w".into()), mod_revision: 6 }),
            }),
        ));
        history.push(operation(Request::Get { key: "k".into(), serializable: true }, Outcome::Unknown));
        history.push(operation(Request::Delete { key: "k".into() }, Outcome::Failed));
        let json = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history);
    }

    #[test]
    fn a_get_without_the_serializable_field_is_linearizable() {
        let request: Request = serde_json::from_str(r#"{"type":"get","key":"k"}"#).unwrap();
        assert_eq!(request, Request::Get { key: "k".into(), serializable: false });
    }

    #[test]
    fn validate_rejects_outputs_that_do_not_fit_their_request() {
        let put_answered_like_a_get = operation(
            Request::Put { key: "k".into(), value: "v".into() },
            Outcome::Ok(Output::Get { value: None, mod_revision: 0, revision: 3 }),
        );
        let update_without_its_else_read = operation(
            Request::UpdateIfModRevision { key: "k".into(), expected_mod_revision: 2, value: "v".into() },
            Outcome::Ok(Output::Txn { succeeded: false, revision: 3, else_read: None }),
        );
        let mut completed_before_invoked =
            operation(Request::Get { key: "k".into(), serializable: false }, Outcome::Failed);
        completed_before_invoked.completed_at_ns = 5;
        for bad in [put_answered_like_a_get, update_without_its_else_read, completed_before_invoked] {
            let history = History { operations: vec![bad] };
            let error = history.validate().unwrap_err();
            assert_eq!(error.index, 0);
        }
    }

    #[test]
    fn an_unknown_operation_may_have_given_up_at_any_time() {
        let mut unknown = operation(Request::Delete { key: "k".into() }, Outcome::Unknown);
        unknown.completed_at_ns = 0;
        assert!(History { operations: vec![unknown.clone()] }.validate().is_ok());
        assert_eq!(unknown.deadline_ns(), None);
        assert!(unknown.to_string().contains("never (gave up at 0.000000s)"));
    }

    #[test]
    fn a_conditional_delete_of_an_absent_key_is_not_a_write() {
        let delete_absent = operation(
            Request::DeleteIfModRevision { key: "k".into(), expected_mod_revision: 0 },
            Outcome::Ok(Output::Txn { succeeded: true, revision: 4, else_read: None }),
        );
        assert_eq!(delete_absent.acknowledged_write(), None);
    }
}
