//! `POST /api/bots/{id}/upgrade`: the health-gated upgrade of one bot.
//!
//! It waits for the new container's verdict, which may take minutes, so it is served outside
//! the usual request timeout with a bound of its own: the health deadline plus room for the
//! stop and the rollback.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::openapi::{BadRequest, NotFound, ServiceUnavailable};
use crate::access::Principal;
use crate::api::{UpgradeBot, UpgradeOutcome, UpgradeResult, UpgradeRolledBack};
use crate::bots::upgrade::{DEFAULT_UPGRADE_TIMEOUT, MAX_UPGRADE_TIMEOUT};
use crate::edge::{ApiError, ApiJsonOrEmpty, ApiPath, AppState};

/// Time an upgrade request may take beyond its health deadline: the old container's stop
/// grace, the new container's creation and, after a failure, the rollback.
pub const UPGRADE_OVERHEAD: Duration = Duration::from_secs(120);

/// Upgrade a bot, keeping the new container only if it proves healthy.
///
/// The old container is stopped and kept aside; a new one is made from the stored
/// configuration with the new image and must pass the bot's health probe (or, without one,
/// keep running for a grace period) before `timeout_secs`. Then the old one is removed and the
/// new image recorded. Otherwise the new one is removed and the old one runs again: 409 with
/// `result: "rolled_back"` and the reason. An empty body re-resolves the configured reference
/// (a tag that now names another local image). Served outside the usual request time limit:
/// the bound is the health deadline plus two minutes.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/upgrade",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    request_body(
        content = Option<UpgradeBot>,
        description = "The image and health deadline; optional: no body is `{}`"
    ),
    responses(
        (status = 200, description = "Upgraded (or it already ran that image)", body = UpgradeOutcome),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, description = "Rolled back: the old container runs again, the configuration is unchanged", body = UpgradeRolledBack),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn upgrade_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJsonOrEmpty(req): ApiJsonOrEmpty<Option<UpgradeBot>>,
) -> Result<Response, ApiError> {
    // No body (`botmaker bots upgrade ID`) or `null` is `{}`.
    let req = req.unwrap_or_default();
    // Capped before the sum: a timeout past the maximum is refused by the service with its
    // field named, and must not overflow here first (u64::MAX seconds panicked the handler).
    let limit = req.timeout_secs.map_or(DEFAULT_UPGRADE_TIMEOUT, |t| {
        Duration::from_secs(t).min(MAX_UPGRADE_TIMEOUT)
    }) + UPGRADE_OVERHEAD;
    tracing::info!(bot = %id, %actor, image = ?req.image, "upgrade requested");
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
        let body = UpgradeRolledBack::new(&id, outcome);
        return Ok((StatusCode::CONFLICT, Json(body)).into_response());
    }
    Ok(Json(outcome).into_response())
}
