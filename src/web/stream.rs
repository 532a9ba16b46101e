//! `GET /stream/stats`: the stats sampler's readings as Server-Sent Events, so the dashboard's
//! CPU and memory figures stay current without the browser polling anything.
//!
//! The stream watches the sampler's in-memory cache (no Docker call) and sends each bot's
//! sample once, when a new one appears. Like every stream it ends with its session
//! ([`until_credential_ends`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};

use super::session::session_token;
use crate::access::until_credential_ends;
use crate::edge::{ApiError, AppState};
use crate::sampler::{BotStats, Sampler};

/// How often the cache is looked at; the sampler itself reads Docker far less often.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// `GET /stream/stats` (session cookie only).
pub async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_token(&state, &headers).await {
        Ok(Some((_, credential))) => Sse::new(until_credential_ends(
            state.auth.clone(),
            credential,
            samples(state.sampler.clone()),
        ))
        .keep_alive(KeepAlive::default())
        .into_response(),
        Ok(None) => ApiError::unauthorized().into_response(),
        Err(()) => ApiError::internal(&"session check failed").into_response(),
    }
}

/// Events named `stats`, each a JSON array of the samples that are new since the last event.
fn samples(sampler: Sampler) -> impl Stream<Item = Result<Event, Infallible>> {
    let seen: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
    stream::unfold(
        (sampler, seen, true),
        |(sampler, mut seen, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(CHECK_EVERY).await;
                }
                let fresh: Vec<BotStats> = sampler
                    .latest()
                    .into_iter()
                    .filter(|s| seen.get(&s.id) != Some(&s.sample.read))
                    .collect();
                for s in &fresh {
                    seen.insert(s.id.clone(), s.sample.read);
                }
                if first || !fresh.is_empty() {
                    let event = Event::default()
                        .event("stats")
                        .json_data(&fresh)
                        .expect("serializable");
                    return Some((Ok(event), (sampler, seen, false)));
                }
            }
        },
    )
}
