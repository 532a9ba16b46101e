//! The web dashboard: server-rendered pages, the login and logout forms, and the static files
//! (a style sheet, one script module per page and the shared modules they import) compiled
//! into the binary; no Node toolchain, no CDN.
//!
//! Pages are shells built with maud (escaping by default) that their script module fills from
//! the same JSON API scripts use, sending the session's CSRF token with every change and
//! following `GET /api/events` for live state. This module owns the browser session (cookie,
//! forms) and nothing else: it goes through [`AppState`] like the API does and never talks to
//! Docker or the store's tables directly.

mod assets;
mod form;
mod layout;
mod login_page;
mod pages;
mod session;
mod stream;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::edge::{AppState, REQUEST_TIMEOUT};

/// Dashboard routes: `/`, `/login`, `/logout`, `/bots/new`, `/bots/{id}`, `/bots/{id}/console`,
/// `/nodes`, `/admin`, `/providers`, `/usage`, `/alerts`, `/audit`, the assets under `/assets/`, and the stats stream `/stream/stats`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::fleet))
        .route(
            "/login",
            get(session::login_page).post(session::login_submit),
        )
        .route("/logout", post(session::logout))
        .route("/bots/new", get(pages::new_bot))
        .route("/bots/{id}", get(pages::bot_detail))
        .route("/bots/{id}/console", get(pages::bot_console))
        .route("/nodes", get(pages::nodes))
        .route("/admin", get(pages::admin))
        .route("/audit", get(pages::audit))
        .route("/providers", get(pages::providers))
        .route("/usage", get(pages::usage))
        .route("/alerts", get(pages::alerts))
        .route("/assets/{file}", get(assets::serve))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // A stream stays open as long as the page does: no request timeout.
        .route("/stream/stats", get(stream::stats))
}
