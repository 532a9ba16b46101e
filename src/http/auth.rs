//! Login, logout, API tokens, and the middleware that guards every other `/api/*` route.
//! The sessions and tokens themselves are [`crate::access`]'s.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;

use super::openapi::{NotFound, ServiceUnavailable, TooManyRequests, Unauthorized};
use crate::access::{
    CSRF_HEADER, Carrier, Credential, Principal, csrf_matches, presented_credential,
};
use crate::api::{
    CreateToken, LoginRequest, NewToken, Session, Success, TokenList, valid_token_name,
};
use crate::auth::{API_TOKEN_PREFIX, Token, hash_token, new_id};
use crate::bots::FieldErrors;
use crate::edge::{ApiError, ApiJson, ApiPath, AppState, ClientIp};

/// The request's credential, if it may pass: a valid session or API token (else 401), and for
/// the browser's cookie on an unsafe method (POST, PUT, PATCH, DELETE) the session's CSRF token
/// too (else 403). What every authenticated route checks, and what a wrong method on one is
/// checked for before its 405.
pub async fn check_credential(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<(Credential, Carrier), ApiError> {
    let (token, carrier) = presented_credential(headers).ok_or_else(ApiError::unauthorized)?;
    let credential = state
        .auth
        .authenticate(&token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if carrier == Carrier::Cookie && !method.is_safe() {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !csrf_matches(&token, presented) {
            return Err(ApiError::csrf_rejected());
        }
    }
    Ok((credential, carrier))
}

/// Middleware: lets a request through only with a valid session or API token, and, when the
/// credential is the browser's cookie, only unsafe methods (POST, PUT, PATCH, DELETE) that
/// also carry the session's CSRF token.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (credential, carrier) = check_credential(&state, req.headers(), req.method()).await?;
    req.extensions_mut().insert(credential.principal.clone());
    req.extensions_mut().insert(credential);
    // Handlers that must check more than the method (a WebSocket upgrade is a GET) read it.
    req.extensions_mut().insert(carrier);
    Ok(next.run(req).await)
}

/// Exchange the admin password for a session token.
///
/// Failed logins are rate-limited per client address (429; the attempt counts before the
/// password is checked); at most a few logins are checked at once (503 `LOGIN_BUSY` beyond
/// that).
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    security(()),
    request_body(content = LoginRequest, description = "The admin password"),
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<Session>, ApiError> {
    let Some(password) = body.password.filter(|p| !p.is_empty()) else {
        let mut f = FieldErrors::default();
        f.add("password", "is required");
        return Err(ApiError::validation(f));
    };
    let (token, expires_at) = state.auth.login(ip, &password).await?;
    Ok(Json(Session {
        token: token.as_str().to_string(),
        expires_at,
    }))
}

/// End the session whose token authenticates this request.
///
/// An API token cannot log out (400 `NOT_A_SESSION`): revoke it with `DELETE /api/tokens/{id}`.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "auth",
    responses(
        (status = 200, description = "Logged out", body = Success),
        (status = 400, response = super::openapi::BadRequest),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Success>, ApiError> {
    match principal {
        Principal::Session { hash } => {
            state.auth.end_session(&hash).await?;
            Ok(Json(Success::DONE))
        }
        Principal::ApiToken { .. } => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NOT_A_SESSION",
            "this is an API token, not a session: revoke it with DELETE /api/tokens/{id}",
        )),
    }
}

/// Issue an API token.
///
/// The token is shown once, in this answer; only its hash is stored.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "auth",
    request_body(content = CreateToken, description = "A label for the token"),
    responses((status = 201, description = "Issued", body = NewToken))
)]
pub async fn create_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    let name = body.name.trim().to_string();
    if !valid_token_name(&name) {
        let mut f = FieldErrors::default();
        f.add("name", "must be 1-64 printable characters");
        return Err(ApiError::validation(f));
    }
    let token = Token::generate(API_TOKEN_PREFIX);
    let id = new_id();
    let now = Utc::now();
    state
        .store
        .insert_api_token(&id, &name, &hash_token(token.as_str()), now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id,
            name,
            token: token.as_str().to_string(),
            created_at: now,
        }),
    ))
}

/// List API tokens (never their values).
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "auth",
    responses((status = 200, description = "The tokens", body = TokenList))
)]
pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList {
        tokens: state.store.list_api_tokens().await?,
    }))
}

/// Revoke an API token.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "API token id")),
    responses(
        (status = 200, description = "Revoked", body = Success),
        (status = 404, response = NotFound),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Success>, ApiError> {
    if state.auth.revoke_api_token(&id).await? {
        Ok(Json(Success::DONE))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no API token with id '{id}'"),
        ))
    }
}
