//! How the proxy answers a bot when it does not forward: in the error format of the provider
//! the bot thinks it is talking to, so the bot's SDK reports it as it would a provider error
//! (an OpenAI SDK raises `AuthenticationError`, `RateLimitError`...; Anthropic's likewise).
//!
//! - OpenAI: `{"error": {"message", "type", "param": null, "code"}}`
//!   (<https://platform.openai.com/docs/guides/error-codes>).
//! - Anthropic: `{"type": "error", "error": {"type", "message"}}`
//!   (<https://docs.anthropic.com/en/api/errors>).

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which provider's error shape to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI and every OpenAI-compatible server.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Dialect {
    /// The dialect a request speaks when nothing else tells: Anthropic's SDKs send `x-api-key`
    /// and `anthropic-version`; everything else is taken for OpenAI.
    pub fn guess(headers: &HeaderMap) -> Self {
        if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }
}

/// Why the proxy did not forward a request (or could not finish it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No such route, or not one this provider serves.
    NotFound,
    /// No key, or an unknown or revoked one.
    Unauthorized,
    /// The request body is larger than the proxy forwards.
    TooLarge,
    /// `limits.llm_requests_per_minute` reached.
    RateLimited,
    /// `limits.llm_tokens_per_day` or `limits.llm_cost_per_month` reached.
    BudgetExceeded,
    /// The provider could not be reached (refused, reset, DNS, TLS).
    UpstreamUnreachable,
    /// The provider did not answer in time.
    UpstreamTimeout,
}

/// An answer the proxy gives itself.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Said to the bot (never a key, never a body).
    pub message: String,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure with a message.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same failure with a `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            FailureKind::NotFound => StatusCode::NOT_FOUND,
            FailureKind::Unauthorized => StatusCode::UNAUTHORIZED,
            FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FailureKind::RateLimited | FailureKind::BudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
            FailureKind::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            FailureKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The JSON body in `dialect`.
    pub fn body(&self, dialect: Dialect) -> serde_json::Value {
        match dialect {
            Dialect::OpenAi => {
                let (kind, code) = match self.kind {
                    FailureKind::NotFound => ("invalid_request_error", "unknown_url"),
                    FailureKind::Unauthorized => ("invalid_request_error", "invalid_api_key"),
                    FailureKind::TooLarge => ("invalid_request_error", "request_too_large"),
                    FailureKind::RateLimited => ("requests", "rate_limit_exceeded"),
                    FailureKind::BudgetExceeded => ("insufficient_quota", "insufficient_quota"),
                    FailureKind::UpstreamUnreachable => ("server_error", "upstream_unreachable"),
                    FailureKind::UpstreamTimeout => ("server_error", "upstream_timeout"),
                };
                json!({ "error": {
                    "message": self.message, "type": kind, "param": null, "code": code,
                } })
            }
            Dialect::Anthropic => {
                let kind = match self.kind {
                    FailureKind::NotFound => "not_found_error",
                    FailureKind::Unauthorized => "authentication_error",
                    FailureKind::TooLarge => "request_too_large",
                    FailureKind::RateLimited | FailureKind::BudgetExceeded => "rate_limit_error",
                    FailureKind::UpstreamUnreachable => "api_error",
                    FailureKind::UpstreamTimeout => "timeout_error",
                };
                json!({ "type": "error", "error": { "type": kind, "message": self.message } })
            }
        }
    }

    /// The whole answer in `dialect`.
    pub fn respond(&self, dialect: Dialect) -> Response {
        let mut res = (self.status(), Json(self.body(dialect))).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_providers_shape() {
        let f = Failure::new(FailureKind::Unauthorized, "bad key");
        let o = f.body(Dialect::OpenAi);
        assert_eq!(o["error"]["code"], "invalid_api_key");
        assert_eq!(o["error"]["message"], "bad key");
        assert!(o["error"]["param"].is_null());
        let a = f.body(Dialect::Anthropic);
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "authentication_error");
        assert_eq!(f.status(), StatusCode::UNAUTHORIZED);

        let f = Failure::new(FailureKind::BudgetExceeded, "x").retry_after(60);
        assert_eq!(f.status(), StatusCode::TOO_MANY_REQUESTS);
        let res = f.respond(Dialect::Anthropic);
        assert_eq!(res.headers()[header::RETRY_AFTER], "60");
        assert_eq!(
            Failure::new(FailureKind::UpstreamUnreachable, "down").status(),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn the_dialect_is_guessed_from_anthropics_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(Dialect::guess(&h), Dialect::OpenAi);
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        assert_eq!(Dialect::guess(&h), Dialect::Anthropic);
    }
}
