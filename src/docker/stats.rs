//! Resource usage of a bot's container: CPU %, memory without page cache, network bytes.
//!
//! Docker's stats call is expensive: with `stream=false` the daemon waits for two samples
//! (1-2 s) to fill `precpu_stats`. [`DockerService::stats`] does that for a one-off reading;
//! a sampler polling many bots should use [`DockerService::stats_snapshot`] (`one-shot`, one
//! sample, no wait) and diff consecutive snapshots with [`StatsSample::between`].

use bollard::models::{ContainerCpuStats, ContainerStatsResponse};
use bollard::query_parameters::StatsOptionsBuilder;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use super::error::{ContainerError, Op};
use super::{DockerService, container_name};
use crate::BotId;

/// The interval Docker measures a `stream=false` reading's CPU over, and [`DockerService::stats`]
/// waits out itself on an engine that does not.
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Raw counters of one stats reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// When the daemon read the counters.
    pub read: Option<DateTime<Utc>>,
    /// CPU time the container's processes used since it started, ns (cumulative).
    pub cpu_total_ns: u64,
    /// Host CPU time, ns (all cores).
    pub system_cpu_ns: u64,
    /// CPUs online on the host: the factor that makes 100 % one full core.
    pub online_cpus: u32,
    /// Memory in use, page cache excluded.
    pub memory_bytes: u64,
    /// Memory limit (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Bytes received over all interfaces.
    pub network_rx_bytes: u64,
    /// Bytes sent over all interfaces.
    pub network_tx_bytes: u64,
    /// Processes (tasks) in the container at the time of the reading.
    pub pids: u64,
}

/// Usage of one bot's container over the interval between two readings.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[schema(as = Stats)]
pub struct StatsSample {
    /// When the later reading was taken.
    pub read: Option<DateTime<Utc>>,
    /// CPU use in percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Memory in use, page cache excluded.
    pub memory_bytes: u64,
    /// Memory limit; the host's memory when the bot has none.
    pub memory_limit_bytes: u64,
    /// `memory_bytes` as a percentage of the limit.
    pub memory_percent: f64,
    /// Bytes received over all interfaces.
    pub network_rx_bytes: u64,
    /// Bytes sent over all interfaces.
    pub network_tx_bytes: u64,
    /// Processes (tasks) in the container at the time of the reading.
    pub pids: u64,
}

impl StatsSnapshot {
    fn from_response(r: &ContainerStatsResponse) -> Self {
        let cpu = r.cpu_stats.as_ref();
        let mem = r.memory_stats.as_ref();
        let (rx, tx) = r
            .networks
            .as_ref()
            .map(|n| {
                n.values().fold((0, 0), |(rx, tx), i| {
                    (rx + i.rx_bytes.unwrap_or(0), tx + i.tx_bytes.unwrap_or(0))
                })
            })
            .unwrap_or((0, 0));
        Self {
            read: r.read.as_deref().and_then(parse_read_time),
            cpu_total_ns: cpu_total(cpu),
            system_cpu_ns: cpu.and_then(|c| c.system_cpu_usage).unwrap_or(0),
            online_cpus: cpu.map(online_cpus).unwrap_or(1),
            memory_bytes: mem
                .map(|m| memory_used(m.usage.unwrap_or(0), m.stats.as_ref()))
                .unwrap_or(0),
            memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
            network_rx_bytes: rx,
            network_tx_bytes: tx,
            pids: r.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        }
    }

    fn previous_cpu(r: &ContainerStatsResponse) -> Self {
        let pre = r.precpu_stats.as_ref();
        Self {
            cpu_total_ns: cpu_total(pre),
            system_cpu_ns: pre.and_then(|c| c.system_cpu_usage).unwrap_or(0),
            ..Self::default()
        }
    }
}

impl StatsSample {
    /// Usage between two readings of the same container, `prev` taken first.
    pub fn between(prev: &StatsSnapshot, cur: &StatsSnapshot) -> Self {
        Self {
            read: cur.read,
            cpu_percent: cpu_percent(prev, cur),
            memory_bytes: cur.memory_bytes,
            memory_limit_bytes: cur.memory_limit_bytes,
            memory_percent: percent(cur.memory_bytes as f64, cur.memory_limit_bytes as f64),
            network_rx_bytes: cur.network_rx_bytes,
            network_tx_bytes: cur.network_tx_bytes,
            pids: cur.pids,
        }
    }
}

/// CPU % = Δcontainer / Δsystem × online CPUs × 100, the formula `docker stats` uses.
fn cpu_percent(prev: &StatsSnapshot, cur: &StatsSnapshot) -> f64 {
    let cpu_delta = cur.cpu_total_ns.saturating_sub(prev.cpu_total_ns) as f64;
    let system_delta = cur.system_cpu_ns.saturating_sub(prev.system_cpu_ns) as f64;
    if prev.system_cpu_ns == 0 || system_delta <= 0.0 {
        return 0.0;
    }
    round2(cpu_delta / system_delta * f64::from(cur.online_cpus.max(1)) * 100.0)
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        round2(part / whole * 100.0)
    } else {
        0.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn cpu_total(c: Option<&ContainerCpuStats>) -> u64 {
    c.and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0)
}

