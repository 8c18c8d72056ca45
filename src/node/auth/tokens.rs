//! How long simple tokens live on this member: etcd's 300 s, starting again at every use.
//! Which tokens exist is replicated (see `store.rs`); when each was last used is local.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

pub const TOKEN_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct TokenClock {
    last_used: Mutex<HashMap<String, Instant>>,
}

impl TokenClock {
    /// Records a use of `token` now; false when it went unused for longer than its TTL.
    pub fn touch(&self, token: &str, now: Instant) -> bool {
        let mut used = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        if used.len() > 20_000 {
            used.retain(|_, at| now.duration_since(*at) < TOKEN_TTL);
        }
        match used.get_mut(token) {
            Some(at) if now.duration_since(*at) >= TOKEN_TTL => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                used.insert(token.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_while_it_is_used_and_dies_when_left_alone() {
        let clock = TokenClock::default();
        let t0 = Instant::now();
        assert!(clock.touch("a.1", t0));
        assert!(clock.touch("a.1", t0 + Duration::from_secs(299)));
        assert!(clock.touch("a.1", t0 + Duration::from_secs(598)), "each use starts the TTL again");
        assert!(!clock.touch("a.1", t0 + Duration::from_secs(898)));
    }
}
