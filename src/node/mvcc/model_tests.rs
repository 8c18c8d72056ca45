//! Model-based test: random sequences of writes, transactions, compactions, reads at past
//! revisions and restarts, run against the store and against a model simple enough to be
//! obviously right (the whole key space copied at every revision).

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::errors::EtcdError;
use crate::node::mvcc::testkit::*;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::etcdserverpb::compare::CompareResult;
use crate::proto::etcdserverpb::compare::CompareTarget;
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::mvccpb::KeyValue;
use crate::proto::mvccpb::event::EventType;
use crate::proto::rafttypb::command_result::Result as Outcome;

const KEYS: [&str; 5] = ["a", "b", "b/1", "c", "d"];

#[derive(Debug, Clone)]
enum Span {
    One(usize),
    Between(usize, usize),
    From(usize),
    All,
}

impl Span {
    fn bounds(&self) -> (String, String) {
        match self {
            Span::One(k) => (KEYS[*k].into(), String::new()),
            Span::Between(a, b) => (KEYS[*a].into(), KEYS[*b].into()),
            Span::From(k) => (KEYS[*k].into(), "\0".into()),
            Span::All => ("\0".into(), "\0".into()),
        }
    }

    fn contains(&self, key: &str) -> bool {
        match self {
            Span::One(k) => key == KEYS[*k],
            Span::Between(a, b) => key >= KEYS[*a] && key < KEYS[*b],
            Span::From(k) => key >= KEYS[*k],
            Span::All => true,
        }
    }
}

#[derive(Debug, Clone)]
enum Check {
    ModEquals(usize, i64),
    ValueEquals(usize, u8),
    VersionGreater(usize, i64),
    Absent(usize),
}

#[derive(Debug, Clone)]
enum Write {
    Put(usize, u8),
    Delete(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Put(usize, u8),
    Delete(Span),
    Txn { checks: Vec<Check>, success: Vec<Write>, failure: Vec<Write> },
    Compact(i64),
    Read(Span, i64),
    Reopen,
}

fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        (0..KEYS.len()).prop_map(Span::One),
        (0..KEYS.len(), 0..KEYS.len()).prop_map(|(a, b)| Span::Between(a, b)),
        (0..KEYS.len()).prop_map(Span::From),
        Just(Span::All),
    ]
}

fn check() -> impl Strategy<Value = Check> {
    let key = 0..KEYS.len();
    prop_oneof![
        (key.clone(), 0..12i64).prop_map(|(k, r)| Check::ModEquals(k, r)),
        (key.clone(), 0..3u8).prop_map(|(k, v)| Check::ValueEquals(k, v)),
        (key.clone(), 0..3i64).prop_map(|(k, n)| Check::VersionGreater(k, n)),
        key.prop_map(Check::Absent),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![(0..KEYS.len(), 0..3u8).prop_map(|(k, v)| Write::Put(k, v)), (0..KEYS.len()).prop_map(Write::Delete),]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..KEYS.len(), 0..3u8).prop_map(|(k, v)| Step::Put(k, v)),
        2 => span().prop_map(Step::Delete),
        3 => (prop::collection::vec(check(), 0..3), prop::collection::vec(write(), 0..4), prop::collection::vec(write(), 0..3))
            .prop_map(|(checks, success, failure)| Step::Txn { checks, success, failure }),
        1 => (-1..14i64).prop_map(Step::Compact),
        3 => (span(), -1..14i64).prop_map(|(s, r)| Step::Read(s, r)),
        1 => Just(Step::Reopen),
    ]
}

fn value(v: u8) -> String {
    format!("v{v}")
}

