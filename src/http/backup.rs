//! Backups over HTTP: `GET /api/admin/backup` (a full backup, streamed as it is written),
//! `GET /api/bots/{id}/backup` (one bot) and `POST /api/bots/import` (one bot from another
//! botmaker's backup). Served outside the usual request timeout: an archive of large
//! workspaces takes as long as it takes to send.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;

use super::AppState;
use super::error::{ApiError, ApiJson, ApiPath};
use crate::backup::archive::{write_bot, write_full};
use crate::backup::channel::{ChannelWriter, channel};
use crate::backup::{BackupError, Manifest};
use crate::bots::{BotView, MAX_IMPORT_BYTES, UpdateBot};
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

/// A full backup: registry snapshot, every bot's secrets and workspace, manifest.
async fn backup_all(State(s): State<AppState>) -> Result<Response, ApiError> {
    let snap = s.bots.fleet_snapshot().await?;
    let root = s.bots.workspaces_root().to_path_buf();
    Ok(streamed(
        format!("botmaker-backup-{}.tar.gz", stamp()),
        move |w| write_full(w, &snap, &root),
    ))
}

/// One bot's record, secrets and workspace.
async fn backup_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let snap = s.bots.bot_snapshot(&id).await?;
    let root = s.bots.workspaces_root().to_path_buf();
    Ok(streamed(
        format!("botmaker-bot-{id}-{}.tar.gz", stamp()),
        move |w| write_bot(w, &snap, SCHEMA_VERSION, &root),
    ))
}

/// Creates a bot from a single-bot backup (the raw archive as the body).
async fn import_bot(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<BotView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.bots.import(body.to_vec()).await?),
    ))
}

/// `import` is a valid bot id too, and the route above takes its exact path: the bot named
/// `import` stays reachable through these.
const IMPORT: &str = "import";

async fn get_bot_named_import(State(s): State<AppState>) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.get(IMPORT).await?))
}

async fn update_bot_named_import(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<UpdateBot>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.update(IMPORT, body).await?))
}

async fn delete_bot_named_import(
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.bots.delete(IMPORT).await?;
    Ok(Json(serde_json::json!({ "success": true })))
}

/// The backup routes (no request timeout: see the module doc).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/backup", get(backup_all))
        .route("/api/bots/{id}/backup", get(backup_bot))
        .route(
            "/api/bots/import",
            post(import_bot)
                .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
                .get(get_bot_named_import)
                .patch(update_bot_named_import)
                .delete(delete_bot_named_import),
        )
}
