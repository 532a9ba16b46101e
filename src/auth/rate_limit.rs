//! [`LoginLimiter`]: caps failed logins per client IP address, in memory.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Failed logins a client may make per window unless configured otherwise.
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// Length of the window unless configured otherwise.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Most clients a [`LoginLimiter`] tracks at once; see its memory bound.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// A refused login attempt: the client must wait this long before the next one is allowed.
///
/// Always a whole number of seconds and at least one, so it can go straight into a
/// `Retry-After` header via [`RetryAfter::as_secs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins; retry in {} s", .0.as_secs())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Builds a `RetryAfter` from the remaining wait, rounded up to whole seconds, at least 1 s:
    /// rounding down would invite a retry a fraction of a second too early.
    fn rounded_up(remaining: Duration) -> RetryAfter {
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        RetryAfter(Duration::from_secs(secs.max(1)))
    }

    /// The wait in whole seconds, for a `Retry-After` header.
    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }

    /// Stable machine-readable code, for API error bodies.
    pub fn code(&self) -> &'static str {
        "RATE_LIMITED"
    }
}

/// An attempt reserved by [`LoginLimiter::reserve`]. It counts as a failure unless the login
/// succeeds ([`LoginLimiter::record_success`]) or it is handed back
/// ([`LoginLimiter::release`]).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reserved attempt counts as a failure; release it if the password is never checked"]
pub struct LoginAttempt {
    key: IpAddr,
    at: Instant,
}

