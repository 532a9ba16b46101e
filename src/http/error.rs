//! `ApiError`: the one error type of the HTTP layer, and the one place where failures become
//! HTTP statuses. Bodies are `{"error": "...", "code": "..."}`; a 5xx says nothing of its
//! cause, which goes to the log instead.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::bots::{BotError, FieldErrors};
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Option<FieldErrors>,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a FieldErrors>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
        }
    }

    /// 400 with one problem per field.
    pub fn validation(fields: FieldErrors) -> Self {
        Self {
            message: format!("invalid request: {}", fields.summary()),
            fields: Some(fields),
            ..Self::new(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", "")
        }
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing, invalid or expired token: log in (POST /api/login) and send \
             `Authorization: Bearer <token>`",
        )
    }

    /// 404 for a path that matches no route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API route")
    }

    /// 429 with a `Retry-After` of `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("too many failed logins; try again in {secs} s"),
            )
        }
    }

    /// 500 whose cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error (details are in the server log)",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(Body {
                error: &self.message,
                code: self.code,
                fields: self.fields.as_ref(),
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<BotError> for ApiError {
    fn from(e: BotError) -> Self {
        let code = e.code();
        let status = match &e {
            BotError::Validation(fields) => return Self::validation(fields.clone()),
            BotError::NotFound(_) => StatusCode::NOT_FOUND,
            BotError::AlreadyExists(_)
            | BotError::NameTaken(_)
            | BotError::Leftover { .. }
            | BotError::SecretRequired { .. } => StatusCode::CONFLICT,
            BotError::ImageNotFound(_) => StatusCode::BAD_REQUEST,
            // The request was fine; the bot's own configuration cannot run.
            BotError::StartFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BotError::DockerUnavailable(cause) => {
                tracing::warn!(error = %cause, "Docker unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "the Docker Engine is unreachable; try again when it is back",
                );
            }
            BotError::Docker(crate::docker::ContainerError::InvalidConfig { message, .. }) => {
                return Self::new(StatusCode::BAD_REQUEST, code, message.clone());
            }
            _ => return Self::internal(&e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

/// `Json<T>` whose rejections (malformed JSON, wrong types, unknown fields, too large) come
/// back in botmaker's error shape instead of axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
                    _ => "INVALID_JSON",
                };
                // 422 (axum's choice for well-formed JSON of the wrong shape) is a 400 here:
                // one status for "your body is wrong".
                let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
                    StatusCode::BAD_REQUEST
                } else {
                    status
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
