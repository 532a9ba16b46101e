//! `GET /api/openapi.json`: the API described as OpenAPI 3.1.
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

/// The OpenAPI document.
pub fn document() -> Value {
    json!({ "openapi": "3.1.0", "info": { "title": "botmaker", "version": env!("CARGO_PKG_VERSION") }, "paths": {} })
}

/// The document's route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}
