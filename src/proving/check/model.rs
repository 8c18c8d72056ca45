//! A sequential model of one etcd key, the specification the search checks against.
//!
//! Besides the key's value and `mod_revision`, the state carries a lower bound on the
//! store's global revision. The store's revision only grows along any linearization of a
//! correct etcd, so along the order the search builds: every write's revision must exceed
//! it, and every response revision must reach it. This is a sound projection of the
//! whole store's model onto one key (it only uses facts that hold for every key), and it
//! prunes the search hard, since known revisions pin the order of writes.
//!
//! A write whose outcome is unknown has an unknown revision. The model keeps the bounds
//! it must lie in ([`ModRevision::Unrevealed`]) until a later read of the key reveals it.
//!
//! Values are interned per key ([`ValueId`]) so that states are small `Copy` values that
//! hash quickly in the search's memo.

use super::history::Revision;

/// A value of one key, interned by [`super::partition`].
pub(crate) type ValueId = u32;

/// The key as the model believes it is, after some prefix of a linearization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeyState {
    /// `None`: the key is absent.
    pub value: Option<ValueId>,
    /// `Known(0)` when the key is absent.
    pub mod_revision: ModRevision,
    /// The store revision is at least this much at this point of the linearization.
    pub revision_floor: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ModRevision {
    Known(Revision),
    /// Written by a request whose answer never came: its revision is in
    /// `(above, at_most]`.
    Unrevealed {
        above: Revision,
        at_most: Revision,
    },
}

/// What a request does to the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Get,
    Put { value: ValueId },
    Delete,
    PutIfValue { expected: ValueId, value: ValueId },
    Create { value: ValueId },
    UpdateIfModRevision { expected: Revision, value: ValueId },
    DeleteIfModRevision { expected: Revision },
}

impl Action {
    /// The value the request stores if it writes.
    pub fn written_value_mut(&mut self) -> Option<&mut ValueId> {
        match self {
            Action::Put { value }
            | Action::PutIfValue { value, .. }
            | Action::Create { value }
            | Action::UpdateIfModRevision { value, .. } => Some(value),
            Action::Get | Action::Delete | Action::DeleteIfModRevision { .. } => None,
        }
    }
}

/// What the client was told. `Unknown` means the request may or may not have taken
/// effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    Unknown,
    Read(ReadResult),
    Put { revision: Revision },
    Delete { deleted: i64, revision: Revision },
    Txn { succeeded: bool, revision: Revision, else_read: Option<ReadResult> },
}

/// A key's state as a read reported it (a get, or a txn's else branch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadResult {
    pub value: Option<ValueId>,
    pub mod_revision: Revision,
    /// The response header's revision.
    pub revision: Revision,
}

/// The states a request can leave the key in: usually one, two when the request's answer
/// is unknown and it may or may not have taken effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Successors {
    states: [Option<KeyState>; 2],
}

/// Why a request's reported answer cannot follow from the state: the reason a violation
/// report gives for an operation that could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A read saw a value or mod_revision other than the key held.
    ReadMismatch { read_value: Option<ValueId>, read_mod_revision: Revision },
    /// The response revision is older than a revision the store had already reached.
    RevisionWentBack { revision: Revision },
    /// A write's revision is not newer than a revision the store had already reached.
    WriteRevisionNotNewer { revision: Revision },
    /// A read revealed the revision of a write whose answer never came, but that write
    /// could not have had that revision.
    RevealedRevisionImpossible { mod_revision: Revision },
    /// The txn reported its compare as `reported`, but on this state it is the opposite.
    CompareDisagrees { reported: bool },
    /// The else branch read the very mod_revision the compare said the key did not have.
    ElseReadContradictsCompare { mod_revision: Revision },
    /// A delete reported a count that does not fit whether the key existed.
    DeleteCountMismatch { deleted: i64 },
    /// The output has the wrong shape for the request (the history validation catches
    /// this first; kept so that no input can make the model panic).
    OutputDoesNotFitRequest,
}

impl KeyState {
    /// Keys start absent: the harness writes to keys nobody used before the run.
    pub fn initial() -> Self {
        KeyState { value: None, mod_revision: ModRevision::Known(0), revision_floor: 0 }
    }
}

