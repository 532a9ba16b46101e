//! `/api/bots`: the registry over HTTP, plus secrets and orphan cleanup.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::openapi::{BadRequest, Conflict, NotFound, ServiceUnavailable, StartFailed};
use crate::access::Principal;
use crate::api::{
    BotList, BotView, Cleanup, CreateBot, Orphans, SecretNames, SecretSet, SecretValueBody,
    Success, UpdateBot,
};
use crate::edge::{ApiBytes, ApiError, ApiJson, ApiJsonEveryField, ApiPath, AppState, decode_json};
use crate::secrets::SecretValue;

/// List bots with their observed state.
#[utoipa::path(
    get,
    path = "/api/bots",
    tag = "bots",
    responses(
        (status = 200, description = "The bots", body = BotList),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list_bots(State(s): State<AppState>) -> Result<Response, ApiError> {
    let bots = s.bots.list_json().await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(bot_list_chunks(bots))),
    )
        .into_response())
}

/// Largest piece of a list answer written at once: what one answer in flight holds on top of
/// the shared per-bot pieces, however large the fleet.
const LIST_CHUNK_BYTES: usize = 64 * 1024;

/// `{"bots":[…]}` (a [`BotList`]) from each bot's JSON, in chunks of about
/// [`LIST_CHUNK_BYTES`]: the whole answer is never assembled in memory.
/// The pieces are shared with every other answer in flight (see
/// [`ListPieces`](crate::bots::cache::ListPieces)): this holds a reference and a position.
fn bot_list_chunks(
    bots: crate::bots::cache::ListPieces,
) -> impl Iterator<Item = Result<Bytes, std::convert::Infallible>> {
    let mut next = 0;
    let (mut started, mut done) = (false, false);
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut chunk = Vec::with_capacity(LIST_CHUNK_BYTES);
        if !started {
            chunk.extend_from_slice(b"{\"bots\":[");
        }
        while chunk.len() < LIST_CHUNK_BYTES {
            let Some(bot) = bots.get(next) else { break };
            next += 1;
            if started {
                chunk.push(b',');
            }
            started = true;
            chunk.extend_from_slice(bot);
        }
        started = true;
        if next >= bots.len() {
            chunk.extend_from_slice(b"]}");
            done = true;
        }
        Some(Ok(Bytes::from(chunk)))
    })
}

/// Create a bot (and start it unless `start` is false).
#[utoipa::path(
    post,
    path = "/api/bots",
    tag = "bots",
    request_body(content = CreateBot, description = "The bot"),
    responses(
        (status = 201, description = "Created", body = BotView),
        (status = 409, response = Conflict),
        (status = 422, response = StartFailed),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn create_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiJsonEveryField(body): ApiJsonEveryField<CreateBot>,
) -> Result<(StatusCode, Json<BotView>), ApiError> {
    // A value of the wrong type: every other problem of the body in the same answer.
    let body = body.map_err(|refused| refused.merge_checks(|rest| s.bots.check_create(rest)))?;
    let bot = s.bots.create(body).await?;
    tracing::info!(bot = %bot.id, %actor, image = %bot.image, "bot created");
    Ok((StatusCode::CREATED, Json(bot)))
}

/// A bot with its observed state.
#[utoipa::path(
    get,
    path = "/api/bots/{id}",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The bot", body = BotView),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.get(&id).await?))
}

/// Change a bot's configuration.
///
/// Present fields replace the stored ones; `null` clears `network` and `health_check`. Unless
/// `apply` is false the container is recreated so the change takes effect. All or nothing,
/// secrets included.
#[utoipa::path(
    patch,
    path = "/api/bots/{id}",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    request_body(content = UpdateBot, description = "The changes"),
    responses(
        (status = 200, description = "The updated bot", body = BotView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = StartFailed),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn update_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateBot>,
) -> Result<Json<BotView>, ApiError> {
    let bot = s.bots.update(&id, body).await?;
    tracing::info!(bot = %bot.id, %actor, "bot updated");
    Ok(Json(bot))
}

/// Delete a bot, its container, secrets and workspace.
#[utoipa::path(
    delete,
    path = "/api/bots/{id}",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn delete_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Success>, ApiError> {
    s.bots.delete(&id).await?;
    tracing::info!(bot = %id, %actor, "bot deleted");
    Ok(Json(Success::DONE))
}

/// Start a bot (recreating a missing container).
#[utoipa::path(
    post,
    path = "/api/bots/{id}/start",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The bot afterwards", body = BotView),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = StartFailed),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn start_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.start(&id).await?))
}

/// Stop a bot.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/stop",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The bot afterwards", body = BotView),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn stop_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.stop(&id).await?))
}

