//! What an upgrade is asked for and how it ended: the body of `POST /api/bots/{id}/upgrade` and
//! its answer. The steps themselves are in `service/upgrade.rs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::view::BotView;

/// How long the new container has, by default, to become healthy: long enough for a cold start
/// of a large runtime (OpenClaw takes minutes on a small machine).
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest health deadline an upgrade may ask for.
pub const MAX_UPGRADE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a new container without a health probe must keep running (no exit, no restart)
/// to count as good, unless the deadline is shorter.
pub const RUN_GRACE: Duration = Duration::from_secs(10);

/// Body of `POST /api/bots/{id}/upgrade` (an empty body is `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeBot {
    /// The image to run (a tag, or a digest pin `repo@sha256:...`); absent: the configured
    /// reference again, which picks up a tag that now names another local image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Seconds the new container has to pass its health probe (default 300, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// How an upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeResult {
    /// The new container runs and passed its health gate; the old one is gone.
    Upgraded,
    /// The new container failed; the old one runs again and the configuration is unchanged.
    RolledBack,
    /// The bot already runs the image the reference resolves to: nothing was replaced.
    Unchanged,
}

impl UpgradeResult {
    /// Its name in the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upgraded => "upgraded",
            Self::RolledBack => "rolled_back",
            Self::Unchanged => "unchanged",
        }
    }
}

/// The answer to an upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpgradeOutcome {
    /// How it ended.
    pub result: UpgradeResult,
    /// Why it was rolled back (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The image reference the bot had before.
    pub previous_image: String,
    /// The image reference the bot has now (the previous one after a rollback).
    pub image: String,
    /// Milliseconds from stopping the old container until the new one was healthy (or, after a
    /// rollback, until the old one ran again); absent when nothing was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
    /// The bot afterwards.
    pub bot: BotView,
}
