//! Splits a history into one sub-history per key, in the model's terms.
//!
//! Linearizability is compositional (Herlihy and Wing's locality; porcupine calls it
//! P-compositionality): the history is linearizable exactly when every key's
//! sub-history is, so each key is searched on its own, which keeps the search small.
//!
//! Operations that cannot affect the search are left out here: definitely rejected
//! requests (no effect, nothing observed), reads with no answer, and serializable reads
//! (which may legitimately be stale; the revision-order checks cover them).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::history::{History, KeyRead, Operation, Outcome, Output, Request};
use super::model::{Action, Observed, ReadResult, ValueId};

/// One key's operations, ready for the search.
pub(crate) struct KeyHistory<'h> {
    pub key: &'h str,
    pub operations: Vec<KeyOperation>,
    /// The text of each interned value, indexed by [`ValueId`].
    pub values: Vec<&'h str>,
}

/// One operation of a key's sub-history.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyOperation {
    /// Index in [`History::operations`], the `#i` of reports.
    pub index: usize,
    pub invoked_at_ns: u64,
    /// The operation must be linearized before anything invoked after this time. `None`
    /// for a request with no answer: it may take effect at any time, or never.
    pub deadline_ns: Option<u64>,
    pub action: Action,
    pub observed: Observed,
}

impl KeyHistory<'_> {
    /// The text of an interned value, for reports.
    pub fn value_text(&self, value: ValueId) -> &str {
        usize::try_from(value).ok().and_then(|index| self.values.get(index)).copied().unwrap_or("<unknown value>")
    }
}

/// The sub-history of every key in the history, in key order.
pub(crate) fn partition_by_key(history: &History) -> Vec<KeyHistory<'_>> {
    operations_by_key(history)
        .into_iter()
        .map(|(key, operations)| {
            let mut key_history = build_key_history(key, &operations);
            pin_unanswered_writes_that_were_read(&mut key_history, &operations, history);
            merge_values_nobody_observed(&mut key_history);
            key_history
        })
        .collect()
}

/// The sub-histories as recorded, without the shortcuts that speed up the search: what
/// the tests compare the search against.
#[cfg(test)]
pub(crate) fn partition_by_key_literally(history: &History) -> Vec<KeyHistory<'_>> {
    operations_by_key(history).into_iter().map(|(key, operations)| build_key_history(key, &operations)).collect()
}

fn operations_by_key(history: &History) -> BTreeMap<&str, Vec<(usize, &Operation)>> {
    let mut by_key: BTreeMap<&str, Vec<(usize, &Operation)>> = BTreeMap::new();
    for (index, operation) in history.operations.iter().enumerate() {
        by_key.entry(operation.key()).or_default().push((index, operation));
    }
    by_key
}

