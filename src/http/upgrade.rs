//! `POST /api/bots/{id}/upgrade`: the health-gated upgrade of one bot.
//!
//! It waits for the new container's verdict, which may take minutes, so it is served outside
//! the usual request timeout with a bound of its own: the health deadline plus room for the
//! stop and the rollback.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiPath, decode_json};
use crate::bots::upgrade::{DEFAULT_UPGRADE_TIMEOUT, UpgradeBot, UpgradeResult};

/// Time an upgrade request may take beyond its health deadline: the old container's stop
/// grace, the new container's creation and, after a failure, the rollback.
pub const UPGRADE_OVERHEAD: Duration = Duration::from_secs(120);

/// 200 with the outcome when the bot was upgraded (or already ran that image); 409 with the
/// outcome, `result: "rolled_back"` and the reason, when the new container failed and the old
/// one runs again.
async fn upgrade_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // No body (`botmaker bots upgrade ID`) is the same as `{}`.
    let req: UpgradeBot = if body.iter().all(u8::is_ascii_whitespace) {
        UpgradeBot::default()
    } else {
        decode_json(&body)?
    };
    let limit = req
        .timeout_secs
        .map_or(DEFAULT_UPGRADE_TIMEOUT, Duration::from_secs)
        + UPGRADE_OVERHEAD;
    let outcome = match tokio::time::timeout(limit, s.bots.upgrade(&id, req)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                "the upgrade did not end in time (Docker may be slow); it still completes or \
                 rolls back: check the bot before retrying",
            ));
        }
    };
    if outcome.result == UpgradeResult::RolledBack {
        let reason = outcome.reason.clone().unwrap_or_default();
        let mut body = serde_json::to_value(&outcome).map_err(|e| ApiError::internal(&e))?;
        body["error"] = json!(format!("upgrade of '{id}' rolled back: {reason}"));
        body["code"] = json!("UPGRADE_ROLLED_BACK");
        return Ok((StatusCode::CONFLICT, Json(body)).into_response());
    }
    Ok(Json(outcome).into_response())
}

/// The upgrade route (no request timeout: see the module doc).
pub fn router() -> Router<AppState> {
    Router::new().route("/api/bots/{id}/upgrade", post(upgrade_bot))
}
