//! [`VerifyQueue`]: login password checks go through a bounded queue, so a burst of logins
//! cannot pile up unbounded argon2 work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::password::{on_hasher_thread, verify_password};

/// Login verifications a [`VerifyQueue`] admits at once unless configured otherwise: the one
/// running on the argon2 thread and those waiting behind it.
///
/// At least [`super::DEFAULT_MAX_FAILURES`], so that a single client's whole allowance fits and
/// the rate limit, not the queue, is what answers it. With argon2 at ~20 ms a verification
/// (release build), a full queue is about 160 ms of work.
pub const DEFAULT_VERIFY_QUEUE: usize = 8;

/// How long a client turned away by a full queue is told to wait.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The queue was full: the password was not checked (and the attempt does not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many logins are being checked at once; retry in a second")]
pub struct VerifyBusy;

impl VerifyBusy {
    /// Stable machine-readable code, for API error bodies.
    pub fn code(&self) -> &'static str {
        "LOGIN_BUSY"
    }
}

/// Admits at most `capacity` password verifications at a time and turns the rest away at once
/// with [`VerifyBusy`], rather than queueing them without bound.
///
/// A slot is held by the argon2 job itself, from admission until the hash is computed, not by
/// the request that asked: a client that disconnects while waiting does not free its slot
/// early, so dropping connections cannot grow the queue behind the slots' back.
///
/// The per-client [`super::LoginLimiter`] decides whether a client may guess at all; this bounds
/// what many clients together can cost. It also counts the verifications it ran
/// ([`VerifyQueue::verifications`]), which tests use to show refused logins cost no argon2 work.
#[derive(Debug)]
pub struct VerifyQueue {
    slots: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

impl VerifyQueue {
    /// A queue admitting `capacity` verifications at once (at least one).
    pub fn new(capacity: usize) -> VerifyQueue {
        VerifyQueue {
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether `candidate` is the password behind `phc` (see [`super::verify_password`]),
    /// computed on the argon2 thread; [`VerifyBusy`] at once if the queue is full.
    pub async fn verify(&self, candidate: String, phc: String) -> Result<bool, VerifyBusy> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| VerifyBusy)?;
        let verifications = self.verifications.clone();
        Ok(on_hasher_thread(move || {
            let _slot = slot;
            verifications.fetch_add(1, Ordering::Relaxed);
            verify_password(&candidate, &phc)
        })
        .await)
    }

    /// How many verifications this queue has run (started) so far.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

impl Default for VerifyQueue {
    /// [`DEFAULT_VERIFY_QUEUE`] slots.
    fn default() -> Self {
        VerifyQueue::new(DEFAULT_VERIFY_QUEUE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_turns_verifications_away_without_running_them() {
        let phc = super::super::hash_password("the right password").unwrap();
        let queue = Arc::new(VerifyQueue::new(2));
        // Fill both slots by hand, as two verifications in flight would.
        let held = queue.slots.clone().try_acquire_many_owned(2).unwrap();
        let busy = queue.verify("the right password".into(), phc.clone()).await;
        assert_eq!(busy, Err(VerifyBusy));
        assert_eq!(VerifyBusy.code(), "LOGIN_BUSY");
        assert_eq!(queue.verifications(), 0);
        drop(held);
        assert_eq!(
            queue.verify("the right password".into(), phc.clone()).await,
            Ok(true)
        );
        assert_eq!(
            queue.verify("a wrong password".into(), phc).await,
            Ok(false)
        );
        assert_eq!(queue.verifications(), 2);
        assert_eq!(queue.slots.available_permits(), 2, "slots come back");
    }

    #[tokio::test]
    async fn a_slot_is_held_until_the_hash_is_computed_even_if_the_caller_leaves() {
        let phc = super::super::hash_password("the right password").unwrap();
        let queue = Arc::new(VerifyQueue::new(1));
        let q = queue.clone();
        let asked = tokio::spawn(async move { q.verify("guess number one".into(), phc).await });
        // Wait until the job holds the slot, then abandon the request.
        while queue.slots.available_permits() == 1 {
            tokio::task::yield_now().await;
        }
        asked.abort();
        let _ = asked.await;
        // The argon2 job still runs; its slot is free only once it is done.
        while queue.verifications() == 0 || queue.slots.available_permits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(queue.verifications(), 1);
    }
}
