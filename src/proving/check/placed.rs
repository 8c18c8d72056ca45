//! The set of operations placed so far by the search, kept in the forms the memo needs.
//!
//! Answered operations are numerous (every operation of the key may be placed), so they
//! are a bitset plus a Zobrist fingerprint (an XOR of one random word per placed
//! operation) that is updated in O(1) and lets the memo find a situation without
//! hashing the whole bitset. Unanswered operations placed at one time are few, so they
//! are a short sorted list, on which the memo's subset test is cheap.

use super::bitset::Bitset;

pub(crate) struct PlacedOperations {
    answered: Bitset,
    answered_fingerprint: u64,
    /// Sorted.
    unanswered: Vec<usize>,
}

impl PlacedOperations {
    pub fn new(operations: usize) -> Self {
        PlacedOperations { answered: Bitset::new(operations), answered_fingerprint: 0, unanswered: Vec::new() }
    }

    pub fn insert(&mut self, operation: usize, answered: bool) {
        if answered {
            if !self.answered.contains(operation) {
                self.answered.insert(operation);
                self.answered_fingerprint ^= zobrist_key(operation);
            }
        } else if let Err(position) = self.unanswered.binary_search(&operation) {
            self.unanswered.insert(position, operation);
        }
    }

    pub fn remove(&mut self, operation: usize, answered: bool) {
        if answered {
            if self.answered.contains(operation) {
                self.answered.remove(operation);
                self.answered_fingerprint ^= zobrist_key(operation);
            }
        } else if let Ok(position) = self.unanswered.binary_search(&operation) {
            self.unanswered.remove(position);
        }
    }

    pub fn contains_unanswered(&self, operation: usize) -> bool {
        self.unanswered.binary_search(&operation).is_ok()
    }

    pub fn answered(&self) -> &Bitset {
        &self.answered
    }

    pub fn answered_fingerprint(&self) -> u64 {
        self.answered_fingerprint
    }

    pub fn unanswered(&self) -> &[usize] {
        &self.unanswered
    }
}

/// Whether every element of sorted `small` is in sorted `large`.
pub(crate) fn is_sorted_subset(small: &[usize], large: &[usize]) -> bool {
    let mut large = large.iter();
    small.iter().all(|wanted| large.by_ref().any(|candidate| candidate == wanted))
}

/// A fixed pseudo-random word per operation (SplitMix64 of its position), so that the
/// fingerprint of a set does not depend on the order its members were placed in.
fn zobrist_key(operation: usize) -> u64 {
    let mut z = (operation as u64).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_depends_only_on_the_set() {
        let mut one_way = PlacedOperations::new(10);
        let mut other_way = PlacedOperations::new(10);
        for operation in [1, 5, 7] {
            one_way.insert(operation, true);
        }
        for operation in [7, 2, 1, 5] {
            other_way.insert(operation, true);
        }
        other_way.remove(2, true);
        assert_eq!(one_way.answered_fingerprint(), other_way.answered_fingerprint());
        assert_eq!(one_way.answered(), other_way.answered());
        other_way.remove(2, true);
        assert_eq!(one_way.answered_fingerprint(), other_way.answered_fingerprint());
    }

    #[test]
    fn unanswered_operations_stay_sorted() {
        let mut placed = PlacedOperations::new(10);
        for operation in [4, 1, 9, 1] {
            placed.insert(operation, false);
        }
        assert_eq!(placed.unanswered(), &[1, 4, 9]);
        assert!(placed.contains_unanswered(9));
        placed.remove(4, false);
        assert_eq!(placed.unanswered(), &[1, 9]);
    }

    #[test]
    fn sorted_subsets() {
        assert!(is_sorted_subset(&[], &[1, 2]));
        assert!(is_sorted_subset(&[1, 3], &[1, 2, 3]));
        assert!(!is_sorted_subset(&[1, 4], &[1, 2, 3]));
        assert!(!is_sorted_subset(&[0], &[]));
    }
}