/// Restart a bot.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/restart",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The bot afterwards", body = BotView),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = StartFailed),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn restart_bot(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    Ok(Json(s.bots.restart(&id).await?))
}

/// Recreate a bot's container from its stored configuration.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/apply",
    tag = "bots",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The bot afterwards", body = BotView),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = StartFailed),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn apply_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotView>, ApiError> {
    let bot = s.bots.apply(&id).await?;
    tracing::info!(bot = %bot.id, %actor, "bot applied: container recreated from its configuration");
    Ok(Json(bot))
}

/// Names of a bot's secrets (never the values).
#[utoipa::path(
    get,
    path = "/api/bots/{id}/secrets",
    tag = "secrets",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "The names", body = SecretNames),
        (status = 404, response = NotFound),
    )
)]
pub async fn list_secrets(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SecretNames>, ApiError> {
    Ok(Json(SecretNames {
        secrets: s.bots.secret_names(&id).await?,
    }))
}

/// Set or rotate a secret.
///
/// The file is replaced atomically. How the bot picks the new value up is its template's
/// rotation policy, stated in the answer: `in_place` (generic: the running container sees the
/// new file at once, without a restart) or `restart` (openclaw reads its secrets at start:
/// botmaker restarts a running bot). The value is the raw body (any content type but JSON), or
/// `{"value": "..."}` sent as `application/json`; an empty value is refused.
#[utoipa::path(
    put,
    path = "/api/bots/{id}/secrets/{name}",
    tag = "secrets",
    params(
        ("id" = crate::BotId, Path, description = "Bot id"),
        ("name" = crate::secrets::SecretName, Path, description = "Secret name"),
    ),
    request_body(
        description = "The value, exactly as sent: not empty, and at most as long as the \
                       `SecretValue` schema says",
        content(
            (String = "text/plain"),
            ("application/octet-stream"),
            (SecretValueBody = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "Stored", body = SecretSet),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn put_secret(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Json<SecretSet>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let value = if is_json {
        let b: SecretValueBody = decode_json(&body)?;
        SecretValue::from(b.value)
    } else {
        SecretValue::from(body.to_vec())
    };
    let change = s.bots.set_secret(&id, &name, value).await?;
    Ok(Json(SecretSet {
        success: true,
        name,
        rotation: change.rotation,
        restarted: change.restarted,
        effect: change.effect.to_string(),
    }))
}

/// Delete a secret.
///
/// A secret the bot's template needs (an openclaw bot's gateway token, provider key or channel
/// token) cannot be deleted: 409 `SECRET_REQUIRED`, naming the need.
#[utoipa::path(
    delete,
    path = "/api/bots/{id}/secrets/{name}",
    tag = "secrets",
    params(
        ("id" = crate::BotId, Path, description = "Bot id"),
        ("name" = crate::secrets::SecretName, Path, description = "Secret name"),
    ),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn delete_secret(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Json<Success>, ApiError> {
    if s.bots.delete_secret(&id, &name).await? {
        Ok(Json(Success::DONE))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("bot '{id}' has no secret '{name}'"),
        ))
    }
}

/// Containers, secrets and workspaces left by deleted bots.
#[utoipa::path(
    get,
    path = "/api/admin/orphans",
    tag = "admin",
    responses(
        (status = 200, description = "What is left over", body = Orphans),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list_orphans(State(s): State<AppState>) -> Result<Json<Orphans>, ApiError> {
    Ok(Json(s.bots.orphans().await?.into()))
}

/// Remove everything orphaned.
#[utoipa::path(
    post,
    path = "/api/admin/cleanup",
    tag = "admin",
    responses(
        (status = 200, description = "What was removed", body = Cleanup),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn cleanup(State(s): State<AppState>) -> Result<Json<Cleanup>, ApiError> {
    Ok(Json(s.bots.cleanup().await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_in_chunks_is_one_bot_list_document() {
        for n in [0, 1, 2, 500] {
            let pieces: Vec<Bytes> = (0..n)
                .map(|i| Bytes::from(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(300))))
                .collect();
            let chunks: Vec<Bytes> = bot_list_chunks(pieces.into()).map(Result::unwrap).collect();
            assert!(chunks.iter().all(|c| c.len() <= LIST_CHUNK_BYTES + 400));
            if n == 500 {
                assert!(chunks.len() > 1, "a large list comes in several chunks");
            }
            let whole: Vec<u8> = chunks.concat();
            let v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
            let bots = v["bots"].as_array().unwrap();
            assert_eq!(bots.len(), n);
            assert!(bots.iter().enumerate().all(|(i, b)| b["n"] == i));
        }
    }
}
