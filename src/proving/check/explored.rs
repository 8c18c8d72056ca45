//! The search's memory of situations already explored, with dominance.
//!
//! A situation is the set of operations placed so far and the key's state. Lowe's
//! memoization skips a situation seen before. This memo also skips a situation that
//! differs from one seen before only by having placed more unanswered operations: such
//! operations are optional (they may never have taken effect), so from the situation with
//! fewer of them every continuation of the other one is still available, with the extra
//! operations simply left out. If that situation led nowhere, neither can this one.
//!
//! In the same way, a state with a lower revision floor (or a wider interval for an
//! unrevealed revision) accepts everything a stricter state of the same shape accepts
//! (`KeyState::at_least_as_permissive_as`), so it dominates it too. Unanswered writes
//! placed and then overwritten leave exactly such stricter states behind (each raises
//! the floor by one).
//!
//! Without it, k unanswered writes whose values nobody read multiply the search by up to
//! 2^k (each placed or not, in every combination), although the model's states converge
//! again at the next answered write; with it, those combinations are cut off there.

use std::collections::HashMap;

use super::model::{KeyState, StateShape};
use super::placed::{PlacedOperations, is_sorted_subset};

/// One explored situation, in full: the fingerprint in the map's key may collide, so a
/// match is confirmed against the answered set itself.
struct Situation {
    answered: Box<[u64]>,
    unanswered: Box<[usize]>,
    state: KeyState,
}

#[derive(Default)]
pub(crate) struct Explored {
    /// By (fingerprint of the answered operations placed, state shape).
    situations: HashMap<(u64, StateShape), Vec<Situation>>,
    recorded: usize,
}

impl Explored {
    /// How many situations are remembered: the memory the search uses.
    pub fn len(&self) -> usize {
        self.recorded
    }

    /// Records a situation about to be explored. Returns false, recording nothing, if it
    /// was explored before or is dominated by one that was.
    pub fn record(&mut self, placed: &PlacedOperations, state: KeyState) -> bool {
        let answered = placed.answered().words();
        let seen = self.situations.entry((placed.answered_fingerprint(), state.shape())).or_default();
        let dominated = seen.iter().any(|situation| {
            situation.state.at_least_as_permissive_as(&state)
                && is_sorted_subset(&situation.unanswered, placed.unanswered())
                && *situation.answered == *answered
        });
        if dominated {
            return false;
        }
        seen.push(Situation { answered: answered.into(), unanswered: placed.unanswered().into(), state });
        self.recorded += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_unanswered_operations_placed_is_dominated_fewer_is_not() {
        let mut explored = Explored::default();
        let state = KeyState::initial();
        let mut placed = PlacedOperations::new(4);
        placed.insert(1, false);
        assert!(explored.record(&placed, state));
        assert!(!explored.record(&placed, state));
        placed.insert(2, false);
        assert!(!explored.record(&placed, state));
        placed.remove(1, false);
        placed.remove(2, false);
        assert!(explored.record(&placed, state));
        placed.insert(0, true);
        placed.insert(1, false);
        assert!(explored.record(&placed, state));
        assert_eq!(explored.len(), 3);
    }

    #[test]
    fn a_stricter_state_is_dominated_a_looser_one_is_not() {
        let mut explored = Explored::default();
        let placed = PlacedOperations::new(4);
        let state = |floor| KeyState { revision_floor: floor, ..KeyState::initial() };
        assert!(explored.record(&placed, state(5)));
        assert!(!explored.record(&placed, state(6)));
        assert!(explored.record(&placed, state(4)));
    }
}
