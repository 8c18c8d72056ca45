//! Which keys a request names, from its `key` and `range_end` as etcd reads them.
//!
//! etcd's convention: an empty `range_end` names the single key; `range_end == "\0"` names
//! every key >= `key` (so key `"\0"` with range end `"\0"` is the whole key space); any other
//! `range_end` is the half-open interval `[key, range_end)`, empty when `range_end <= key`.

use std::ops::Bound;

/// Bounds of a key range over byte-string keys.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpan<'a> {
    One(&'a [u8]),
    From(&'a [u8]),
    Between(&'a [u8], &'a [u8]),
}

impl<'a> KeySpan<'a> {
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> Self {
        match range_end {
            [] => KeySpan::One(key),
            [0] => KeySpan::From(key),
            end => KeySpan::Between(key, end),
        }
    }

    pub fn contains(&self, candidate: &[u8]) -> bool {
        match *self {
            KeySpan::One(key) => candidate == key,
            KeySpan::From(start) => candidate >= start,
            KeySpan::Between(start, end) => candidate >= start && candidate < end,
        }
    }

    /// Bounds for a `BTreeMap::range` over the span, or `None` when the span is empty
    /// (`BTreeMap::range` panics on an inverted range, and a client may well send one).
    pub fn bounds(&self) -> Option<KeyBounds<'a>> {
        match *self {
            KeySpan::One(key) => Some((Bound::Included(key), Bound::Included(key))),
            KeySpan::From(start) => Some((Bound::Included(start), Bound::Unbounded)),
            KeySpan::Between(start, end) if start < end => Some((Bound::Included(start), Bound::Excluded(end))),
            KeySpan::Between(..) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_conventions() {
        assert!(KeySpan::new(b"a", b"").contains(b"a"));
        assert!(!KeySpan::new(b"a", b"").contains(b"ab"));
        assert!(KeySpan::new(b"a", b"\0").contains(b"zzz"));
        assert!(!KeySpan::new(b"b", b"\0").contains(b"a"));
        assert!(KeySpan::new(b"\0", b"\0").contains(b"\x01"));
        let prefix = KeySpan::new(b"/a/", b"/a0");
        assert!(prefix.contains(b"/a/x"));
        assert!(!prefix.contains(b"/a0"));
        assert!(KeySpan::new(b"b", b"a").bounds().is_none());
        assert!(KeySpan::new(b"b", b"b").bounds().is_none());
    }
}
