//! The stats sampler: resource usage of every running bot, served from memory.
//!
//! One background task reads every running bot once per interval, diffs each reading against
//! the previous one and keeps a short history; API requests read that cache and never wait on
//! Docker. The readings come from one of two places:
//!
//! - **cgroupfs**, when the engine is on this machine: every bot's counters are a few small
//!   kernel files, read for the whole fleet in one blocking pass. Each container is placed
//!   once (one inspect for its pid and cgroup parent) and the place is kept while it runs.
//! - **the Docker API** otherwise (a remote engine, cgroups this process cannot read) and for
//!   any container the cgroupfs reader cannot place: one `one-shot` stats call per bot,
//!   [`CONCURRENCY`] at a time. dockerd answers each at the next tick of its 1 s collector, so
//!   this path refreshes about [`CONCURRENCY`] bots a second, whatever the interval.
//!
//! Which one runs is in [`Sampler::source`], shown by `/health`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::BotId;
use crate::docker::{
    CgroupPaths, CgroupStats, ContainerState, DockerService, StatsSample, StatsSnapshot,
};
use crate::store::{StatsMinuteRow, Store};

/// Default time between two readings of one bot.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);
/// Readings kept per bot (10 minutes at the default interval).
pub const HISTORY_LEN: usize = 60;
/// How long the per-minute history is kept.
pub const HISTORY_KEEP: Duration = Duration::from_secs(24 * 3600);
/// How often finished minutes are written to the registry.
pub const HISTORY_FLUSH_INTERVAL: Duration = Duration::from_secs(15);
/// Gap between the two readings that make a new bot's first sample, so it has one now rather
/// than one interval from now.
const FIRST_SAMPLE_GAP: Duration = Duration::from_secs(1);
/// Docker calls in flight at once (stats on the API path, inspects to place containers):
/// bounds the sampler's share of the daemon.
pub const CONCURRENCY: usize = 4;

/// The latest sample of one bot.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BotStats {
    /// Id of the bot the sample is for.
    pub id: String,
    /// Usage over the last interval (its fields sit beside `id` in JSON).
    #[serde(flatten)]
    pub sample: StatsSample,
}

/// Where readings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatsSource {
    /// The kernel's cgroup files of the engine's host (this machine).
    Cgroupfs,
    /// The engine's stats call, one bot at a time.
    DockerApi,
}

/// What the sampler is doing, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SourceStatus {
    /// The source of the last round: `cgroupfs` if it read any bot there.
    pub source: StatsSource,
    /// 1 or 2 when cgroup files are read.
    #[schema(minimum = 1, maximum = 2)]
    pub cgroup_version: Option<u8>,
    /// Why the Docker API is used for the whole fleet, when it is.
    pub fallback_reason: Option<String>,
    /// Bots read from cgroup files in the last round.
    pub bots_from_cgroupfs: usize,
    /// Bots read through the Docker API in the last round (all of them on the API path; on
    /// the cgroupfs path, the ones it could not place).
    pub bots_from_docker_api: usize,
}

impl Default for SourceStatus {
    fn default() -> Self {
        Self {
            source: StatsSource::DockerApi,
            cgroup_version: None,
            fallback_reason: Some("sampler not started".into()),
            bots_from_cgroupfs: 0,
            bots_from_docker_api: 0,
        }
    }
}

#[derive(Default)]
struct Series {
    last: Option<StatsSnapshot>,
    history: VecDeque<StatsSample>,
    /// The samples of the current minute, folded together.
    minute: Option<Minute>,
}

/// The samples of one bot in one minute, folded as they come: a fixed size per running bot,
/// whatever the sampling interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Minute {
    minute: i64,
    cpu_sum: f64,
    cpu_max: f64,
    memory_sum: u128,
    memory_max: u64,
    memory_limit: u64,
    samples: u32,
}

impl Minute {
    fn new(minute: i64) -> Self {
        Self {
            minute,
            cpu_sum: 0.0,
            cpu_max: 0.0,
            memory_sum: 0,
            memory_max: 0,
            memory_limit: 0,
            samples: 0,
        }
    }

    fn add(&mut self, s: &StatsSample) {
        self.cpu_sum += s.cpu_percent;
        self.cpu_max = self.cpu_max.max(s.cpu_percent);
        self.memory_sum += u128::from(s.memory_bytes);
        self.memory_max = self.memory_max.max(s.memory_bytes);
        self.memory_limit = s.memory_limit_bytes;
        self.samples += 1;
    }

