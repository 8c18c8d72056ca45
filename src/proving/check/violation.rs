//! A readable account of why a key's history is not linearizable.
//!
//! The search proves there is no linearization; a person needs to see why. The account
//! shows the longest sequence of operations the search could place, the state of the key
//! after it, each operation that could have come next with the reason it could not, and
//! the other operations on the key around that point, with their times and answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{History, OperationRef, format_time, format_value};
use super::model::{Action, KeyState, ModRevision, Observed, Rejection, Successors, floor_limit, step};
use super::partition::{KeyHistory, KeyOperation};
use super::search::Placed;

/// Why one key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub key: String,
    /// How many of the key's operations took part in the search.
    pub operations_checked: usize,
    /// The longest sequence of operations that could be linearized, in order.
    pub linearized_prefix: Vec<LinearizedStep>,
    /// The key after that prefix, in words.
    pub state_after_prefix: String,
    /// Operations that could have come next and why each could not.
    pub could_not_be_placed: Vec<UnplacedOperation>,
    /// Other operations on the key around that point in time.
    pub around: Vec<OperationRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearizedStep {
    pub operation: OperationRef,
    /// The key after this operation, in words.
    pub state_after: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnplacedOperation {
    pub operation: OperationRef,
    pub reason: String,
}

/// How many steps of the prefix `Display` shows before eliding the older ones.
const PREFIX_STEPS_SHOWN: usize = 10;
/// How many surrounding operations an account keeps.
const AROUND_KEPT: usize = 20;

/// Builds the account of a key the search found not linearizable.
pub(crate) fn explain(history: &History, key_history: &KeyHistory, longest_prefix: &[Placed]) -> Violation {
    let describer = Describer { history, key_history, prefix: longest_prefix };
    let state = longest_prefix.last().map_or_else(KeyState::initial, |placed| placed.state_after);
    let mut is_placed = vec![false; key_history.operations.len()];
    for placed in longest_prefix {
        if let Some(flag) = is_placed.get_mut(placed.operation) {
            *flag = true;
        }
    }
    let unplaced: Vec<(usize, &KeyOperation)> = key_history
        .operations
        .iter()
        .enumerate()
        .filter(|(position, _)| !is_placed.get(*position).copied().unwrap_or(true))
        .collect();
    // The earliest deadline among the operations left: everything that could come next
    // was invoked by then.
    let earliest_deadline =
        unplaced.iter().filter_map(|(_, operation)| operation.deadline_ns).min().unwrap_or(u64::MAX);
    let mut could_not_be_placed: Vec<(u64, UnplacedOperation)> = Vec::new();
    for &(position, operation) in &unplaced {
        if operation.invoked_at_ns > earliest_deadline {
            continue;
        }
        let Some(reason) = describer.why_not_next(state, position, operation, &unplaced) else {
            continue;
        };
        if let Some(operation_ref) = describer.reference(operation.index) {
            could_not_be_placed.push((
                operation.deadline_ns.unwrap_or(u64::MAX),
                UnplacedOperation { operation: operation_ref, reason },
            ));
        }
    }
    // The operation whose deadline blocked the search first: it is the one that had to
    // be placed and could not.
    could_not_be_placed.sort_by_key(|(deadline, unplaced)| (*deadline, unplaced.operation.index));
    let could_not_be_placed: Vec<UnplacedOperation> =
        could_not_be_placed.into_iter().map(|(_, unplaced)| unplaced).collect();
    let around = describer.around(&could_not_be_placed, earliest_deadline);

    Violation {
        key: key_history.key.to_owned(),
        operations_checked: key_history.operations.len(),
        linearized_prefix: longest_prefix
            .iter()
            .filter_map(|placed| {
                let operation = key_history.operations.get(placed.operation)?;
                Some(LinearizedStep {
                    operation: describer.reference(operation.index)?,
                    state_after: describer.state(placed.state_after),
                })
            })
            .collect(),
        state_after_prefix: describer.state(state),
        could_not_be_placed,
        around,
    }
}

struct Describer<'a> {
    history: &'a History,
    key_history: &'a KeyHistory<'a>,
    prefix: &'a [Placed],
}

