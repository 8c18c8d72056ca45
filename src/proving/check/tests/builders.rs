//! Terse construction of hand-written histories. Times are given in milliseconds.

use crate::proving::check::{
    CheckOptions, History, KeyRead, Linearizability, Operation, Outcome, Output, Request, Revision,
    check_linearizability,
};

pub(super) const MS: u64 = 1_000_000;

/// Builds a history on one key at a time (`"k"` unless [`HistoryBuilder::key`] says
/// otherwise). Each method returns the new operation's index.
pub(super) struct HistoryBuilder {
    pub history: History,
    key: String,
}

impl HistoryBuilder {
    pub fn new() -> Self {
        HistoryBuilder { history: History::new(), key: "k".to_owned() }
    }

    pub fn key(&mut self, key: &str) -> &mut Self {
        self.key = key.to_owned();
        self
    }

    pub fn operation(&mut self, client: u64, (from, to): (u64, u64), request: Request, outcome: Outcome) -> usize {
        self.history.push(Operation { client, invoked_at_ns: from * MS, completed_at_ns: to * MS, request, outcome })
    }

    pub fn put_request(&self, value: &str) -> Request {
        Request::Put { key: self.key.clone(), value: value.to_owned() }
    }

    pub fn put(&mut self, client: u64, span: (u64, u64), value: &str, revision: Revision) -> usize {
        let request = self.put_request(value);
        self.operation(client, span, request, Outcome::Ok(Output::Put { revision }))
    }

    pub fn put_unknown(&mut self, client: u64, span: (u64, u64), value: &str) -> usize {
        let request = self.put_request(value);
        self.operation(client, span, request, Outcome::Unknown)
    }

    pub fn put_failed(&mut self, client: u64, span: (u64, u64), value: &str) -> usize {
        let request = self.put_request(value);
        self.operation(client, span, request, Outcome::Failed)
    }

    pub fn get(
        &mut self,
        client: u64,
        span: (u64, u64),
        value: Option<&str>,
        mod_revision: Revision,
        revision: Revision,
    ) -> usize {
        self.read(client, span, false, value, mod_revision, revision)
    }

    pub fn serializable_get(
        &mut self,
        client: u64,
        span: (u64, u64),
        value: Option<&str>,
        mod_revision: Revision,
        revision: Revision,
    ) -> usize {
        self.read(client, span, true, value, mod_revision, revision)
    }

    fn read(
        &mut self,
        client: u64,
        span: (u64, u64),
        serializable: bool,
        value: Option<&str>,
        mod_revision: Revision,
        revision: Revision,
    ) -> usize {
        let request = Request::Get { key: self.key.clone(), serializable };
        let output = Output::Get { value: value.map(str::to_owned), mod_revision, revision };
        self.operation(client, span, request, Outcome::Ok(output))
    }

    pub fn delete(&mut self, client: u64, span: (u64, u64), deleted: i64, revision: Revision) -> usize {
        let request = Request::Delete { key: self.key.clone() };
        self.operation(client, span, request, Outcome::Ok(Output::Delete { deleted, revision }))
    }

    pub fn delete_unknown(&mut self, client: u64, span: (u64, u64)) -> usize {
        let request = Request::Delete { key: self.key.clone() };
        self.operation(client, span, request, Outcome::Unknown)
    }

    /// `value(k) == expected -> put(k, value)`.
    pub fn put_if_value(
        &mut self,
        client: u64,
        span: (u64, u64),
        expected: &str,
        value: &str,
        succeeded: bool,
        revision: Revision,
    ) -> usize {
        let request =
            Request::PutIfValue { key: self.key.clone(), expected_value: expected.to_owned(), value: value.to_owned() };
        self.operation(client, span, request, txn(succeeded, revision, None))
    }

    pub fn create(&mut self, client: u64, span: (u64, u64), value: &str, succeeded: bool, revision: Revision) -> usize {
        let request = Request::Create { key: self.key.clone(), value: value.to_owned() };
        self.operation(client, span, request, txn(succeeded, revision, None))
    }

    /// `mod(k) == expected -> put(k, value) else get(k)`; `else_read` is what the get saw.
    pub fn update(
        &mut self,
        client: u64,
        span: (u64, u64),
        expected: Revision,
        value: &str,
        revision: Revision,
        else_read: Option<(Option<&str>, Revision)>,
    ) -> usize {
        let request = Request::UpdateIfModRevision {
            key: self.key.clone(),
            expected_mod_revision: expected,
            value: value.to_owned(),
        };
        self.operation(client, span, request, txn(else_read.is_none(), revision, else_read))
    }

    /// `mod(k) == expected -> delete(k) else get(k)`.
    pub fn delete_if(
        &mut self,
        client: u64,
        span: (u64, u64),
        expected: Revision,
        revision: Revision,
        else_read: Option<(Option<&str>, Revision)>,
    ) -> usize {
        let request = Request::DeleteIfModRevision { key: self.key.clone(), expected_mod_revision: expected };
        self.operation(client, span, request, txn(else_read.is_none(), revision, else_read))
    }
}

fn txn(succeeded: bool, revision: Revision, else_read: Option<(Option<&str>, Revision)>) -> Outcome {
    Outcome::Ok(Output::Txn {
        succeeded,
        revision,
        else_read: else_read.map(|(value, mod_revision)| KeyRead { value: value.map(str::to_owned), mod_revision }),
    })
}

/// The verdict with generous budgets, so that only a real answer comes back.
pub(super) fn check(history: &History) -> Linearizability {
    check_linearizability(history, &CheckOptions::default()).expect("well-formed history").verdict()
}

pub(super) fn assert_linearizable(history: &History) {
    let verdict = check(history);
    assert_eq!(verdict, Linearizability::Linearizable, "{}", describe(&verdict));
}

/// Asserts the history is not linearizable and returns the violation.
pub(super) fn assert_not_linearizable(history: &History) -> crate::proving::check::Violation {
    match check(history) {
        Linearizability::NotLinearizable(violation) => *violation,
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn describe(verdict: &Linearizability) -> String {
    match verdict {
        Linearizability::NotLinearizable(violation) => violation.to_string(),
        other => format!("{other:?}"),
    }
}
