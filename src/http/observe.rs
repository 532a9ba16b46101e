//! Watching the fleet: health, logs (also as a live stream), stats and state events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::openapi::{BadRequest, NotFound, ServiceUnavailable};
use crate::BotId;
use crate::access::{Credential, until_credential_ends};
use crate::api::{
    Availability, BotStatsHistory, DEFAULT_LOG_TAIL, Health, HealthStatus, LogLines, LogQuery,
    StatsHistory, StatsHistoryQuery, StatsList, StatsMinute,
};
use crate::bots::{BotService, NextRun, RunWatch};
use crate::docker::LogOptions;
use crate::edge::{ApiError, ApiPath, ApiQuery, AppState};
use crate::sampler::{HISTORY_KEEP, minute_of};

/// Health of botmaker, its database and the Docker Engine.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Everything works", body = Health),
        (status = 503, description = "Degraded: the database or Docker is unavailable", body = Health),
    )
)]
pub async fn health(State(s): State<AppState>) -> (StatusCode, Json<Health>) {
    let limit = Duration::from_secs(3);
    let database = tokio::time::timeout(limit, s.store.schema_version())
        .await
        .is_ok_and(|r| r.is_ok());
    let docker = tokio::time::timeout(limit, s.bots.docker().ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let ok = database && docker;
    let body = Health {
        status: if ok {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        },
        database: Availability::of(database),
        docker: Availability::of(docker),
        stats: s.sampler.source(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: Utc::now(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
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

/// A bot's log lines, or a live stream of them.
///
/// With `follow=true` the answer is a Server-Sent Events stream: `line` events carry a `LogLine`
/// as JSON; `detached` when the container stops, `attached` when it runs again (restarted, or a
/// new container after an update or upgrade), `gone` when the bot was deleted (the stream then
/// ends). `unauthorized` (the credential was revoked, logged out
/// or expired; checked every 2 s) and `shutdown` also end it, their data an `Error`.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/logs",
    tag = "observe",
    params(("id" = crate::BotId, Path, description = "Bot id"), LogQuery),
    responses(
        (status = 200, description = "The lines (JSON), or with `follow=true` an event stream", content(
            (LogLines = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn bot_logs(
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
        let lines = s.bots.log_lines(&id, &opts).await?;
        return Ok(Json(LogLines { lines }).into_response());
    }
    // Fail fast (404) before switching to a stream.
    s.bots.get(&id).await?;
    let bot = BotId::new(id).map_err(|_| ApiError::no_route())?;
    let lines = follow_logs(s.tasks.clone(), s.bots.clone(), bot, opts);
    Ok(
        Sse::new(until_credential_ends(s.auth.clone(), credential, lines))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

/// Log lines as Server-Sent Events, re-attaching whenever the container runs again (restarted,
/// started, or recreated by an update or upgrade), until the client goes away (or, through
/// [`until_credential_ends`], its credential does) or the bot is deleted. The reader is a task
/// of `tasks`, so the server waits for it on shutdown.
///
/// Between runs the follower waits on the reconciler's observations ([`RunWatch`]), not on
/// Docker: the only Docker call a follower makes is the log stream of each run it follows.
fn follow_logs(
    tasks: TaskTracker,
    bots: BotService,
    bot: BotId,
    opts: LogOptions,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, rx) = mpsc::channel::<Event>(256);
    tasks.spawn(async move {
        // Before the first attach, so a run that starts while it streams is not missed.
        let mut runs = RunWatch::new(bots.fleet().clone(), bot.clone());
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
            drop(lines);
            let note = Event::default()
                .event("detached")
                .data("container stopped; waiting for it to run again");
            if tx.send(note).await.is_err() {
                return;
            }
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = runs.next_run(bots.store()) => next,
            };
            if next == NextRun::Deleted {
                let _ = tx
                    .send(Event::default().event("gone").data("the bot was deleted"))
                    .await;
                return;
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

/// Latest resource usage of every running bot (from the sampler's cache).
#[utoipa::path(
    get,
    path = "/api/stats",
    tag = "observe",
    responses((status = 200, description = "The samples", body = StatsList))
)]
pub async fn all_stats(State(s): State<AppState>) -> Json<StatsList> {
    Json(StatsList {
        stats: s.sampler.latest(),
    })
}

/// A bot's latest resource usage and recent history.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/stats",
    tag = "observe",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    responses(
        (status = 200, description = "Its stats", body = BotStatsHistory),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn bot_stats(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BotStatsHistory>, ApiError> {
    let view = s.bots.get(&id).await?;
    let bot = BotId::new(view.id.clone()).map_err(|_| ApiError::no_route())?;
    let history = s.sampler.history(&bot);
    Ok(Json(BotStatsHistory {
        memory_limit_bytes: view.limits.memory_bytes(),
        latest: history.last().copied(),
        history,
        id: view.id,
    }))
}

/// A bot's CPU and memory per minute over the last 24 hours (at most), oldest first.
///
/// Each minute aggregates the sampler's readings in it (mean and highest); minutes the bot was
/// not running are absent. Answered from the registry: no Docker call.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/stats/history",
    tag = "observe",
    params(("id" = crate::BotId, Path, description = "Bot id"), StatsHistoryQuery),
    responses(
        (status = 200, description = "Its minutes", body = StatsHistory),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub async fn bot_stats_history(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatsHistoryQuery>,
) -> Result<Json<StatsHistory>, ApiError> {
    let not_found = || ApiError::from(crate::bots::BotError::NotFound(id.clone()));
    let bot = BotId::new(id.as_str()).map_err(|_| not_found())?;
    let row = s.store.get_bot(&bot).await?.ok_or_else(not_found)?;
    let now = Utc::now();
    let oldest = now - chrono::Duration::from_std(HISTORY_KEEP).expect("24 hours");
    // Never before the bot was created: the last minute of a deleted bot of the same id can
    // be written after its deletion (the sampler hands out a vanished bot's open minute).
    let since = q
        .since
        .unwrap_or(now - chrono::Duration::hours(1))
        .max(oldest)
        .max(row.created_at);
    let rows = s
        .store
        .stats_minutes(bot.as_str(), minute_of(since))
        .await?;
    let minutes = rows
        .into_iter()
        .map(|r| StatsMinute {
            at: DateTime::from_timestamp(r.minute * 60, 0).unwrap_or(now),
            cpu_percent: r.cpu_percent,
            cpu_percent_max: r.cpu_percent_max,
            memory_bytes: r.memory_bytes,
            memory_bytes_max: r.memory_bytes_max,
            memory_limit_bytes: r.memory_limit_bytes,
            samples: r.samples,
        })
        .collect();
    Ok(Json(StatsHistory {
        id: bot.to_string(),
        minutes,
    }))
}

/// Live bot changes as Server-Sent Events.
///
/// `bot` events carry a `BotEvent` as JSON; `resync` (data: how many events were missed) tells
/// a slow client to re-read the bot list. `unauthorized` (the credential was revoked, logged
/// out or expired; checked every 2 s) and `shutdown` end the stream, their data an `Error`.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "observe",
    responses((status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String))
)]
pub async fn events(
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
