//! What the LLM proxy tests need beyond the harness: a mock upstream provider served by the
//! test process (OpenAI-compatible chat completions and models, Anthropic messages, streaming
//! and not), which records what it was sent and can hold a stream open half-way. Test networks
//! come from `support::openclaw::TestNetwork`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// What the mock's chat completions report: prompt and completion tokens.
pub const CHAT_USAGE: (u64, u64) = (11, 7);
/// What the mock's messages report: input (with cache reads) and output tokens.
pub const MESSAGES_USAGE: (u64, u64) = (25, 15);
/// The first words of every streamed answer.
pub const FIRST_CHUNK: &str = "first-chunk-5e1";

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `POST /v1/chat/completions`, ...
    pub route: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its JSON body (`null` when none).
    pub body: Value,
}

impl Seen {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Default)]
struct MockState {
    seen: Mutex<Vec<Seen>>,
    /// When set, streams stop after their first chunk until it is notified.
    hold: Mutex<Option<Arc<Notify>>>,
}

/// A mock provider on `127.0.0.1`, stopped when dropped.
pub struct MockUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Starts one.
    pub async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/messages", post(messages))
            .route("/v1/models", get(models))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT/v1`, a provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Makes streams stop after their first chunk until the returned handle is notified.
    pub fn hold_streams(&self) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        *self.state.hold.lock().unwrap() = Some(n.clone());
        n
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(state: &MockState, route: &str, headers: &HeaderMap, body: &Bytes) -> Value {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    state.seen.lock().unwrap().push(Seen {
        route: route.into(),
        headers: headers.clone(),
        body: json.clone(),
    });
    json
}

/// An SSE body: `first` at once, then (after the hold, if any) `rest`.
fn sse(first: Vec<String>, rest: Vec<String>, hold: Option<Arc<Notify>>) -> Response {
    let stream = async_stream(first, rest, hold);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    first: Vec<String>,
    rest: Vec<String>,
    hold: Option<Arc<Notify>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(
        (first.into_iter(), rest.into_iter(), hold),
        |(mut first, mut rest, mut hold)| async move {
            if let Some(e) = first.next() {
                return Some((Ok(Bytes::from(e)), (first, rest, hold)));
            }
            if let Some(h) = hold.take() {
                h.notified().await;
            }
            let e = rest.next()?;
            Some((Ok(Bytes::from(e)), (first, rest, hold)))
        },
    )
}

async fn chat(State(s): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(&s, "POST /v1/chat/completions", &headers, &body);
    let model = req["model"].as_str().unwrap_or("m").to_string();
    let (prompt, completion) = CHAT_USAGE;
    let usage = json!({
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    if req["stream"] != true {
        return axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{ "index": 0, "finish_reason": "stop",
                          "message": { "role": "assistant", "content": format!("{FIRST_CHUNK} pong") } }],
            "usage": usage,
        }))
        .into_response();
    }
    let with_usage = req["stream_options"]["include_usage"] == true;
    let chunk = |content: &str| {
        let mut c = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
            "choices": [{ "index": 0, "delta": { "content": content } }],
        });
        if with_usage {
            c["usage"] = Value::Null;
        }
        format!("data: {c}\n\n")
    };
    let mut rest = vec![chunk(" pong")];
    if with_usage {
        let u = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
            "choices": [], "usage": usage,
        });
        rest.push(format!("data: {u}\n\n"));
    }
    rest.push("data: [DONE]\n\n".into());
    let hold = s.hold.lock().unwrap().clone();
    sse(vec![chunk(FIRST_CHUNK)], rest, hold)
}

async fn messages(State(s): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(&s, "POST /v1/messages", &headers, &body);
    let model = req["model"].as_str().unwrap_or("m").to_string();
    let (input, output) = MESSAGES_USAGE;
    if req["stream"] != true {
        return axum::Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{ "type": "text", "text": format!("{FIRST_CHUNK} pong") }],
            "stop_reason": "end_turn",
            "usage": { "input_tokens": input - 5, "cache_read_input_tokens": 5, "output_tokens": output },
        }))
        .into_response();
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let first = vec![
        event(
            "message_start",
            json!({ "type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
                "usage": { "input_tokens": input - 5, "cache_read_input_tokens": 5, "output_tokens": 1 },
            }}),
        ),
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "text_delta", "text": FIRST_CHUNK } }),
        ),
    ];
    let rest = vec![
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "text_delta", "text": " pong" } }),
        ),
        event(
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn" },
                    "usage": { "output_tokens": output } }),
        ),
        event("message_stop", json!({ "type": "message_stop" })),
    ];
    let hold = s.hold.lock().unwrap().clone();
    sse(first, rest, hold)
}

async fn models(State(s): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    record(&s, "GET /v1/models", &headers, &Bytes::new());
    (
        StatusCode::OK,
        axum::Json(
            json!({ "object": "list", "data": [{ "id": "test-model", "object": "model" }] }),
        ),
    )
        .into_response()
}