fn online_cpus(c: &ContainerCpuStats) -> u32 {
    c.online_cpus
        .filter(|n| *n > 0)
        .or_else(|| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u32)
        })
        .unwrap_or(1)
}

/// Memory actually used: the cgroup's usage minus reclaimable page cache (`total_inactive_file`
/// on cgroup v1, `inactive_file` on v2, looked up in that order as `docker stats` does; a v1
/// reading carries both). Raw usage counts cache the kernel would drop under pressure and
/// overstates what a bot needs.
pub(crate) fn memory_used(
    usage: u64,
    stats: Option<&std::collections::HashMap<String, u64>>,
) -> u64 {
    let cache = stats
        .and_then(|s| {
            s.get("total_inactive_file")
                .or_else(|| s.get("inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    usage.saturating_sub(cache)
}

fn parse_read_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0)
}

impl DockerService {
    /// One complete sample, CPU measured over the daemon's own ~1 s interval. Slow (1-2 s);
    /// `None` if the bot has no container or it is not running.
    ///
    /// Podman answers at once, without the previous reading Docker waits for (its
    /// `precpu_stats` is empty): then a second reading a second later is the interval.
    pub async fn stats(&self, bot_id: &BotId) -> Result<Option<StatsSample>, ContainerError> {
        let opts = StatsOptionsBuilder::new().stream(false).build();
        let Some(r) = self.stats_response(bot_id, opts.clone()).await? else {
            return Ok(None);
        };
        let prev = StatsSnapshot::previous_cpu(&r);
        if prev.system_cpu_ns > 0 {
            return Ok(Some(StatsSample::between(
                &prev,
                &StatsSnapshot::from_response(&r),
            )));
        }
        let first = StatsSnapshot::from_response(&r);
        tokio::time::sleep(STATS_INTERVAL).await;
        Ok(self
            .stats_response(bot_id, opts)
            .await?
            .map(|r| StatsSample::between(&first, &StatsSnapshot::from_response(&r))))
    }

    /// One reading of the raw counters, taken at once (`one-shot`, API 1.41). Cheap for the
    /// daemon; diff two with [`StatsSample::between`]. `None` if there is no container or it
    /// is not running.
    pub async fn stats_snapshot(
        &self,
        bot_id: &BotId,
    ) -> Result<Option<StatsSnapshot>, ContainerError> {
        let opts = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        Ok(self
            .stats_response(bot_id, opts)
            .await?
            .map(|r| StatsSnapshot::from_response(&r)))
    }

    async fn stats_response(
        &self,
        bot_id: &BotId,
        opts: bollard::query_parameters::StatsOptions,
    ) -> Result<Option<ContainerStatsResponse>, ContainerError> {
        // On Swarm, the container of the bot's current task, when this node runs it.
        let name = match &self.swarm {
            Some(swarm) => match swarm.local_container(self, bot_id).await? {
                Some(id) => id,
                None => return Ok(None),
            },
            None => container_name(bot_id),
        };
        let mut s = self.docker.stats(&name, Some(opts));
        let first = self
            .call(Op::Stats, bot_id.as_str(), self.call_timeout, async {
                s.next().await.transpose()
            })
            .await;
        match first {
            Ok(Some(r)) if r.read.as_deref().and_then(parse_read_time).is_some() => Ok(Some(r)),
            // A stopped container answers with an empty reading (zero time).
            Ok(_) => Ok(None),
            Err(ContainerError::NotFound { .. }) => Ok(None),
            // 409: not running.
            Err(ContainerError::Docker { status: 409, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn cpu_percent_from_deltas() {
        let prev = StatsSnapshot {
            cpu_total_ns: 1_000,
            system_cpu_ns: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let cur = StatsSnapshot {
            cpu_total_ns: 2_000,
            system_cpu_ns: 20_000,
            online_cpus: 2,
            ..Default::default()
        };
        // 1000/10000 × 2 × 100 = 20 %.
        assert_eq!(StatsSample::between(&prev, &cur).cpu_percent, 20.0);
        // No previous reading (one-shot's empty precpu): 0, not garbage.
        assert_eq!(
            StatsSample::between(&StatsSnapshot::default(), &cur).cpu_percent,
            0.0
        );
    }

    #[test]
    fn memory_excludes_page_cache_v1_and_v2() {
        let v2 = HashMap::from([("inactive_file".to_string(), 300)]);
        assert_eq!(memory_used(1000, Some(&v2)), 700);
        let v1 = HashMap::from([("total_inactive_file".to_string(), 100)]);
        assert_eq!(memory_used(1000, Some(&v1)), 900);
        assert_eq!(memory_used(1000, None), 1000);
        assert_eq!(memory_used(10, Some(&v2)), 0);
    }

    #[test]
    fn memory_percent_against_limit() {
        let cur = StatsSnapshot {
            memory_bytes: 25,
            memory_limit_bytes: 100,
            ..Default::default()
        };
        let s = StatsSample::between(&StatsSnapshot::default(), &cur);
        assert_eq!(s.memory_percent, 25.0);
    }
}
