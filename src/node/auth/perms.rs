//! Whether permissions cover a key or a range, as etcd's range-permission cache decides it:
//! the asked range must lie inside the union of the granted ones.
//!
//! A range is `[key, range_end)`; an empty `range_end` means the single key, and `"\0"` means
//! everything from `key` on.

use crate::proto::authpb::Permission;
use crate::proto::authpb::permission::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// One thing a request needs: reading or writing a key or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub need: Need,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl Access {
    pub fn new(need: Need, key: &[u8], range_end: &[u8]) -> Access {
        Access { need, key: key.to_vec(), range_end: range_end.to_vec() }
    }

    /// In etcdctl's words: "read /app/x", "write [/app/, /app0)", "read from /a on".
    pub fn describe(&self) -> String {
        let need = match self.need {
            Need::Read => "read",
            Need::Write => "write",
        };
        let key = String::from_utf8_lossy(&self.key);
        match self.range_end.as_slice() {
            [] => format!("{need} {key}"),
            [0] => format!("{need} from {key} on"),
            end => format!("{need} [{key}, {})", String::from_utf8_lossy(end)),
        }
    }
}

/// The end of a range as an exclusive bound; None for "to the end of the keyspace".
fn end_of(key: &[u8], range_end: &[u8]) -> Option<Vec<u8>> {
    match range_end {
        [] => {
            let mut next = key.to_vec();
            next.push(0);
            Some(next)
        }
        [0] => None,
        end => Some(end.to_vec()),
    }
}

fn grants(perm: &Permission, need: Need) -> bool {
    let t = Type::try_from(perm.perm_type).unwrap_or(Type::Read);
    match need {
        Need::Read => matches!(t, Type::Read | Type::Readwrite),
        Need::Write => matches!(t, Type::Write | Type::Readwrite),
    }
}

/// Whether `perms` together cover what `access` asks.
pub fn covers(perms: &[Permission], access: &Access) -> bool {
    let mut granted: Vec<(Vec<u8>, Option<Vec<u8>>)> = perms
        .iter()
        .filter(|p| grants(p, access.need))
        .map(|p| (p.key.to_vec(), end_of(&p.key, &p.range_end)))
        .collect();
    granted.sort();
    let want_end = end_of(&access.key, &access.range_end);
    let mut reached = access.key.clone();
    for (start, end) in granted {
        if start > reached {
            break;
        }
        match end {
            None => return true,
            Some(end) if end > reached => reached = end,
            Some(_) => {}
        }
        if want_end.as_ref().is_some_and(|w| &reached >= w) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: Type, key: &str, end: &str) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.as_bytes().to_vec().into(),
            range_end: end.as_bytes().to_vec().into(),
        }
    }

    fn read(key: &str, end: &str) -> Access {
        Access::new(Need::Read, key.as_bytes(), end.as_bytes())
    }

    #[test]
    fn a_prefix_covers_its_keys_and_ranges_inside_it_only() {
        let perms = [perm(Type::Read, "/app/", "/app0")];
        assert!(covers(&perms, &read("/app/a", "")));
        assert!(covers(&perms, &read("/app/", "/app0")));
        assert!(!covers(&perms, &read("/apps", "")));
        assert!(!covers(&perms, &read("/app/", "\0")), "to the end of the keyspace is wider than the prefix");
        assert!(!covers(&perms, &Access::new(Need::Write, b"/app/a", b"")), "read is not write");
    }

    #[test]
    fn adjacent_grants_join_and_readwrite_gives_both() {
        let perms = [perm(Type::Readwrite, "a", "c"), perm(Type::Read, "c", "e"), perm(Type::Read, "k", "")];
        assert!(covers(&perms, &read("a", "e")));
        assert!(!covers(&perms, &read("a", "f")));
        assert!(covers(&perms, &read("k", "")));
        assert!(!covers(&perms, &read("k", "l")));
        assert!(covers(&perms, &Access::new(Need::Write, b"b", b"")));
        assert!(covers(&[perm(Type::Read, "x", "\0")], &read("y", "\0")));
    }
}
