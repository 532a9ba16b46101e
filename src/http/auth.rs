//! Login, sessions, API tokens, and the middleware that guards every other `/api/*` route.
//!
//! Only hashes of tokens are stored, so a copy of the database lets nobody in. Sessions live
//! in SQLite and survive a restart; failed logins are rate-limited per client address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiJson};
use crate::auth::{
    API_TOKEN_PREFIX, LoginLimiter, SESSION_TOKEN_PREFIX, Token, hash_token, new_id,
    verify_password_async,
};
use crate::bots::FieldErrors;
use crate::store::Store;

/// Default lifetime of a login session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "botmaker_session";

/// Authentication state shared by the handlers.
pub struct Auth {
    store: Store,
    password_hash: String,
    limiter: LoginLimiter,
    session_ttl: Duration,
}

impl Auth {
    /// Checks logins against `password_hash` (argon2 PHC string).
    pub fn new(store: Store, password_hash: String, session_ttl: Duration) -> Self {
        Self {
            store,
            password_hash,
            limiter: LoginLimiter::default(),
            session_ttl,
        }
    }

    /// Verifies the admin password (off the async runtime: argon2 is deliberately slow) and,
    /// if right, opens a session. `Err` carries the answer to give.
    pub async fn login(
        &self,
        ip: IpAddr,
        password: &str,
    ) -> Result<(Token, DateTime<Utc>), ApiError> {
        if let Err(retry) = self.limiter.check(ip, Instant::now()) {
            return Err(ApiError::rate_limited(retry.as_secs()));
        }
        let ok = verify_password_async(password.to_string(), self.password_hash.clone()).await;
        if !ok {
            self.limiter.record_failure(ip, Instant::now());
            tracing::warn!(client = %ip, "failed login");
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "INVALID_PASSWORD",
                "invalid password",
            ));
        }
        self.limiter.record_success(ip);
        let token = Token::generate(SESSION_TOKEN_PREFIX);
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::days(1));
        self.store
            .insert_session(&hash_token(token.as_str()), now, expires_at)
            .await?;
        Ok((token, expires_at))
    }

    /// Who presents `token`, if anyone.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, ApiError> {
        let hash = hash_token(token);
        if token.starts_with(SESSION_TOKEN_PREFIX) {
            let valid = self
                .store
                .session_expiry(&hash)
                .await?
                .is_some_and(|exp| exp > Utc::now());
            return Ok(valid.then_some(Principal::Session { hash }));
        }
        if token.starts_with(API_TOKEN_PREFIX) {
            return Ok(self
                .store
                .find_api_token(&hash)
                .await?
                .map(|t| Principal::ApiToken { id: t.id }));
        }
        Ok(None)
    }
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

/// The client's address (unspecified when the server was not told, e.g. in-process tests).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
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
    let principal = state
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
    req.extensions_mut().insert(principal);
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
            state.store.delete_session(&hash).await?;
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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if state.store.delete_api_token(&id).await? {
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
