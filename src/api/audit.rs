//! The audit log's query and answer (`GET /api/audit`), and the per-minute stats history
//! (`GET /api/bots/{id}/stats/history`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?bot=&action=&limit=&before=` of `GET /api/audit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    /// Only entries of this action (`create`, `secret_set`, `login`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// At most this many entries (1 to 1000; 100 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only entries older than this cursor: the `next_before` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1)]
    pub before: Option<i64>,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its position in the log (increasing): the paging cursor.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What kind of caller: `session` (the dashboard or a login's token), `token` (an API
    /// token), `anonymous` (a login attempt).
    pub actor_kind: String,
    /// Who: `admin` for a session, the API token's name, `-` for a login attempt.
    pub actor: String,
    /// What: `create`, `update`, `start`, `stop`, `restart`, `apply`, `delete`, `upgrade`,
    /// `secret_set`, `secret_delete`, `token_create`, `token_revoke`, `login`, `logout`,
    /// `cleanup`, `backup`, `import`, `exec`, `provider_set`...
    pub action: String,
    /// Which bot.
    pub bot: Option<String>,
    /// What else it was about: a secret's name (never its value), a provider's name, a
    /// token's id or name.
    pub target: Option<String>,
    /// `ok`, or the error code it failed with.
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The client's address (login attempts).
    pub client: Option<String>,
}

/// `GET /api/audit`: a page of entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// `?since=` of `GET /api/bots/{id}/stats/history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsHistoryQuery {
    /// The first minute returned (RFC 3339); one hour ago when absent. History goes back 24
    /// hours at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// One minute of a bot's resource use, aggregated from the sampler's readings in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsMinute {
    /// The minute's start.
    pub at: DateTime<Utc>,
    /// Mean CPU use over the minute's readings, in percent of one core.
    pub cpu_percent: f64,
    /// Highest CPU reading in the minute.
    pub cpu_percent_max: f64,
    /// Mean memory in use.
    pub memory_bytes: u64,
    /// Highest memory reading in the minute.
    pub memory_bytes_max: u64,
    /// The memory limit at the minute's last reading.
    pub memory_limit_bytes: u64,
    /// Readings the minute aggregates.
    pub samples: u32,
}

/// `GET /api/bots/{id}/stats/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsHistory {
    /// The bot.
    #[schema(value_type = crate::BotId)]
    pub id: String,
    /// Minutes with readings from `since` on, oldest first (a minute the bot was not running
    /// is absent).
    pub minutes: Vec<StatsMinute>,
}