    fn row(&self) -> StatsMinuteRow {
        let n = self.samples.max(1);
        StatsMinuteRow {
            minute: self.minute,
            cpu_percent: self.cpu_sum / f64::from(n),
            cpu_percent_max: self.cpu_max,
            memory_bytes: u64::try_from(self.memory_sum / u128::from(n)).unwrap_or(u64::MAX),
            memory_bytes_max: self.memory_max,
            memory_limit_bytes: self.memory_limit,
            samples: self.samples,
        }
    }
}

/// The minute `t` falls in, in whole minutes since the Unix epoch.
pub fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// Cached stats of the fleet. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sampler {
    series: Arc<Mutex<HashMap<String, Series>>>,
    status: Arc<Mutex<SourceStatus>>,
    /// Minutes that ended (a later sample began a new one, or the bot stopped), not yet
    /// written to the registry.
    finished: Arc<Mutex<Vec<(String, StatsMinuteRow)>>>,
}

/// The cgroupfs reader and where each running container's counters are (`None`: it cannot
/// be placed, read it through the API). Lives as long as the sampler's task.
struct Cgroups {
    reader: CgroupStats,
    places: HashMap<String, Option<CgroupPaths>>,
}

/// One running bot: its id and its container's.
#[derive(Clone)]
struct Target {
    bot: String,
    container: String,
}

