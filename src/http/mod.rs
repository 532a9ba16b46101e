//! The REST API: `app()` builds the whole router; each resource has its own module with its
//! own `router()`. Handlers only translate HTTP to [`BotService`] calls and back; errors become
//! statuses in exactly one place ([`error`]).

mod auth;
mod backup;
mod bots;
pub mod error;
mod observe;
pub mod openapi;
mod stream_auth;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};

pub use auth::{
    Auth, AuthSettings, CREDENTIAL_RECHECK, CSRF_HEADER, ClientIp, Credential, DEFAULT_SESSION_TTL,
    Principal, SESSION_COOKIE, StreamEnd, cookie, csrf_matches, csrf_token_for, session_cookie,
};
pub use error::ApiError;
pub use stream_auth::until_credential_ends;

use crate::bots::BotService;
use crate::sampler::Sampler;
use crate::store::Store;

/// Largest request body: bots are configured with small JSON documents.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest a non-streaming request may take (a stop waits out the bot's grace period).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Bot operations.
    pub bots: BotService,
    /// The database (sessions, tokens).
    pub store: Store,
    /// Login and token checks.
    pub auth: Arc<Auth>,
    /// Cached stats.
    pub sampler: Sampler,
}

/// The complete HTTP application.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .merge(bots::router())
        .merge(auth::router())
        .merge(observe::router())
        .merge(openapi::router())
        .layer(middleware::from_fn(request_timeout))
        // Streams (logs follow, events) may stay open for hours: no request timeout.
        .merge(observe::streaming_router())
        // An upgrade waits for the new container's health: a bound of its own.
        .merge(upgrade::router())
        // Archives take as long as they take to send.
        .merge(backup::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));

    Router::new()
        .merge(auth::public_router())
        .merge(observe::public_router())
        .merge(protected)
        .merge(crate::web::router())
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Unknown paths: under `/api` an unauthenticated caller learns nothing (401) and an
/// authenticated one gets 404.
async fn unknown_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> ApiError {
    if req.uri().path().starts_with("/api") {
        let Some(token) = auth::presented_token(req.headers()) else {
            return ApiError::unauthorized();
        };
        match state.auth.authenticate(&token).await {
            Ok(Some(_)) => {}
            Ok(None) => return ApiError::unauthorized(),
            Err(e) => return e,
        }
    }
    ApiError::no_route()
}

/// Answers a request that takes longer than [`REQUEST_TIMEOUT`] with a JSON 503. A bot
/// operation that had already begun still runs to its end (see `BotService`), so the outcome
/// is unknown, not undone: the message says to look.
async fn request_timeout(req: axum::extract::Request, next: middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            format!(
                "no answer within {} s (Docker may be slow or unreachable); an operation that \
                 had begun still completes: check the bot's state before retrying",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    }
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set(header::CACHE_CONTROL, "no-store");
    res
}