/// The part of a state that must match exactly for one state to stand in for another:
/// the value, and the mod_revision if known. The rest (the revision floor, an unrevealed
/// revision's bounds) only makes a state more or less permissive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StateShape {
    value: Option<ValueId>,
    known_mod_revision: Option<Revision>,
}

impl KeyState {
    pub fn shape(&self) -> StateShape {
        StateShape {
            value: self.value,
            known_mod_revision: match self.mod_revision {
                ModRevision::Known(mod_revision) => Some(mod_revision),
                ModRevision::Unrevealed { .. } => None,
            },
        }
    }

    /// Whether every sequence of answers the model accepts from `other` it also accepts
    /// from `self`, ending in states that keep this relation. True for states of the same
    /// shape when `self` has a floor no higher and an unrevealed revision's interval at
    /// least as wide: every check compares an answer's revision with the floor or the
    /// interval, so relaxing them only lets more answers through, and every step either
    /// resets them to the answer's revision or moves both states' bounds alike.
    pub fn at_least_as_permissive_as(&self, other: &KeyState) -> bool {
        let bounds_wider = match (self.mod_revision, other.mod_revision) {
            (ModRevision::Known(mine), ModRevision::Known(theirs)) => mine == theirs,
            (
                ModRevision::Unrevealed { above, at_most },
                ModRevision::Unrevealed { above: other_above, at_most: other_at_most },
            ) => above <= other_above && at_most >= other_at_most,
            _ => false,
        };
        self.value == other.value && bounds_wider && self.revision_floor <= other.revision_floor
    }
}

impl Successors {
    /// No state at all: the request's answer is impossible.
    pub fn none() -> Self {
        Successors { states: [None, None] }
    }

    fn one(state: KeyState) -> Self {
        Successors { states: [Some(state), None] }
    }

    fn of(first: Option<KeyState>, second: Option<KeyState>) -> Self {
        match (first, second) {
            (Some(a), Some(b)) if a == b => Successors::one(a),
            (None, second) => Successors { states: [second, None] },
            (first, second) => Successors { states: [first, second] },
        }
    }

    /// The `index`-th possible state, in a fixed order so the search can resume where it
    /// left off.
    pub fn get(&self, index: usize) -> Option<KeyState> {
        self.states.get(index).copied().flatten()
    }

    pub const MAX: usize = 2;
}

/// The highest revision floor from which an operation with this answer can still be
/// placed; `None` when any will do (no answer). Every answer carries the revision the
/// store had reached, so once the floor passes it the operation can never be placed:
/// the search uses this to abandon such prefixes at once instead of at the operation's
/// deadline.
pub(crate) fn floor_limit(action: Action, observed: Observed) -> Option<Revision> {
    let read_like = |revision: Revision| Some(revision);
    // A write's revision must exceed the floor.
    let write_like = |revision: Revision| Some(revision.saturating_sub(1));
    match observed {
        Observed::Unknown => None,
        Observed::Read(read) => read_like(read.revision),
        Observed::Put { revision } => write_like(revision),
        Observed::Delete { deleted: 0, revision } | Observed::Txn { succeeded: false, revision, .. } => {
            read_like(revision)
        }
        Observed::Delete { revision, .. } => write_like(revision),
        Observed::Txn { succeeded: true, revision, .. } => match action {
            // Comparing mod_revision with 0 holds for an absent key: nothing to delete.
            Action::DeleteIfModRevision { expected: 0 } => read_like(revision),
            _ => write_like(revision),
        },
    }
}