impl Sampler {
    /// An empty cache; [`Sampler::run`] fills it.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Series>) -> R) -> R {
        f(&mut self.series.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Latest sample of every bot sampled in the last round.
    pub fn latest(&self) -> Vec<BotStats> {
        let mut out: Vec<BotStats> = self.with(|m| {
            m.iter()
                .filter_map(|(id, s)| {
                    s.history.back().map(|sample| BotStats {
                        id: id.clone(),
                        sample: *sample,
                    })
                })
                .collect()
        });
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The history of one bot, oldest first.
    pub fn history(&self, id: &BotId) -> Vec<StatsSample> {
        self.with(|m| {
            m.get(id.as_str())
                .map(|s| s.history.iter().copied().collect())
                .unwrap_or_default()
        })
    }

    /// Which source the sampler reads, and how many bots each covered in the last round.
    pub fn source(&self) -> SourceStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_source(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Records a reading. `network` false: the network counters could not be read this
    /// time, keep the previous ones rather than show a drop to zero.
    fn record(&self, id: &str, snap: StatsSnapshot, network: bool) {
        self.record_at(id, snap, network, Utc::now());
    }

    fn record_at(&self, id: &str, mut snap: StatsSnapshot, network: bool, now: DateTime<Utc>) {
        let ended = self.with(|m| {
            let s = m.entry(id.to_string()).or_default();
            let mut ended = None;
            if let Some(prev) = s.last {
                if !network {
                    snap.network_rx_bytes = prev.network_rx_bytes;
                    snap.network_tx_bytes = prev.network_tx_bytes;
                }
                let sample = StatsSample::between(&prev, &snap);
                let minute = minute_of(now);
                let acc = match &mut s.minute {
                    Some(acc) if acc.minute == minute => acc,
                    slot => {
                        ended = slot.take().map(|done| done.row());
                        slot.insert(Minute::new(minute))
                    }
                };
                acc.add(&sample);
                s.history.push_back(sample);
                while s.history.len() > HISTORY_LEN {
                    s.history.pop_front();
                }
            }
            s.last = Some(snap);
            ended
        });
        if let Some(row) = ended {
            self.finish(vec![(id.to_string(), row)]);
        }
    }

    fn finish(&self, rows: Vec<(String, StatsMinuteRow)>) {
        if !rows.is_empty() {
            self.finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(rows);
        }
    }

    /// Every minute that has ended by `now`: those a later sample closed, those of bots that
    /// stopped, and current ones whose minute is over. Each is handed out once.
    pub fn take_finished_minutes(&self, now: DateTime<Utc>) -> Vec<(String, StatsMinuteRow)> {
        let current = minute_of(now);
        let over: Vec<(String, StatsMinuteRow)> = self.with(|m| {
            m.iter_mut()
                .filter_map(|(id, s)| {
                    let done = s.minute.take_if(|acc| acc.minute < current)?;
                    Some((id.clone(), done.row()))
                })
                .collect()
        });
        let mut finished =
            std::mem::take(&mut *self.finished.lock().unwrap_or_else(|e| e.into_inner()));
        finished.extend(over);
        finished
    }

    /// Writes finished minutes to the registry every [`HISTORY_FLUSH_INTERVAL`] and deletes
    /// those older than [`HISTORY_KEEP`], until `shutdown` (when it writes what is left).
    pub async fn run_history(self, store: Store, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(HISTORY_FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = shutdown.changed() => true,
                _ = tick.tick() => false,
            };
            let now = Utc::now();
            let rows = self.take_finished_minutes(now);
            if let Err(e) = store.insert_stats_minutes(rows).await {
                tracing::warn!(error = %e, "could not write the stats history");
            }
            if stopping {
                return;
            }
            let keep = minute_of(now) - HISTORY_KEEP.as_secs() as i64 / 60;
            if let Err(e) = store.prune_stats_minutes(keep).await {
                tracing::warn!(error = %e, "could not prune the stats history");
            }
        }
    }

    /// Samples every `interval` until `shutdown`. Decides the source once, at the start:
    /// cgroupfs when [`DockerService::cgroup_stats`] finds the engine's cgroups here.
    pub async fn run(
        self,
        docker: DockerService,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut cgroups = match docker.cgroup_stats().await {
            Ok(reader) => {
                tracing::info!(
                    version = reader.version(),
                    "stats sampler reads cgroup files"
                );
                self.set_source(|s| {
                    s.source = StatsSource::Cgroupfs;
                    s.cgroup_version = Some(reader.version());
                    s.fallback_reason = None;
                });
                Some(Cgroups {
                    reader,
                    places: HashMap::new(),
                })
            }
            Err(e) => {
                tracing::info!(reason = %e, "stats sampler uses the Docker API");
                self.set_source(|s| s.fallback_reason = Some(e.to_string()));
                None
            }
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The round is raced against the shutdown, not only the wait for the tick: over the
        // API a round of a large fleet takes minutes, far beyond the shutdown grace.
        let rounds = async {
            loop {
                tick.tick().await;
                self.round(&docker, cgroups.as_mut()).await;
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            _ = rounds => {}
        }
    }

    /// One round: a reading of every running bot. Bots no longer running leave the cache.
    async fn round(&self, docker: &DockerService, mut cgroups: Option<&mut Cgroups>) {
        let Ok(containers) = docker.running_managed_containers().await else {
            return;
        };
        let running: Vec<Target> = containers
            .into_iter()
            .filter(|c| c.state == ContainerState::Running && BotId::new(&c.bot_id).is_ok())
            .map(|c| Target {
                bot: c.bot_id,
                container: c.id,
            })
            .collect();
        let ids: HashSet<&str> = running.iter().map(|t| t.bot.as_str()).collect();
        let mut stopped = Vec::new();
        let new: HashSet<String> = self.with(|m| {
            m.retain(|id, s| {
                let keep = ids.contains(id.as_str());
                if !keep && let Some(done) = s.minute.take() {
                    stopped.push((id.clone(), done.row()));
                }
                keep
            });
            running
                .iter()
                .filter(|t| m.get(&t.bot).is_none_or(|s| s.last.is_none()))
                .map(|t| t.bot.clone())
                .collect()
        });

        self.finish(stopped);

        let (placed, mut via_api) = match cgroups.as_deref_mut() {
            Some(c) => c.place(docker, &running).await,
            None => (Vec::new(), running.clone()),
        };
        let cgroups_on = cgroups.is_some();
        // Published before reading: on the API path a round over a large fleet takes minutes.
        self.publish(cgroups_on, placed.len(), via_api.len());
        let mut from_cgroups = placed.len();
        if let Some(c) = cgroups.as_deref_mut() {
            let failed = self.read_cgroups(c, placed.clone()).await;
            from_cgroups -= failed.len();
            via_api.extend(failed);
        }
        self.publish(cgroups_on, from_cgroups, via_api.len());

        // New bots have one reading; a second a moment later makes their first sample. The
        // cgroup ones are read again together, while the API path works through its bots.
        let fresh: Vec<_> = placed
            .into_iter()
            .filter(|(t, _)| new.contains(&t.bot))
            .collect();
        let second_cgroup_pass = async {
            match cgroups.as_deref_mut() {
                Some(c) if !fresh.is_empty() => {
                    tokio::time::sleep(FIRST_SAMPLE_GAP).await;
                    self.read_cgroups(c, fresh).await
                }
                _ => Vec::new(),
            }
        };
        let (failed, ()) = tokio::join!(second_cgroup_pass, self.read_api(docker, &via_api, &new));
        self.read_api(docker, &failed, &HashSet::new()).await;
    }

    /// Records which source the round uses, for [`Sampler::source`].
    fn publish(&self, cgroups_on: bool, from_cgroups: usize, from_api: usize) {
        self.set_source(|s| {
            s.bots_from_cgroupfs = from_cgroups;
            s.bots_from_docker_api = from_api;
            if cgroups_on && from_cgroups == 0 && from_api > 0 {
                s.source = StatsSource::DockerApi;
                s.fallback_reason = Some(
                    "no running container's cgroup was found on this host (is the engine in \
                     another cgroup namespace, or not on this machine?)"
                        .into(),
                );
            } else if cgroups_on {
                s.source = StatsSource::Cgroupfs;
                s.fallback_reason = None;
            }
        });
    }

    /// Reads `placed` containers from cgroup files in one blocking pass. Returns the ones
    /// that failed for another reason than having stopped, to be read through the API this
    /// round (and placed afresh next round).
    async fn read_cgroups(
        &self,
        cgroups: &mut Cgroups,
        placed: Vec<(Target, CgroupPaths)>,
    ) -> Vec<Target> {
        if placed.is_empty() {
            return Vec::new();
        }
        let reader = cgroups.reader.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let host = reader.host_cpu();
            placed
                .into_iter()
                .map(|(t, paths)| {
                    let r = match &host {
                        Ok(h) => reader.read(&paths, h).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    // Stopped since it was listed: its cgroup went with it.
                    let gone = r.is_err() && !paths.memory.is_dir();
                    (t, r, gone)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(results) = pass else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        for (t, r, gone) in results {
            match r {
                Ok(reading) => self.record(&t.bot, reading.snapshot, reading.network),
                Err(_) if gone => {}
                Err(e) => {
                    tracing::debug!(bot = %t.bot, error = %e, "cgroup read failed; using the Docker API");
                    cgroups.places.remove(&t.container);
                    failed.push(t);
                }
            }
        }
        failed
    }

    /// Reads `targets` through the Docker API, [`CONCURRENCY`] at a time. A bot in `new`
    /// is read twice, [`FIRST_SAMPLE_GAP`] apart, so its first sample is there as soon as its
    /// turn comes rather than a whole round later.
    async fn read_api(&self, docker: &DockerService, targets: &[Target], new: &HashSet<String>) {
        futures_util::stream::iter(targets)
            .for_each_concurrent(CONCURRENCY, |t| async move {
                let Ok(bot) = BotId::new(&t.bot) else {
                    return;
                };
                if let Ok(Some(snap)) = docker.stats_snapshot(&bot).await {
                    self.record(&t.bot, snap, true);
                    if new.contains(&t.bot) {
                        tokio::time::sleep(FIRST_SAMPLE_GAP).await;
                        if let Ok(Some(snap)) = docker.stats_snapshot(&bot).await {
                            self.record(&t.bot, snap, true);
                        }
                    }
                }
            })
            .await;
    }
}

impl Cgroups {
    /// Splits `running` into containers with known cgroup directories and the rest. Places
    /// each container seen for the first time (from its id, else with one inspect,
    /// [`CONCURRENCY`] at a time) and
    /// forgets containers that stopped. A failed inspect is retried next round.
    async fn place(
        &mut self,
        docker: &DockerService,
        running: &[Target],
    ) -> (Vec<(Target, CgroupPaths)>, Vec<Target>) {
        let live: HashSet<&str> = running.iter().map(|t| t.container.as_str()).collect();
        self.places.retain(|id, _| live.contains(id.as_str()));
        let unknown: Vec<String> = running
            .iter()
            .filter(|t| !self.places.contains_key(&t.container))
            .map(|t| t.container.clone())
            .collect();
        // botmaker sets no cgroup parent, so the daemon's naming scheme usually finds a new
        // container from its id alone; only the rest cost an inspect (a daemon with its own
        // `cgroup-parent`, a container in another cgroup namespace).
        let reader = self.reader.clone();
        let (guessed, unknown) = tokio::task::spawn_blocking(move || {
            let mut guessed = Vec::new();
            let mut rest = Vec::new();
            for id in unknown {
                match reader.locate(&id, "", 0) {
                    Some(paths) => guessed.push((id, Some(paths))),
                    None => rest.push(id),
                }
            }
            (guessed, rest)
        })
        .await
        .unwrap_or_default();
        self.places.extend(guessed);
        let hints: Vec<_> = futures_util::stream::iter(unknown)
            .map(|id| async move {
                let hint = docker.cgroup_hint(&id).await;
                (id, hint)
            })
            .buffer_unordered(CONCURRENCY)
            .filter_map(|(id, hint)| std::future::ready(hint.ok().flatten().map(|h| (id, h))))
            .collect()
            .await;
        if !hints.is_empty() {
            let reader = self.reader.clone();
            let located = tokio::task::spawn_blocking(move || {
                hints
                    .into_iter()
                    .map(|(id, h)| {
                        let place = reader.locate(&id, &h.cgroup_parent, h.pid);
                        (id, place)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            self.places.extend(located);
        }
        let mut placed = Vec::new();
        let mut unplaced = Vec::new();
        for t in running {
            match self.places.get(&t.container) {
                Some(Some(paths)) => placed.push((t.clone(), paths.clone())),
                _ => unplaced.push(t.clone()),
            }
        }
        (placed, unplaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(cpu: u64, system: u64, rx: u64) -> StatsSnapshot {
        StatsSnapshot {
            cpu_total_ns: cpu,
            system_cpu_ns: system,
            online_cpus: 2,
            network_rx_bytes: rx,
            ..StatsSnapshot::default()
        }
    }

    #[test]
    fn a_sample_needs_two_readings_and_unread_network_keeps_the_last_value() {
        let s = Sampler::new();
        s.record("b", snap(0, 1_000, 500), true);
        assert!(s.latest().is_empty(), "one reading is no sample yet");
        s.record("b", snap(1_000, 11_000, 0), false);
        let latest = s.latest();
        assert_eq!(latest.len(), 1);
        // 1000 ns of 10,000 ns of host time on 2 CPUs: 20 %.
        assert_eq!(latest[0].sample.cpu_percent, 20.0);
        assert_eq!(latest[0].sample.network_rx_bytes, 500, "not a drop to zero");
        for i in 0..HISTORY_LEN + 5 {
            s.record("b", snap(2_000 + i as u64, 12_000 + i as u64, 600), true);
        }
        let id = BotId::new("b").unwrap();
        assert_eq!(s.history(&id).len(), HISTORY_LEN);
    }

    #[test]
    fn samples_fold_into_minutes_that_are_handed_out_once_when_over() {
        let s = Sampler::new();
        let t0 = DateTime::from_timestamp(600 * 60, 0).unwrap();
        let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
        let mem = |cpu: u64, system: u64, bytes: u64| StatsSnapshot {
            memory_bytes: bytes,
            memory_limit_bytes: 1_000,
            ..snap(cpu, system, 0)
        };
        s.record_at("b", mem(0, 1_000, 0), true, at(0));
        // Two samples in minute 600: 20 % and 40 % CPU, 100 and 300 bytes.
        s.record_at("b", mem(1_000, 11_000, 100), true, at(10));
        s.record_at("b", mem(3_000, 21_000, 300), true, at(20));
        assert!(
            s.take_finished_minutes(at(30)).is_empty(),
            "minute 600 is not over"
        );
        // A sample in minute 601 closes minute 600.
        s.record_at("b", mem(3_000, 31_000, 200), true, at(70));
        let done = s.take_finished_minutes(at(80));
        assert_eq!(done.len(), 1, "{done:?}");
        let (id, row) = &done[0];
        assert_eq!((id.as_str(), row.minute, row.samples), ("b", 600, 2));
        assert_eq!((row.cpu_percent, row.cpu_percent_max), (30.0, 40.0));
        assert_eq!((row.memory_bytes, row.memory_bytes_max), (200, 300));
        assert_eq!(row.memory_limit_bytes, 1_000);
        assert!(
            s.take_finished_minutes(at(80)).is_empty(),
            "handed out once"
        );
        // Minute 601 is handed out once it is over, without another sample.
        let late = s.take_finished_minutes(at(125));
        assert_eq!(late.len(), 1);
        assert_eq!((late[0].1.minute, late[0].1.samples), (601, 1));
    }

    #[test]
    fn the_source_is_unknown_until_the_sampler_runs() {
        let s = Sampler::new().source();
        assert_eq!(s.source, StatsSource::DockerApi);
        assert_eq!(s.fallback_reason.as_deref(), Some("sampler not started"));
    }
}