impl Describer<'_> {
    fn reference(&self, index: usize) -> Option<OperationRef> {
        OperationRef::of(self.history, index)
    }

    fn value(&self, value: Option<u32>) -> String {
        format_value(value.map(|value| self.key_history.value_text(value)))
    }

    fn state(&self, state: KeyState) -> String {
        let held = match (state.value, state.mod_revision) {
            (None, _) => "absent".to_owned(),
            (Some(value), ModRevision::Known(mod_revision)) => {
                format!("{} (mod_revision {mod_revision})", self.value(Some(value)))
            }
            (Some(value), ModRevision::Unrevealed { above, at_most }) => {
                let upper = if at_most == i64::MAX { String::new() } else { format!(" and at most {at_most}") };
                format!("{} (mod_revision not known yet: above {above}{upper})", self.value(Some(value)))
            }
        };
        format!("{held}, store revision at least {}", state.revision_floor)
    }

    /// Why `operation` cannot come right after the prefix, or `None` for an operation
    /// without an answer that would fit (it is only context).
    fn why_not_next(
        &self,
        state: KeyState,
        position: usize,
        operation: &KeyOperation,
        unplaced: &[(usize, &KeyOperation)],
    ) -> Option<String> {
        let successors = match step(state, operation.action, operation.observed) {
            Err(rejection) => return Some(self.rejection(state, operation, rejection)),
            Ok(_) if operation.deadline_ns.is_none() => return None,
            Ok(successors) => successors,
        };
        // It fits; see whether it lifts the floor past the answer of another operation,
        // the one most easily left behind.
        let lowest_floor =
            (0..Successors::MAX).filter_map(|choice| successors.get(choice)).map(|next| next.revision_floor).min()?;
        let stranded = unplaced
            .iter()
            .filter(|(other, _)| *other != position)
            .filter_map(|(_, other)| Some((floor_limit(other.action, other.observed)?, *other)))
            .min_by_key(|(limit, other)| (*limit, other.index))
            .filter(|(limit, _)| lowest_floor > *limit);
        Some(match stranded {
            Some((_, stranded)) => self.strands(lowest_floor, stranded),
            None => "it fits the state here, but no order of the remaining operations works \
                     after it"
                .to_owned(),
        })
    }

    /// Why placing an operation that fits leads nowhere: it lifts the store revision past
    /// another operation's answer, which could then never be placed.
    fn strands(&self, floor: i64, stranded: &KeyOperation) -> String {
        let Some(stranded_operation) = self.history.operations.get(stranded.index) else {
            return String::new();
        };
        let answered_at = stranded_operation
            .observed_revision()
            .map_or_else(String::new, |revision| format!(" (answered at revision {revision})"));
        format!(
            "placing it takes the store to revision {floor}, after which #{}{answered_at} could \
             never be placed: #{} {stranded_operation}",
            stranded.index, stranded.index
        )
    }

    fn rejection(&self, state: KeyState, operation: &KeyOperation, rejection: Rejection) -> String {
        let held = self.state(state);
        match rejection {
            Rejection::ReadMismatch { read_value, read_mod_revision } => format!(
                "it read {} (mod_revision {read_mod_revision}), but the key held {held}{}",
                self.value(read_value),
                self.last_writer(operation)
            ),
            Rejection::RevisionWentBack { revision } => format!(
                "its response revision {revision} is older than revision {} which the store \
                 had already reached{}",
                state.revision_floor,
                self.floor_setter(operation)
            ),
            Rejection::WriteRevisionNotNewer { revision } => format!(
                "its revision {revision} is not newer than revision {} which the store had \
                 already reached{}",
                state.revision_floor,
                self.floor_setter(operation)
            ),
            Rejection::RevealedRevisionImpossible { mod_revision } => {
                format!("it read mod_revision {mod_revision}, but the key held {held}{}", self.last_writer(operation))
            }
            Rejection::CompareDisagrees { reported } => format!(
                "its compare {} was reported {}, but the key held {held}{}",
                compare_text(operation.action),
                if reported { "true" } else { "false" },
                self.last_writer(operation)
            ),
            Rejection::ElseReadContradictsCompare { mod_revision } => format!(
                "its compare on mod_revision failed, yet its else branch read that very \
                 mod_revision {mod_revision}"
            ),
            Rejection::DeleteCountMismatch { deleted } => {
                format!("it reported {deleted} deleted, but the key held {held}{}", self.last_writer(operation))
            }
            Rejection::OutputDoesNotFitRequest => "its answer does not fit the request".to_owned(),
        }
    }

    /// "; it got there by #5 client 2 put ..., which completed before this operation
    /// started at t=..." for the prefix step that last changed the key.
    fn last_writer(&self, blocked: &KeyOperation) -> String {
        let mut before = KeyState::initial();
        let mut writer = None;
        for placed in self.prefix {
            let Some(operation) = self.key_history.operations.get(placed.operation) else {
                continue;
            };
            if changed_the_key(operation, before, placed.state_after) {
                writer = Some(operation);
            }
            before = placed.state_after;
        }
        match writer {
            Some(writer) => self.cause("the key got that state from", writer, blocked),
            None => String::new(),
        }
    }

    /// The prefix step that raised the store revision to where it is.
    fn floor_setter(&self, blocked: &KeyOperation) -> String {
        let mut before = KeyState::initial();
        let mut setter = None;
        for placed in self.prefix {
            if placed.state_after.revision_floor > before.revision_floor {
                setter = self.key_history.operations.get(placed.operation);
            }
            before = placed.state_after;
        }
        match setter {
            Some(setter) => self.cause("that revision was reached by", setter, blocked),
            None => String::new(),
        }
    }

    fn cause(&self, lead: &str, cause: &KeyOperation, blocked: &KeyOperation) -> String {
        let Some(cause_operation) = self.history.operations.get(cause.index) else {
            return String::new();
        };
        let mut text = format!("; {lead} #{} {cause_operation}", cause.index);
        if let Some(completed) = cause.deadline_ns
            && completed < blocked.invoked_at_ns
        {
            text.push_str(&format!(
                ", which completed at t={} before this operation started at t={}",
                format_time(completed),
                format_time(blocked.invoked_at_ns)
            ));
        }
        text
    }

    /// Operations on the key (any outcome, including those the search skips) whose time
    /// span overlaps the span of the operations that could not be placed.
    fn around(&self, unplaced: &[UnplacedOperation], earliest_deadline: u64) -> Vec<OperationRef> {
        let window_start =
            unplaced.iter().map(|unplaced| unplaced.operation.operation.invoked_at_ns).min().unwrap_or(0);
        let window_end = if earliest_deadline == u64::MAX {
            unplaced.iter().map(|unplaced| unplaced.operation.operation.completed_at_ns).max().unwrap_or(u64::MAX)
        } else {
            earliest_deadline
        };
        let mut around: Vec<OperationRef> = self
            .history
            .operations
            .iter()
            .enumerate()
            .filter(|(index, operation)| {
                operation.key() == self.key_history.key
                    && !unplaced.iter().any(|unplaced| unplaced.operation.index == *index)
                    && operation.invoked_at_ns <= window_end
                    && operation.deadline_ns().is_none_or(|completed| completed >= window_start)
            })
            .map(|(index, operation)| OperationRef { index, operation: operation.clone() })
            .collect();
        around.sort_by_key(|operation| (operation.operation.invoked_at_ns, operation.index));
        around.truncate(AROUND_KEPT);
        around
    }
}

