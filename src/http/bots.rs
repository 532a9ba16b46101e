//! `/api/bots`: the registry over HTTP, plus secrets and orphan cleanup.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, ApiJson, ApiPath, decode_json};
use super::{AppState, Principal};
use crate::bots::{BotView, CreateBot, UpdateBot};
use crate::secrets::SecretValue;

/// `{"bots": [...]}`, serialized straight from the views: building a `Value` tree first
/// doubles the peak memory of a large fleet's listing.
#[derive(serde::Serialize)]
struct BotList {
    bots: Vec<BotView>,
}

async fn list_bots(State(s): State<AppState>) -> Result<Json<BotList>, ApiError> {
    Ok(Json(BotList {
        bots: s.bots.list().await?,
    }))
}

async fn create_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiJson(body): ApiJson<CreateBot>,
) -> Result<(StatusCode, Json<BotView>), ApiError> {
    let bot = s.bots.create(body).await?;
    tracing::info!(bot = %bot.id, %actor, image = %bot.image, "bot created");
    Ok((StatusCode::CREATED, Json(bot)))
}

async fn get_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.get(&id).await?))
}

async fn update_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateBot>,
) -> Result<Json<BotView>, ApiError> {
    let bot = s.bots.update(&id, body).await?;
    tracing::info!(bot = %bot.id, %actor, "bot updated");
    Ok(Json(bot))
}

async fn delete_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    s.bots.delete(&id).await?;
    tracing::info!(bot = %id, %actor, "bot deleted");
    Ok(Json(json!({ "success": true })))
}

async fn start_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.start(&id).await?))
}

async fn stop_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.stop(&id).await?))
}

async fn restart_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.restart(&id).await?))
}

async fn apply_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    let bot = s.bots.apply(&id).await?;
    tracing::info!(bot = %bot.id, %actor, "bot applied: container recreated from its configuration");
    Ok(Json(bot))
}

async fn list_secrets(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "secrets": s.bots.secret_names(&id).await? })))
}

/// The value is the raw body, or `{"value": "..."}` when sent as JSON.
async fn put_secret(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let value = if is_json {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            value: String,
        }
        let b: Body = decode_json(&body)?;
        SecretValue::from(b.value)
    } else {
        SecretValue::from(body.to_vec())
    };
    s.bots.set_secret(&id, &name, value).await?;
    Ok(Json(json!({ "success": true, "name": name })))
}

async fn delete_secret(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if s.bots.delete_secret(&id, &name).await? {
        Ok(Json(json!({ "success": true })))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("bot '{id}' has no secret '{name}'"),
        ))
    }
}

async fn orphans(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let o = s.bots.orphans().await?;
    Ok(Json(json!({
        "containers": o.containers, "secrets": o.secrets, "workspaces": o.workspaces,
        "total": o.total(),
    })))
}

async fn cleanup(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let o = s.bots.cleanup().await?;
    Ok(Json(json!({
        "removed": { "containers": o.containers, "secrets": o.secrets, "workspaces": o.workspaces },
        "total": o.total(),
    })))
}

/// Bot routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/bots", get(list_bots).post(create_bot))
        .route(
            "/api/bots/{id}",
            get(get_bot).patch(update_bot).delete(delete_bot),
        )
        .route("/api/bots/{id}/start", post(start_bot))
        .route("/api/bots/{id}/stop", post(stop_bot))
        .route("/api/bots/{id}/restart", post(restart_bot))
        .route("/api/bots/{id}/apply", post(apply_bot))
        .route("/api/bots/{id}/secrets", get(list_secrets))
        .route(
            "/api/bots/{id}/secrets/{name}",
            put(put_secret).delete(delete_secret),
        )
        .route("/api/admin/orphans", get(orphans))
        .route("/api/admin/cleanup", post(cleanup))
}
