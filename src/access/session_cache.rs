//! Sessions already found valid, so a request with one asks no database: every dashboard page,
//! list and stats poll used to read its session row (200 concurrent lists: 200 reads through
//! the read pool's blocking threads before any list began).
//!
//! An entry is trusted only at the revocation count it was found at: a logout or a token
//! revocation bumps the count, and every entry then goes back to the database once (the one
//! it was about is gone there). Expiry is the clock's. API tokens are not kept here: their
//! lookup also records when they were last used.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// Most sessions remembered; past it the memory starts again empty (a few hundred bytes
/// each; more live sessions than this only cost their lookups).
const MAX_SESSIONS: usize = 4096;

/// Token hash → (expiry, revocation count when it was found valid).
#[derive(Debug, Default)]
pub(super) struct SessionCache {
    valid: Mutex<HashMap<String, (DateTime<Utc>, u64)>>,
}

impl SessionCache {
    /// The expiry of the session with `hash` if it was found valid at revocation count
    /// `revocations` (the current one) and has not expired by `now`.
    pub(super) fn get(
        &self,
        hash: &str,
        revocations: u64,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut valid = self.valid.lock().unwrap_or_else(PoisonError::into_inner);
        match valid.get(hash) {
            Some(&(expires_at, at)) if at == revocations && expires_at > now => Some(expires_at),
            Some(_) => {
                valid.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Remembers that the session with `hash` was valid, until `expires_at`, when the
    /// revocation count was `revocations` (read before its lookup).
    pub(super) fn insert(&self, hash: &str, expires_at: DateTime<Utc>, revocations: u64) {
        let mut valid = self.valid.lock().unwrap_or_else(PoisonError::into_inner);
        if valid.len() >= MAX_SESSIONS {
            valid.clear();
        }
        valid.insert(hash.to_string(), (expires_at, revocations));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_trusted_only_at_the_revocation_count_and_before_expiry() {
        let cache = SessionCache::default();
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        cache.insert("h", later, 3);
        assert_eq!(cache.get("h", 3, now), Some(later));
        assert_eq!(cache.get("other", 3, now), None);
        // A revocation since: back to the database, and the entry is dropped.
        assert_eq!(cache.get("h", 4, now), None);
        assert_eq!(cache.get("h", 3, now), None);
        cache.insert("h", later, 4);
        assert_eq!(cache.get("h", 4, later), None, "expired at `later`");
    }

    #[test]
    fn a_full_cache_starts_again_rather_than_grow() {
        let cache = SessionCache::default();
        let exp = Utc::now() + chrono::Duration::hours(1);
        for i in 0..=MAX_SESSIONS {
            cache.insert(&i.to_string(), exp, 0);
        }
        let held = cache.valid.lock().unwrap().len();
        assert!(held <= MAX_SESSIONS, "{held}");
    }
}