fn build_key_history<'h>(key: &'h str, operations: &[(usize, &'h Operation)]) -> KeyHistory<'h> {
    let mut interner = Interner::default();
    let mut key_operations = Vec::with_capacity(operations.len());
    for &(index, operation) in operations {
        if !takes_part_in_search(operation) {
            continue;
        }
        let action = interner.action(&operation.request);
        let observed = match &operation.outcome {
            Outcome::Ok(output) => interner.observed(output),
            Outcome::Unknown | Outcome::Failed => Observed::Unknown,
        };
        key_operations.push(KeyOperation {
            index,
            invoked_at_ns: operation.invoked_at_ns,
            deadline_ns: operation.deadline_ns(),
            action,
            observed,
        });
    }
    KeyHistory { key, operations: key_operations, values: interner.texts }
}

fn takes_part_in_search(operation: &Operation) -> bool {
    match (&operation.request, &operation.outcome) {
        (_, Outcome::Failed) => false,
        (Request::Get { serializable, .. }, Outcome::Ok(_)) => !serializable,
        (Request::Get { .. }, Outcome::Unknown) => false,
        (_, Outcome::Ok(_) | Outcome::Unknown) => true,
    }
}

/// An unanswered write is free to take effect at any time after its invocation, or never,
/// which multiplies the search space by two for each one still pending. But when it is
/// the only write of its value and a read returned that value, it certainly took effect,
/// and before that read completed: giving it that read's completion as its deadline is
/// exact, not an approximation, and lets the search close it off early.
fn pin_unanswered_writes_that_were_read(
    key_history: &mut KeyHistory,
    operations: &[(usize, &Operation)],
    history: &History,
) {
    let mut writers_of_value: HashMap<&str, usize> = HashMap::new();
    for (_, operation) in operations {
        if operation.may_have_written()
            && let Some(value) = operation.request.written_value()
        {
            *writers_of_value.entry(value).or_default() += 1;
        }
    }
    let mut first_read_completion: HashMap<&str, u64> = HashMap::new();
    for (_, operation) in operations {
        if operation.is_serializable_read() {
            continue;
        }
        if let Some(read) = operation.observed_read()
            && let Some(value) = read.value
        {
            let earliest = first_read_completion.entry(value).or_insert(u64::MAX);
            *earliest = (*earliest).min(operation.completed_at_ns);
        }
    }
    for key_operation in &mut key_history.operations {
        if key_operation.deadline_ns.is_some() {
            continue;
        }
        let Some(value) =
            history.operations.get(key_operation.index).and_then(|operation| operation.request.written_value())
        else {
            continue;
        };
        if writers_of_value.get(value) == Some(&1)
            && let Some(&read_completed) = first_read_completion.get(value)
        {
            key_operation.deadline_ns = Some(read_completed.max(key_operation.invoked_at_ns));
        }
    }
}

/// How reports name the value standing for all values nobody observed.
const UNOBSERVED_VALUE: &str = "<a value no read returned>";

/// A value that no read returned and no compare looked for is indistinguishable from
/// any other such value: the model only ever compares values with what reads returned
/// and compares expected. Giving them all one id changes no verdict, but lets the model
/// states after different such writes coincide, and makes unanswered writes of such
/// values identical, so the search can treat them as interchangeable (see
/// `search.rs`) instead of trying every one of them in every role.
fn merge_values_nobody_observed(key_history: &mut KeyHistory) {
    let mut observed: HashSet<ValueId> = HashSet::new();
    for operation in &key_history.operations {
        let read = match operation.observed {
            Observed::Read(read) | Observed::Txn { else_read: Some(read), .. } => Some(read),
            _ => None,
        };
        if let Some(value) = read.and_then(|read| read.value) {
            observed.insert(value);
        }
        if let Action::PutIfValue { expected, .. } = operation.action {
            observed.insert(expected);
        }
    }
    let unobserved = ValueId::try_from(key_history.values.len()).unwrap_or(ValueId::MAX);
    let mut merged_any = false;
    for operation in &mut key_history.operations {
        if let Some(value) = operation.action.written_value_mut()
            && !observed.contains(value)
        {
            *value = unobserved;
            merged_any = true;
        }
    }
    if merged_any {
        key_history.values.push(UNOBSERVED_VALUE);
    }
}

/// Maps value texts to small ids, so model states are cheap to copy and hash.
#[derive(Default)]
struct Interner<'h> {
    ids: HashMap<&'h str, ValueId>,
    texts: Vec<&'h str>,
}

impl<'h> Interner<'h> {
    fn intern(&mut self, text: &'h str) -> ValueId {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        // More distinct values than u32 ids cannot fit in memory anyway; sharing the
        // last id would only make the model more permissive, never wrongly strict.
        let id = ValueId::try_from(self.texts.len()).unwrap_or(ValueId::MAX);
        self.ids.insert(text, id);
        self.texts.push(text);
        id
    }

    fn action(&mut self, request: &'h Request) -> Action {
        match request {
            Request::Get { .. } => Action::Get,
            Request::Put { value, .. } => Action::Put { value: self.intern(value) },
            Request::Delete { .. } => Action::Delete,
            Request::PutIfValue { expected_value, value, .. } => {
                Action::PutIfValue { expected: self.intern(expected_value), value: self.intern(value) }
            }
            Request::Create { value, .. } => Action::Create { value: self.intern(value) },
            Request::UpdateIfModRevision { expected_mod_revision, value, .. } => {
                Action::UpdateIfModRevision { expected: *expected_mod_revision, value: self.intern(value) }
            }
            Request::DeleteIfModRevision { expected_mod_revision, .. } => {
                Action::DeleteIfModRevision { expected: *expected_mod_revision }
            }
        }
    }

    fn observed(&mut self, output: &'h Output) -> Observed {
        match output {
            Output::Get { value, mod_revision, revision } => Observed::Read(ReadResult {
                value: value.as_deref().map(|value| self.intern(value)),
                mod_revision: *mod_revision,
                revision: *revision,
            }),
            Output::Put { revision } => Observed::Put { revision: *revision },
            Output::Delete { deleted, revision } => Observed::Delete { deleted: *deleted, revision: *revision },
            Output::Txn { succeeded, revision, else_read } => Observed::Txn {
                succeeded: *succeeded,
                revision: *revision,
                else_read: else_read.as_ref().map(|read| self.else_read(read, *revision)),
            },
        }
    }

    fn else_read(&mut self, read: &'h KeyRead, revision: i64) -> ReadResult {
        ReadResult {
            value: read.value.as_deref().map(|value| self.intern(value)),
            mod_revision: read.mod_revision,
            revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proving::check::history::Operation;

    fn operation(from: u64, to: u64, request: Request, outcome: Outcome) -> Operation {
        Operation { client: 1, invoked_at_ns: from, completed_at_ns: to, request, outcome }
    }

    fn put(value: &str) -> Request {
        Request::Put { key: "k".into(), value: value.into() }
    }

    fn get_returning(value: &str) -> Outcome {
        Outcome::Ok(Output::Get { value: Some(value.into()), mod_revision: 2, revision: 2 })
    }

    fn get() -> Request {
        Request::Get { key: "k".into(), serializable: false }
    }

    #[test]
    fn rejected_requests_unanswered_reads_and_serializable_reads_are_left_out() {
        let history = History {
            operations: vec![
                operation(0, 1, put("a"), Outcome::Failed),
                operation(0, 1, get(), Outcome::Unknown),
                operation(0, 1, Request::Get { key: "k".into(), serializable: true }, get_returning("a")),
                operation(0, 1, put("b"), Outcome::Unknown),
            ],
        };
        let keys = partition_by_key(&history);
        assert_eq!(keys.len(), 1);
        let indexes: Vec<usize> = keys[0].operations.iter().map(|operation| operation.index).collect();
        assert_eq!(indexes, vec![3]);
    }

    #[test]
    fn an_unanswered_write_whose_value_was_read_must_precede_that_read() {
        let history = History {
            operations: vec![
                operation(0, 5, put("a"), Outcome::Unknown),
                operation(10, 20, get(), get_returning("a")),
                operation(30, 40, get(), get_returning("a")),
                // Written twice: a read of it does not say which write took effect.
                operation(0, 5, put("b"), Outcome::Unknown),
                operation(0, 5, put("b"), Outcome::Unknown),
                operation(50, 60, get(), get_returning("b")),
            ],
        };
        let keys = partition_by_key(&history);
        let deadlines: Vec<Option<u64>> = keys[0].operations.iter().map(|operation| operation.deadline_ns).collect();
        assert_eq!(deadlines, vec![Some(20), Some(20), Some(40), None, None, Some(60)]);
    }

    #[test]
    fn values_nobody_observed_share_one_id() {
        let history = History {
            operations: vec![
                operation(0, 5, put("seen"), Outcome::Ok(Output::Put { revision: 2 })),
                operation(0, 5, put("unseen 1"), Outcome::Unknown),
                operation(0, 5, put("unseen 2"), Outcome::Ok(Output::Put { revision: 3 })),
                operation(10, 20, get(), get_returning("seen")),
            ],
        };
        let keys = partition_by_key(&history);
        let written: Vec<Action> = keys[0].operations.iter().map(|operation| operation.action).collect();
        let Action::Put { value: seen } = written[0] else {
            panic!("a put");
        };
        assert_eq!(keys[0].value_text(seen), "seen");
        assert_eq!(written[1], written[2]);
        let Action::Put { value: merged } = written[1] else {
            panic!("a put");
        };
        assert_ne!(merged, seen);
        assert_eq!(keys[0].value_text(merged), UNOBSERVED_VALUE);
    }
}
