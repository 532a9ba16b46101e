//! The JSON the server answers with, as the CLI reads it. Unknown fields are ignored so that a
//! newer server does not break an older client; only what the CLI shows or compares is here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::bots::{HttpProbe, LimitsSpec, PortSpec};

/// A bot as `GET /api/bots/{id}` shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RemoteBot {
    /// Bot id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Template.
    pub template: String,
    /// Image reference.
    pub image: String,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Non-secret environment.
    pub env: BTreeMap<String, String>,
    /// Secret names.
    pub secrets: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// Limits.
    pub limits: LimitsSpec,
    /// botmaker's HTTP probe.
    pub health_check: Option<HttpProbe>,
    /// Template settings.
    pub settings: serde_json::Value,
    /// `running` or `stopped`.
    pub desired_state: String,
    /// Observed state: `running`, `stopped`, `crash_loop`, ...
    pub state: String,
    /// Health verdict.
    pub health: String,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    /// Restarts by Docker's restart policy.
    pub restart_count: i64,
    /// Whether the OOM killer ended the last run.
    pub oom_killed: bool,
    /// Container id.
    pub container_id: Option<String>,
    /// Id of the image the container runs.
    pub image_id: Option<String>,
    /// The configured reference now names another image than the container runs.
    pub image_drift: bool,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the bot was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When its configuration last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl RemoteBot {
    /// Whether the user wants it running.
    pub fn wants_running(&self) -> bool {
        self.desired_state != "stopped"
    }
}

/// `GET /api/bots`.
#[derive(Debug, Deserialize)]
pub struct BotList {
    /// Every bot.
    pub bots: Vec<RemoteBot>,
}

/// One log line.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    /// `stdout` or `stderr`.
    #[serde(default)]
    pub stream: String,
    /// When Docker received it.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// The text, without its line break.
    #[serde(default)]
    pub message: String,
}

/// `GET /api/bots/{id}/logs`.
#[derive(Debug, Deserialize)]
pub struct LogLines {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
}

/// `GET /api/bots/{id}/secrets`.
#[derive(Debug, Deserialize)]
pub struct SecretNames {
    /// Names only.
    pub secrets: Vec<String>,
}

/// One entry of `GET /api/stats`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StatsRow {
    /// The bot.
    pub id: String,
    /// CPU in percent of one core.
    pub cpu_percent: f64,
    /// Memory in use.
    pub memory_bytes: u64,
    /// Memory limit.
    pub memory_limit_bytes: u64,
    /// Memory in percent of the limit.
    pub memory_percent: f64,
    /// Bytes received.
    pub network_rx_bytes: u64,
    /// Bytes sent.
    pub network_tx_bytes: u64,
    /// Processes.
    pub pids: u64,
}

/// `GET /api/stats`.
#[derive(Debug, Deserialize)]
pub struct StatsList {
    /// Latest sample per running bot.
    pub stats: Vec<StatsRow>,
}

/// `GET /api/admin/orphans`, and `removed` of `POST /api/admin/cleanup`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Orphans {
    /// Containers of no bot.
    pub containers: Vec<String>,
    /// Secrets directories of no bot.
    pub secrets: Vec<String>,
    /// Workspaces of no bot.
    pub workspaces: Vec<String>,
}

/// `POST /api/admin/cleanup`.
#[derive(Debug, Deserialize)]
pub struct Cleanup {
    /// What was removed.
    pub removed: Orphans,
}

/// `POST /api/login`.
#[derive(Debug, Deserialize)]
pub struct LoginAnswer {
    /// The session token.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// An API token as listed.
#[derive(Debug, Deserialize)]
pub struct TokenRow {
    /// Public id (to revoke it).
    pub id: String,
    /// Label.
    pub name: String,
    /// When issued.
    pub created_at: Option<DateTime<Utc>>,
    /// When last used.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `GET /api/tokens`.
#[derive(Debug, Deserialize)]
pub struct TokenList {
    /// Issued tokens.
    pub tokens: Vec<TokenRow>,
}

/// `POST /api/tokens`.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    /// Public id.
    pub id: String,
    /// The secret token (shown once).
    pub token: String,
}

/// The error body every API error has.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// Stable code.
    pub code: String,
    /// Per-field problems of a validation error.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

/// `POST /api/bots/{id}/upgrade` when it did not roll back (a rollback is a 409 error with
/// code `UPGRADE_ROLLED_BACK`).
#[derive(Debug, Clone, Deserialize)]
pub struct UpgradeAnswer {
    /// `upgraded` or `unchanged`.
    pub result: String,
    /// The image reference before.
    pub previous_image: String,
    /// The image reference now.
    pub image: String,
    /// From the old container's stop until the new one was healthy.
    #[serde(default)]
    pub downtime_ms: Option<u64>,
}