/// Applies a request with its reported answer to `state`: the states it may lead to, or
/// why the answer is impossible from `state`.
pub(crate) fn step(state: KeyState, action: Action, observed: Observed) -> Result<Successors, Rejection> {
    use Action as A;
    match (action, observed) {
        (_, Observed::Unknown) => Ok(possible_effects(state, action)),
        (A::Get, Observed::Read(read)) => self::read(state, read).map(Successors::one),
        (A::Put { value }, Observed::Put { revision }) => write(state, Some(value), revision).map(Successors::one),
        (A::Delete, Observed::Delete { deleted, revision }) => delete(state, deleted, revision).map(Successors::one),
        (A::PutIfValue { expected, value }, Observed::Txn { succeeded, revision, else_read: None }) => {
            let compare = Compare::definite(state, state.value == Some(expected));
            let state = compare.reported(succeeded)?;
            if succeeded {
                write(state, Some(value), revision).map(Successors::one)
            } else {
                observe_revision(state, revision).map(Successors::one)
            }
        }
        (A::Create { value }, Observed::Txn { succeeded, revision, else_read: None }) => {
            // An absent key is exactly a key whose mod_revision is 0.
            let compare = Compare::definite(state, state.value.is_none());
            let state = compare.reported(succeeded)?;
            if succeeded {
                write(state, Some(value), revision).map(Successors::one)
            } else {
                observe_revision(state, revision).map(Successors::one)
            }
        }
        (A::UpdateIfModRevision { expected, value }, Observed::Txn { succeeded, revision, else_read }) => {
            else_read_fits_compare(expected, else_read)?;
            let state = Compare::mod_revision(state, expected).reported(succeeded)?;
            match (succeeded, else_read) {
                (true, None) => write(state, Some(value), revision).map(Successors::one),
                (false, Some(read)) => else_branch_read(state, read, revision),
                _ => Err(Rejection::OutputDoesNotFitRequest),
            }
        }
        (A::DeleteIfModRevision { expected }, Observed::Txn { succeeded, revision, else_read }) => {
            else_read_fits_compare(expected, else_read)?;
            let state = Compare::mod_revision(state, expected).reported(succeeded)?;
            match (succeeded, else_read) {
                (true, None) => {
                    let deleted = i64::from(state.value.is_some());
                    delete(state, deleted, revision).map(Successors::one)
                }
                (false, Some(read)) => else_branch_read(state, read, revision),
                _ => Err(Rejection::OutputDoesNotFitRequest),
            }
        }
        _ => Err(Rejection::OutputDoesNotFitRequest),
    }
}

/// The outcome of a txn's compare on a state. With an unrevealed mod_revision a
/// mod_revision compare may go either way; each way has its own state (when it holds,
/// the unrevealed revision is now known).
struct Compare {
    when_true: Option<KeyState>,
    when_false: Option<KeyState>,
}

impl Compare {
    fn definite(state: KeyState, holds: bool) -> Self {
        Compare { when_true: holds.then_some(state), when_false: (!holds).then_some(state) }
    }

    fn mod_revision(state: KeyState, expected: Revision) -> Self {
        match state.mod_revision {
            ModRevision::Known(mod_revision) => Compare::definite(state, mod_revision == expected),
            ModRevision::Unrevealed { above, at_most } => {
                let possible = above < expected && expected <= at_most;
                let forced = possible && at_most.saturating_sub(above) == 1;
                Compare {
                    when_true: possible.then(|| reveal(state, expected)),
                    // The model cannot remember "not this revision"; forgetting it only
                    // makes the model more permissive, never wrongly strict.
                    when_false: (!forced).then_some(state),
                }
            }
        }
    }

    fn reported(&self, succeeded: bool) -> Result<KeyState, Rejection> {
        let state = if succeeded { self.when_true } else { self.when_false };
        state.ok_or(Rejection::CompareDisagrees { reported: succeeded })
    }
}

/// The key's unrevealed mod_revision turns out to be `mod_revision`.
fn reveal(state: KeyState, mod_revision: Revision) -> KeyState {
    KeyState {
        mod_revision: ModRevision::Known(mod_revision),
        revision_floor: state.revision_floor.max(mod_revision),
        ..state
    }
}

/// A read at response revision `read.revision`.
fn read(state: KeyState, read: ReadResult) -> Result<KeyState, Rejection> {
    if read.revision < state.revision_floor {
        return Err(Rejection::RevisionWentBack { revision: read.revision });
    }
    let mismatch = Rejection::ReadMismatch { read_value: read.value, read_mod_revision: read.mod_revision };
    if read.value != state.value {
        return Err(mismatch);
    }
    let state = match state.mod_revision {
        ModRevision::Known(mod_revision) if mod_revision == read.mod_revision => state,
        ModRevision::Known(_) => return Err(mismatch),
        ModRevision::Unrevealed { above, at_most } => {
            if read.mod_revision <= above || read.mod_revision > at_most || read.mod_revision > read.revision {
                return Err(Rejection::RevealedRevisionImpossible { mod_revision: read.mod_revision });
            }
            reveal(state, read.mod_revision)
        }
    };
    Ok(KeyState { revision_floor: read.revision, ..state })
}

