//! Who may use the server: the admin login, sessions and API tokens ([`Auth`]), the credential
//! a request presents ([`cookies`]), and the end of long-lived streams when that credential
//! ends ([`until_credential_ends`]).
//!
//! Shared by the REST API (`http`) and the dashboard (`web`), which reach it through the
//! application state; it knows no routes and no HTTP status. Its failures are its own
//! ([`AccessError`]), turned into answers in the one HTTP error mapping. The cryptography
//! (argon2, token format, rate limits) lives in [`crate::auth`]; this module only uses it.
//!
//! Only hashes of tokens are stored, so a copy of the database lets nobody in. Sessions live
//! in SQLite and survive a restart; failed logins are rate-limited per client address and
//! password checks go through a bounded queue. Every revocation goes through [`Auth`], which
//! lets long-lived streams notice it.

pub mod cookies;
mod session_cache;
mod stream;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use cookies::{
    CSRF_HEADER, Carrier, SESSION_COOKIE, cookie, csrf_matches, csrf_token_for,
    presented_credential, session_cookie,
};
pub use stream::until_credential_ends;

use crate::auth::{
    API_TOKEN_PREFIX, BUSY_RETRY_AFTER, LoginLimiter, SESSION_TOKEN_PREFIX, Token, VerifyQueue,
    hash_token,
};
use crate::store::{Store, StoreError};

/// Default lifetime of a login session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a long-lived stream re-checks its credential: a stream ends within about this
/// long of a revoke, logout or expiry.
pub const CREDENTIAL_RECHECK: Duration = Duration::from_secs(2);

/// Why a login or a credential check failed. Each variant is something the caller can act on;
/// the HTTP layer maps them to statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// This client has used up its failed logins for now.
    #[error("too many failed logins; try again in {} s", retry_after.as_secs())]
    RateLimited {
        /// How long until the next attempt is accepted.
        retry_after: Duration,
    },
    /// Too many passwords are being checked at once (argon2 is slow on purpose).
    #[error("{0}")]
    LoginBusy(crate::auth::VerifyBusy),
    /// The password is wrong.
    #[error("invalid password")]
    InvalidPassword,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccessError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::LoginBusy(busy) => busy.code(),
            Self::InvalidPassword => "INVALID_PASSWORD",
            Self::Store(_) => "INTERNAL",
        }
    }

    /// Seconds a client should wait before trying again, when waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::LoginBusy(_) => Some(BUSY_RETRY_AFTER),
            Self::InvalidPassword | Self::Store(_) => None,
        }
    }
}

/// How [`Auth`] is set up.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Users reach the server over https (`--public-url https://…`): cookies are `Secure`.
    pub public_https: bool,
    /// A reverse proxy in front sets `X-Forwarded-Proto` and `X-Forwarded-For`; believe them.
    pub trust_proxy: bool,
    /// Where a generated admin password is saved (`<data dir>/admin-password`), for the login
    /// page's first-run hint.
    pub password_file: Option<std::path::PathBuf>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl: DEFAULT_SESSION_TTL,
            public_https: false,
            trust_proxy: false,
            password_file: None,
        }
    }
}

/// Authentication state shared by the API and the dashboard.
pub struct Auth {
    store: Store,
    password_hash: String,
    limiter: LoginLimiter,
    queue: VerifyQueue,
    settings: AuthSettings,
    /// Bumped after every revocation (logout, token revoke). A stream whose credential was
    /// checked at the current value needs no database lookup to know it is still valid.
    revocations: AtomicU64,
    /// Sessions found valid at the current revocation count (see `session_cache.rs`).
    sessions: session_cache::SessionCache,
    /// Becomes `true` when the server shuts down: open streams end then, since a graceful
    /// shutdown waits for every response to finish and a stream never would.
    closing: watch::Sender<bool>,
}

/// A request's credential as [`Auth::authenticate`] found it: who, until when, and the
/// revocation count it was checked at, so a stream can re-check it cheaply
/// ([`Auth::recheck`]).
#[derive(Debug, Clone)]
pub struct Credential {
    /// Who presented it.
    pub principal: Principal,
    token_hash: String,
    expires_at: Option<DateTime<Utc>>,
    checked_at: u64,
}

