//! `/api/providers`, `/api/usage`, `/api/bots/{id}/usage` and `/api/bots/{id}/llm-keys`: the
//! LLM key proxy's control plane over HTTP. Handlers translate to [`crate::llm::LlmService`]
//! and [`crate::bots::BotService`] calls and back; errors become statuses in [`super::error`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::BotId;
use crate::llm::api::{KeyRevocation, KeyRotation, ProviderList, ProxyInfo, SinceQuery};
use crate::llm::{BotUsageReport, LlmError, ProviderView, PutProvider, UsageReport};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/providers", get(list_providers).post(put_provider))
        .route("/api/providers/{name}", delete(delete_provider))
        .route("/api/usage", get(fleet_usage))
        .route("/api/bots/{id}/usage", get(bot_usage))
        .route("/api/bots/{id}/llm-keys", delete(revoke_keys))
        .route("/api/bots/{id}/llm-keys/rotate", post(rotate_keys))
}

async fn list_providers(State(s): State<AppState>) -> Json<ProviderList> {
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

async fn put_provider(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<PutProvider>,
) -> Result<(StatusCode, Json<ProviderView>), ApiError> {
    let (view, created) = s.llm.put_provider(body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// `?force=true` also revokes the keys of bots still using it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_provider(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    s.llm.delete_provider(&name, q.force).await?;
    Ok(Json(json!({ "success": true })))
}

fn since(q: &SinceQuery) -> Result<chrono::NaiveDate, ApiError> {
    q.day(chrono::Utc::now().date_naive()).map_err(|e| {
        let mut f = crate::bots::FieldErrors::default();
        f.add("since", e);
        ApiError::validation(f)
    })
}

async fn fleet_usage(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    Ok(Json(s.llm.usage(since(&q)?).await?))
}

async fn bot_usage(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<BotUsageReport>, ApiError> {
    let day = since(&q)?;
    let bot = BotId::new(id.as_str()).map_err(|_| LlmError::BotNotFound(id.clone()))?;
    Ok(Json(s.llm.bot_usage(&bot, day).await?))
}

async fn rotate_keys(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyRotation>, ApiError> {
    let rotated = s.bots.rotate_llm_keys(&id).await?;
    Ok(Json(KeyRotation {
        rotated,
        effect: "in_place".into(),
    }))
}

async fn revoke_keys(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<KeyRevocation>, ApiError> {
    Ok(Json(KeyRevocation {
        revoked: s.bots.revoke_llm_keys(&id).await?,
    }))
}
