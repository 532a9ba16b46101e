//! The series read at scrape time from what botmaker already holds in memory: the fleet's
//! observed state, the sampler's latest samples, the engine's reachability and the LLM proxy's
//! counters. Nothing here calls Docker or the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::bots::{BotState, Fleet};
use crate::docker::Health;
use crate::llm::LlmService;
use crate::sampler::Sampler;

/// Billionths of the price tables' unit per unit (the LLM cost counter is kept in nanos).
const NANOS_PER_UNIT: f64 = 1e9;

/// The collector registered with the registry.
pub(super) struct Live {
    pub(super) fleet: Arc<Fleet>,
    pub(super) sampler: Sampler,
    pub(super) llm: LlmService,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

type Fmt = Result<(), std::fmt::Error>;

/// One family: its descriptor, then one sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Fmt {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<N>(v: N) -> ConstGauge<N> {
    ConstGauge::new(v)
}

fn health_str(h: Health) -> &'static str {
    match h {
        Health::None => "none",
        Health::Starting => "starting",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        Health::Degraded => "degraded",
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        self.fleet_series(&mut encoder)?;
        self.engine_series(&mut encoder)?;
        self.llm_series(&mut encoder)
    }
}

impl Live {
    fn fleet_series(&self, e: &mut DescriptorEncoder) -> Fmt {
        let bots = self.fleet.observed_all();
        let mut by_state: BTreeMap<&str, i64> =
            BotState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for b in &bots {
            *by_state.entry(b.observed.state.as_str()).or_default() += 1;
        }
        family(
            e,
            "botmaker_bots",
            "Bots by observed state",
            MetricType::Gauge,
            by_state
                .into_iter()
                .map(|(s, n)| ([("state", s)], gauge(n))),
        )?;
        let id = |b: &crate::bots::ObservedBot| [("bot", b.id.to_string())];
        family(
            e,
            "botmaker_bot_up",
            "1 when the bot's container is running, else 0",
            MetricType::Gauge,
            bots.iter().map(|b| {
                let up = i64::from(b.observed.state == BotState::Running);
                (id(b), gauge(up))
            }),
        )?;
        family(
            e,
            "botmaker_bot_health",
            "The bot's health (label `health`: none, starting, healthy, unhealthy, degraded); \
             one series per bot, value 1",
            MetricType::Gauge,
            bots.iter().map(|b| {
                let labels = [
                    ("bot", b.id.to_string()),
                    ("health", health_str(b.observed.health).to_string()),
                ];
                (labels, gauge(1i64))
            }),
        )?;
        family(
            e,
            "botmaker_bot_restarts",
            "Restarts of the bot's current container by Docker's restart policy",
            MetricType::Counter,
            bots.iter().map(|b| {
                let n = u64::try_from(b.observed.restart_count).unwrap_or(0);
                (id(b), ConstCounter::new(n))
            }),
        )?;
        family(
            e,
            "botmaker_bot_exit_code",
            "Exit code of the bot's last run (bots that exited only)",
            MetricType::Gauge,
            bots.iter()
                .filter_map(|b| b.observed.exit_code.map(|c| (id(b), gauge(c)))),
        )?;
        family(
            e,
            "botmaker_bot_oom_killed",
            "1 when the OOM killer ended the bot's last run, else 0",
            MetricType::Gauge,
            bots.iter()
                .map(|b| (id(b), gauge(i64::from(b.observed.oom_killed)))),
        )?;
        family(
            e,
            "botmaker_bot_oom_kills",
            "OOM kills Docker reported for the bot since botmaker started",
            MetricType::Counter,
            bots.iter().map(|b| (id(b), ConstCounter::new(b.oom_kills))),
        )?;
        let samples = self.sampler.latest();
        family(
            e,
            "botmaker_bot_cpu_percent",
            "CPU use over the last sampling interval, in percent of one core",
            MetricType::Gauge,
            samples
                .iter()
                .map(|s| ([("bot", s.id.clone())], gauge(s.sample.cpu_percent))),
        )?;
        family(
            e,
            "botmaker_bot_memory_bytes",
            "Memory in use at the last sample, page cache excluded",
            MetricType::Gauge,
            samples
                .iter()
                .map(|s| ([("bot", s.id.clone())], gauge(s.sample.memory_bytes as f64))),
        )?;
        family(
            e,
            "botmaker_bot_memory_limit_bytes",
            "The bot's memory limit (the host's memory when it has none)",
            MetricType::Gauge,
            samples.iter().map(|s| {
                let limit = s.sample.memory_limit_bytes as f64;
                ([("bot", s.id.clone())], gauge(limit))
            }),
        )
    }

    fn engine_series(&self, e: &mut DescriptorEncoder) -> Fmt {
        let engine = self.fleet.engine();
        family(
            e,
            "botmaker_docker_up",
            "1 when the Docker Engine answered the reconciler's last call, else 0",
            MetricType::Gauge,
            [([("engine", "docker")], gauge(i64::from(engine.up())))],
        )?;
        family(
            e,
            "botmaker_docker_event_reconnects",
            "Times the Docker event stream ended or failed and was followed again",
            MetricType::Counter,
            [(
                [("engine", "docker")],
                ConstCounter::new(engine.event_reconnects()),
            )],
        )
    }

    fn llm_series(&self, e: &mut DescriptorEncoder) -> Fmt {
        let m = self.llm.metrics();
        family(
            e,
            "botmaker_llm_requests",
            "Requests the LLM proxy forwarded, by bot, provider and upstream status",
            MetricType::Counter,
            m.requests.iter().map(|((bot, provider, status), n)| {
                let labels = [
                    ("bot", bot.clone()),
                    ("provider", provider.clone()),
                    ("status", status.to_string()),
                ];
                (labels, ConstCounter::new(*n))
            }),
        )?;
        family(
            e,
            "botmaker_llm_tokens",
            "Tokens of successful requests, by bot, provider and direction",
            MetricType::Counter,
            m.tokens.iter().map(|((bot, provider, direction), n)| {
                let labels = [
                    ("bot", bot.clone()),
                    ("provider", provider.clone()),
                    ("direction", direction.to_string()),
                ];
                (labels, ConstCounter::new(*n))
            }),
        )?;
        family(
            e,
            "botmaker_llm_cost",
            "Cost of successful requests in the price tables' unit, by bot and provider",
            MetricType::Counter,
            m.cost_nanos.iter().map(|((bot, provider), n)| {
                let labels = [("bot", bot.clone()), ("provider", provider.clone())];
                (labels, ConstCounter::new(*n as f64 / NANOS_PER_UNIT))
            }),
        )?;
        family(
            e,
            "botmaker_llm_refused",
            "Requests the LLM proxy refused itself, by bot (`-` when unknown) and reason",
            MetricType::Counter,
            m.refused.iter().map(|((bot, reason), n)| {
                let labels = [("bot", bot.clone()), ("reason", reason.to_string())];
                (labels, ConstCounter::new(*n))
            }),
        )
    }
}
