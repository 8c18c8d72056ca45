//! Histories of a correct store, for property tests and timings.
//!
//! A reference etcd (a map and a revision counter) executes every request at a chosen
//! linearization point; each client's call and return times are drawn around those
//! points, so every generated history is linearizable by construction. Some requests get
//! no answer (they took effect, possibly long after the client gave up, or they did not)
//! and some are rejected (they had no effect).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::proving::check::{FinalRead, History, KeyRead, Operation, Outcome, Output, Request, Revision};

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub(super) struct Workload {
    pub clients: usize,
    pub operations: usize,
    pub keys: usize,
    /// Out of 1000 requests, how many get no answer.
    pub unknown_per_mille: u32,
    /// Out of 1000 requests, how many are rejected.
    pub failed_per_mille: u32,
    /// Values drawn from three shared ones instead of unique ones: a harder search.
    pub few_values: bool,
    /// Upper bound on a request's latency, in nanoseconds.
    pub max_latency_ns: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 5,
            operations: 50,
            keys: 2,
            unknown_per_mille: 50,
            failed_per_mille: 20,
            few_values: false,
            max_latency_ns: 1_000_000,
        }
    }
}

/// A generated history and the store's state at the end.
pub(super) struct Simulated {
    pub history: History,
    pub final_reads: Vec<FinalRead>,
}

/// etcd's single-key semantics, sequentially.
struct ReferenceStore {
    revision: Revision,
    keys: BTreeMap<String, (String, Revision)>,
}

impl ReferenceStore {
    fn new() -> Self {
        // etcd starts at revision 1; the first write gets revision 2.
        ReferenceStore { revision: 1, keys: BTreeMap::new() }
    }

    fn read(&self, key: &str) -> KeyRead {
        match self.keys.get(key) {
            Some((value, mod_revision)) => KeyRead { value: Some(value.clone()), mod_revision: *mod_revision },
            None => KeyRead { value: None, mod_revision: 0 },
        }
    }

    fn put(&mut self, key: &str, value: &str) -> Revision {
        self.revision += 1;
        self.keys.insert(key.to_owned(), (value.to_owned(), self.revision));
        self.revision
    }

    fn delete(&mut self, key: &str) -> i64 {
        if self.keys.remove(key).is_some() {
            self.revision += 1;
            1
        } else {
            0
        }
    }

