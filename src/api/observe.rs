//! Bodies of health, logs and stats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::docker::{LogLine, StatsSample};
use crate::sampler::{BotStats, SourceStatus};

/// Lines returned when a log request names no `tail`.
pub const DEFAULT_LOG_TAIL: usize = 500;

/// `GET /health`: whether botmaker and what it depends on work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when everything below is, else `degraded` (and the answer is a 503).
    pub status: HealthStatus,
    /// The registry database.
    pub database: Availability,
    /// The Docker Engine.
    pub docker: Availability,
    /// Where the stats sampler reads: `cgroupfs` (engine on this host) or the Docker API, with
    /// the cgroup version, why it fell back to the API, and the bots each covered last round.
    /// Informational: it does not change `status`.
    pub stats: SourceStatus,
    /// botmaker's version.
    pub version: String,
    /// When the check ran.
    pub timestamp: DateTime<Utc>,
}

/// The overall verdict of `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything works.
    Ok,
    /// The database or Docker is unavailable.
    Degraded,
}

/// Whether a dependency answered the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// It answered in time.
    Ok,
    /// It failed or did not answer in time.
    Unavailable,
}

impl Availability {
    /// `Ok` when `up`.
    pub fn of(up: bool) -> Self {
        if up { Self::Ok } else { Self::Unavailable }
    }
}

/// The query of `GET /api/bots/{id}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only the last this many lines (default 500).
    #[param(minimum = 0, default = 500)]
    pub tail: Option<usize>,
    /// Only lines at or after this time: Unix seconds or RFC 3339.
    #[param(example = "2024-01-01T00:00:00Z")]
    pub since: Option<String>,
    /// Stream new lines as Server-Sent Events until the client leaves, re-attaching when the
    /// container restarts.
    #[serde(default)]
    #[param(default = false)]
    pub follow: bool,
}

/// `GET /api/bots/{id}/logs` without `follow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLines {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
}

/// `GET /api/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsList {
    /// The latest sample of every bot sampled in the last round (running bots).
    pub stats: Vec<BotStats>,
}

/// `GET /api/bots/{id}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BotStatsHistory {
    /// The bot.
    #[schema(value_type = crate::BotId)]
    pub id: String,
    /// Its latest sample, if it has one.
    pub latest: Option<StatsSample>,
    /// Recent samples, oldest first.
    pub history: Vec<StatsSample>,
    /// The bot's configured memory limit.
    pub memory_limit_bytes: Option<u64>,
}
