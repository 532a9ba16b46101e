//! The web dashboard (being built).
use axum::Router;

use crate::http::AppState;

/// Dashboard routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
