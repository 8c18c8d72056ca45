//! Reads must agree with the order revisions give to writes: a read served at revision R
//! shows the key as the last write with a revision at or below R left it.
//!
//! This holds for serializable reads too (a lagging member serves an older revision, but
//! the state at that revision), and it relates reads to writes through revisions alone,
//! without times, so it is cheap and catches anomalies even where the search gives up.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::anomaly::{Anomaly, AnomalyKind};
use super::history::{History, ObservedRead, Outcome, Revision, format_value};

/// An acknowledged write: what it left (`None`: deleted) and which operation it was.
#[derive(Clone, Copy)]
struct KnownWrite<'a> {
    value: Option<&'a str>,
    index: usize,
}

/// What the history says about one key's writes.
#[derive(Default)]
struct KeyWrites<'a> {
    by_revision: BTreeMap<Revision, KnownWrite<'a>>,
    /// Values stored by writes whose answer never came.
    unanswered_values: HashSet<&'a str>,
    unanswered_delete: bool,
}

/// Reads that contradict the revisions of acknowledged writes: they miss a write at or
/// below their revision (stale), show a value no write explains (phantom), or are
/// inconsistent in themselves (malformed).
pub fn read_inconsistencies(history: &History) -> Vec<Anomaly> {
    let mut writes: HashMap<&str, KeyWrites<'_>> = HashMap::new();
    let mut key_of_revision: HashMap<Revision, &str> = HashMap::new();
    for (index, operation) in history.operations.iter().enumerate() {
        let key_writes = writes.entry(operation.key()).or_default();
        if let Some(write) = operation.acknowledged_write() {
            key_writes.by_revision.entry(write.revision).or_insert(KnownWrite { value: write.value, index });
            key_of_revision.entry(write.revision).or_insert(operation.key());
        } else if operation.outcome == Outcome::Unknown && operation.may_have_written() {
            if let Some(value) = operation.request.written_value() {
                key_writes.unanswered_values.insert(value);
            }
            key_writes.unanswered_delete |= operation.request.may_delete();
        }
    }

    let mut anomalies = Vec::new();
    let empty = KeyWrites::default();
    for (index, operation) in history.operations.iter().enumerate() {
        let Some(read) = operation.observed_read() else {
            continue;
        };
        let key = operation.key();
        let key_writes = writes.get(key).unwrap_or(&empty);
        let check = ReadCheck { history, index, key, read, writes: key_writes, key_of_revision: &key_of_revision };
        if let Some((kind, description, related)) = check.problem() {
            let mut indexes = vec![index];
            indexes.extend(related);
            anomalies.push(Anomaly::new(kind, description, history, &indexes));
        }
    }
    anomalies
}

/// Acknowledged writes that got the same revision: a revision is one write transaction,
/// and the harness's transactions each touch one key.
pub fn duplicate_revisions(history: &History) -> Vec<Anomaly> {
    let mut by_revision: BTreeMap<Revision, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.operations.iter().enumerate() {
        if let Some(write) = operation.acknowledged_write() {
            by_revision.entry(write.revision).or_default().push(index);
        }
    }
    by_revision
        .into_iter()
        .filter(|(_, indexes)| indexes.len() > 1)
        .map(|(revision, indexes)| {
            let names: Vec<String> = indexes.iter().map(|index| format!("#{index}")).collect();
            let description = format!("revision {revision} was given to {}", names.join(", "));
            Anomaly::new(AnomalyKind::DuplicateRevision, description, history, &indexes)
        })
        .collect()
}

struct ReadCheck<'a> {
    history: &'a History,
    index: usize,
    key: &'a str,
    read: ObservedRead<'a>,
    writes: &'a KeyWrites<'a>,
    key_of_revision: &'a HashMap<Revision, &'a str>,
}

type Problem = (AnomalyKind, String, Vec<usize>);

impl ReadCheck<'_> {
    fn problem(&self) -> Option<Problem> {
        self.malformed().or_else(|| self.unexplained()).or_else(|| self.missed_write())
    }

    fn saw(&self) -> String {
        format!(
            "#{} read key {:?} as {} (mod_revision {}) at revision {}",
            self.index,
            self.key,
            format_value(self.read.value),
            self.read.mod_revision,
            self.read.revision
        )
    }

    fn malformed(&self) -> Option<Problem> {
        let read = self.read;
        let why = if read.value.is_some() && read.mod_revision <= 0 {
            "a present key must have a positive mod_revision"
        } else if read.value.is_none() && read.mod_revision != 0 {
            "an absent key has mod_revision 0"
        } else if read.mod_revision > read.revision {
            "the key was modified after the revision the read was served at"
        } else {
            return None;
        };
        Some((AnomalyKind::MalformedRead, format!("{}: {why}", self.saw()), vec![]))
    }

    /// A present key's mod_revision must be a write of that value to that key.
    fn unexplained(&self) -> Option<Problem> {
        let value = self.read.value?;
        let mod_revision = self.read.mod_revision;
        let why = match self.writes.by_revision.get(&mod_revision) {
            Some(write) if write.value == Some(value) => return None,
            Some(write) => (
                format!("revision {mod_revision} was #{} storing {}", write.index, format_value(write.value)),
                vec![write.index],
            ),
            None => match self.key_of_revision.get(&mod_revision) {
                Some(other_key) => (
                    format!("revision {mod_revision} was a write to key {other_key:?}"),
                    self.writer_elsewhere(mod_revision),
                ),
                None if self.writes.unanswered_values.contains(value) => return None,
                None => ("no write of this value to this key could have produced it".to_owned(), vec![]),
            },
        };
        Some((AnomalyKind::PhantomRead, format!("{}, but {}", self.saw(), why.0), why.1))
    }

    fn writer_elsewhere(&self, revision: Revision) -> Vec<usize> {
        self.history
            .operations
            .iter()
            .position(|operation| operation.acknowledged_write().is_some_and(|write| write.revision == revision))
            .into_iter()
            .collect()
    }

    /// No acknowledged write of the key may fall between the write the read saw and the
    /// revision it was served at.
    fn missed_write(&self) -> Option<Problem> {
        let read = self.read;
        let after_seen = read.mod_revision.saturating_add(1);
        if after_seen > read.revision {
            return None;
        }
        if read.value.is_some() {
            let (&revision, write) = self.writes.by_revision.range(after_seen..=read.revision).next()?;
            let description = format!(
                "{}, but #{} wrote it at revision {revision} (storing {})",
                self.saw(),
                write.index,
                format_value(write.value)
            );
            return Some((AnomalyKind::StaleRead, description, vec![write.index]));
        }
        // Absent: the last write at or below the read's revision must be a delete, unless
        // a delete without an answer may have come after it.
        let (&revision, write) = self.writes.by_revision.range(..=read.revision).next_back()?;
        if write.value.is_none() || self.writes.unanswered_delete {
            return None;
        }
        let description = format!(
            "{}, but #{} stored {} at revision {revision} and no delete may have followed",
            self.saw(),
            write.index,
            format_value(write.value)
        );
        Some((AnomalyKind::StaleRead, description, vec![write.index]))
    }
}
