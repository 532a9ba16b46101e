//! `ApiError`: the one error type of the HTTP front ends, and the one place where failures
//! of every module (bots, access, store) become HTTP statuses. Bodies are
//! [`ErrorBody`]s (`{"error": "...", "code": "..."}`); a 5xx says nothing of its cause, which
//! goes to the log instead. Also the extractors that reject in that shape.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::strict_json::Strict;
use crate::access::AccessError;
use crate::alerts::AlertError;
use crate::api::ErrorBody;
use crate::bots::{BotError, FieldErrors};
use crate::llm::LlmError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    message: String,
    pub(super) fields: Option<FieldErrors>,
    retry_after: Option<u64>,
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

    /// 403 for a cookie-authenticated unsafe request without the right CSRF token.
    pub fn csrf_rejected() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "CSRF",
            "missing or wrong CSRF token: a request authenticated by the session cookie must \
             send the page's token (meta csrf-token) in the X-CSRF-Token header; scripts should \
             use `Authorization: Bearer <token>` instead of the cookie",
        )
    }

    /// 404 for a path that matches no route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API route")
    }

    /// 405 for a known API path asked with a method it does not take (axum's own answer has
    /// an empty body; every API error is JSON). The `Allow` header lists the methods it takes.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "this API route does not take that method (see the Allow header)",
        )
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

    /// The body this error answers with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            code: self.code.to_string(),
            fields: self.fields.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(ErrorBody {
                error: self.message,
                code: self.code.to_string(),
                fields: self.fields,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // For the layers that record outcomes (the audit log), without reading the body.
        res.extensions_mut().insert(ErrorCode(self.code));
        res
    }
}

/// The machine code of an error answer, in the response's extensions: what the audit log
/// records as a failed change's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl From<BotError> for ApiError {
    fn from(e: BotError) -> Self {
        let code = e.code();
        let status = match &e {
            BotError::Validation(fields) => return Self::validation(fields.clone()),
            BotError::NotFound(_) => StatusCode::NOT_FOUND,
            BotError::AlreadyExists(_)
            | BotError::NameTaken(_)
            | BotError::Leftover { .. }
            | BotError::SecretRequired { .. }
            | BotError::NotRunning { .. } => StatusCode::CONFLICT,
            BotError::ImageNotFound(_) => StatusCode::BAD_REQUEST,
            // The request was fine; the bot's own configuration cannot run.
            BotError::StartFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BotError::ShuttingDown | BotError::Busy(_) => {
                return Self::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string());
            }
            BotError::DockerUnavailable(cause) => {
                tracing::warn!(error = %cause, "Docker unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "the Docker Engine is unreachable; try again when it is back",
                );
            }
            // The archive sent is unusable; nothing was changed.
            BotError::Backup(b) if b.is_bad_archive() => StatusCode::BAD_REQUEST,
            // The engine backend has no such operation (`exec` on Swarm, for example).
            BotError::Docker(crate::docker::ContainerError::Unsupported { .. }) => {
                StatusCode::NOT_IMPLEMENTED
            }
            BotError::Docker(crate::docker::ContainerError::InvalidConfig { message, .. }) => {
                return Self::new(StatusCode::BAD_REQUEST, code, message.clone());
            }
            _ => return Self::internal(&e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<LlmError> for ApiError {
    fn from(e: LlmError) -> Self {
        let code = e.code();
        let status = match &e {
            LlmError::Validation(fields) => return Self::validation(fields.clone()),
            LlmError::ProviderNotFound(_) | LlmError::BotNotFound(_) => StatusCode::NOT_FOUND,
            LlmError::ProviderInUse { .. } => StatusCode::CONFLICT,
            LlmError::ProxyOff => StatusCode::CONFLICT,
            _ => return Self::internal(&e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> Self {
        let status = match &e {
            AlertError::Validation(fields) => return Self::validation(fields.clone()),
            AlertError::NotFound(_) => StatusCode::NOT_FOUND,
            AlertError::AlreadyExists(_) => StatusCode::CONFLICT,
            _ => return Self::internal(&e),
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let status = match &e {
            AccessError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccessError::LoginBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AccessError::InvalidPassword => StatusCode::UNAUTHORIZED,
            AccessError::Store(_) => return Self::internal(&e),
        };
        let retry_after = e.retry_after().map(|d| d.as_secs());
        Self {
            retry_after,
            ..Self::new(status, e.code(), e.to_string())
        }
    }
}

/// A request part (body, query string) that did not deserialize into what the handler takes.
/// A wrong value at a known field (`ports[0].container` given a float) is a field error like
/// any validation failure; anything else (malformed syntax, a wrong shape at the top) is
/// `code` with the parser's message.
fn deserialize_error<E: std::fmt::Display>(
    err: serde_path_to_error::Error<E>,
    code: &'static str,
    what: &str,
    data_error: impl FnOnce(&E) -> bool,
) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if path != "." && !path.is_empty() && data_error(&inner) {
        let mut fields = FieldErrors::default();
        fields.add(path, crate::bots::plain_words::plain(&inner.to_string()));
        ApiError::validation(fields)
    } else {
        let message = crate::bots::plain_words::plain(&inner.to_string());
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("{what}: {message}"))
    }
}

/// Whether the request says its body is JSON (`application/json`, or `application/*+json`).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .get(..12)
            .is_some_and(|t| t.eq_ignore_ascii_case("application/"))
            && essence.to_ascii_lowercase().ends_with("+json")
}

/// A JSON body whose rejections (malformed JSON, wrong types, unknown fields, too large, not
/// JSON at all) come back in botmaker's error shape instead of axum's plain text; a value of
/// the wrong type at a known field is a field error (`VALIDATION_FAILED`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a request body with `Content-Type: application/json`",
            ));
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        decode_json(&bytes).map(Self)
    }
}

