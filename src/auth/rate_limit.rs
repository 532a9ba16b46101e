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

/// Limits failed logins per client IP address: at most `max_failures` in any `window`.
///
/// Use it around the password check:
///
/// ```
/// # use std::{net::IpAddr, time::Instant};
/// # use botmaker::auth::LoginLimiter;
/// # let limiter = LoginLimiter::default();
/// # let ip: IpAddr = "192.0.2.7".parse().unwrap();
/// # let password_ok = false;
/// let now = Instant::now();
/// limiter.check(ip, now)?; // before verifying: a refused client costs no argon2 work
/// if password_ok {
///     limiter.record_success(ip);
/// } else {
///     limiter.record_failure(ip, now);
/// }
/// # Ok::<(), botmaker::auth::RetryAfter>(())
/// ```
///
/// **Sliding window.** Each client keeps the times of its last `max_failures` failures (never
/// more). A client is refused while the oldest of those is younger than `window`, and the
/// `Retry-After` is exactly when it ages out. So the bound holds over *every* stretch of `window`
/// length, unlike a fixed window, where a client can spend its allowance at the end of one window
/// and again at the start of the next. A client that keeps guessing after being blocked regains
/// one attempt each time an old failure expires, never a fresh burst. The cost is
/// `max_failures` timestamps per client instead of one counter, which is small.
///
/// **Memory bound.** At most [`MAX_TRACKED_CLIENTS`] clients are tracked. When a failure comes
/// from a new client and the map is full, clients whose failures have all expired are pruned
/// first; if every tracked client is still inside its window (thousands of addresses guessing at
/// once), the client whose last failure is oldest is evicted. Memory therefore stays bounded
/// whatever the traffic, at the price that an attacker controlling more than
/// [`MAX_TRACKED_CLIENTS`] addresses can push entries out; per-IP limiting cannot stop such an
/// attacker anyway. Each prune is a scan of the map under the lock, which only happens when it is
/// full and is cheap next to the argon2 verification every failure has already paid for. Clients
/// that succeed, and clients whose failures expire when they next call [`LoginLimiter::check`],
/// are removed at once.
///
/// **Keys.** The key is the client's address with IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.7`) folded into IPv4, so a dual-stack listener does not give each client two
/// allowances. Other IPv6 addresses are keyed in full; a client owning a whole /64 can rotate
/// addresses, which is another reason argon2 keeps every guess expensive.
///
/// **Concurrency.** All methods take `&self` and a [`Mutex`] guards the map, so one limiter can
/// be shared through an `Arc`. The lock is never held across I/O or an `.await`. `check` and
/// `record_failure` are separate calls, so requests from one client that arrive together can all
/// pass `check` before the first failure is recorded; bound concurrent logins in the HTTP layer if
/// that matters.
///
/// Time is passed in as `now` rather than read inside, so tests are deterministic without sleeps.
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

    /// Whether `ip` may try to log in at `now`. Call it *before* verifying the password.
    ///
    /// Returns [`RetryAfter`] when the client already has `max_failures` failures inside the
    /// window; the wait is until the oldest of them expires.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let key = ip.to_canonical();
        let mut clients = self.lock();
        let Some(failures) = clients.get_mut(&key) else {
            return Ok(());
        };
        self.expire(failures, now);
        match failures.front() {
            None => {
                clients.remove(&key);
                Ok(())
            }
            Some(&oldest) if failures.len() >= self.max_failures => {
                let elapsed = now.saturating_duration_since(oldest);
                Err(RetryAfter::rounded_up(self.window.saturating_sub(elapsed)))
            }
            Some(_) => Ok(()),
        }
    }

    /// Records a failed login from `ip` at `now`.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let key = ip.to_canonical();
        let mut clients = self.lock();
        if !clients.contains_key(&key) && clients.len() >= self.max_clients {
            self.make_room(&mut clients, now);
        }
        let failures = clients.entry(key).or_default();
        self.expire(failures, now);
        // Kept sorted even when concurrent requests record out of order (each read the clock
        // before its argon2 check), so the front is always the oldest failure.
        let at = failures.partition_point(|&t| t <= now);
        failures.insert(at, now);
        // Only the newest `max_failures` matter to `check`; older ones would only cost memory.
        while failures.len() > self.max_failures {
            failures.pop_front();
        }
    }

    /// Records a successful login from `ip`: its failures are forgotten.
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

    /// Records `n` failures one second apart starting at `start`, each after a passing check.
    fn fail_n(limiter: &LoginLimiter, ip: IpAddr, start: Instant, n: u64) {
        for i in 0..n {
            let now = start + secs(i);
            assert_eq!(limiter.check(ip, now), Ok(()), "attempt {}", i + 1);
            limiter.record_failure(ip, now);
        }
    }

    #[test]
    fn allows_max_failures_then_blocks_with_retry_after() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 3);
        // Oldest failure at t0 expires at t0 + 60 s; it is now t0 + 3 s.
        let err = limiter.check(ip(1), t0 + secs(3)).unwrap_err();
        assert_eq!(err, RetryAfter(secs(57)));
        assert_eq!(err.as_secs(), 57);
        assert_eq!(err.code(), "RATE_LIMITED");
        assert_eq!(err.to_string(), "too many failed logins; retry in 57 s");
        // Still blocked just before the window ends.
        assert!(limiter.check(ip(1), t0 + secs(59)).is_err());
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let limiter = LoginLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        limiter.record_failure(ip(1), t0);
        let at = |d: Duration| limiter.check(ip(1), t0 + d).unwrap_err();
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
        assert!(limiter.check(ip(1), t0 + secs(30)).is_err());
        // Sliding: the t0 failure has aged out, so one attempt is back...
        assert_eq!(limiter.check(ip(1), t0 + secs(60)), Ok(()));
        limiter.record_failure(ip(1), t0 + secs(60));
        // ...and failing it blocks again until the t0 + 1 s failure ages out.
        assert_eq!(
            limiter.check(ip(1), t0 + secs(60)),
            Err(RetryAfter(secs(1)))
        );
        // Once every failure is a window old the client is forgotten.
        assert_eq!(limiter.check(ip(1), t0 + secs(120)), Ok(()));
        assert_eq!(tracked(&limiter), 0);
    }

    #[test]
    fn failures_spread_beyond_the_window_never_block() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        for i in 0..10 {
            let now = t0 + secs(31 * i);
            assert_eq!(limiter.check(ip(1), now), Ok(()), "attempt {i}");
            limiter.record_failure(ip(1), now);
        }
    }

    #[test]
    fn success_clears_the_client() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 2);
        limiter.record_success(ip(1));
        assert_eq!(tracked(&limiter), 0);
        // A full allowance again.
        fail_n(&limiter, ip(1), t0 + secs(2), 3);
        assert!(limiter.check(ip(1), t0 + secs(5)).is_err());
    }

    #[test]
    fn clients_are_independent() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 2);
        assert!(limiter.check(ip(1), t0 + secs(2)).is_err());
        assert_eq!(limiter.check(ip(2), t0 + secs(2)), Ok(()));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(limiter.check(v6, t0 + secs(2)), Ok(()));
        limiter.record_success(ip(2));
        assert!(limiter.check(ip(1), t0 + secs(2)).is_err());
    }

    #[test]
    fn ipv4_mapped_ipv6_shares_the_ipv4_allowance() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        limiter.record_failure(ip(1), t0);
        limiter.record_failure(mapped, t0);
        assert!(limiter.check(ip(1), t0).is_err());
        assert!(limiter.check(mapped, t0).is_err());
        limiter.record_success(mapped);
        assert_eq!(limiter.check(ip(1), t0), Ok(()));
    }

    #[test]
    fn default_is_five_failures_per_minute() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        fail_n(&limiter, ip(1), t0, 5);
        assert_eq!(
            limiter.check(ip(1), t0 + secs(5)),
            Err(RetryAfter(secs(55)))
        );
    }

    #[test]
    fn zero_max_failures_still_allows_one_attempt() {
        let limiter = LoginLimiter::new(0, MINUTE);
        let t0 = Instant::now();
        assert_eq!(limiter.check(ip(1), t0), Ok(()));
        limiter.record_failure(ip(1), t0);
        assert!(limiter.check(ip(1), t0).is_err());
    }

    #[test]
    fn stores_at_most_max_failures_timestamps_per_client() {
        let limiter = LoginLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        for i in 0..100 {
            limiter.record_failure(ip(1), t0 + Duration::from_millis(i));
        }
        assert_eq!(limiter.lock()[&ip(1)].len(), 3);
    }

    #[test]
    fn expired_clients_are_pruned_when_the_map_is_full() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_CLIENTS {
            let v6 = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128));
            limiter.record_failure(v6, t0);
        }
        assert_eq!(tracked(&limiter), MAX_TRACKED_CLIENTS);
        // A new client after everyone's window has passed: all old entries go.
        limiter.record_failure(ip(1), t0 + MINUTE);
        assert_eq!(tracked(&limiter), 1);
    }

    #[test]
    fn map_stays_bounded_when_every_client_is_active() {
        let mut limiter = LoginLimiter::new(1, MINUTE);
        limiter.max_clients = 3;
        let t0 = Instant::now();
        for last in 1..=3 {
            limiter.record_failure(ip(last), t0 + secs(u64::from(last)));
        }
        // Nobody has expired: the client whose last failure is oldest (ip 1) makes way.
        limiter.record_failure(ip(4), t0 + secs(4));
        assert_eq!(tracked(&limiter), 3);
        assert_eq!(limiter.check(ip(1), t0 + secs(4)), Ok(()));
        for last in 2..=4 {
            assert!(limiter.check(ip(last), t0 + secs(4)).is_err(), "ip {last}");
        }
        // A known client's failure never evicts anyone.
        limiter.record_failure(ip(2), t0 + secs(5));
        assert_eq!(tracked(&limiter), 3);
        assert!(limiter.check(ip(3), t0 + secs(5)).is_err());
    }

    #[test]
    fn out_of_order_failures_are_kept_sorted() {
        let limiter = LoginLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        limiter.record_failure(ip(1), t0 + secs(5));
        limiter.record_failure(ip(1), t0);
        // The oldest failure (t0) decides the wait, whatever the recording order.
        assert_eq!(
            limiter.check(ip(1), t0 + secs(5)),
            Err(RetryAfter(secs(55)))
        );
    }

    #[test]
    fn now_before_a_recorded_failure_does_not_panic() {
        let limiter = LoginLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        limiter.record_failure(ip(1), t0 + secs(10));
        assert_eq!(limiter.check(ip(1), t0), Err(RetryAfter(MINUTE)));
    }

    #[test]
    fn shared_across_threads() {
        let limiter = std::sync::Arc::new(LoginLimiter::new(1000, MINUTE));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        limiter.record_failure(ip(1), t0);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(limiter.lock()[&ip(1)].len(), 800);
    }

    #[test]
    fn debug_shows_no_addresses() {
        let limiter = LoginLimiter::default();
        limiter.record_failure(ip(9), Instant::now());
        let shown = format!("{limiter:?}");
        assert!(shown.contains("tracked_clients: 1"), "{shown}");
        assert!(!shown.contains("192.0.2.9"), "{shown}");
    }
}