/// The key space at every revision: `states[r]` is the store at revision r (index 0 unused).
struct Model {
    states: Vec<BTreeMap<String, KeyValue>>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        Model { states: vec![BTreeMap::new(), BTreeMap::new()], compacted: -1 }
    }

    fn revision(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    fn current(&self) -> &BTreeMap<String, KeyValue> {
        &self.states[self.states.len() - 1]
    }

    /// Applies writes as one revision (if they change anything).
    fn write(&mut self, writes: &[Write]) {
        let rev = self.revision() + 1;
        let mut next = self.current().clone();
        let mut changed = false;
        for w in writes {
            match w {
                Write::Put(k, v) => {
                    let key = KEYS[*k].to_owned();
                    let prev = next.get(&key);
                    let kv = KeyValue {
                        key: b(&key),
                        value: b(&value(*v)),
                        create_revision: prev.map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.map_or(0, |p| p.version) + 1,
                        lease: 0,
                    };
                    next.insert(key, kv);
                    changed = true;
                }
                Write::Delete(k) => changed |= next.remove(KEYS[*k]).is_some(),
            }
        }
        if changed {
            self.states.push(next);
        }
    }

    fn delete_span(&mut self, span: &Span) {
        let doomed: Vec<usize> =
            (0..KEYS.len()).filter(|k| span.contains(KEYS[*k]) && self.current().contains_key(KEYS[*k])).collect();
        self.write(&doomed.into_iter().map(Write::Delete).collect::<Vec<_>>());
    }

    fn holds(&self, check: &Check) -> bool {
        let kv = |k: &usize| self.current().get(KEYS[*k]);
        match check {
            Check::ModEquals(k, r) => kv(k).map_or(0, |kv| kv.mod_revision) == *r,
            Check::ValueEquals(k, v) => kv(k).is_some_and(|kv| kv.value == b(&value(*v))),
            Check::VersionGreater(k, n) => kv(k).map_or(0, |kv| kv.version) > *n,
            Check::Absent(k) => kv(k).is_none(),
        }
    }

    fn read(&self, span: &Span, at: i64) -> Result<Vec<KeyValue>, EtcdError> {
        if at > self.revision() {
            return Err(EtcdError::FutureRevision);
        }
        let at = if at <= 0 { self.revision() } else { at };
        if at < self.compacted {
            return Err(EtcdError::Compacted);
        }
        Ok(self.states[at as usize].iter().filter(|(k, _)| span.contains(k)).map(|(_, kv)| kv.clone()).collect())
    }
}

/// etcd refuses a branch that writes one key twice.
fn duplicated(writes: &[Write]) -> bool {
    let keys: Vec<usize> = writes
        .iter()
        .map(|w| match w {
            Write::Put(k, _) | Write::Delete(k) => *k,
        })
        .collect();
    let puts: Vec<usize> =
        writes.iter().filter_map(|w| if let Write::Put(k, _) = w { Some(*k) } else { None }).collect();
    puts.iter().any(|p| keys.iter().filter(|k| *k == p).count() > 1)
}

fn to_ops(writes: &[Write]) -> Vec<crate::proto::etcdserverpb::RequestOp> {
    writes
        .iter()
        .map(|w| match w {
            Write::Put(k, v) => op_put(KEYS[*k], &value(*v)),
            Write::Delete(k) => op_del(KEYS[*k], ""),
        })
        .collect()
}

fn to_compare(check: &Check) -> crate::proto::etcdserverpb::Compare {
    match check {
        Check::ModEquals(k, r) => mod_eq(KEYS[*k], *r),
        Check::ValueEquals(k, v) => value_eq(KEYS[*k], &value(*v)),
        Check::VersionGreater(k, n) => {
            cmp(KEYS[*k], CompareTarget::Version, CompareResult::Greater, TargetUnion::Version(*n))
        }
        Check::Absent(k) => cmp(KEYS[*k], CompareTarget::Create, CompareResult::Equal, TargetUnion::CreateRevision(0)),
    }
}