impl Auth {
    /// Checks logins against `password_hash` (argon2 PHC string).
    pub fn new(store: Store, password_hash: String, settings: AuthSettings) -> Self {
        Self {
            store,
            password_hash,
            limiter: LoginLimiter::default(),
            queue: VerifyQueue::default(),
            settings,
            revocations: AtomicU64::new(0),
            sessions: session_cache::SessionCache::default(),
            closing: watch::Sender::new(false),
        }
    }

    /// Verifies the admin password and, if right, opens a session: its token and when it
    /// expires. Refused when the client has used up its guesses ([`AccessError::RateLimited`]),
    /// when the verification queue is full ([`AccessError::LoginBusy`]) and for a wrong
    /// password.
    ///
    /// The attempt is reserved with the limiter *before* argon2 runs, so concurrent guesses
    /// cannot all slip past the limit; a success forgives it, a full queue hands it back.
    ///
    /// Every attempt, whichever front end it came through, is recorded in the audit log with
    /// the client's address and how it ended.
    pub async fn login(
        &self,
        ip: IpAddr,
        password: &str,
    ) -> Result<(Token, DateTime<Utc>), AccessError> {
        let result = self.try_login(ip, password).await;
        crate::audit::AuditLog::new(self.store.clone())
            .record(crate::audit::Change {
                actor: crate::audit::Actor::Anonymous,
                action: "login".into(),
                bot_id: None,
                target: None,
                error: result.as_ref().err().map(|e| e.code().to_string()),
                status: 0,
                client: Some(ip.to_string()),
            })
            .await;
        result
    }

    async fn try_login(
        &self,
        ip: IpAddr,
        password: &str,
    ) -> Result<(Token, DateTime<Utc>), AccessError> {
        let attempt =
            self.limiter
                .reserve(ip, Instant::now())
                .map_err(|retry| AccessError::RateLimited {
                    retry_after: Duration::from_secs(retry.as_secs()),
                })?;
        let ok = match self
            .queue
            .verify(password.to_string(), self.password_hash.clone())
            .await
        {
            Ok(ok) => ok,
            Err(busy) => {
                self.limiter.release(attempt);
                tracing::debug!(client = %ip, "login turned away: verification queue full");
                return Err(AccessError::LoginBusy(busy));
            }
        };
        if !ok {
            // The reserved attempt stays as the recorded failure.
            let _ = attempt;
            tracing::warn!(client = %ip, "failed login");
            return Err(AccessError::InvalidPassword);
        }
        self.limiter.record_success(ip);
        let token = Token::generate(SESSION_TOKEN_PREFIX);
        let now = Utc::now();
        let expires_at = now
            + chrono::Duration::from_std(self.settings.session_ttl)
                .unwrap_or(chrono::Duration::days(1));
        self.store
            .insert_session(&hash_token(token.as_str()), now, expires_at)
            .await?;
        Ok((token, expires_at))
    }

