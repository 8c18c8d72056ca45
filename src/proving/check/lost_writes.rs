//! Every acknowledged write must survive: the final state of each key reflects its last
//! acknowledged write, or a write that may have come after it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, AnomalyKind};
use super::history::{
    AcknowledgedWrite, ClientId, History, Operation, Outcome, Output, Request, Revision, format_value,
};

/// A key as read once the faults have healed, typically from a range over the harness's
/// key space (one entry per key, `value: None` for a key the range did not return).
/// Several entries for one key (one read per member, say) are each checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    pub key: String,
    pub value: Option<String>,
    pub mod_revision: Revision,
    /// The response header's revision.
    pub revision: Revision,
}

impl FinalRead {
    /// The final read as a get in the history, so that the linearizability check and
    /// the read checks cover it too (a final state no write explains, say). Times are
    /// those of the read.
    pub fn to_operation(&self, client: ClientId, invoked_at_ns: u64, completed_at_ns: u64) -> Operation {
        Operation {
            client,
            invoked_at_ns,
            completed_at_ns,
            request: Request::Get { key: self.key.clone(), serializable: false },
            outcome: Outcome::Ok(Output::Get {
                value: self.value.clone(),
                mod_revision: self.mod_revision,
                revision: self.revision,
            }),
        }
    }
}

/// Acknowledged writes that the final reads do not reflect.
///
/// A key written in the history but missing from `final_reads` counts as read absent at
/// the newest revision among `final_reads`: a range over the key space does not return
/// absent keys.
pub fn lost_writes(history: &History, final_reads: &[FinalRead]) -> Vec<Anomaly> {
    let mut last_acknowledged: BTreeMap<&str, (usize, AcknowledgedWrite<'_>)> = BTreeMap::new();
    for (index, operation) in history.operations.iter().enumerate() {
        if let Some(write) = operation.acknowledged_write() {
            let last = last_acknowledged.entry(operation.key()).or_insert((index, write));
            if write.revision > last.1.revision {
                *last = (index, write);
            }
        }
    }
    let newest_final_revision = final_reads.iter().map(|read| read.revision).max().unwrap_or(0);
    let mut anomalies = Vec::new();
    for (&key, &(index, write)) in &last_acknowledged {
        let mut reads: Vec<FinalRead> = final_reads.iter().filter(|read| read.key == key).cloned().collect();
        if reads.is_empty() {
            reads.push(FinalRead {
                key: key.to_owned(),
                value: None,
                mod_revision: 0,
                revision: newest_final_revision,
            });
        }
        for read in &reads {
            if let Some(problem) = missing_from(history, key, write, read) {
                let description = format!(
                    "#{index} wrote key {key:?} at revision {}, but the final read at revision {} \
                     found {} (mod_revision {}): {problem}",
                    write.revision,
                    read.revision,
                    format_value(read.value.as_deref()),
                    read.mod_revision
                );
                anomalies.push(Anomaly::new(AnomalyKind::LostWrite, description, history, &[index]));
            }
        }
    }
    anomalies
}

/// Why `read` does not reflect `write`, the last acknowledged write of `key`.
fn missing_from(history: &History, key: &str, write: AcknowledgedWrite<'_>, read: &FinalRead) -> Option<String> {
    if read.revision < write.revision {
        return Some("the final read is older than the write".to_owned());
    }
    match (write.value, read.value.as_deref()) {
        (Some(_), Some(_)) if read.mod_revision < write.revision => Some("the key holds an older write".to_owned()),
        (Some(written), Some(found)) if read.mod_revision == write.revision && written != found => {
            Some(format!("the write stored {written:?} at that revision"))
        }
        (Some(_), None) if !unanswered_delete_exists(history, key) => {
            Some("the key is gone and no delete may have removed it after the write".to_owned())
        }
        (None, Some(_)) if read.mod_revision <= write.revision => {
            Some("the deleted key is back without a newer write".to_owned())
        }
        _ => None,
    }
}

/// A delete without an answer may have removed the key at a revision nobody knows.
fn unanswered_delete_exists(history: &History, key: &str) -> bool {
    history.operations.iter().any(|operation| {
        operation.key() == key && operation.request.may_delete() && operation.outcome == Outcome::Unknown
    })
}
