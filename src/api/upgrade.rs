//! The 409 answer of an upgrade that was rolled back: an error (so a client that only reads
//! `error` and `code` says what happened) that also carries the whole outcome.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bots::UpgradeOutcome;

/// The code of an upgrade that was rolled back.
pub const UPGRADE_ROLLED_BACK: &str = "UPGRADE_ROLLED_BACK";

/// `POST /api/bots/{id}/upgrade` when the new container failed and the old one runs again:
/// `result` is `rolled_back` and `reason` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpgradeRolledBack {
    /// What happened, for people: the bot and the reason.
    pub error: String,
    /// Always `UPGRADE_ROLLED_BACK`.
    pub code: String,
    /// The outcome, as a successful upgrade would give it.
    #[serde(flatten)]
    pub outcome: UpgradeOutcome,
}

impl UpgradeRolledBack {
    /// The answer for `outcome` of bot `id`.
    pub fn new(id: &str, outcome: UpgradeOutcome) -> Self {
        let reason = outcome
            .reason
            .as_deref()
            .unwrap_or("the new container failed");
        Self {
            error: format!("upgrade of '{id}' rolled back: {reason}"),
            code: UPGRADE_ROLLED_BACK.to_string(),
            outcome,
        }
    }
}