    /// Who presents `token`, if anyone.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, AccessError> {
        // Read before the lookup: a revocation that the lookup misses bumps it afterwards.
        let checked_at = self.revocations.load(Ordering::SeqCst);
        let hash = hash_token(token);
        if token.starts_with(SESSION_TOKEN_PREFIX) {
            let expires_at = match self.sessions.get(&hash, checked_at, Utc::now()) {
                Some(exp) => Some(exp),
                None => {
                    let found = self
                        .store
                        .session_expiry(&hash)
                        .await?
                        .filter(|exp| *exp > Utc::now());
                    if let Some(exp) = found {
                        self.sessions.insert(&hash, exp, checked_at);
                    }
                    found
                }
            };
            return Ok(expires_at.map(|exp| Credential {
                principal: Principal::Session { hash: hash.clone() },
                token_hash: hash,
                expires_at: Some(exp),
                checked_at,
            }));
        }
        if token.starts_with(API_TOKEN_PREFIX) {
            return Ok(self.store.find_api_token(&hash).await?.map(|t| Credential {
                principal: Principal::ApiToken { id: t.id },
                token_hash: hash,
                expires_at: None,
                checked_at,
            }));
        }
        Ok(None)
    }

    /// Whether `credential` is still valid. Cheap: the clock decides expiry, and the database
    /// is asked only if something was revoked since the credential was last checked.
    pub async fn recheck(&self, credential: &mut Credential) -> Result<bool, AccessError> {
        if credential.expires_at.is_some_and(|exp| exp <= Utc::now()) {
            return Ok(false);
        }
        let now_at = self.revocations.load(Ordering::SeqCst);
        if now_at == credential.checked_at {
            return Ok(true);
        }
        let valid = match credential.principal {
            Principal::Session { .. } => self
                .store
                .session_expiry(&credential.token_hash)
                .await?
                .is_some_and(|exp| exp > Utc::now()),
            Principal::ApiToken { .. } => {
                self.store.api_token_exists(&credential.token_hash).await?
            }
        };
        credential.checked_at = now_at;
        Ok(valid)
    }

    /// Resolves when `credential` stops being valid (revoked, logged out, expired; a failed
    /// check counts as invalid) or the server shuts down, re-checking every
    /// [`CREDENTIAL_RECHECK`].
    pub async fn ended(&self, mut credential: Credential) -> StreamEnd {
        let mut closing = self.closing.subscribe();
        loop {
            tokio::select! {
                _ = closing.wait_for(|c| *c) => return StreamEnd::ShuttingDown,
                () = tokio::time::sleep(CREDENTIAL_RECHECK) => {}
            }
            match self.recheck(&mut credential).await {
                Ok(true) => {}
                Ok(false) => return StreamEnd::Unauthorized,
                Err(e) => {
                    tracing::warn!(error = %e, "stream credential check failed; ending the stream");
                    return StreamEnd::Unauthorized;
                }
            }
        }
    }

    /// Ends every open stream: the server is shutting down.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Ends the session with this token hash (logout). Returns `false` if there was none.
    pub async fn end_session(&self, hash: &str) -> Result<bool, AccessError> {
        let ended = self.store.delete_session(hash).await?;
        self.revocations.fetch_add(1, Ordering::SeqCst);
        Ok(ended)
    }

    /// Revokes the API token with this id. Returns `false` if there was none.
    pub async fn revoke_api_token(&self, id: &str) -> Result<bool, AccessError> {
        let revoked = self.store.delete_api_token(id).await?;
        self.revocations.fetch_add(1, Ordering::SeqCst);
        Ok(revoked)
    }

    /// Whether cookies set in answer to a request with these headers must be `Secure`: the
    /// public URL is https, or a trusted proxy says the client used https.
    pub fn secure_cookies(&self, headers: &HeaderMap) -> bool {
        self.settings.public_https
            || (self.settings.trust_proxy
                && last_forwarded(headers, "x-forwarded-proto")
                    .is_some_and(|p| p.eq_ignore_ascii_case("https")))
    }

    /// The file a generated admin password is saved in, as the login page names it.
    pub fn password_file_hint(&self) -> String {
        self.settings.password_file.as_ref().map_or_else(
            || "<data dir>/admin-password".into(),
            |p| p.display().to_string(),
        )
    }

    /// Whether the `X-Forwarded-*` headers of a proxy in front are believed
    /// (`--trust-proxy`).
    pub fn trusts_proxy(&self) -> bool {
        self.settings.trust_proxy
    }

    /// How many login passwords have been put through argon2 (refused or turned-away logins
    /// cost none): for tests and diagnostics.
    pub fn password_verifications(&self) -> u64 {
        self.queue.verifications()
    }
}

/// Why a stream ended before its client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Its credential was revoked, logged out or expired.
    Unauthorized,
    /// The server is shutting down.
    ShuttingDown,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in session (hash of its token).
    Session {
        /// SHA-256 of the session token.
        hash: String,
    },
    /// A named API token (Bearer), which carries no CSRF duty.
    ApiToken {
        /// The token's id.
        id: String,
    },
}

/// How the server log names who made a change: `token:<id>` for an API token,
/// `session:<8 hex>` for a login session (the start of its token's hash: enough to tell
/// sessions apart, of no use to a reader of the log).
impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session { hash } => write!(f, "session:{}", hash.get(..8).unwrap_or(hash)),
            Self::ApiToken { id } => write!(f, "token:{id}"),
        }
    }
}

/// The last comma-separated entry of header `name` over all its lines: the one the nearest
/// proxy wrote (only meaningful with `--trust-proxy`).
pub fn last_forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_error_codes_are_stable() {
        let limited = AccessError::RateLimited {
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(limited.code(), "RATE_LIMITED");
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(AccessError::InvalidPassword.code(), "INVALID_PASSWORD");
        assert_eq!(AccessError::InvalidPassword.retry_after(), None);
    }
}
