//! The linearizability check of a whole history: partition by key, search each key,
//! and gather the results.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::history::{History, InvalidHistory};
use super::partition::partition_by_key;
use super::search::{Budget, BudgetExhausted, SearchOutcome, search};
use super::violation::{Violation, explain};

/// How much effort the check may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Time one key's search may take before its result is [`Linearizability::Unknown`].
    pub time_budget_per_key: Duration,
    /// How many (placed operations, state) situations one key's search may remember
    /// before giving up: a bound on its memory (roughly 100 bytes each for a key with a
    /// few hundred operations).
    pub max_states_per_key: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { time_budget_per_key: Duration::from_secs(10), max_states_per_key: 5_000_000 }
    }
}

/// The verdict on a key, or on a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    Linearizable,
    NotLinearizable(Box<Violation>),
    /// The search ran out of budget: nothing is claimed either way.
    Unknown(Undecided),
}

/// A key whose search ran out of budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecided {
    pub key: String,
    pub exhausted: BudgetExhausted,
}

/// The result for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReport {
    pub key: String,
    /// Operations that took part in the search (rejected requests, serializable reads
    /// and unanswered reads are left out).
    pub operations_checked: usize,
    pub elapsed: Duration,
    pub result: Linearizability,
}

/// The result for every key of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizabilityReport {
    pub keys: Vec<KeyReport>,
    pub elapsed: Duration,
}

/// Checks that `history` is linearizable with respect to etcd's semantics, key by key.
///
/// Fails only when the history itself is malformed (see [`History::validate`]); a store
/// that misbehaved shows up as [`Linearizability::NotLinearizable`] in the report.
pub fn check_linearizability(
    history: &History,
    options: &CheckOptions,
) -> Result<LinearizabilityReport, InvalidHistory> {
    history.validate()?;
    let started = Instant::now();
    let keys = partition_by_key(history)
        .into_iter()
        .map(|key_history| {
            let key_started = Instant::now();
            let budget = Budget {
                deadline: deadline_after(key_started, options.time_budget_per_key),
                max_states: options.max_states_per_key,
            };
            let result = match search(&key_history, &budget) {
                SearchOutcome::Linearizable => Linearizability::Linearizable,
                SearchOutcome::NotLinearizable { longest_prefix } => {
                    Linearizability::NotLinearizable(Box::new(explain(history, &key_history, &longest_prefix)))
                }
                SearchOutcome::Undecided(exhausted) => {
                    Linearizability::Unknown(Undecided { key: key_history.key.to_owned(), exhausted })
                }
            };
            KeyReport {
                key: key_history.key.to_owned(),
                operations_checked: key_history.operations.len(),
                elapsed: key_started.elapsed(),
                result,
            }
        })
        .collect();
    Ok(LinearizabilityReport { keys, elapsed: started.elapsed() })
}

/// `start + budget`, saturating: a budget too large to represent is no reason to give up
/// at once, but neither may it panic.
fn deadline_after(start: Instant, budget: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(budget.min(CENTURY)).unwrap_or(start)
}

impl LinearizabilityReport {
    /// The verdict on the whole history: not linearizable if any key is not (the first
    /// such key's violation), unknown if any key is undecided, linearizable otherwise.
    pub fn verdict(&self) -> Linearizability {
        if let Some(violation) = self.violations().next() {
            return Linearizability::NotLinearizable(Box::new(violation.clone()));
        }
        for key in &self.keys {
            if let Linearizability::Unknown(undecided) = &key.result {
                return Linearizability::Unknown(undecided.clone());
            }
        }
        Linearizability::Linearizable
    }

    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.keys.iter().filter_map(|key| match &key.result {
            Linearizability::NotLinearizable(violation) => Some(violation.as_ref()),
            Linearizability::Linearizable | Linearizability::Unknown(_) => None,
        })
    }

    pub fn undecided_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|key| match &key.result {
            Linearizability::Unknown(undecided) => Some(undecided.key.as_str()),
            Linearizability::Linearizable | Linearizability::NotLinearizable(_) => None,
        })
    }

    pub fn operations_checked(&self) -> usize {
        self.keys.iter().map(|key| key.operations_checked).sum()
    }
}

/// "1 key", "3 keys".
fn count(number: usize, noun: &str) -> String {
    if number == 1 { format!("1 {noun}") } else { format!("{number} {noun}s") }
}

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetExhausted::Time => write!(f, "time budget exhausted"),
            BudgetExhausted::States => write!(f, "state budget exhausted"),
        }
    }
}

/// A one-paragraph summary, followed by every violation's account.
impl fmt::Display for LinearizabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let violations = self.violations().count();
        let undecided: Vec<&str> = self.undecided_keys().collect();
        let verdict = if violations > 0 {
            "NOT linearizable"
        } else if !undecided.is_empty() {
            "undecided"
        } else {
            "linearizable"
        };
        writeln!(
            f,
            "{verdict}: {} on {} checked in {:.3}s; {} not linearizable, {} undecided",
            count(self.operations_checked(), "operation"),
            count(self.keys.len(), "key"),
            self.elapsed.as_secs_f64(),
            count(violations, "key"),
            count(undecided.len(), "key"),
        )?;
        for key in &self.keys {
            if let Linearizability::Unknown(undecided) = &key.result {
                writeln!(
                    f,
                    "key {:?} undecided after {:.3}s: {}",
                    undecided.key,
                    key.elapsed.as_secs_f64(),
                    undecided.exhausted
                )?;
            }
        }
        for violation in self.violations() {
            writeln!(f)?;
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}
