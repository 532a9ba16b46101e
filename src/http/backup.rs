//! Backups over HTTP: `GET /api/admin/backup` (a full backup, streamed as it is written),
//! `GET /api/bots/{id}/backup` (one bot) and `POST /api/bots/import` (one bot from another
//! botmaker's backup). Served outside the usual request timeout: an archive of large
//! workspaces takes as long as it takes to send.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;

use super::openapi::{BadRequest, Conflict, NotFound, ServiceUnavailable};
use crate::access::Principal;
use crate::api::{BotView, Success, UpdateBot};
use crate::backup::archive::{write_bot, write_full};
use crate::backup::channel::{ChannelWriter, channel};
use crate::backup::{BackupError, Manifest};
use crate::edge::{ApiError, ApiJson, ApiPath, AppState};
use crate::store::SCHEMA_VERSION;

/// Streams what `write` puts into the archive as the response body. An error half-way ends
/// the body with an error (the client sees a cut transfer, never a whole-looking archive).
fn streamed(
    filename: String,
    write: impl FnOnce(ChannelWriter) -> Result<(Manifest, ChannelWriter), BackupError> + Send + 'static,
) -> Response {
    let (writer, stream) = channel();
    tokio::task::spawn_blocking(move || match write(writer) {
        Ok((m, w)) => {
            if let Err(e) = w.finish() {
                tracing::warn!(error = %e, "backup download ended early");
            } else {
                tracing::info!(
                    bots = m.bots.len(),
                    skipped = m.skipped.len(),
                    "backup sent"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "backup failed half-way"),
    });
    let body = Body::from_stream(stream.map(|r| r.map(Bytes::from)));
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// A full backup, streamed as it is written.
///
/// One gzip-compressed tar: a consistent snapshot of the registry (SQLite's online backup),
/// every bot's secrets and workspace (links a bot made are left out), and a manifest with the
/// SHA-256 of every entry. Secret values are in the clear: keep it like the data directory
/// (`botmaker backup --passphrase-file` encrypts it on the client). A failure half-way cuts
/// the transfer short, so a partial archive never looks whole.
#[utoipa::path(
    get,
    path = "/api/admin/backup",
    tag = "admin",
    responses(
        (status = 200, description = "The archive (a gzip-compressed tar)", content(("application/gzip"))),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn backup_all(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
) -> Result<Response, ApiError> {
    let mut snap = s.bots.fleet_snapshot().await?;
    snap.notification_secrets = s.alerts.channel_secrets().await?;
    let root = s.bots.workspaces_root().to_path_buf();
    tracing::info!(%actor, "backup requested");
    Ok(streamed(
        format!("botmaker-backup-{}.tar.gz", stamp()),
        move |w| write_full(w, &snap, &root),
    ))
}

/// One bot's record, secrets and workspace, as `POST /api/bots/import` takes it.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/backup",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The archive (a gzip-compressed tar)", content(("application/gzip"))),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn backup_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let snap = s.bots.bot_snapshot(&id).await?;
    let root = s.bots.workspaces_root().to_path_buf();
    tracing::info!(bot = %id, %actor, "bot backup requested");
    Ok(streamed(
        format!("botmaker-bot-{id}-{}.tar.gz", stamp()),
        move |w| write_bot(w, &snap, SCHEMA_VERSION, &root),
    ))
}

/// Create a bot from another botmaker's single-bot backup (`GET /api/bots/{id}/backup`).
///
/// The archive is verified entry by entry before anything is made; a bot with its id already
/// here is refused (409 `ALREADY_EXISTS`). The bot is started if it was running where it came
/// from. A damaged, altered or unsupported archive is 400 (`BACKUP_CORRUPT`,
/// `BACKUP_UNSUPPORTED`) and changes nothing.
#[utoipa::path(
    post,
    path = "/api/bots/import",
    tag = "bots",
    request_body(
        description = "A single-bot archive, as downloaded (any content type is taken)",
        content(("application/gzip"), ("application/octet-stream"))
    ),
    responses(
        (status = 201, description = "Imported", body = BotView),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn import_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    body: Bytes,
) -> Result<(StatusCode, Json<BotView>), ApiError> {
    let bot = s.bots.import(body.to_vec()).await?;
    tracing::info!(bot = %bot.id, %actor, "bot imported");
    Ok((StatusCode::CREATED, Json(bot)))
}

/// `import` is a valid bot id too, and the route above takes its exact path: the bot named
/// `import` stays reachable through these.
const IMPORT: &str = "import";

/// The bot whose id is `import` (what `GET /api/bots/{id}` gives for it).
#[utoipa::path(
    get,
    path = "/api/bots/import",
    tag = "bots",
    responses(
        (status = 200, description = "The bot", body = BotView),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get_bot_named_import(State(s): State<AppState>) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.get(IMPORT).await?))
}

/// Change the bot whose id is `import` (what `PATCH /api/bots/{id}` does for it).
#[utoipa::path(
    patch,
    path = "/api/bots/import",
    tag = "bots",
    request_body(content = UpdateBot, description = "The changes"),
    responses(
        (status = 200, description = "The updated bot", body = BotView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn update_bot_named_import(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiJson(body): ApiJson<UpdateBot>,
) -> Result<Json<BotView>, ApiError> {
    let bot = s.bots.update(IMPORT, body).await?;
    tracing::info!(bot = %bot.id, %actor, "bot updated");
    Ok(Json(bot))
}

/// Delete the bot whose id is `import` (what `DELETE /api/bots/{id}` does for it).
#[utoipa::path(
    delete,
    path = "/api/bots/import",
    tag = "bots",
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn delete_bot_named_import(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
) -> Result<Json<Success>, ApiError> {
    s.bots.delete(IMPORT).await?;
    tracing::info!(bot = IMPORT, %actor, "bot deleted");
    Ok(Json(Success::DONE))
}
