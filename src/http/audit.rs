//! `GET /api/audit`, and the layer that records every change made through the API in the
//! audit log (see [`crate::audit`]): after the answer, with the caller the authentication
//! layer found, the action its matched route names, the bot and target from its path, and the
//! outcome (`ok`, or the error code of the answer). Request bodies are never read.

use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Json};

use super::openapi::BadRequest;
use crate::access::Principal;
use crate::api::{AuditEntry, AuditPage, AuditQuery};
use crate::audit::{self, Actor, AnswerField, BotFrom, Change, DEFAULT_PAGE, MAX_PAGE};
use crate::edge::{ApiError, ApiQuery, AppState, ErrorCode, MAX_BODY_BYTES};
use crate::field_errors::FieldErrors;
use crate::store::AuditFilter;

/// Records the request in the audit log when its route changes something (see
/// [`audit::action_of`]). Runs inside the authentication layer, so the caller is known.
pub async fn record_changes(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let (Some(route), Some(Extension(principal))) = (route, principal) else {
        return next.run(req).await;
    };
    let Some(action) = audit::action_of(&method, &route) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let params: Vec<(String, String)> =
        <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
    let param = |name: Option<&str>| {
        name.and_then(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    };
    let mut bot = match action.bot {
        BotFrom::None => None,
        BotFrom::Param(p) => param(Some(p)),
        BotFrom::Literal(b) => Some(b.to_string()),
    };
    let mut target = param(action.target_param);
    let res = next.run(Request::from_parts(parts, body)).await;
    let status = res.status();
    let res = match action.answer_field {
        Some(field) if status.is_success() => {
            let (res, value) = answer_field(res, field).await;
            match field {
                AnswerField::BotId => bot = value,
                AnswerField::Target(_) => target = value,
            }
            res
        }
        _ => res,
    };
    let error = if status.is_success() || status.is_informational() {
        None
    } else {
        Some(
            res.extensions()
                .get::<ErrorCode>()
                .map_or_else(|| format!("HTTP_{}", status.as_u16()), |c| c.0.to_string()),
        )
    };
    let name = if action.name.is_empty() {
        audit::generic_action(&method, &route)
    } else {
        action.name.to_string()
    };
    s.audit
        .record(Change {
            actor: match principal {
                Principal::Session { .. } => Actor::Session,
                Principal::ApiToken { id } => Actor::Token(id),
            },
            action: name,
            bot_id: bot,
            target,
            error,
            status: status.as_u16(),
            client: None,
        })
        .await;
    res
}

/// Reads the answer's JSON field named by `field` (`id` of a new bot, `name` of a new token)
/// and gives the answer back whole. Answers that name things are small JSON documents.
async fn answer_field(res: Response, field: AnswerField) -> (Response, Option<String>) {
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (Response::from_parts(parts, Body::empty()), None);
    };
    let key = match field {
        AnswerField::BotId => "id",
        AnswerField::Target(k) => k,
    };
    let value = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get(key).and_then(|x| x.as_str()).map(str::to_string));
    (Response::from_parts(parts, Body::from(bytes)), value)
}

/// The audit log, newest first: who changed what, to which bot, when, and how it ended.
///
/// Page with `before`: each answer's `next_before` is the cursor of the next, older page.
/// Entries are kept for the server's retention (`serve --audit-retention-days`, 90 days by
/// default).
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, response = BadRequest),
    )
)]
pub async fn list_audit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut f = FieldErrors::default();
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        f.add("limit", format!("must be between 1 and {MAX_PAGE}"));
    }
    if q.before.is_some_and(|b| b < 1) {
        f.add("before", "must be a positive cursor");
    }
    if !f.is_empty() {
        return Err(ApiError::validation(f));
    }
    let rows = s
        .audit
        .entries(AuditFilter {
            bot_id: q.bot,
            action: q.action,
            before: q.before,
            limit,
        })
        .await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            seq: r.seq,
            at: r.at,
            actor_kind: r.actor_kind,
            actor: r.actor,
            action: r.action,
            bot: r.bot_id,
            target: r.target,
            outcome: r.outcome,
            status: r.status,
            client: r.client,
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
