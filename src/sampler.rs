//! The stats sampler: resource usage of every running bot, served from memory.
//!
//! Docker's stats call costs 1-2 s per container when asked for a ready-made sample, and
//! `docker stats` on dozens of containers keeps the daemon busy. So one background task polls
//! each running bot with a cheap `one-shot` reading every interval, a few at a time, diffs it
//! against the previous reading, and keeps a short history. API requests read the cache and
//! never wait on Docker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::BotId;
use crate::docker::{ContainerState, DockerService, StatsSample, StatsSnapshot};

/// Default time between two readings of one bot.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);
/// Readings kept per bot (10 minutes at the default interval).
pub const HISTORY_LEN: usize = 60;
/// Gap between the two readings that make a new bot's first sample.
const FIRST_SAMPLE_GAP: Duration = Duration::from_secs(1);
/// Stats calls in flight at once: bounds the daemon's sampling work.
const CONCURRENCY: usize = 4;

/// The latest sample of one bot.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BotStats {
    /// The bot.
    pub id: String,
    /// Its latest sample.
    #[serde(flatten)]
    pub sample: StatsSample,
}

#[derive(Default)]
struct Series {
    last: Option<StatsSnapshot>,
    history: VecDeque<StatsSample>,
}

/// Cached stats of the fleet. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sampler {
    series: Arc<Mutex<HashMap<String, Series>>>,
}

impl Sampler {
    /// An empty cache.
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

    fn record(&self, id: &str, snap: StatsSnapshot) {
        self.with(|m| {
            let s = m.entry(id.to_string()).or_default();
            if let Some(prev) = s.last {
                s.history.push_back(StatsSample::between(&prev, &snap));
                while s.history.len() > HISTORY_LEN {
                    s.history.pop_front();
                }
            }
            s.last = Some(snap);
        });
    }

    /// One round: a reading of every running bot, `CONCURRENCY` at a time. Bots no longer
    /// running are dropped from the cache.
    pub async fn sample_once(&self, docker: &DockerService) {
        let Ok(containers) = docker.list_managed_containers().await else {
            return;
        };
        let running: Vec<String> = containers
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| c.bot_id)
            .collect();
        self.with(|m| m.retain(|id, _| running.contains(id)));
        futures_util::stream::iter(running)
            .for_each_concurrent(CONCURRENCY, |id| async move {
                let Ok(bot) = BotId::new(id.clone()) else {
                    return;
                };
                // A bot seen for the first time gets a second reading a moment later, so its
                // first sample is available now rather than one interval from now.
                let new = self.with(|m| m.get(&id).is_none_or(|s| s.last.is_none()));
                if let Ok(Some(snap)) = docker.stats_snapshot(&bot).await {
                    self.record(&id, snap);
                    if new {
                        tokio::time::sleep(FIRST_SAMPLE_GAP).await;
                        if let Ok(Some(snap)) = docker.stats_snapshot(&bot).await {
                            self.record(&id, snap);
                        }
                    }
                }
            })
            .await;
    }

    /// Samples every `interval` until `shutdown`.
    pub async fn run(
        self,
        docker: DockerService,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.sample_once(&docker).await,
            }
        }
    }
}