/// An answer that carries only a response revision (a txn whose compare failed and that
/// has no else branch, a delete that found nothing).
fn observe_revision(state: KeyState, revision: Revision) -> Result<KeyState, Rejection> {
    if revision < state.revision_floor {
        return Err(Rejection::RevisionWentBack { revision });
    }
    let mod_revision = match state.mod_revision {
        // The unrevealed write happened before this answer, so at or below its revision.
        ModRevision::Unrevealed { above, at_most } => ModRevision::Unrevealed { above, at_most: at_most.min(revision) },
        known => known,
    };
    if let ModRevision::Unrevealed { above, at_most } = mod_revision
        && at_most <= above
    {
        return Err(Rejection::RevisionWentBack { revision });
    }
    Ok(KeyState { mod_revision, revision_floor: revision, ..state })
}

/// The else branch runs only when the compare failed, so it cannot have read the very
/// mod_revision the compare looked for: that answer contradicts itself, whatever the
/// state.
fn else_read_fits_compare(expected: Revision, else_read: Option<ReadResult>) -> Result<(), Rejection> {
    match else_read {
        Some(read) if read.mod_revision == expected => {
            Err(Rejection::ElseReadContradictsCompare { mod_revision: read.mod_revision })
        }
        _ => Ok(()),
    }
}

/// A txn's else branch read the key after its mod_revision compare failed; the read is
/// served at the txn's revision.
fn else_branch_read(state: KeyState, read: ReadResult, revision: Revision) -> Result<Successors, Rejection> {
    self::read(state, ReadResult { revision, ..read }).map(Successors::one)
}

/// A put (`value` is `Some`) or a delete of a present key (`None`) with a known revision.
fn write(state: KeyState, value: Option<ValueId>, revision: Revision) -> Result<KeyState, Rejection> {
    if revision <= state.revision_floor {
        return Err(Rejection::WriteRevisionNotNewer { revision });
    }
    Ok(KeyState {
        value,
        mod_revision: ModRevision::Known(if value.is_some() { revision } else { 0 }),
        revision_floor: revision,
    })
}

/// A delete that reported `deleted` keys. As in etcd, deleting nothing creates no
/// revision: the answer carries the current one.
fn delete(state: KeyState, deleted: i64, revision: Revision) -> Result<KeyState, Rejection> {
    match (deleted, state.value) {
        (0, None) => observe_revision(state, revision),
        (1, Some(_)) => write(state, None, revision),
        _ => Err(Rejection::DeleteCountMismatch { deleted }),
    }
}

/// A write whose answer never came, if it took effect: its revision is beyond the floor.
fn write_unrevealed(state: KeyState, value: Option<ValueId>) -> KeyState {
    let mod_revision = match value {
        Some(_) => ModRevision::Unrevealed { above: state.revision_floor, at_most: Revision::MAX },
        None => ModRevision::Known(0),
    };
    KeyState { value, mod_revision, revision_floor: state.revision_floor.saturating_add(1) }
}