/// Whether a placed step changed the key's value or gave it a new mod_revision, as
/// opposed to reading it (a read may also learn a revision, which changes nothing).
fn changed_the_key(operation: &KeyOperation, before: KeyState, after: KeyState) -> bool {
    let wrote = match (operation.action, operation.observed) {
        (Action::Get, _) => false,
        (_, Observed::Txn { succeeded, .. }) => succeeded,
        (_, Observed::Delete { deleted, .. }) => deleted > 0,
        _ => true,
    };
    wrote && (before.value != after.value || before.mod_revision != after.mod_revision)
}

fn compare_text(action: Action) -> String {
    match action {
        Action::PutIfValue { .. } => "on the value".to_owned(),
        Action::Create { .. } => "mod_revision == 0".to_owned(),
        Action::UpdateIfModRevision { expected, .. } | Action::DeleteIfModRevision { expected } => {
            format!("mod_revision == {expected}")
        }
        Action::Get | Action::Put { .. } | Action::Delete => "(none)".to_owned(),
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable ({} operations checked on it)", self.key, self.operations_checked)?;
        writeln!(f, "longest linearizable prefix: {} operations", self.linearized_prefix.len())?;
        let hidden = self.linearized_prefix.len().saturating_sub(PREFIX_STEPS_SHOWN);
        if hidden > 0 {
            writeln!(f, "  ... {hidden} earlier operations ...")?;
        }
        for step in self.linearized_prefix.iter().skip(hidden) {
            writeln!(f, "  #{} {}", step.operation.index, step.operation.operation)?;
            writeln!(f, "      then: {}", step.state_after)?;
        }
        writeln!(f, "after it the key holds {}, and no remaining operation can come next:", self.state_after_prefix)?;
        for unplaced in &self.could_not_be_placed {
            writeln!(f, "  #{} {}", unplaced.operation.index, unplaced.operation.operation)?;
            writeln!(f, "      {}", unplaced.reason)?;
        }
        if !self.around.is_empty() {
            writeln!(f, "operations on the key around that time:")?;
            for operation in &self.around {
                writeln!(f, "  #{} {}", operation.index, operation.operation)?;
            }
        }
        Ok(())
    }
}
