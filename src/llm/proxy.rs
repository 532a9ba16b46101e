//! The data plane: bots' LLM requests in, the provider's answers out, with the virtual key
//! swapped for the real one on the way up.
//!
//! It opens exactly these routes, to the provider the key belongs to and no other host:
//! OpenAI's `POST /v1/chat/completions`, `/v1/completions`, `/v1/responses`, `/v1/embeddings`
//! and `GET /v1/models[/{model}]` for `openai` and `openai-compatible` providers; Anthropic's
//! `POST /v1/messages`, `/v1/messages/count_tokens` and `GET /v1/models[/{model}]` for
//! `anthropic` ones. Anything else, the botmaker API included, is a 404 in the provider's format;
//! the request's host, absolute URI or path tricks change nothing (the upstream URL is the
//! provider's base URL plus one of these paths).
//!
//! Answers stream through chunk by chunk as the provider sends them (see [`super::meter`] for
//! the one exception, a line at a time). Request and response bodies are never logged; a
//! request's log line has the bot, provider, route, status, tokens and duration.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use super::keys::KeyOwner;
use super::meter::{self, BodyMeter, JsonMeter, SseMeter};
use super::provider::{ProviderKind, is_valid_model};
use super::service::{LlmService, Provider};
use super::wire::{Dialect, Failure, FailureKind};

/// Largest request body forwarded (images make chat requests large).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// Longest wait for a provider's response headers (a long non-streaming generation included).
pub const UPSTREAM_RESPONSE_TIMEOUT: Duration = Duration::from_secs(600);
/// `anthropic-version` sent when the bot sends none (the API requires one).
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Request headers a bot's SDK sends that the provider needs; every other one (cookies, the
/// bot's key, organisation or project selectors, hop-by-hop headers) stays here.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "user-agent",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
];

/// Response headers passed back: what SDKs read (ids, rate-limit state, retry hints).
fn forwarded_response_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "content-type" | "retry-after" | "request-id" | "x-request-id" | "openai-processing-ms"
    ) || n.starts_with("x-ratelimit-")
        || n.starts_with("anthropic-ratelimit-")
}

/// A route the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ChatCompletions,
    Completions,
    Responses,
    Embeddings,
    Models,
    Messages,
    CountTokens,
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Self> {
        let post = method == Method::POST;
        let get = method == Method::GET;
        match path {
            "/v1/chat/completions" if post => Some(Self::ChatCompletions),
            "/v1/completions" if post => Some(Self::Completions),
            "/v1/responses" if post => Some(Self::Responses),
            "/v1/embeddings" if post => Some(Self::Embeddings),
            "/v1/messages" if post => Some(Self::Messages),
            "/v1/messages/count_tokens" if post => Some(Self::CountTokens),
            "/v1/models" if get => Some(Self::Models),
            _ if get => {
                let model = path.strip_prefix("/v1/models/")?;
                let plain = is_valid_model(model)
                    && model.split('/').all(|seg| !matches!(seg, "" | "." | ".."));
                plain.then_some(Self::Models)
            }
            _ => None,
        }
    }

    /// The wire format it belongs to; `None` for routes both speak.
    fn dialect(self) -> Option<Dialect> {
        match self {
            Self::Messages | Self::CountTokens => Some(Dialect::Anthropic),
            Self::Models => None,
            _ => Some(Dialect::OpenAi),
        }
    }

    fn served_by(self, kind: ProviderKind) -> bool {
        match self.dialect() {
            None => true,
            Some(Dialect::Anthropic) => kind.is_anthropic(),
            Some(Dialect::OpenAi) => !kind.is_anthropic(),
        }
    }

    /// Whether its streams carry usage only when asked (`stream_options.include_usage`).
    fn usage_on_request(self) -> bool {
        matches!(self, Self::ChatCompletions | Self::Completions)
    }
}

