//! A fixed-size set of small integers: which operations of a key are linearized so far.

/// Operations `0..len` as bits. Two bitsets compare equal when they hold the same
/// operations, which is what the search's memo needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    pub fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64)] }
    }

    /// Adds `index`; an index beyond the set's size is ignored rather than panicking.
    pub fn insert(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    pub fn remove(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word &= !(1 << (index % 64));
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        self.words.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// The bits, 64 operations a word.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn insert_remove_and_contains_agree() {
        let mut set = Bitset::new(130);
        for index in [0, 63, 64, 129] {
            assert!(!set.contains(index));
            set.insert(index);
            assert!(set.contains(index));
        }
        set.remove(64);
        assert!(!set.contains(64));
        assert!(set.contains(63) && set.contains(129));
        set.insert(1_000);
        assert!(!set.contains(1_000));
    }
}
