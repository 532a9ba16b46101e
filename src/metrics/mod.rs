//! The Prometheus metrics served at `GET /metrics`, built on `prometheus-client`.
//!
//! Two kinds of series live here:
//!
//! - **counted as things happen**: HTTP requests by route and status and their latency
//!   ([`Metrics::observe_http`], from the composition root's middleware), alert deliveries by
//!   result ([`AlertDeliveries`], a handle the alerts module increments);
//! - **read at scrape time from memory** ([`collect`]): the fleet's counts by state and every
//!   bot's observed state (from [`Fleet`], which the reconciler keeps), its CPU and memory (from
//!   the [`Sampler`]'s cache), the engine's reachability and event-stream losses, and the LLM
//!   proxy's counters. A scrape makes no Docker call and no database query, so its cost grows
//!   with the fleet's size only through formatting.
//!
//! This module reads the domain; nothing in the domain reads it.

mod collect;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::bots::Fleet;
use crate::llm::LlmService;
use crate::sampler::Sampler;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Label of an HTTP request that matched no route (a 404 of the fallback): the raw path would
/// make one series per path a client invents.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The labels of an HTTP request counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// The labels of an HTTP latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s: a list of a large fleet, a stop waiting out its grace period.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// How alert deliveries ended, counted in `botmaker_alert_deliveries_total{result}`. Cheap to
/// clone; the alerts module keeps one and calls [`AlertDeliveries::record`] per attempt.
#[derive(Debug, Clone, Default)]
pub struct AlertDeliveries(Family<ResultLabel, Counter>);

impl AlertDeliveries {
    /// Counts one delivery attempt that ended with `result` (`delivered`, `failed`,
    /// `retrying`...: a short fixed word, never a receiver's answer).
    pub fn record(&self, result: &str) {
        self.0
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }
}

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    alert_deliveries: AlertDeliveries,
}

impl Metrics {
    /// Metrics over the fleet's observed state, the sampler's cache and the LLM proxy.
    pub fn new(fleet: Arc<Fleet>, sampler: Sampler, llm: LlmService) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "botmaker_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "botmaker_http_request_duration_seconds",
            "Time to answer an HTTP request (to its headers, for a stream), by method and route \
             template",
            latency.clone(),
        );
        let alert_deliveries = AlertDeliveries::default();
        registry.register(
            "botmaker_alert_deliveries",
            "Alert notification delivery attempts, by result",
            alert_deliveries.0.clone(),
        );
        registry.register_collector(Box::new(collect::Live {
            fleet,
            sampler,
            llm,
        }));
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                alert_deliveries,
            }),
        }
    }

    /// Counts one answered request. `route` is the matched route template (`/api/bots/{id}`),
    /// or [`UNMATCHED_ROUTE`].
    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_string(), route.to_string());
        self.inner
            .latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// The handle the alerts module counts its deliveries with.
    pub fn alert_deliveries(&self) -> AlertDeliveries {
        self.inner.alert_deliveries.clone()
    }

    /// Every series in Prometheus' text format, version 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BotId;
    use crate::bots::{BotState, CrashLoopPolicy, Observed};
    use crate::docker::Health;

    fn observed(state: BotState, health: Health, exit_code: Option<i64>) -> Observed {
        Observed {
            state,
            health,
            exit_code,
            restart_count: 2,
            oom_killed: exit_code == Some(137),
            container_id: Some("c".into()),
            image_id: None,
            started_at: None,
            channels: None,
            node: None,
            node_state: None,
        }
    }

    async fn metrics(fleet: Arc<Fleet>) -> (Metrics, tempfile::TempDir) {
        let store = crate::store::Store::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let llm = LlmService::open(store, dir.path().to_path_buf(), None)
            .await
            .unwrap();
        (Metrics::new(fleet, Sampler::new(), llm), dir)
    }

    fn has(text: &str, line: &str) {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }

    #[tokio::test]
    async fn the_fleet_engine_and_http_series_render_from_memory() {
        let fleet = Arc::new(Fleet::new(CrashLoopPolicy::default()));
        let (a, b) = (BotId::new("bot-a").unwrap(), BotId::new("bot-b").unwrap());
        fleet.publish_if_changed(&a, observed(BotState::Running, Health::Healthy, None));
        fleet.publish_if_changed(&b, observed(BotState::Error, Health::None, Some(137)));
        fleet.record_oom(&b);
        fleet.engine().set_up(true);
        fleet.engine().count_event_reconnect();
        let (m, _dir) = metrics(fleet).await;
        m.observe_http("GET", "/api/bots/{id}", 200, Duration::from_millis(3));
        m.observe_http("GET", "/api/bots/{id}", 200, Duration::from_millis(5));
        m.alert_deliveries().record("delivered");
        let text = m.render();
        for line in [
            "# TYPE botmaker_bots gauge",
            "botmaker_bots{state=\"running\"} 1",
            "botmaker_bots{state=\"error\"} 1",
            "botmaker_bots{state=\"missing\"} 0",
            "botmaker_bot_up{bot=\"bot-a\"} 1",
            "botmaker_bot_up{bot=\"bot-b\"} 0",
            "botmaker_bot_health{bot=\"bot-a\",health=\"healthy\"} 1",
            "botmaker_bot_restarts_total{bot=\"bot-a\"} 2",
            "botmaker_bot_exit_code{bot=\"bot-b\"} 137",
            "botmaker_bot_oom_killed{bot=\"bot-b\"} 1",
            "botmaker_bot_oom_kills_total{bot=\"bot-b\"} 1",
            "botmaker_docker_up{engine=\"docker\"} 1",
            "botmaker_docker_event_reconnects_total{engine=\"docker\"} 1",
            "botmaker_http_requests_total{method=\"GET\",route=\"/api/bots/{id}\",status=\"200\"} 2",
            "botmaker_http_request_duration_seconds_count{method=\"GET\",route=\"/api/bots/{id}\"} 2",
            "botmaker_alert_deliveries_total{result=\"delivered\"} 1",
            "# TYPE botmaker_llm_requests_total counter",
        ] {
            has(&text, line);
        }
        assert!(
            !text.contains("botmaker_bot_exit_code{bot=\"bot-a\"}"),
            "a running bot has no exit code: {text}"
        );
    }
}
