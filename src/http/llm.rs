//! `/api/providers`, `/api/usage`, `/api/bots/{id}/usage` and `/api/bots/{id}/llm-keys`: the
//! LLM key proxy's control plane over HTTP. Handlers translate to [`crate::llm::LlmService`]
//! and [`crate::bots::BotService`] calls and back, with [`crate::api`] types; errors become
//! statuses in [`crate::edge::ApiError`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::openapi::{BadRequest, Conflict, NotFound, ServiceUnavailable};
use crate::BotId;
use crate::access::Principal;
use crate::api::{
    BotUsageReport, DeleteProviderQuery, KeyRevocation, KeyRotation, ProviderList, ProviderView,
    ProxyInfo, PutProvider, SinceQuery, Success, UsageReport,
};
use crate::edge::{ApiError, ApiJson, ApiPath, ApiQuery, AppState};
use crate::field_errors::FieldErrors;
use crate::llm::LlmError;

/// The LLM providers (never their keys) and where the proxy listens.
#[utoipa::path(
    get,
    path = "/api/providers",
    tag = "llm",
    responses((status = 200, description = "The proxy and every provider", body = ProviderList))
)]
pub async fn list_providers(State(s): State<AppState>) -> Json<ProviderList> {
    let endpoint = s.llm.endpoint();
    Json(ProviderList {
        proxy: ProxyInfo {
            enabled: endpoint.is_some(),
            listen: endpoint.map(|e| e.listen.to_string()),
            url: endpoint.map(|e| e.base_url()),
        },
        providers: s.llm.list_providers(),
    })
}

/// Configure a provider, or replace the one of that name.
///
/// `api_key` is write-only: kept in botmaker's secrets store, never returned or logged; left
/// out on a replace, the current key stays. Bots using the provider need no change: the proxy
/// uses the new key from the next request on.
#[utoipa::path(
    post,
    path = "/api/providers",
    tag = "llm",
    request_body(content = PutProvider, description = "The provider"),
    responses(
        (status = 201, description = "Created", body = ProviderView),
        (status = 200, description = "Replaced", body = ProviderView),
        (status = 400, response = BadRequest),
    )
)]
pub async fn put_provider(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiJson(body): ApiJson<PutProvider>,
) -> Result<(StatusCode, Json<ProviderView>), ApiError> {
    let (view, created) = s.llm.put_provider(body).await?;
    tracing::info!(provider = %view.name, %actor, created, "LLM provider saved");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Remove a provider and its key.
///
/// Refused with 409 `PROVIDER_IN_USE` while bots hold virtual keys for it, unless `force`
/// (which revokes those keys: the bots' requests get 401 from then on).
#[utoipa::path(
    delete,
    path = "/api/providers/{name}",
    tag = "llm",
    params(
        ("name" = crate::api::ProviderName, Path, description = "Provider name"),
        DeleteProviderQuery,
    ),
    responses(
        (status = 200, description = "Removed", body = Success),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub async fn delete_provider(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteProviderQuery>,
) -> Result<Json<Success>, ApiError> {
    s.llm.delete_provider(&name, q.force).await?;
    tracing::info!(provider = %name, %actor, force = q.force, "LLM provider removed");
    Ok(Json(Success::DONE))
}

fn since(q: &SinceQuery) -> Result<chrono::NaiveDate, ApiError> {
    q.day(chrono::Utc::now().date_naive()).map_err(|e| {
        let mut f = FieldErrors::default();
        f.add("since", e);
        ApiError::validation(f)
    })
}

/// The fleet's LLM usage from a day on: totals, per bot, and per bot, provider, model and day.
#[utoipa::path(
    get,
    path = "/api/usage",
    tag = "llm",
    params(SinceQuery),
    responses(
        (status = 200, description = "The usage", body = UsageReport),
        (status = 400, response = BadRequest),
    )
)]
pub async fn fleet_usage(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    Ok(Json(s.llm.usage(since(&q)?).await?))
}

/// A bot's LLM usage from a day on, its `limits.llm_*` and its counters in the current windows.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/usage",
    tag = "llm",
    params(("id" = crate::BotId, Path, description = "Bot id"), SinceQuery),
    responses(
        (status = 200, description = "The bot's usage", body = BotUsageReport),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub async fn bot_usage(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<BotUsageReport>, ApiError> {
    let day = since(&q)?;
    let bot = BotId::new(id.as_str()).map_err(|_| LlmError::BotNotFound(id.clone()))?;
    Ok(Json(s.llm.bot_usage(&bot, day).await?))
}

/// Give a bot new virtual keys for every provider it uses; the old ones stop working at once.
///
/// The key files in the bot's `/run/secrets` are replaced in place, then the template's
/// rotation policy applies as for any secret change: a running openclaw bot (which reads its
/// secrets at start only) is restarted; a generic bot reads the new key at its next request.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/llm-keys/rotate",
    tag = "llm",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "Rotated", body = KeyRotation),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn rotate_keys(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyRotation>, ApiError> {
    let (rotated, change) = s.bots.rotate_llm_keys(&id).await?;
    tracing::info!(bot = %id, %actor, ?rotated, "LLM virtual keys rotated");
    Ok(Json(match change {
        Some(change) => KeyRotation {
            rotated,
            rotation: Some(change.rotation),
            restarted: change.restarted,
            effect: change.effect.to_string(),
        },
        None => KeyRotation {
            rotated,
            rotation: None,
            restarted: false,
            effect: "the bot reaches no provider through the proxy: nothing changed".into(),
        },
    }))
}

/// Revoke every virtual key of a bot: its LLM requests get 401 until the keys are rotated.
#[utoipa::path(
    delete,
    path = "/api/bots/{id}/llm-keys",
    tag = "llm",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "Revoked", body = KeyRevocation),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn revoke_keys(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyRevocation>, ApiError> {
    let revoked = s.bots.revoke_llm_keys(&id).await?;
    tracing::info!(bot = %id, %actor, revoked, "LLM virtual keys revoked");
    Ok(Json(KeyRevocation { revoked }))
}