/// Where a request without an answer may have left the key, if it took effect. That it
/// never took effect needs no state: the search simply never places it.
fn possible_effects(state: KeyState, action: Action) -> Successors {
    let delete_if_present = |state: KeyState| match state.value {
        Some(_) => write_unrevealed(state, None),
        None => state,
    };
    match action {
        Action::Get => Successors::one(state),
        Action::Put { value } => Successors::one(write_unrevealed(state, Some(value))),
        Action::Delete => Successors::one(delete_if_present(state)),
        Action::PutIfValue { expected, value } if state.value == Some(expected) => {
            Successors::one(write_unrevealed(state, Some(value)))
        }
        Action::Create { value } if state.value.is_none() => Successors::one(write_unrevealed(state, Some(value))),
        Action::PutIfValue { .. } | Action::Create { .. } => Successors::one(state),
        Action::UpdateIfModRevision { expected, value } => {
            let compare = Compare::mod_revision(state, expected);
            Successors::of(compare.when_true.map(|state| write_unrevealed(state, Some(value))), compare.when_false)
        }
        Action::DeleteIfModRevision { expected } => {
            let compare = Compare::mod_revision(state, expected);
            Successors::of(compare.when_true.map(delete_if_present), compare.when_false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: ValueId = 1;
    const V2: ValueId = 2;

    fn holding(value: ValueId, mod_revision: Revision) -> KeyState {
        KeyState { value: Some(value), mod_revision: ModRevision::Known(mod_revision), revision_floor: mod_revision }
    }

    fn only(successors: Successors) -> KeyState {
        assert_eq!(successors.get(1), None, "expected one successor");
        successors.get(0).expect("one successor")
    }

    fn get(value: Option<ValueId>, mod_revision: Revision, revision: Revision) -> Observed {
        Observed::Read(ReadResult { value, mod_revision, revision })
    }

    #[test]
    fn a_put_sets_value_and_mod_revision() {
        let state = only(step(KeyState::initial(), Action::Put { value: V1 }, Observed::Put { revision: 2 }).unwrap());
        assert_eq!(state, holding(V1, 2));
    }

    #[test]
    fn a_write_revision_must_exceed_every_revision_already_seen() {
        let state = holding(V1, 5);
        assert_eq!(
            step(state, Action::Put { value: V2 }, Observed::Put { revision: 5 }),
            Err(Rejection::WriteRevisionNotNewer { revision: 5 })
        );
    }

    #[test]
    fn a_read_must_see_the_value_and_mod_revision_held() {
        let state = holding(V1, 5);
        assert!(step(state, Action::Get, get(Some(V1), 5, 7)).is_ok());
        assert!(matches!(step(state, Action::Get, get(Some(V2), 5, 7)), Err(Rejection::ReadMismatch { .. })));
        assert!(matches!(step(state, Action::Get, get(Some(V1), 4, 7)), Err(Rejection::ReadMismatch { .. })));
        assert_eq!(step(state, Action::Get, get(Some(V1), 5, 4)), Err(Rejection::RevisionWentBack { revision: 4 }));
    }

    #[test]
    fn a_read_reveals_the_revision_of_an_unanswered_put() {
        let written = only(step(holding(V1, 5), Action::Put { value: V2 }, Observed::Unknown).unwrap());
        assert_eq!(written.mod_revision, ModRevision::Unrevealed { above: 5, at_most: Revision::MAX });
        let revealed = only(step(written, Action::Get, get(Some(V2), 9, 10)).unwrap());
        assert_eq!(revealed.mod_revision, ModRevision::Known(9));
        assert_eq!(revealed.revision_floor, 10);
        assert_eq!(
            step(written, Action::Get, get(Some(V2), 5, 10)),
            Err(Rejection::RevealedRevisionImpossible { mod_revision: 5 })
        );
    }

    #[test]
    fn a_failed_compare_bounds_an_unrevealed_revision_from_above() {
        let written = only(step(holding(V1, 5), Action::Put { value: V2 }, Observed::Unknown).unwrap());
        let cas_failed = only(
            step(
                written,
                Action::PutIfValue { expected: V1, value: V1 },
                Observed::Txn { succeeded: false, revision: 7, else_read: None },
            )
            .unwrap(),
        );
        assert!(step(cas_failed, Action::Get, get(Some(V2), 7, 8)).is_ok());
        assert!(step(cas_failed, Action::Get, get(Some(V2), 8, 8)).is_err());
    }

    #[test]
    fn value_compare_on_an_absent_key_is_false() {
        let txn = |succeeded| Observed::Txn { succeeded, revision: 3, else_read: None };
        let action = Action::PutIfValue { expected: V1, value: V2 };
        assert!(step(KeyState::initial(), action, txn(false)).is_ok());
        assert_eq!(step(KeyState::initial(), action, txn(true)), Err(Rejection::CompareDisagrees { reported: true }));
    }

    #[test]
    fn kubernetes_update_compares_mod_revision_and_reads_on_failure() {
        let state = holding(V1, 5);
        let update = |expected| Action::UpdateIfModRevision { expected, value: V2 };
        let succeeded = Observed::Txn { succeeded: true, revision: 6, else_read: None };
        assert_eq!(only(step(state, update(5), succeeded).unwrap()), holding(V2, 6));
        assert!(step(state, update(4), succeeded).is_err());
        let failed_reading = |value, mod_revision| Observed::Txn {
            succeeded: false,
            revision: 6,
            else_read: Some(ReadResult { value, mod_revision, revision: 0 }),
        };
        assert!(step(state, update(4), failed_reading(Some(V1), 5)).is_ok());
        assert!(step(state, update(4), failed_reading(Some(V2), 5)).is_err());
        assert!(step(state, update(5), failed_reading(Some(V1), 5)).is_err());
    }

    #[test]
    fn an_unanswered_update_on_an_unrevealed_revision_may_go_either_way() {
        let written = only(step(holding(V1, 5), Action::Put { value: V2 }, Observed::Unknown).unwrap());
        let successors =
            step(written, Action::UpdateIfModRevision { expected: 8, value: V1 }, Observed::Unknown).unwrap();
        let took_effect = successors.get(0).unwrap();
        assert_eq!(took_effect.value, Some(V1));
        assert_eq!(took_effect.revision_floor, 9);
        assert_eq!(successors.get(1), Some(written));
    }

    #[test]
    fn deleting_nothing_creates_no_revision() {
        let absent = KeyState { revision_floor: 4, ..KeyState::initial() };
        let deleted_nothing = Observed::Delete { deleted: 0, revision: 4 };
        assert_eq!(only(step(absent, Action::Delete, deleted_nothing).unwrap()), absent);
        assert!(step(holding(V1, 4), Action::Delete, deleted_nothing).is_err());
        let deleted_one = Observed::Delete { deleted: 1, revision: 5 };
        assert!(step(absent, Action::Delete, deleted_one).is_err());
        let after = only(step(holding(V1, 4), Action::Delete, deleted_one).unwrap());
        assert_eq!(after.value, None);
        assert_eq!(after.mod_revision, ModRevision::Known(0));
        assert_eq!(after.revision_floor, 5);
    }

    /// The search relies on `floor_limit`: no answer may be accepted from a state whose
    /// floor is above its limit.
    #[test]
    fn no_answer_is_accepted_above_its_floor_limit() {
        let read = |revision| Observed::Read(ReadResult { value: Some(V1), mod_revision: 3, revision });
        let txn = |succeeded, revision| Observed::Txn {
            succeeded,
            revision,
            else_read: (!succeeded).then_some(ReadResult { value: Some(V1), mod_revision: 3, revision: 0 }),
        };
        let plain_txn = |succeeded, revision| Observed::Txn { succeeded, revision, else_read: None };
        let cases = [
            (Action::Get, read(5)),
            (Action::Put { value: V2 }, Observed::Put { revision: 5 }),
            (Action::Delete, Observed::Delete { deleted: 1, revision: 5 }),
            (Action::Delete, Observed::Delete { deleted: 0, revision: 5 }),
            (Action::PutIfValue { expected: V1, value: V2 }, plain_txn(true, 5)),
            (Action::PutIfValue { expected: V2, value: V2 }, plain_txn(false, 5)),
            (Action::Create { value: V2 }, plain_txn(false, 5)),
            (Action::UpdateIfModRevision { expected: 3, value: V2 }, txn(true, 5)),
            (Action::UpdateIfModRevision { expected: 2, value: V2 }, txn(false, 5)),
            (Action::DeleteIfModRevision { expected: 3 }, txn(true, 5)),
            (Action::DeleteIfModRevision { expected: 0 }, plain_txn(true, 5)),
        ];
        let states = (0..8).flat_map(|floor| {
            [
                KeyState { value: Some(V1), mod_revision: ModRevision::Known(3), revision_floor: floor },
                KeyState {
                    value: Some(V1),
                    mod_revision: ModRevision::Unrevealed { above: 2, at_most: Revision::MAX },
                    revision_floor: floor,
                },
                KeyState { revision_floor: floor, ..KeyState::initial() },
            ]
        });
        let mut accepted_somewhere = vec![false; cases.len()];
        for state in states {
            for (case, (action, observed)) in cases.iter().enumerate() {
                let limit = floor_limit(*action, *observed).unwrap();
                if step(state, *action, *observed).is_ok() {
                    accepted_somewhere[case] = true;
                    assert!(
                        state.revision_floor <= limit,
                        "{action:?} {observed:?} accepted from {state:?} above limit {limit}"
                    );
                }
            }
        }
        assert!(accepted_somewhere.iter().all(|accepted| *accepted));
    }

    #[test]
    fn mismatched_outputs_are_rejected_without_panicking() {
        assert_eq!(
            step(KeyState::initial(), Action::Get, Observed::Put { revision: 1 }),
            Err(Rejection::OutputDoesNotFitRequest)
        );
    }
}
