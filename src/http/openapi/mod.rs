//! `GET /api/openapi.json`: the API described as OpenAPI 3.1, derived rather than written.
//!
//! Each handler carries its own `#[utoipa::path]` (summary, parameters, body, the errors only it
//! can give) and the bodies are the [`crate::api`] types, so the document is the code. What
//! this module adds is what no single handler knows: the front matter, the two ways to
//! authenticate, the shared error answers, and the statuses a layer in front of every handler
//! can give (401 and 403 from the auth middleware, 400/413/415 from the body and path
//! extractors, 500 from anything), added by `Layers` where that layer applies, and the
//! bounds validation enforces ([`Bounds`]), stated from the same constants.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

mod bounds;
mod responses;

pub use bounds::Bounds;
pub use responses::{
    BadRequest, Conflict, Forbidden, InternalError, NotFound, PayloadTooLarge, ServiceUnavailable,
    StartFailed, TooManyRequests, Unauthorized, UnsupportedMediaType,
};

use crate::BotId;
use crate::access::{CSRF_HEADER, SESSION_COOKIE};
use crate::api::{BotEvent, ClientMessage, ErrorBody, ServerMessage};
use crate::auth::{API_TOKEN_PREFIX, SESSION_TOKEN_PREFIX};
use crate::bots::{LOCK_WAIT_TIMEOUT, LOG_READ_TIMEOUT};
use crate::edge::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::secrets::SecretName;

/// The parts of the document no handler states.
#[derive(OpenApi)]
#[openapi(
    info(title = "botmaker", license(name = "MIT", identifier = "MIT")),
    servers((url = "/")),
    tags(
        (name = "health", description = "Liveness of botmaker and its dependencies"),
        (name = "auth", description = "Login, logout and API tokens"),
        (name = "bots", description = "The bot registry and bot lifecycle"),
        (name = "secrets", description = "Bot secrets (values are write-only)"),
        (name = "observe", description = "Logs, stats and live events"),
        (name = "exec", description = "Commands and terminals inside a running bot"),
        (name = "admin", description = "Housekeeping"),
        (name = "llm", description = "The LLM key proxy: providers, virtual keys, usage"),
        (name = "meta", description = "This document"),
    ),
    // Every operation needs a session or API token unless it says otherwise.
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    components(
        schemas(ErrorBody, BotEvent, BotId, SecretName, ClientMessage, ServerMessage),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
            UnsupportedMediaType, StartFailed, TooManyRequests, InternalError, ServiceUnavailable,
        ),
    ),
    modifiers(&FrontMatter, &AuthSchemes),
)]
pub struct BaseDocument;

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The document", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<Arc<DocumentJson>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.clone())
}

/// The document, serialized once when the router is built.
pub struct DocumentJson(pub axum::body::Bytes);

/// Completes the document once every route's operation is in it: the answers of the layers in
/// front of the handlers, and the enforced bounds.
pub fn finish(doc: &mut Document) {
    Layers.modify(doc);
    Bounds.modify(doc);
}

struct FrontMatter;

impl Modify for FrontMatter {
    fn modify(&self, doc: &mut Document) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.info.description = Some(format!(
            "Manages AI chat bots, one Docker container per bot.\n\n\
             **Authentication.** `POST /api/login` exchanges the admin password for a session \
             token (`{SESSION_TOKEN_PREFIX}...`); `POST /api/tokens` issues long-lived API tokens \
             (`{API_TOKEN_PREFIX}...`). Send either as `Authorization: Bearer <token>`; the \
             dashboard's `{SESSION_COOKIE}` cookie works too. Only `POST /api/login` and \
             `GET /health` are public.\n\n\
             **Errors** are JSON: `{{\"error\": \"message\", \"code\": \"STABLE_CODE\"}}`, with \
             `fields` (problems by field) on validation failures. Request bodies are limited to \
             {MAX_BODY_BYTES} bytes, and non-streaming requests to {} s (then 503 `TIMEOUT`).\n\n\
             **Consistency.** Calls that change a bot are serialized per bot, each acting on what \
             the previous one left; one that waits more than {} s for the bot gives up with 503 \
             `BOT_BUSY`, having done nothing. A call records a new `desired_state`, config or \
             secret only when it succeeds: one that fails (503 `DOCKER_UNAVAILABLE` included) \
             leaves the bot as it was, and the reconciler brings its container back to the \
             recorded state once Docker answers. A PATCH is all or nothing, secrets included. \
             Log reads give up after {} s with 503.",
            REQUEST_TIMEOUT.as_secs(),
            LOCK_WAIT_TIMEOUT.as_secs(),
            LOG_READ_TIMEOUT.as_secs(),
        ));
    }
}

struct AuthSchemes;

impl Modify for AuthSchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(format!(
                "A session token from `POST /api/login` (`{SESSION_TOKEN_PREFIX}...`) or an API \
                 token from `POST /api/tokens` (`{API_TOKEN_PREFIX}...`)"
            )))
            .build();
        components.add_security_scheme("bearerAuth", SecurityScheme::Http(bearer));
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE.to_string(),
            format!(
                "The dashboard's session cookie (a session token). POST, PUT, PATCH and DELETE \
                 requests authenticated by it must also send the session's CSRF token in the \
                 `{CSRF_HEADER}` header (403 otherwise)."
            ),
        ));
        components.add_security_scheme("sessionCookie", SecurityScheme::ApiKey(cookie));
    }
}

/// Adds the answers that come from the layers in front of the handlers, to the operations those
/// layers guard: the auth middleware (401; 403 for a cookie without the CSRF token on an unsafe
/// method), the path extractor (400 `INVALID_PATH`), the body extractor (400 `INVALID_JSON` or
/// `VALIDATION_FAILED`, 413, and 415 where only JSON is taken), and an internal failure (500,
/// which any operation can meet). A public operation (`security: [{}]`) skips the auth ones.
/// Run on the finished document, once every route's operation is in it.
struct Layers;

impl Modify for Layers {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (op, unsafe_method) in ops {
                if let Some(op) = op.as_mut() {
                    add_layer_answers(op, unsafe_method);
                }
            }
        }
    }
}

fn add_layer_answers(op: &mut Operation, unsafe_method: bool) {
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
    let has_path_params = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let body_types: Vec<String> = op
        .request_body
        .iter()
        .flat_map(|b| b.content.keys().cloned())
        .collect();
    if public {
        // `[]` says "no requirement" outright, where utoipa's `security(())` writes `[{}]`.
        op.security = Some(Vec::new());
    }
    let mut add = |status: u16, name: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if !public {
        add(401, "Unauthorized");
        if unsafe_method {
            add(403, "Forbidden");
        }
    }
    if has_path_params || !body_types.is_empty() {
        add(400, "BadRequest");
    }
    if !body_types.is_empty() {
        add(413, "PayloadTooLarge");
        if body_types.iter().all(|t| t == "application/json") {
            add(415, "UnsupportedMediaType");
        }
    }
    add(500, "InternalError");
}

#[cfg(test)]
mod tests;
