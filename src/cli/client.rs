//! `ApiClient`: the CLI's one HTTP client. It adds the bearer token, bounds every request in
//! time (except streams), and turns transport failures and error bodies into [`CliError`]s.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{CliError, one_line};
use super::values::ServerUrl;
use crate::api::{ErrorBody, LoginRequest, Session, Success};

/// Longest wait for a TCP connection to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a non-streaming request may take: longer than the server's own 60 s limit, so the
/// server's answer (a 503) arrives rather than a client-side timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A client for one server.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    server: ServerUrl,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `server` that sends `token` when it has one.
    pub fn new(server: ServerUrl, token: Option<String>) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("botmaker-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Failed(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Self {
            http,
            server,
            token,
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    /// The token to send; `NOT_LOGGED_IN` when none is configured.
    pub fn token(&self) -> Result<&str, CliError> {
        self.token.as_deref().ok_or_else(|| CliError::NotLoggedIn {
            server: self.server.to_string(),
        })
    }

    /// An authenticated request; fails at once when no token is configured.
    fn authed(&self, method: Method, path: &str) -> Result<RequestBuilder, CliError> {
        let token = self.token()?;
        Ok(self
            .http
            .request(method, self.server.join(path))
            .bearer_auth(token))
    }

    /// Sends `req` (with the usual time limit unless `streaming`) and checks its status.
    async fn send(&self, req: RequestBuilder, streaming: bool) -> Result<Response, CliError> {
        let limit = (!streaming).then_some(REQUEST_TIMEOUT);
        self.send_within(req, limit).await
    }

    /// Sends `req` within `limit` (none: a stream) and checks its status.
    async fn send_within(
        &self,
        req: RequestBuilder,
        limit: Option<Duration>,
    ) -> Result<Response, CliError> {
        let req = match limit {
            Some(limit) => req.timeout(limit),
            None => req,
        };
        let res = req.send().await.map_err(|e| self.transport(e))?;
        self.check(res).await
    }

    /// `method path` with an optional JSON body; the answer parsed as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, CliError> {
        let mut req = self.authed(method, path)?;
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = self.send(req, false).await?;
        self.parse(res).await
    }

    /// `POST path` with a JSON body, allowed `limit` instead of the usual time limit (a call
    /// the server itself lets run longer, such as `exec` with its `timeout_secs`).
    pub async fn post_within<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
        limit: Duration,
    ) -> Result<T, CliError> {
        let req = self.authed(Method::POST, path)?.json(body);
        let res = self.send_within(req, Some(limit)).await?;
        self.parse(res).await
    }

    /// `GET path`, parsed as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST path` without a body.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call(Method::POST, path, None::<&()>).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Success, CliError> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// `PUT path` with a raw byte body (a secret value: never JSON-encoded, never logged).
    /// The answer parsed as `T`.
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<T, CliError> {
        let req = self
            .authed(Method::PUT, path)?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let res = self.send(req, false).await?;
        self.parse(res).await
    }

    /// `GET path` answered with a stream (Server-Sent Events): no overall time limit.
    pub async fn stream(&self, path: &str) -> Result<Response, CliError> {
        let req = self
            .authed(Method::GET, path)?
            .header(reqwest::header::ACCEPT, "text/event-stream");
        self.send(req, true).await
    }

    /// `GET path` answered with a download of any length: no overall time limit.
    pub async fn download(&self, path: &str) -> Result<Response, CliError> {
        let req = self.authed(Method::GET, path)?;
        self.send(req, true).await
    }

    /// `POST path` with a raw byte body (an archive), allowed `limit`; the answer as `T`.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
        limit: Duration,
    ) -> Result<T, CliError> {
        let req = self
            .authed(Method::POST, path)?
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let res = self.send_within(req, Some(limit)).await?;
        self.parse(res).await
    }

    /// `POST /api/login` (needs no token).
    pub async fn login(&self, password: &str) -> Result<Session, CliError> {
        let req = self
            .http
            .post(self.server.join("/api/login"))
            .json(&LoginRequest {
                password: Some(password.to_string()),
            });
        let res = self.send(req, false).await?;
        self.parse(res).await
    }

    /// Status of `GET /health` (no token), within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<StatusCode, CliError> {
        self.http
            .get(self.server.join("/health"))
            .timeout(timeout)
            .send()
            .await
            .map(|r| r.status())
            .map_err(|e| self.transport(e))
    }

    async fn parse<T: DeserializeOwned>(&self, res: Response) -> Result<T, CliError> {
        let bytes = res.bytes().await.map_err(|e| self.transport(e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.unexpected(e))
    }

    /// A JSON answer already read (to print it with `--json`) as the type the CLI expects.
    pub fn decode<T: DeserializeOwned>(&self, v: serde_json::Value) -> Result<T, CliError> {
        serde_json::from_value(v).map_err(|e| self.unexpected(e))
    }

    fn unexpected(&self, e: serde_json::Error) -> CliError {
        CliError::Protocol {
            server: self.server.to_string(),
            detail: format!("the answer is not the JSON expected: {e}"),
        }
    }

    /// Passes a success through; turns an error answer into the matching [`CliError`].
    async fn check(&self, res: Response) -> Result<Response, CliError> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await.unwrap_or_default();
        Err(self.error_answer(status, &text))
    }

    /// The [`CliError`] for an error answer with this status and body (also the refusal of a
    /// WebSocket handshake).
    pub fn error_answer(&self, status: StatusCode, text: &str) -> CliError {
        let body: Option<ErrorBody> = serde_json::from_str(text).ok();
        let (code, message) = match body {
            Some(b) => (b.code, one_line(&b.error)),
            None => (
                format!("HTTP_{}", status.as_u16()),
                format!(
                    "the server answered {status}{}",
                    Some(one_line(text))
                        .filter(|t| !t.is_empty() && t.len() < 200)
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default()
                ),
            ),
        };
        if status == StatusCode::UNAUTHORIZED {
            let message = if code == "UNAUTHORIZED" {
                format!(
                    "{} rejected the token (missing, invalid, revoked or expired): run \
                     `botmaker login`",
                    self.server
                )
            } else {
                message
            };
            return CliError::Unauthorized { code, message };
        }
        CliError::Api {
            status: status.as_u16(),
            code,
            message,
        }
    }

    /// A transport failure: unreachable when nothing answered, else a protocol error.
    pub fn transport(&self, e: reqwest::Error) -> CliError {
        if e.is_connect() || e.is_timeout() {
            let cause = if e.is_timeout() {
                "no answer in time".to_string()
            } else {
                innermost_cause(&e)
            };
            return CliError::Unreachable {
                server: self.server.to_string(),
                cause,
            };
        }
        CliError::Protocol {
            server: self.server.to_string(),
            detail: innermost_cause(&e),
        }
    }
}

/// The last error of a source chain ("Connection refused (os error 111)"): the part a person
/// can act on, where the outer layers only say "error sending request".
fn innermost_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    one_line(&cur.to_string())
}
