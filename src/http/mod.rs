//! The REST API: each resource a module of handlers, each handler with its own
//! `#[utoipa::path]`, all registered through utoipa-axum's `routes!` so that the router and the
//! OpenAPI document ([`openapi`]) come from the same list and cannot disagree. Handlers only
//! translate HTTP to [`crate::bots::BotService`] and [`crate::access`] calls and back, with
//! [`crate::api`] types; errors become statuses in [`crate::edge::ApiError`].
//!
//! This module does not know the dashboard: the composition root (`crate::app`) mounts both.

mod audit;
mod auth;
mod backup;
mod bots;
mod exec;
mod exec_socket;
mod llm;
mod metrics;
mod notifications;
mod observe;
pub mod openapi;
mod upgrade;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::presented_credential;
use crate::bots::MAX_IMPORT_BYTES;
use crate::edge::{ApiError, AppState, REQUEST_TIMEOUT};

/// The API's routes, grouped by the layers they need. The one list both the router and the
/// document are built from.
struct Routes {
    /// No credential needed.
    public: OpenApiRouter<AppState>,
    /// Authenticated, answered within [`REQUEST_TIMEOUT`].
    timed: OpenApiRouter<AppState>,
    /// Authenticated streams (logs follow, events) and exec, which bounds itself (the
    /// command's own time limit, or a terminal's credential): no request time limit.
    streaming: OpenApiRouter<AppState>,
    /// Authenticated, with a time bound of their own or none: an upgrade waits for the new
    /// container's health (its deadline plus room for the stop and a rollback), and an
    /// archive takes as long as it takes to send.
    long: OpenApiRouter<AppState>,
}

fn routes() -> Routes {
    let public = OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(observe::health));
    let timed = OpenApiRouter::new()
        .routes(routes!(bots::list_bots, bots::create_bot))
        .routes(routes!(bots::get_bot, bots::update_bot, bots::delete_bot))
        .routes(routes!(bots::start_bot))
        .routes(routes!(bots::stop_bot))
        .routes(routes!(bots::restart_bot))
        .routes(routes!(bots::apply_bot))
        .routes(routes!(bots::list_secrets))
        .routes(routes!(bots::put_secret, bots::delete_secret))
        .routes(routes!(bots::list_orphans))
        .routes(routes!(bots::cleanup))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::list_tokens, auth::create_token))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(audit::list_audit))
        .routes(routes!(observe::all_stats))
        .routes(routes!(observe::bot_stats))
        .routes(routes!(observe::bot_stats_history))
        .routes(routes!(llm::list_providers, llm::put_provider))
        .routes(routes!(llm::delete_provider))
        .routes(routes!(llm::fleet_usage))
        .routes(routes!(llm::bot_usage))
        .routes(routes!(llm::rotate_keys))
        .routes(routes!(llm::revoke_keys))
        .routes(routes!(
            notifications::list_channels,
            notifications::create_channel
        ))
        .routes(routes!(
            notifications::delete_channel,
            notifications::update_channel
        ))
        .routes(routes!(notifications::test_channel))
        .routes(routes!(notifications::list_deliveries))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json));
    let streaming = OpenApiRouter::new()
        .routes(routes!(observe::bot_logs))
        .routes(routes!(observe::events))
        .routes(routes!(exec::exec_bot))
        .routes(routes!(exec::exec_socket));
    let (schemas, paths, import) = routes!(backup::import_bot);
    let long = OpenApiRouter::new()
        .routes(routes!(upgrade::upgrade_bot))
        .routes(routes!(backup::backup_all))
        .routes(routes!(backup::backup_bot))
        // An archive of a bot with its workspace is larger than a JSON body.
        .routes((
            schemas,
            paths,
            import.layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        ))
        .routes(routes!(
            backup::get_bot_named_import,
            backup::update_bot_named_import,
            backup::delete_bot_named_import
        ));
    Routes {
        public,
        timed,
        streaming,
        long,
    }
}

/// Every route of the API, without its layers (which add no route): what [`document`] and
/// the route-coverage test read.
fn unlayered() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let Routes {
        public,
        timed,
        streaming,
        long,
    } = routes();
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::BaseDocument::openapi())
        .merge(public)
        .merge(timed)
        .merge(streaming)
        .merge(long)
        .split_for_parts();
    openapi::finish(&mut doc);
    (router, doc)
}

/// The OpenAPI document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    unlayered().1
}

/// The API's router: the routes of [`document`] with their layers (authentication, the
/// request time limit) and the document itself at `GET /api/openapi.json`.
pub fn router(state: &AppState) -> Router<AppState> {
    let Routes {
        public,
        timed,
        streaming,
        long,
    } = routes();
    let protected = timed
        .layer(middleware::from_fn(request_timeout))
        .merge(streaming)
        .merge(long)
        // Inside the authentication layer: the caller is known when the change is recorded.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            audit::record_changes,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::BaseDocument::openapi())
        .merge(public)
        .merge(protected)
        .split_for_parts();
    openapi::finish(&mut doc);
    let json = serde_json::to_vec(&doc).expect("the OpenAPI document serializes");
    router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(openapi::DocumentJson(json.into()))))
}

/// A known API path with a method it does not take: the JSON error every API error is, after
/// the same checks a route of that path would make (401 without a valid credential, 403 for a
/// cookie without the CSRF token on an unsafe method), so it tells nobody more than a route
/// would.
async fn method_not_allowed(State(state): State<AppState>, req: Request) -> ApiError {
    match auth::check_credential(&state, req.headers(), req.method()).await {
        Ok(_) => ApiError::method_not_allowed(),
        Err(e) => e,
    }
}

/// Unknown paths: under `/api` an unauthenticated caller learns nothing (401) and an
/// authenticated one gets 404. The fallback of the whole application.
pub async fn unknown_route(State(state): State<AppState>, req: Request) -> ApiError {
    if req.uri().path().starts_with("/api") {
        let Some((token, _)) = presented_credential(req.headers()) else {
            return ApiError::unauthorized();
        };
        match state.auth.authenticate(&token).await {
            Ok(Some(_)) => {}
            Ok(None) => return ApiError::unauthorized(),
            Err(e) => return e.into(),
        }
    }
    ApiError::no_route()
}

/// Answers a request that takes longer than [`REQUEST_TIMEOUT`] with a JSON 503. A bot
/// operation that had already begun still runs to its end (see `BotService`), so the outcome
/// is unknown, not undone: the message says to look.
async fn request_timeout(req: Request, next: Next) -> Response {
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
