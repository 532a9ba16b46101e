//! Login, sessions, API tokens, and the middleware that guards every other `/api/*` route.
//!
//! Only hashes of tokens are stored, so a copy of the database lets nobody in. Sessions live
//! in SQLite and survive a restart; failed logins are rate-limited per client address and
//! password checks go through a bounded queue. Every revocation goes through [`Auth`], which
//! lets long-lived streams notice it (see [`super::stream_auth`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::AppState;
use super::error::{ApiError, ApiJson, ApiPath};
use crate::auth::{
    API_TOKEN_PREFIX, BUSY_RETRY_AFTER, LoginLimiter, SESSION_TOKEN_PREFIX, Token, VerifyQueue,
    hash_token, new_id,
};
use crate::bots::FieldErrors;
use crate::store::Store;

/// Default lifetime of a login session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "botmaker_session";
/// How often a long-lived stream re-checks its credential: a stream ends within about this
/// long of a revoke, logout or expiry.
pub const CREDENTIAL_RECHECK: Duration = Duration::from_secs(2);

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

/// Authentication state shared by the handlers.
pub struct Auth {
    store: Store,
    password_hash: String,
    limiter: LoginLimiter,
    queue: VerifyQueue,
    settings: AuthSettings,
    /// Bumped after every revocation (logout, token revoke). A stream whose credential was
    /// checked at the current value needs no database lookup to know it is still valid.
    revocations: AtomicU64,
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
            closing: watch::Sender::new(false),
        }
    }

    /// Verifies the admin password and, if right, opens a session. `Err` carries the answer
    /// to give: 429 when the client has used up its guesses, 503 when the verification queue
    /// is full, 401 for a wrong password.
    ///
    /// The attempt is reserved with the limiter *before* argon2 runs, so concurrent guesses
    /// cannot all slip past the limit; a success forgives it, a full queue hands it back.
    pub async fn login(
        &self,
        ip: IpAddr,
        password: &str,
    ) -> Result<(Token, DateTime<Utc>), ApiError> {
        let attempt = self
            .limiter
            .reserve(ip, Instant::now())
            .map_err(|retry| ApiError::rate_limited(retry.as_secs()))?;
        let ok = match self
            .queue
            .verify(password.to_string(), self.password_hash.clone())
            .await
        {
            Ok(ok) => ok,
            Err(busy) => {
                self.limiter.release(attempt);
                tracing::debug!(client = %ip, "login turned away: verification queue full");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    busy.code(),
                    busy.to_string(),
                )
                .with_retry_after(BUSY_RETRY_AFTER.as_secs()));
            }
        };
        if !ok {
            // The reserved attempt stays as the recorded failure.
            let _ = attempt;
            tracing::warn!(client = %ip, "failed login");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_PASSWORD",
                "invalid password",
            ));
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
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, ApiError> {
        // Read before the lookup: a revocation that the lookup misses bumps it afterwards.
        let checked_at = self.revocations.load(Ordering::SeqCst);
        let hash = hash_token(token);
        if token.starts_with(SESSION_TOKEN_PREFIX) {
            let expires_at = self
                .store
                .session_expiry(&hash)
                .await?
                .filter(|exp| *exp > Utc::now());
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
    pub async fn recheck(&self, credential: &mut Credential) -> Result<bool, ApiError> {
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
                    tracing::warn!(error = ?e, "stream credential check failed; ending the stream");
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
    pub async fn end_session(&self, hash: &str) -> Result<bool, ApiError> {
        let ended = self.store.delete_session(hash).await?;
        self.revocations.fetch_add(1, Ordering::SeqCst);
        Ok(ended)
    }

    /// Revokes the API token with this id. Returns `false` if there was none.
    pub async fn revoke_api_token(&self, id: &str) -> Result<bool, ApiError> {
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
    /// An API token.
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

/// The client's address: the peer of the connection (unspecified when the server was not
/// told, e.g. in-process tests), or with `--trust-proxy` the last `X-Forwarded-For` entry,
/// the one the proxy appended. Without `--trust-proxy` the header is ignored: any client can
/// send one, and believing it would let each guess come from a new "client".
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = state
            .auth
            .settings
            .trust_proxy
            .then(|| last_forwarded(&parts.headers, "x-forwarded-for"))
            .flatten()
            .and_then(|v| {
                v.parse::<IpAddr>()
                    .ok()
                    .or_else(|| v.parse::<SocketAddr>().ok().map(|a| a.ip()))
            });
        Ok(Self(forwarded.unwrap_or(peer)))
    }
}

/// The last comma-separated entry of header `name` over all its lines: the one the nearest
/// proxy wrote.
fn last_forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

/// The bearer token of a request: `Authorization: Bearer <token>`, or the dashboard's cookie.
pub fn presented_token(parts: &axum::http::HeaderMap) -> Option<String> {
    presented_credential(parts).map(|(token, _)| token)
}

/// Where a request's token came from: the cookie is sent by the browser on its own, so only a
/// cookie-borne credential needs CSRF protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Header,
    Cookie,
}

fn presented_credential(parts: &axum::http::HeaderMap) -> Option<(String, Carrier)> {
    if let Some(v) = parts
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .strip_prefix("Bearer ")
            .map(|t| (t.trim().to_string(), Carrier::Header));
    }
    session_cookie(parts).map(|t| (t, Carrier::Cookie))
}

