//! Watching the fleet: health, logs (also as a live stream), stats and state events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::{ApiError, ApiPath, ApiQuery};
use super::{AppState, Credential, until_credential_ends};
use crate::BotId;
use crate::bots::BotService;
use crate::docker::{LogLine, LogOptions};

/// Lines returned when a log request names no `tail`.
pub const DEFAULT_LOG_TAIL: usize = 500;

async fn health(State(s): State<AppState>) -> Response {
    let limit = Duration::from_secs(3);
    let database = tokio::time::timeout(limit, s.store.schema_version())
        .await
        .is_ok_and(|r| r.is_ok());
    let docker = tokio::time::timeout(limit, s.bots.docker().ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let ok = database && docker;
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "database": if database { "ok" } else { "unavailable" },
        "docker": if docker { "ok" } else { "unavailable" },
        // Where the stats sampler reads: cgroupfs (local engine) or the Docker API.
        "stats": s.sampler.source(),
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": Utc::now(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    tail: Option<usize>,
    /// Unix seconds or RFC 3339.
    since: Option<String>,
    #[serde(default)]
    follow: bool,
}

fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    s.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

async fn logs(
    State(s): State<AppState>,
    Extension(credential): Extension<Credential>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let since = match q.since.as_deref() {
        None => None,
        Some(raw) => Some(parse_since(raw).ok_or_else(|| {
            let mut f = crate::bots::FieldErrors::default();
            f.add("since", "must be Unix seconds or an RFC 3339 time");
            ApiError::validation(f)
        })?),
    };
    let opts = LogOptions {
        tail: Some(q.tail.unwrap_or(DEFAULT_LOG_TAIL)),
        since,
        follow: false,
    };
    if !q.follow {
        // Docker down or frozen is a 503, like stats and follow: never an empty 200.
        let lines: Vec<LogLine> = s.bots.log_lines(&id, &opts).await?;
        return Ok(Json(json!({ "lines": lines })).into_response());
    }
    // Fail fast (404) before switching to a stream.
    s.bots.get(&id).await?;
    let bot = BotId::new(id).map_err(|_| ApiError::no_route())?;
    let lines = follow_logs(s.bots.clone(), bot, opts);
    Ok(
        Sse::new(until_credential_ends(s.auth.clone(), credential, lines))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

/// Log lines as Server-Sent Events, re-attaching whenever the container starts again, until
/// the client goes away (or, through [`until_credential_ends`], its credential does).
fn follow_logs(
    bots: BotService,
    bot: BotId,
    opts: LogOptions,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let mut last: Option<DateTime<Utc>> = None;
        let mut opts = LogOptions {
            follow: true,
            ..opts
        };
        loop {
            let mut lines = bots.docker().logs(&bot, &opts);
            loop {
                // A quiet bot must not keep a Docker connection open for a client that left.
                let line = tokio::select! {
                    _ = tx.closed() => return,
                    line = lines.next() => line,
                };
                let Some(Ok(line)) = line else { break };
                // Re-attaching asks from the last second seen; skip what was already sent.
                if let (Some(t), Some(l)) = (line.timestamp, last) {
                    if t <= l {
                        continue;
                    }
                }
                last = line.timestamp.or(last);
                let event = Event::default()
                    .event("line")
                    .json_data(&line)
                    .expect("serializable");
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            let note = Event::default()
                .event("detached")
                .data("container stopped; waiting for it to run again");
            if tx.send(note).await.is_err() {
                return;
            }
            // Wait until it runs again (or the client leaves).
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if tx.is_closed() {
                    return;
                }
                match bots.docker().container_status(&bot).await {
                    Ok(Some(st)) if st.running => break,
                    Ok(None) => {
                        let _ = tx
                            .send(
                                Event::default()
                                    .event("gone")
                                    .data("the bot's container was removed"),
                            )
                            .await;
                        return;
                    }
                    _ => {}
                }
            }
            let _ = tx
                .send(
                    Event::default()
                        .event("attached")
                        .data("container running again"),
                )
                .await;
            opts = LogOptions {
                tail: None,
                since: last,
                follow: true,
            };
        }
    });
    stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

async fn all_stats(State(s): State<AppState>) -> Json<Value> {
    Json(json!({ "stats": s.sampler.latest() }))
}

async fn bot_stats(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let view = s.bots.get(&id).await?;
    let bot = BotId::new(view.id.clone()).map_err(|_| ApiError::no_route())?;
    let history = s.sampler.history(&bot);
    Ok(Json(json!({
        "id": view.id,
        "latest": history.last(),
        "history": history,
        "memory_limit_bytes": view.limits.memory_bytes(),
    })))
}

async fn events(
    State(s): State<AppState>,
    Extension(credential): Extension<Credential>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.bots.fleet().subscribe();
    let events = stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ev) => Event::default()
                .event("bot")
                .json_data(&ev)
                .expect("serializable"),
            // A slow client missed some: tell it to re-read the list.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("resync").data(n.to_string())
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(until_credential_ends(s.auth.clone(), credential, events))
        .keep_alive(KeepAlive::default())
}

/// `GET /health` (public).
pub fn public_router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// Routes that answer at once.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/stats", get(all_stats))
        .route("/api/bots/{id}/stats", get(bot_stats))
}

/// Routes that may stream for a long time (no request timeout).
pub fn streaming_router() -> Router<AppState> {
    Router::new()
        .route("/api/bots/{id}/logs", get(logs))
        .route("/api/events", get(events))
}