fn dialect_of(kind: ProviderKind) -> Dialect {
    if kind.is_anthropic() {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

/// The proxy's router: one handler, answering every path itself.
pub fn router(service: LlmService) -> Router {
    Router::new().fallback(forward).with_state(service)
}

/// How long open answers may go on after shutdown begins, before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the proxy on `listener` until `stop`; answers still streaming then get
/// [`SHUTDOWN_GRACE`] to end before they are cut (their usage is booked either way).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: LlmService,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stopped = stop.clone();
    let server = axum::serve(listener, router(service)).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => {
            if let Err(e) = r {
                tracing::error!(error = %e, "the LLM proxy stopped");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::info!("LLM answers still streaming at shutdown were cut");
    }
}

/// The key a request presents: `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.as_bytes();
        let token = v
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case(b"bearer "))
            .map(|_| v[7..].trim_ascii())?;
        return (!token.is_empty()).then_some(token);
    }
    headers
        .get("x-api-key")
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|v| !v.is_empty())
}

async fn forward(State(s): State<LlmService>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let route = Route::of(&parts.method, parts.uri.path());
    let guessed = route
        .and_then(Route::dialect)
        .unwrap_or_else(|| Dialect::guess(&parts.headers));
    let Some(route) = route else {
        s.count_refusal("-", "unknown_route");
        return Failure::new(
            FailureKind::NotFound,
            format!(
                "botmaker's LLM proxy does not serve {} {}; it serves the OpenAI routes \
                 /v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings, \
                 /v1/models and Anthropic's /v1/messages",
                parts.method,
                parts.uri.path()
            ),
        )
        .respond(guessed);
    };
    let Some(key) = presented_key(&parts.headers) else {
        s.count_refusal("-", "no_key");
        return Failure::new(
            FailureKind::Unauthorized,
            "no API key: send the bot's virtual key as `Authorization: Bearer <key>` (OpenAI) \
             or `x-api-key: <key>` (Anthropic)",
        )
        .respond(guessed);
    };
    let Some((owner, provider)) = s.authorize(key) else {
        s.count_refusal("-", "invalid_key");
        return Failure::new(
            FailureKind::Unauthorized,
            "invalid or revoked botmaker virtual key (the bot's key file may be stale: apply \
             the bot to get a fresh one)",
        )
        .respond(guessed);
    };
    let dialect = dialect_of(provider.spec.kind);
    if !route.served_by(provider.spec.kind) {
        s.count_refusal(owner.bot.as_str(), "wrong_route");
        return Failure::new(
            FailureKind::NotFound,
            format!(
                "provider '{}' is an {} provider: {} is not one of its routes",
                provider.spec.name,
                provider.spec.kind,
                parts.uri.path()
            ),
        )
        .respond(dialect);
    }
    if let Err(r) = s.admit(&owner.bot).await {
        let kind = match r.limit {
            super::budget::Limit::LlmRequestsPerMinute => FailureKind::RateLimited,
            _ => FailureKind::BudgetExceeded,
        };
        return Failure::new(
            kind,
            format!(
                "bot '{}' reached its limits.{} (botmaker); it resets in {} s",
                owner.bot,
                r.limit.field(),
                r.retry_after
            ),
        )
        .retry_after(r.retry_after)
        .respond(dialect);
    }
    let body = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                s.count_refusal(owner.bot.as_str(), "too_large");
                return Failure::new(
                    FailureKind::TooLarge,
                    format!(
                        "request body larger than the proxy forwards ({} MiB), or cut short",
                        MAX_REQUEST_BYTES >> 20
                    ),
                )
                .respond(dialect);
            }
        }
    } else {
        Bytes::new()
    };
    let prepared = if body.is_empty() {
        meter::Prepared {
            body,
            model: meter::UNKNOWN_MODEL.into(),
            strip_usage_chunk: false,
        }
    } else {
        meter::prepare_request(body, route.usage_on_request())
    };

    let upstream = match send(&s, &provider, &parts, prepared.body).await {
        Ok(r) => r,
        Err(f) => {
            s.count_refusal(owner.bot.as_str(), "upstream_error");
            tracing::warn!(
                bot = %owner.bot, provider = %provider.spec.name, route = ?route,
                error = %f.message, "LLM request not answered by the provider"
            );
            return f.respond(dialect);
        }
    };
    let status = upstream.status();
    let mut res = Response::builder().status(status.as_u16());
    let headers = res.headers_mut().expect("a fresh builder");
    for (name, value) in upstream.headers() {
        if forwarded_response_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let sse = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    if sse {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let meter = match (status.is_success(), sse) {
        (true, true) => BodyMeter::Sse(SseMeter::new(prepared.strip_usage_chunk)),
        (true, false) => BodyMeter::Json(JsonMeter::default()),
        (false, _) => BodyMeter::Off,
    };
    let body = Metered {
        inner: upstream.bytes_stream().boxed(),
        meter,
        booking: Some(Booking {
            service: s.clone(),
            owner,
            provider: provider.spec.name.to_string(),
            model: prepared.model,
            status: status.as_u16(),
            started,
        }),
        done: false,
    };
    res.body(Body::from_stream(body))
        .expect("status and headers came from a valid response")
}

/// Sends the request upstream with the real key, and waits for the response headers.
async fn send(
    s: &LlmService,
    provider: &Provider,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> Result<reqwest::Response, Failure> {
    let path = parts.uri.path().strip_prefix("/v1").unwrap_or_default();
    let mut url = format!("{}{path}", provider.spec.base_url);
    if let Some(q) = parts.uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let method = if parts.method == Method::POST {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let mut rb = s.client().request(method, &url);
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(*name) {
            rb = rb.header(*name, value.as_bytes());
        }
    }
    let key = provider.api_key.as_ref().map(|k| k.expose());
    if provider.spec.kind.is_anthropic() {
        if let Some(k) = key {
            rb = rb.header("x-api-key", k);
        }
        if !parts.headers.contains_key("anthropic-version") {
            rb = rb.header("anthropic-version", ANTHROPIC_VERSION);
        }
    } else if let Some(k) = key {
        let mut v = Vec::with_capacity(k.len() + 7);
        v.extend_from_slice(b"Bearer ");
        v.extend_from_slice(k);
        let mut value = HeaderValue::from_bytes(&v).map_err(|_| {
            Failure::new(
                FailureKind::UpstreamUnreachable,
                format!(
                    "the API key of provider '{}' is not a valid header value",
                    provider.spec.name
                ),
            )
        })?;
        value.set_sensitive(true);
        rb = rb.header(header::AUTHORIZATION, value);
    }
    if !body.is_empty() {
        rb = rb.body(body);
    }
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    match tokio::time::timeout(UPSTREAM_RESPONSE_TIMEOUT, rb.send()).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) if e.is_timeout() => Err(Failure::new(
            FailureKind::UpstreamTimeout,
            format!(
                "provider '{}' ({host}) did not answer in time",
                provider.spec.name
            ),
        )),
        Ok(Err(e)) => Err(Failure::new(
            FailureKind::UpstreamUnreachable,
            format!(
                "botmaker could not reach provider '{}' ({host}): {}",
                provider.spec.name,
                cause(&e)
            ),
        )),
        Err(_) => Err(Failure::new(
            FailureKind::UpstreamTimeout,
            format!(
                "provider '{}' ({host}) sent no answer within {} s",
                provider.spec.name,
                UPSTREAM_RESPONSE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The innermost cause of a client error, without the URL (which names nothing secret, but
/// says nothing useful either).
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_connect() {
        format!("connection failed ({source})")
    } else {
        source.to_string()
    }
}

/// What to book when a response ends.
struct Booking {
    service: LlmService,
    owner: KeyOwner,
    provider: String,
    model: String,
    status: u16,
    started: Instant,
}

impl Booking {
    fn book(self, tally: meter::Tally, outcome: &'static str) {
        self.service
            .record(&self.owner, &self.model, self.status, tally);
        tracing::debug!(
            bot = %self.owner.bot, provider = %self.provider, model = %self.model,
            status = self.status, input_tokens = tally.input, output_tokens = tally.output,
            usage_seen = tally.seen, ms = self.started.elapsed().as_millis() as u64, outcome,
            "LLM request"
        );
    }
}

/// The provider's body on its way to the bot, read by the meter as it passes; booked when it
/// ends, fails, or the bot goes away.
struct Metered {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    meter: BodyMeter,
    booking: Option<Booking>,
    done: bool,
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = this.meter.feed(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    if let Some(b) = this.booking.take() {
                        b.book(this.meter.tally(), "upstream_failed");
                    }
                    return Poll::Ready(Some(Err(std::io::Error::other(format!(
                        "the provider's answer broke off: {}",
                        cause(&e)
                    )))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let (rest, tally) = this.meter.finish();
                    if let Some(b) = this.booking.take() {
                        b.book(tally, "complete");
                    }
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(rest)));
                    }
                }
            }
        }
    }
}

impl Drop for Metered {
    /// The bot went away before the end: book what was seen.
    fn drop(&mut self) {
        if let Some(b) = self.booking.take() {
            b.book(self.meter.tally(), "bot_disconnected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_provider_routes_are_served() {
        let post = Method::POST;
        assert_eq!(
            Route::of(&post, "/v1/chat/completions"),
            Some(Route::ChatCompletions)
        );
        assert_eq!(Route::of(&post, "/v1/messages"), Some(Route::Messages));
        assert_eq!(Route::of(&Method::GET, "/v1/models"), Some(Route::Models));
        assert_eq!(
            Route::of(&Method::GET, "/v1/models/gpt-4o"),
            Some(Route::Models)
        );
        assert_eq!(
            Route::of(&Method::GET, "/v1/models/meta-llama/Llama-3"),
            Some(Route::Models)
        );
        for (m, p) in [
            (Method::GET, "/v1/chat/completions"),
            (Method::POST, "/v1/models"),
            (Method::GET, "/api/bots"),
            (Method::GET, "/v1/models/../../api/bots"),
            (Method::GET, "/v1/models/a/../b"),
            (Method::GET, "/v1/models/"),
            (Method::POST, "/v1/files"),
            (Method::POST, "/v1/chat/completions/"),
            (Method::DELETE, "/v1/models/x"),
            (Method::CONNECT, "/"),
        ] {
            assert_eq!(Route::of(&m, p), None, "{m} {p}");
        }
    }

    #[test]
    fn routes_belong_to_their_providers() {
        assert!(Route::Messages.served_by(ProviderKind::Anthropic));
        assert!(!Route::Messages.served_by(ProviderKind::Openai));
        assert!(!Route::ChatCompletions.served_by(ProviderKind::Anthropic));
        assert!(Route::ChatCompletions.served_by(ProviderKind::OpenaiCompatible));
        assert!(Route::Models.served_by(ProviderKind::Anthropic));
    }

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static(" k1 "));
        assert_eq!(presented_key(&h), Some(&b"k1"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer k2"));
        assert_eq!(presented_key(&h), Some(&b"k2"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        assert_eq!(presented_key(&h), None);
    }

    #[test]
    fn only_informative_response_headers_go_back() {
        for (name, kept) in [
            ("content-type", true),
            ("x-ratelimit-remaining-tokens", true),
            ("anthropic-ratelimit-requests-remaining", true),
            ("set-cookie", false),
            ("openai-organization", false),
            ("content-length", false),
        ] {
            assert_eq!(
                forwarded_response_header(&HeaderName::from_static(name)),
                kept,
                "{name}"
            );
        }
    }
}