/// Limits failed logins per client IP address: at most `max_failures` in any `window`.
///
/// Use it around the password check, reserving the attempt *before* verifying:
///
/// ```
/// # use std::{net::IpAddr, time::Instant};
/// # use botmaker::auth::LoginLimiter;
/// # let limiter = LoginLimiter::default();
/// # let ip: IpAddr = "192.0.2.7".parse().unwrap();
/// # let password_ok = false;
/// // Counts as a failure from now on: a refused client costs no argon2 work.
/// let attempt = limiter.reserve(ip, Instant::now())?;
/// if password_ok {
///     limiter.record_success(ip); // forgives every failure of this client
/// }
/// // A wrong password needs nothing more: the reservation is the recorded failure. An attempt
/// // that never reached the check (the server was busy) is handed back:
/// // limiter.release(attempt);
/// # let _ = attempt;
/// # Ok::<(), botmaker::auth::RetryAfter>(())
/// ```
///
/// **Sliding window.** Each client keeps the times of its last `max_failures` attempts that
/// did not succeed (never more). A client is refused while the oldest of those is younger than
/// `window`, and the `Retry-After` is exactly when it ages out. So the bound holds over *every*
/// stretch of `window` length, unlike a fixed window, where a client can spend its allowance at
/// the end of one window and again at the start of the next. A client that keeps guessing after
/// being blocked regains one attempt each time an old failure expires, never a fresh burst. The
/// cost is `max_failures` timestamps per client instead of one counter, which is small.
///
/// **Concurrency.** [`LoginLimiter::reserve`] checks the allowance and records the attempt
/// under one lock, *before* the password is verified. Requests from one client that arrive
/// together therefore cannot all pass a check before the first failure is recorded: of 200
/// simultaneous guesses, exactly `max_failures` are let through to argon2 and the rest are
/// refused. The price is that an attempt still being verified already counts against its
/// client, so a client with `max_failures` guesses in flight is refused even the right password
/// until one of them resolves; [`LoginLimiter::record_success`] then forgives them all.
///
/// **Memory bound.** At most [`MAX_TRACKED_CLIENTS`] clients are tracked. When an attempt comes
/// from a new client and the map is full, clients whose attempts have all expired are pruned
/// first; if every tracked client is still inside its window (thousands of addresses guessing at
/// once), the client whose last attempt is oldest is evicted. Memory therefore stays bounded
/// whatever the traffic, at the price that an attacker controlling more than
/// [`MAX_TRACKED_CLIENTS`] addresses can push entries out; per-IP limiting cannot stop such an
/// attacker anyway. Each prune is a scan of the map under the lock, which only happens when it is
/// full. Clients that succeed, and clients whose failures expire when they next reserve, are
/// removed at once.
///
/// **Keys.** The key is the client's address with IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.7`) folded into IPv4, so a dual-stack listener does not give each client two
/// allowances. Other IPv6 addresses are keyed in full; a client owning a whole /64 can rotate
/// addresses, which is another reason argon2 keeps every guess expensive.
///
/// All methods take `&self` and a [`Mutex`] guards the map, so one limiter can be shared
/// through an `Arc`; the lock is never held across I/O or an `.await`. Time is passed in as
/// `now` rather than read inside, so tests are deterministic without sleeps.
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    max_clients: usize,
    clients: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// A limiter allowing `max_failures` failed logins per client in any `window`.
    ///
    /// A `max_failures` of 0 is treated as 1: a limiter that refuses everyone, the admin
    /// included, is never what a configuration meant.
    pub fn new(max_failures: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max_failures: usize::try_from(max_failures.max(1)).unwrap_or(usize::MAX),
            window,
            max_clients: MAX_TRACKED_CLIENTS,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves a login attempt for `ip` at `now`, *before* its password is verified: the
    /// allowance is checked and the attempt recorded as a failure in one step, so concurrent
    /// requests cannot all pass the check. Keep the returned [`LoginAttempt`] to
    /// [`release`](LoginLimiter::release) it if the password is never checked.
    ///
    /// Returns [`RetryAfter`] (and records nothing) when the client already has `max_failures`
    /// attempts inside the window; the wait is until the oldest of them expires.
    pub fn reserve(&self, ip: IpAddr, now: Instant) -> Result<LoginAttempt, RetryAfter> {
        let key = ip.to_canonical();
        let mut clients = self.lock();
        if let Some(failures) = clients.get_mut(&key) {
            self.expire(failures, now);
            if let Some(&oldest) = failures.front() {
                if failures.len() >= self.max_failures {
                    let elapsed = now.saturating_duration_since(oldest);
                    return Err(RetryAfter::rounded_up(self.window.saturating_sub(elapsed)));
                }
            }
        } else if clients.len() >= self.max_clients {
            self.make_room(&mut clients, now);
        }
        let failures = clients.entry(key).or_default();
        // Kept sorted even when callers pass times out of order, so the front is always the
        // oldest attempt.
        let at = failures.partition_point(|&t| t <= now);
        failures.insert(at, now);
        Ok(LoginAttempt { key, at: now })
    }

    /// Hands back an attempt whose password was never checked (the server was too busy to
    /// verify it), so it does not count against the client.
    pub fn release(&self, attempt: LoginAttempt) {
        let mut clients = self.lock();
        let Some(failures) = clients.get_mut(&attempt.key) else {
            return; // a success forgave it already
        };
        if let Some(i) = failures.iter().position(|&t| t == attempt.at) {
            failures.remove(i);
        }
        if failures.is_empty() {
            clients.remove(&attempt.key);
        }
    }

    /// Records a successful login from `ip`: its failures (and attempts still in flight) are
    /// forgotten.
    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&ip.to_canonical());
    }

    /// Locks the map. A panic elsewhere while holding the lock cannot leave it inconsistent in a
    /// way that matters (at worst one client's list is short a timestamp), so poisoning is
    /// ignored rather than turning every later login into a panic.
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops failures that are at least `window` old. Timestamps are kept sorted, so expired
    /// ones are at the front; a `now` earlier than a stored time counts as no time elapsed.
    fn expire(&self, failures: &mut VecDeque<Instant>, now: Instant) {
        while failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            failures.pop_front();
        }
    }

    /// Frees at least one slot in a full map: prunes clients whose failures have all expired,
    /// else evicts the client whose latest failure is oldest.
    fn make_room(&self, clients: &mut HashMap<IpAddr, VecDeque<Instant>>, now: Instant) {
        clients.retain(|_, failures| {
            failures
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < self.window)
        });
        if clients.len() < self.max_clients {
            return;
        }
        let stalest = clients
            .iter()
            .min_by_key(|(_, failures)| failures.back().copied())
            .map(|(&ip, _)| ip);
        if let Some(ip) = stalest {
            clients.remove(&ip);
        }
    }
}

impl Default for LoginLimiter {
    /// [`DEFAULT_MAX_FAILURES`] failures per [`DEFAULT_WINDOW`]: 5 per 60 s.
    fn default() -> Self {
        LoginLimiter::new(DEFAULT_MAX_FAILURES, DEFAULT_WINDOW)
    }
}

