//! `GET /metrics`: the server's Prometheus metrics (see [`crate::metrics`]), for a scraper
//! holding an API token.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::edge::AppState;

/// The server's metrics in Prometheus' text format (0.0.4), from memory: the fleet's counts by
/// state; per bot (label `bot`) up, health, restarts, exit code, OOM kills, CPU, memory and
/// memory limit; HTTP requests by route template and status, with a latency histogram; the
/// Docker Engine's reachability and event-stream reconnects; alert deliveries by result; the
/// LLM proxy's counters. A scrape makes no Docker call. Scrape it with an API token as bearer.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "observe",
    responses((
        status = 200,
        description = "Families `botmaker_bots`, `botmaker_bot_up`, `botmaker_bot_health`, \
                       `botmaker_bot_restarts_total`, `botmaker_bot_exit_code`, \
                       `botmaker_bot_oom_killed`, `botmaker_bot_oom_kills_total`, \
                       `botmaker_bot_cpu_percent`, `botmaker_bot_memory_bytes`, \
                       `botmaker_bot_memory_limit_bytes`, `botmaker_http_requests_total`, \
                       `botmaker_http_request_duration_seconds`, `botmaker_docker_up`, \
                       `botmaker_docker_event_reconnects_total`, \
                       `botmaker_alert_deliveries_total`, `botmaker_llm_requests_total`, \
                       `botmaker_llm_tokens_total`, `botmaker_llm_cost_total`, \
                       `botmaker_llm_refused_total` (Prometheus text format 0.0.4: \
                       `text/plain; version=0.0.4`)",
        content_type = "text/plain",
        body = String,
    ))
)]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
}