/// The value of the dashboard's session cookie, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// Header carrying the CSRF token on unsafe requests authenticated by the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of a session: hex SHA-256 of `"botmaker-csrf:" + session token`.
///
/// Derived rather than stored, so it needs no table and dies with the session. A page embeds
/// it; a cross-site page can neither read it (same-origin policy) nor compute it (it would need
/// the HttpOnly cookie), and the prefix keeps it distinct from the stored session hash.
pub fn csrf_token_for(session_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"botmaker-csrf:");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the CSRF token of `session_token` (in constant time).
pub fn csrf_matches(session_token: &str, presented: &str) -> bool {
    crate::auth::constant_time_eq(
        csrf_token_for(session_token).as_bytes(),
        presented.trim().as_bytes(),
    )
}

/// 403 for a cookie-authenticated unsafe request without the right CSRF token.
pub fn csrf_rejected() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "CSRF",
        "missing or wrong CSRF token: a request authenticated by the session cookie must send \
         the page's token (meta csrf-token) in the X-CSRF-Token header; scripts should use \
         `Authorization: Bearer <token>` instead of the cookie",
    )
}

/// Middleware: lets a request through only with a valid session or API token, and, when the
/// credential is the browser's cookie, only unsafe methods (POST, PUT, PATCH, DELETE) that
/// also carry the session's CSRF token.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (token, carrier) =
        presented_credential(req.headers()).ok_or_else(ApiError::unauthorized)?;
    let credential = state
        .auth
        .authenticate(&token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if carrier == Carrier::Cookie && !req.method().is_safe() {
        let presented = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !csrf_matches(&token, presented) {
            return Err(csrf_rejected());
        }
    }
    req.extensions_mut().insert(credential.principal.clone());
    req.extensions_mut().insert(credential);
    Ok(next.run(req).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    password: Option<String>,
}

#[derive(Serialize)]
struct LoginAnswer {
    token: String,
    expires_at: DateTime<Utc>,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let Some(password) = body.password.filter(|p| !p.is_empty()) else {
        let mut f = FieldErrors::default();
        f.add("password", "is required");
        return Err(ApiError::validation(f));
    };
    let (token, expires_at) = state.auth.login(ip, &password).await?;
    Ok(Json(LoginAnswer {
        token: token.as_str().to_string(),
        expires_at,
    }))
}

async fn logout(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    match principal {
        Principal::Session { hash } => {
            state.auth.end_session(&hash).await?;
            Ok(Json(json!({ "success": true })))
        }
        Principal::ApiToken { .. } => Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "NOT_A_SESSION",
            "this is an API token, not a session: revoke it with DELETE /api/tokens/{id}",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        let mut f = FieldErrors::default();
        f.add("name", "must be 1-64 printable characters");
        return Err(ApiError::validation(f));
    }
    let token = Token::generate(API_TOKEN_PREFIX);
    let id = new_id();
    let now = Utc::now();
    state
        .store
        .insert_api_token(&id, &name, &hash_token(token.as_str()), now)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        // The only time the token is ever shown.
        Json(json!({ "id": id, "name": name, "token": token.as_str(), "created_at": now })),
    ))
}

async fn list_tokens(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "tokens": state.store.list_api_tokens().await? }),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    if state.auth.revoke_api_token(&id).await? {
        Ok(Json(json!({ "success": true })))
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no API token with id '{id}'"),
        ))
    }
}

/// `POST /api/login` (the one unauthenticated API route).
pub fn public_router() -> Router<AppState> {
    Router::new().route("/api/login", post(login))
}

/// Logout and API tokens.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/logout", post(logout))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn csrf_token_is_the_prefixed_sha256_of_the_session_token() {
        // printf 'botmaker-csrf:bms_abc' | sha256sum
        assert_eq!(
            csrf_token_for("bms_abc"),
            "3ad254f94b0f1faa6ef1febe903af15fbd7306746b1bf6a1265f1d4612e93a93"
        );
        assert_ne!(csrf_token_for("bms_abc"), hash_token("bms_abc"));
        assert!(csrf_matches("bms_abc", &csrf_token_for("bms_abc")));
        assert!(!csrf_matches("bms_abc", &csrf_token_for("bms_abd")));
        assert!(!csrf_matches("bms_abc", ""));
    }

    #[test]
    fn the_authorization_header_wins_over_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; botmaker_session=bms_c"),
        );
        assert_eq!(
            presented_credential(&h),
            Some(("bms_c".into(), Carrier::Cookie))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer bmt_x"),
        );
        assert_eq!(
            presented_credential(&h),
            Some(("bmt_x".into(), Carrier::Header))
        );
    }
}