/// The raw body, its rejections (too large, unreadable) in botmaker's error shape instead of
/// axum's plain text.
#[derive(Debug, Clone, Default)]
pub struct ApiBytes(pub Bytes);

impl<S> FromRequest<S> for ApiBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
                    _ => "INVALID_BODY",
                };
                ApiError::new(status, code, rejection.body_text())
            })
    }
}

/// [`ApiJson`] for a body that may be left out: no body (or only whitespace) is `T::default()`;
/// anything else must be JSON as for [`ApiJson`]. For `POST` actions whose options are all
/// optional (`botmaker bots upgrade ID` sends nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJsonOrEmpty<T>(pub T);

impl<T, S> FromRequest<S> for ApiJsonOrEmpty<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a request body with `Content-Type: application/json`",
            ));
        }
        decode_json(&bytes).map(Self)
    }
}

/// Parses a JSON body into `T`, with the field path of a wrong value. Every body the API takes
/// is an object: serde would also build a struct from an array of its fields in order (so
/// `[]` was an empty PATCH that recreated the container), which no schema allows.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b == b'[') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            "invalid JSON body: expected an object, found an array",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        deserialize_error(e, "INVALID_JSON", "invalid JSON body", |inner| {
            inner.classify() == serde_json::error::Category::Data
        })
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            format!("invalid JSON body: {e}"),
        )
    })?;
    // The streaming reading above accepts a struct written as an array (serde's derive allows
    // it); a second reading over the parsed value refuses that shape, with the field's path.
    let parsed: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            format!("invalid JSON body: {e}"),
        )
    })?;
    serde_path_to_error::deserialize::<_, T>(Strict(&parsed)).map_err(|e| {
        deserialize_error(e, "INVALID_JSON", "invalid JSON body", |inner| {
            inner.classify() == serde_json::error::Category::Data
        })
    })?;
    Ok(value)
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// A query string parsed into `T`; a bad value is a field error, anything else
/// `INVALID_QUERY`, both as JSON (axum's `Query` answers in plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Self)
            .map_err(|e| deserialize_error(e, "INVALID_QUERY", "invalid query string", |_| true))
    }
}

/// Path parameters parsed into `T`, rejected as JSON (`INVALID_PATH`, for example a
/// percent-encoding that is not UTF-8) instead of axum's plain text.
#[derive(Debug, Clone, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PATH",
                rejection.body_text(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Port {
        container: u16,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        id: String,
        #[serde(default)]
        ports: Vec<Port>,
    }

    fn field_errors(e: &ApiError) -> Vec<String> {
        e.fields
            .as_ref()
            .map(|f| f.fields().keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_wrong_type_at_a_field_is_a_field_error() {
        let e = decode_json::<Body>(br#"{"id": "x", "ports": [{"container": 80.5}]}"#).unwrap_err();
        assert_eq!(e.code, "VALIDATION_FAILED");
        assert_eq!(field_errors(&e), ["ports[0].container"]);
        let e =
            decode_json::<Body>(br#"{"id": "x", "ports": [{"container": 70000}]}"#).unwrap_err();
        assert_eq!(field_errors(&e), ["ports[0].container"]);
    }

    #[test]
    fn a_json_array_body_was_taken_as_a_struct_by_position() {
        for body in [&b"[]"[..], br#" ["x", []]"#] {
            let e = decode_json::<Body>(body).unwrap_err();
            assert_eq!(e.code, "INVALID_JSON", "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_nested_struct_written_as_an_array_was_accepted_with_its_defaults() {
        // Fuzz case 1288 (seed 185069602): `"limits": []` was a valid, empty `limits`.
        let e = decode_json::<Body>(br#"{"id": "x", "ports": [[]]}"#).unwrap_err();
        assert_eq!(e.code, "VALIDATION_FAILED");
        assert_eq!(field_errors(&e), ["ports[0]"]);
        let e =
            decode_json::<Body>(br#"{"id": "x", "ports": [{"container": 1}, [2]]}"#).unwrap_err();
        assert_eq!(field_errors(&e), ["ports[1]"]);
        let ok = decode_json::<Body>(br#"{"id": "x", "ports": [{"container": 1}]}"#).unwrap();
        assert_eq!(ok.ports[0].container, 1);
    }

    #[test]
    fn malformed_json_and_root_errors_are_invalid_json() {
        for body in [
            &br#"{"id": "#[..],
            br#""just a string""#,
            br#"{"id": "x"} trailing"#,
            br#"{}"#,
        ] {
            let e = decode_json::<Body>(body).unwrap_err();
            assert_eq!(e.code, "INVALID_JSON", "{}", String::from_utf8_lossy(body));
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        let e = decode_json::<Body>(br#"{"id": "x", "colour": "red"}"#).unwrap_err();
        assert!(e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn content_types_that_are_json() {
        let h = |ct: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            is_json(&m)
        };
        assert!(h("application/json"));
        assert!(h("Application/JSON; charset=utf-8"));
        assert!(h("application/merge-patch+json"));
        assert!(!h("text/plain"));
        assert!(!h("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