impl fmt::Debug for LoginLimiter {
    /// Shows the configuration and the number of tracked clients, not their addresses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("tracked_clients", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MINUTE: Duration = Duration::from_secs(60);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn tracked(limiter: &LoginLimiter) -> usize {
        limiter.lock().len()
    }

    /// Reserves `n` attempts one second apart starting at `start`, each left as a failure.
    fn fail_n(limiter: &LoginLimiter, ip: IpAddr, start: Instant, n: u64) {
        for i in 0..n {
            let attempt = limiter.reserve(ip, start + secs(i));
            assert!(attempt.is_ok(), "attempt {}", i + 1);
        }
    }

    /// Whether `ip` could reserve at `now`, without keeping the reservation.
    fn allowed(limiter: &LoginLimiter, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        limiter.reserve(ip, now).map(|a| limiter.release(a))
    }

    #[test]
    fn allows_max_failures_then_blocks_with_retry_after() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 3);
        // Oldest failure at t0 expires at t0 + 60 s; it is now t0 + 3 s.
        let err = limiter.reserve(ip(1), t0 + secs(3)).unwrap_err();
        assert_eq!(err, RetryAfter(secs(57)));
        assert_eq!(err.as_secs(), 57);
        assert_eq!(err.code(), "RATE_LIMITED");
        assert_eq!(err.to_string(), "too many failed logins; retry in 57 s");
        // Still blocked just before the window ends, and refusals record nothing.
        assert!(limiter.reserve(ip(1), t0 + secs(59)).is_err());
        assert_eq!(limiter.lock()[&ip(1)].len(), 3);
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let limiter = LoginLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        let _ = limiter.reserve(ip(1), t0).unwrap();
        let at = |d: Duration| limiter.reserve(ip(1), t0 + d).unwrap_err();
        assert_eq!(at(Duration::from_millis(500)), RetryAfter(secs(60)));
        assert_eq!(at(Duration::from_millis(58_001)), RetryAfter(secs(2)));
        assert_eq!(at(Duration::from_millis(59_999)), RetryAfter(secs(1)));
        assert_eq!(RetryAfter::rounded_up(Duration::ZERO), RetryAfter(secs(1)));
    }

    #[test]
    fn unblocks_after_the_window() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 3);
        assert!(limiter.reserve(ip(1), t0 + secs(30)).is_err());
        // Sliding: the t0 failure has aged out, so one attempt is back...
        let _ = limiter.reserve(ip(1), t0 + secs(60)).unwrap();
        // ...and failing it blocks again until the t0 + 1 s failure ages out.
        assert_eq!(
            limiter.reserve(ip(1), t0 + secs(60)),
            Err(RetryAfter(secs(1)))
        );
        // Once every failure is a window old the client is forgotten.
        assert_eq!(allowed(&limiter, ip(1), t0 + secs(120)), Ok(()));
        assert_eq!(tracked(&limiter), 0);
    }

    #[test]
    fn failures_spread_beyond_the_window_never_block() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(
                limiter.reserve(ip(1), t0 + secs(31 * i)).is_ok(),
                "attempt {i}"
            );
        }
    }

    #[test]
    fn success_clears_the_client() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 2);
        let _ = limiter.reserve(ip(1), t0 + secs(2)).unwrap();
        // The third attempt was the right password: everything is forgiven.
        limiter.record_success(ip(1));
        assert_eq!(tracked(&limiter), 0);
        // A full allowance again.
        fail_n(&limiter, ip(1), t0 + secs(2), 3);
        assert!(limiter.reserve(ip(1), t0 + secs(5)).is_err());
    }

    #[test]
    fn a_released_attempt_does_not_count() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        let first = limiter.reserve(ip(1), t0).unwrap();
        let second = limiter.reserve(ip(1), t0).unwrap();
        assert!(limiter.reserve(ip(1), t0).is_err(), "both in flight count");
        // Two reservations at the same instant: releasing one leaves the other.
        limiter.release(second);
        assert_eq!(limiter.lock()[&ip(1)].len(), 1);
        let third = limiter.reserve(ip(1), t0 + secs(1)).unwrap();
        limiter.release(first);
        limiter.release(third);
        assert_eq!(tracked(&limiter), 0, "an empty client is dropped");
        // Releasing after a success forgave everything is harmless.
        let late = limiter.reserve(ip(1), t0).unwrap();
        limiter.record_success(ip(1));
        limiter.release(late);
        assert_eq!(tracked(&limiter), 0);
    }

    #[test]
    fn clients_are_independent() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 2);
        assert!(limiter.reserve(ip(1), t0 + secs(2)).is_err());
        assert_eq!(allowed(&limiter, ip(2), t0 + secs(2)), Ok(()));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(allowed(&limiter, v6, t0 + secs(2)), Ok(()));
        limiter.record_success(ip(2));
        assert!(limiter.reserve(ip(1), t0 + secs(2)).is_err());
    }

    #[test]
    fn ipv4_mapped_ipv6_shares_the_ipv4_allowance() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        let _ = limiter.reserve(ip(1), t0).unwrap();
        let _ = limiter.reserve(mapped, t0).unwrap();
        assert!(limiter.reserve(ip(1), t0).is_err());
        assert!(limiter.reserve(mapped, t0).is_err());
        limiter.record_success(mapped);
        assert_eq!(allowed(&limiter, ip(1), t0), Ok(()));
    }

    #[test]
    fn default_is_five_failures_per_minute() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 5);
        assert_eq!(
            limiter.reserve(ip(1), t0 + secs(5)),
            Err(RetryAfter(secs(55)))
        );
    }

    #[test]
    fn zero_max_failures_still_allows_one_attempt() {
        let limiter = LoginLimiter::new(0, MINUTE);
        let t0 = Instant::now();
        let _ = limiter.reserve(ip(1), t0).unwrap();
        assert!(limiter.reserve(ip(1), t0).is_err());
    }

    #[test]
    fn expired_clients_are_pruned_when_the_map_is_full() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_CLIENTS {
            let v6 = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128));
            let _ = limiter.reserve(v6, t0).unwrap();
        }
        assert_eq!(tracked(&limiter), MAX_TRACKED_CLIENTS);
        // A new client after everyone's window has passed: all old entries go.
        let _ = limiter.reserve(ip(1), t0 + MINUTE).unwrap();
        assert_eq!(tracked(&limiter), 1);
    }

    #[test]
    fn map_stays_bounded_when_every_client_is_active() {
        let mut limiter = LoginLimiter::new(1, MINUTE);
        limiter.max_clients = 3;
        let t0 = Instant::now();
        for last in 1..=3 {
            let _ = limiter
                .reserve(ip(last), t0 + secs(u64::from(last)))
                .unwrap();
        }
        // Nobody has expired: the client whose last attempt is oldest (ip 1) makes way.
        let _ = limiter.reserve(ip(4), t0 + secs(4)).unwrap();
        assert_eq!(tracked(&limiter), 3);
        assert!(!limiter.lock().contains_key(&ip(1)));
        for last in 2..=4 {
            assert!(
                limiter.reserve(ip(last), t0 + secs(4)).is_err(),
                "ip {last}"
            );
        }
    }

    #[test]
    fn out_of_order_attempts_are_kept_sorted() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        let _ = limiter.reserve(ip(1), t0 + secs(5)).unwrap();
        let _ = limiter.reserve(ip(1), t0).unwrap();
        // The oldest attempt (t0) decides the wait, whatever the recording order.
        assert_eq!(
            limiter.reserve(ip(1), t0 + secs(5)),
            Err(RetryAfter(secs(55)))
        );
    }

    #[test]
    fn now_before_a_recorded_attempt_does_not_panic() {
        let limiter = LoginLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        let _ = limiter.reserve(ip(1), t0 + secs(10)).unwrap();
        assert_eq!(limiter.reserve(ip(1), t0), Err(RetryAfter(MINUTE)));
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        // The bug this pins: with check and record as two steps, simultaneous guesses all
        // passed the check. 8 threads x 100 reservations against a limit of 37.
        let limiter = std::sync::Arc::new(LoginLimiter::new(37, MINUTE));
        let t0 = Instant::now();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, barrier) = (limiter.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..100)
                        .filter(|_| limiter.reserve(ip(1), t0).is_ok())
                        .count()
                })
            })
            .collect();
        let granted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(granted, 37);
        assert_eq!(limiter.lock()[&ip(1)].len(), 37);
    }

    #[test]
    fn debug_shows_no_addresses() {
        let limiter = LoginLimiter::default();
        let _ = limiter.reserve(ip(9), Instant::now()).unwrap();
        let shown = format!("{limiter:?}");
        assert!(shown.contains("tracked_clients: 1"), "{shown}");
        assert!(!shown.contains("192.0.2.9"), "{shown}");
    }
}
