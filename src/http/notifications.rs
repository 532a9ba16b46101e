//! `/api/notifications`: alert channels (webhook, Slack, Discord, Telegram), a test message,
//! and each channel's recent delivery attempts. Handlers translate to
//! [`crate::alerts::AlertService`] calls and back, with [`crate::api`] types; errors become
//! statuses in [`crate::edge::ApiError`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::openapi::{BadRequest, Conflict, NotFound};
use crate::access::Principal;
use crate::api::{
    ChannelList, ChannelPatch, ChannelView, DeliveriesQuery, DeliveryList, DeliveryView,
    NewChannel, Success,
};
use crate::edge::{ApiError, ApiJson, ApiPath, ApiQuery, AppState};

/// Every notification channel (never a signing secret or bot token).
#[utoipa::path(
    get,
    path = "/api/notifications",
    tag = "alerts",
    responses((status = 200, description = "Every channel, oldest first", body = ChannelList))
)]
pub async fn list_channels(State(s): State<AppState>) -> Result<Json<ChannelList>, ApiError> {
    Ok(Json(ChannelList {
        channels: s.alerts.list().await?,
    }))
}

/// Add a notification channel.
///
/// `signing_secret` (webhook) and `bot_token` (telegram) are write-only: kept in botmaker's
/// secrets store, never returned or logged. A webhook with a signing secret gets
/// `X-Botmaker-Signature: sha256=<hex HMAC-SHA256 of the body>`.
#[utoipa::path(
    post,
    path = "/api/notifications",
    tag = "alerts",
    request_body(content = NewChannel, description = "The channel"),
    responses(
        (status = 201, description = "Created", body = ChannelView),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
    )
)]
pub async fn create_channel(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiJson(body): ApiJson<NewChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let view = s.alerts.create(body).await?;
    tracing::info!(channel = view.id, kind = %view.kind, %actor, "notification channel added");
    Ok((StatusCode::CREATED, Json(view)))
}

/// Change a notification channel: only the fields given (its kind stays).
///
/// `signing_secret` and `bot_token` are write-only: replaced when given, kept when absent;
/// `"signing_secret": null` stops signing, `"events": null` subscribes to every event. The
/// channels `serve --alert-webhook` keeps are refused (change the flag). Checked as a whole
/// channel: nothing changes when any field is wrong.
#[utoipa::path(
    patch,
    path = "/api/notifications/{id}",
    tag = "alerts",
    params(("id" = i64, Path, description = "Channel id")),
    request_body(content = ChannelPatch, description = "The fields to change"),
    responses(
        (status = 200, description = "Changed", body = ChannelView),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub async fn update_channel(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChannelPatch>,
) -> Result<Json<ChannelView>, ApiError> {
    let view = s.alerts.update(&id, body).await?;
    tracing::info!(channel = view.id, %actor, "notification channel changed");
    Ok(Json(view))
}

/// Remove a notification channel, its secrets and its delivery history.
#[utoipa::path(
    delete,
    path = "/api/notifications/{id}",
    tag = "alerts",
    params(("id" = i64, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Removed", body = Success),
        (status = 404, response = NotFound),
    )
)]
pub async fn delete_channel(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Success>, ApiError> {
    s.alerts.delete(&id).await?;
    tracing::info!(channel = %id, %actor, "notification channel removed");
    Ok(Json(Success::DONE))
}

/// Send a test message to a channel now: one attempt, no retry. The answer says how it went
/// (`result` `ok` or `failed`, the receiver's status and error); it is in the channel's
/// deliveries too.
#[utoipa::path(
    post,
    path = "/api/notifications/{id}/test",
    tag = "alerts",
    params(("id" = i64, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The attempt", body = DeliveryView),
        (status = 404, response = NotFound),
    )
)]
pub async fn test_channel(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(s.alerts.test(&id).await?))
}

/// A channel's recent delivery attempts, newest first: each with its event, bot, attempt
/// number, result (`ok`, `retrying`, `failed`), the receiver's status and the error.
#[utoipa::path(
    get,
    path = "/api/notifications/{id}/deliveries",
    tag = "alerts",
    params(("id" = i64, Path, description = "Channel id"), DeliveriesQuery),
    responses(
        (status = 200, description = "The attempts", body = DeliveryList),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub async fn list_deliveries(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = q.limit.unwrap_or(DeliveriesQuery::DEFAULT_LIMIT);
    if !(1..=crate::alerts::MAX_DELIVERIES_LISTED).contains(&limit) {
        let mut f = crate::field_errors::FieldErrors::default();
        f.add(
            "limit",
            format!("must be 1-{}", crate::alerts::MAX_DELIVERIES_LISTED),
        );
        return Err(ApiError::validation(f));
    }
    Ok(Json(DeliveryList {
        deliveries: s.alerts.deliveries(&id, limit).await?,
    }))
}