fn error_of(outcome: &Option<Outcome>) -> Option<EtcdError> {
    match outcome {
        Some(Outcome::Error(e)) => Some(EtcdError::from_apply_error(e)),
        _ => None,
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut store = TestStore::new();
    let mut model = Model::new();
    for step in steps {
        match &step {
            Step::Put(k, v) => {
                let result = store.apply(put(KEYS[*k], &value(*v)));
                model.write(&[Write::Put(*k, *v)]);
                prop_assert_eq!(result.revision, model.revision());
            }
            Step::Delete(span) => {
                let (key, end) = span.bounds();
                let result = store.apply(del(&key, &end));
                model.delete_span(span);
                prop_assert_eq!(result.revision, model.revision());
            }
            Step::Txn { checks, success, failure } => {
                let req = TxnRequest {
                    compare: checks.iter().map(to_compare).collect(),
                    success: to_ops(success),
                    failure: to_ops(failure),
                };
                let result = store.apply(txn(req));
                if duplicated(success) || duplicated(failure) {
                    prop_assert_eq!(error_of(&result.result), Some(EtcdError::DuplicateKey));
                } else {
                    let succeeded = checks.iter().all(|c| model.holds(c));
                    model.write(if succeeded { success } else { failure });
                    match &result.result {
                        Some(Outcome::Txn(t)) => prop_assert_eq!(t.succeeded, succeeded),
                        other => prop_assert!(false, "txn failed: {:?}", other),
                    }
                }
                prop_assert_eq!(result.revision, model.revision());
            }
            Step::Compact(rev) => {
                let result = store.apply(compact(*rev));
                let expected = if *rev <= model.compacted {
                    Some(EtcdError::Compacted)
                } else if *rev > model.revision() {
                    Some(EtcdError::FutureRevision)
                } else {
                    model.compacted = *rev;
                    None
                };
                prop_assert_eq!(error_of(&result.result), expected);
            }
            Step::Read(span, at) => {
                let (key, end) = span.bounds();
                let got = store
                    .store
                    .range(&RangeRequest { revision: *at, ..range_req(&key, &end) })
                    .map(|served| served.0.kvs);
                prop_assert_eq!(got, model.read(span, *at), "read {:?} at {}", span, at);
            }
            Step::Reopen => store = store.reopen(),
        }
        prop_assert_eq!(store.store.current_revision(), model.revision());
        prop_assert_eq!(store.store.compact_revision(), model.compacted);
    }

    // every retained revision reads as the model says
    for at in model.compacted.max(1)..=model.revision() {
        let got = store.store.range(&RangeRequest { revision: at, ..range_req("\0", "\0") }).unwrap().0.kvs;
        prop_assert_eq!(got, model.read(&Span::All, at).unwrap(), "state at {}", at);
    }
    // and the retained history tells watchers exactly what changed, with what it replaced
    // (revision 1 is the empty store: no events)
    let first = (model.compacted + 1).max(2);
    let history = store.store.events(first, model.revision()).unwrap();
    let changed: Vec<i64> = (first..=model.revision()).collect();
    prop_assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), changed);
    for revision in history {
        let before = &model.states[revision.revision as usize - 1];
        let after = &model.states[revision.revision as usize];
        for event in &revision.events {
            let kv = event.kv.as_ref().unwrap();
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            prop_assert_eq!(event.prev_kv.as_ref(), before.get(&key));
            if event.r#type == EventType::Put as i32 {
                prop_assert_eq!(Some(kv), after.get(&key));
            } else {
                prop_assert!(!after.contains_key(&key));
                prop_assert_eq!(kv.mod_revision, revision.revision);
            }
        }
        let touched = KEYS.iter().filter(|k| before.get(**k) != after.get(**k)).count();
        prop_assert_eq!(revision.events.len(), touched);
    }
    Ok(())
}

proptest! {
    // failing cases are remembered next to this file (src/mvcc/model_tests.txt)
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::SourceParallel("txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_behaves_like_the_model(steps in prop::collection::vec(step(), 1..40)) {
        run(steps)?;
    }
}
