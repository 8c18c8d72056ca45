//! How much memory a member's caches may use.
//!
//! The defaults suit a lab: a few thousand keys, a member lighter than etcd's. For big data,
//! start the lab with larger caches, e.g. `RAFTTY_STATE_CACHE_MB=512 raftty up`; members
//! read the variables when they start (a running member keeps its budget until restarted).
//!
//! - `RAFTTY_STATE_CACHE_MB`: redb's page cache for `state.redb` (keys, revisions, leases).
//!   Reads of keys that are not cached go to the file, which the OS caches too.
//! - `RAFTTY_LOG_CACHE_MB`: the Raft log's cache of recent entries (replication reads them)
//!   and redb's page cache for `raft-log.redb`, this much each.

use std::sync::OnceLock;

pub const STATE_CACHE_VAR: &str = "RAFTTY_STATE_CACHE_MB";
pub const LOG_CACHE_VAR: &str = "RAFTTY_LOG_CACHE_MB";

const DEFAULT_STATE_CACHE_MB: usize = 16;
const DEFAULT_LOG_CACHE_MB: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    pub state_cache_bytes: usize,
    pub log_cache_bytes: usize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget { state_cache_bytes: DEFAULT_STATE_CACHE_MB << 20, log_cache_bytes: DEFAULT_LOG_CACHE_MB << 20 }
    }
}

impl MemoryBudget {
    /// The budget the variables ask for; an unreadable value is an error naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<MemoryBudget, String> {
        let megabytes = |var: &str, default: usize| -> Result<usize, String> {
            match lookup(var) {
                None => Ok(default << 20),
                Some(value) => match value.trim().parse::<usize>() {
                    Ok(mb) if (1..=1 << 20).contains(&mb) => Ok(mb << 20),
                    _ => Err(format!("{var}={value:?} is not a number of megabytes from 1 to 1048576")),
                },
            }
        };
        Ok(MemoryBudget {
            state_cache_bytes: megabytes(STATE_CACHE_VAR, DEFAULT_STATE_CACHE_MB)?,
            log_cache_bytes: megabytes(LOG_CACHE_VAR, DEFAULT_LOG_CACHE_MB)?,
        })
    }
}

static BUDGET: OnceLock<MemoryBudget> = OnceLock::new();

/// Reads the budget from the environment, once, when a member starts.
pub fn init_from_env() -> Result<MemoryBudget, String> {
    let budget = MemoryBudget::from_lookup(|var| std::env::var(var).ok())?;
    Ok(*BUDGET.get_or_init(|| budget))
}

/// The member's budget: the defaults unless [`init_from_env`] read another one.
pub fn budget() -> MemoryBudget {
    *BUDGET.get_or_init(MemoryBudget::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_set_the_caches_and_bad_values_are_named() {
        let none = MemoryBudget::from_lookup(|_| None).unwrap();
        assert_eq!(none, MemoryBudget::default());
        let big = MemoryBudget::from_lookup(|var| (var == STATE_CACHE_VAR).then(|| "512".to_string())).unwrap();
        assert_eq!(big.state_cache_bytes, 512 << 20);
        assert_eq!(big.log_cache_bytes, DEFAULT_LOG_CACHE_MB << 20);
        let err = MemoryBudget::from_lookup(|var| (var == LOG_CACHE_VAR).then(|| "lots".to_string())).unwrap_err();
        assert_eq!(err, "RAFTTY_LOG_CACHE_MB=\"lots\" is not a number of megabytes from 1 to 1048576");
        assert!(MemoryBudget::from_lookup(|_| Some("0".into())).is_err());
    }
}