    fn execute(&mut self, request: &Request) -> Output {
        let key = request.key();
        let current = self.read(key);
        let txn = |store: &Self, succeeded: bool, else_read: Option<KeyRead>| Output::Txn {
            succeeded,
            revision: store.revision,
            else_read,
        };
        match request {
            Request::Get { .. } => {
                Output::Get { value: current.value, mod_revision: current.mod_revision, revision: self.revision }
            }
            Request::Put { value, .. } => Output::Put { revision: self.put(key, value) },
            Request::Delete { .. } => {
                let deleted = self.delete(key);
                Output::Delete { deleted, revision: self.revision }
            }
            Request::PutIfValue { expected_value, value, .. } => {
                let holds = current.value.as_deref() == Some(expected_value.as_str());
                if holds {
                    self.put(key, value);
                }
                txn(self, holds, None)
            }
            Request::Create { value, .. } => {
                let holds = current.value.is_none();
                if holds {
                    self.put(key, value);
                }
                txn(self, holds, None)
            }
            Request::UpdateIfModRevision { expected_mod_revision, value, .. } => {
                if current.mod_revision == *expected_mod_revision {
                    self.put(key, value);
                    txn(self, true, None)
                } else {
                    txn(self, false, Some(current))
                }
            }
            Request::DeleteIfModRevision { expected_mod_revision, .. } => {
                if current.mod_revision == *expected_mod_revision {
                    self.delete(key);
                    txn(self, true, None)
                } else {
                    txn(self, false, Some(current))
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answered,
    UnansweredTookEffect,
    UnansweredNoEffect,
    Rejected,
}

/// One request slot of a client: when it was invoked and completed, when the store
/// executed it, and what became of it.
struct Slot {
    client: u64,
    invoked_at_ns: u64,
    completed_at_ns: u64,
    linearized_at_ns: u64,
    fate: Fate,
}

pub(super) fn simulate(seed: u64, workload: &Workload) -> Simulated {
    let mut rng = StdRng::seed_from_u64(seed);
    let clients = workload.clients.max(1);
    let latency = workload.max_latency_ns.max(2);
    let mut slots = Vec::with_capacity(workload.operations);
    let mut clocks: Vec<u64> = (0..clients).map(|_| rng.random_range(0..latency)).collect();
    for number in 0..workload.operations {
        let client = number % clients;
        let invoked_at_ns = clocks[client] + rng.random_range(0..latency / 4);
        let completed_at_ns = invoked_at_ns + rng.random_range(1..latency);
        clocks[client] = completed_at_ns;
        let roll = rng.random_range(0..1000);
        let fate = if roll < workload.unknown_per_mille {
            if rng.random_bool(0.5) { Fate::UnansweredTookEffect } else { Fate::UnansweredNoEffect }
        } else if roll < workload.unknown_per_mille + workload.failed_per_mille {
            Fate::Rejected
        } else {
            Fate::Answered
        };
        let linearized_at_ns = match fate {
            // No answer: the request may take effect long after the client gave up.
            Fate::UnansweredTookEffect => rng.random_range(invoked_at_ns..=completed_at_ns + 20 * latency),
            _ => rng.random_range(invoked_at_ns..=completed_at_ns),
        };
        slots.push(Slot { client: client as u64, invoked_at_ns, completed_at_ns, linearized_at_ns, fate });
    }

    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&index| (slots[index].linearized_at_ns, index));
    let mut store = ReferenceStore::new();
    let mut chooser = RequestChooser { keys: workload.keys.max(1), few_values: workload.few_values, next_value: 0 };
    let mut operations: Vec<Option<Operation>> = (0..slots.len()).map(|_| None).collect();
    for index in order {
        let slot = &slots[index];
        let request = chooser.choose(&mut rng, &store, slot.client);
        let outcome = match slot.fate {
            Fate::Answered => Outcome::Ok(store.execute(&request)),
            Fate::UnansweredTookEffect => {
                store.execute(&request);
                Outcome::Unknown
            }
            Fate::UnansweredNoEffect => Outcome::Unknown,
            Fate::Rejected => Outcome::Failed,
        };
        operations[index] = Some(Operation {
            client: slot.client,
            invoked_at_ns: slot.invoked_at_ns,
            completed_at_ns: slot.completed_at_ns,
            request,
            outcome,
        });
    }
    let final_reads = (0..chooser.keys)
        .map(|key| {
            let key = key_name(key);
            let read = store.read(&key);
            FinalRead { key, value: read.value, mod_revision: read.mod_revision, revision: store.revision }
        })
        .collect();
    Simulated { history: History { operations: operations.into_iter().flatten().collect() }, final_reads }
}

fn key_name(key: usize) -> String {
    format!("/registry/things/{key}")
}

/// Picks requests with a bias towards compares that hold, using the store's state at
/// the moment of execution (a client cannot know it, but the checker does not care how
/// requests were chosen, and compares that always fail would test little).
struct RequestChooser {
    keys: usize,
    few_values: bool,
    next_value: u64,
}

impl RequestChooser {
    fn value(&mut self, rng: &mut StdRng, client: u64) -> String {
        if self.few_values {
            ["x", "y", "z"][rng.random_range(0..3)].to_owned()
        } else {
            self.next_value += 1;
            format!("c{client}-{}", self.next_value)
        }
    }

    fn choose(&mut self, rng: &mut StdRng, store: &ReferenceStore, client: u64) -> Request {
        let key = key_name(rng.random_range(0..self.keys));
        let current = store.read(&key);
        let guess_right = rng.random_bool(0.6);
        let expected_mod_revision =
            if guess_right { current.mod_revision } else { rng.random_range(0..=store.revision) };
        match rng.random_range(0..100) {
            0..30 => Request::Get { key, serializable: false },
            30..35 => Request::Get { key, serializable: true },
            35..60 => Request::Put { value: self.value(rng, client), key },
            60..66 => Request::Delete { key },
            66..76 => {
                let expected_value = match current.value {
                    Some(value) if guess_right => value,
                    _ => self.value(rng, client),
                };
                Request::PutIfValue { expected_value, value: self.value(rng, client), key }
            }
            76..84 => Request::Create { value: self.value(rng, client), key },
            84..94 => Request::UpdateIfModRevision { expected_mod_revision, value: self.value(rng, client), key },
            _ => Request::DeleteIfModRevision { expected_mod_revision, key },
        }
    }
}
