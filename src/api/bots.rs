//! Bodies of the bot, secret and housekeeping routes that are not domain types themselves.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bots::{BotView, SecretRotation};

/// `GET /api/bots`: every bot with its observed state, serialized straight from the views
/// (building a JSON tree first would double the peak memory of a large fleet's listing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BotList {
    /// The bots, by id.
    pub bots: Vec<BotView>,
}

/// The acknowledgement of a change that has nothing else to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Success {
    /// Always `true`.
    pub success: bool,
}

impl Success {
    /// `{"success": true}`.
    pub const DONE: Self = Self { success: true };
}

/// `GET /api/bots/{id}/secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretNames {
    /// Secret names, sorted (values are never returned).
    pub secrets: Vec<String>,
}

/// `PUT /api/bots/{id}/secrets/{name}`: the secret was stored, and how the bot gets the new
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretSet {
    /// Always `true`.
    pub success: bool,
    /// The secret's name.
    pub name: String,
    /// The bot's template's rotation policy.
    pub rotation: SecretRotation,
    /// Whether botmaker restarted the bot so the new value is in effect.
    pub restarted: bool,
    /// When the new value takes effect, in one sentence.
    pub effect: String,
}

/// A secret value sent as `application/json`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SecretValue)]
pub struct SecretValueBody {
    /// The value, exactly as sent (not empty).
    pub value: String,
}

pub use crate::bots::Orphans as OrphanLists;

/// `GET /api/admin/orphans`: what deleted bots left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Orphans {
    /// Bot ids of managed containers with no bot.
    pub containers: Vec<String>,
    /// Secrets directories with no bot.
    pub secrets: Vec<String>,
    /// Workspace directories with no bot.
    pub workspaces: Vec<String>,
    /// How many there are in all.
    pub total: usize,
}

impl From<OrphanLists> for Orphans {
    fn from(o: OrphanLists) -> Self {
        Self {
            total: o.total(),
            containers: o.containers,
            secrets: o.secrets,
            workspaces: o.workspaces,
        }
    }
}

/// `POST /api/admin/cleanup`: what was removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cleanup {
    /// The orphans removed.
    pub removed: OrphanLists,
    /// How many in all.
    pub total: usize,
}

impl From<OrphanLists> for Cleanup {
    fn from(removed: OrphanLists) -> Self {
        Self {
            total: removed.total(),
            removed,
        }
    }
}
