//! `BotView`: a bot as the API shows it: desired configuration, secret names (never values)
//! and observed state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::BotError;
use super::observed::Observed;
use super::spec::{BotSpec, HttpProbe, LimitsSpec, PortSpec};
use crate::store::{BotRow, DesiredState, StoreError};

/// A bot as returned by the API: its desired configuration, the names of its secrets (never
/// the values) and its observed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Bot)]
pub struct BotView {
    /// Bot id (also the container's hostname).
    #[schema(value_type = crate::BotId)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Template it was made from.
    pub template: String,
    /// Image reference.
    pub image: String,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Non-secret environment.
    pub env: BTreeMap<String, String>,
    /// Names of its secrets (values are never returned).
    pub secrets: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// Resource limits.
    pub limits: LimitsSpec,
    /// Docker network, when not the default.
    pub network: Option<String>,
    /// botmaker's HTTP probe, if any.
    pub health_check: Option<HttpProbe>,
    /// Template settings.
    pub settings: serde_json::Value,
    /// Seconds between SIGTERM and SIGKILL on stop; `null` means the server's default.
    pub stop_timeout_secs: Option<u64>,
    /// What the user wants; the reconciler makes Docker match it.
    pub desired_state: DesiredState,
    /// What Docker and botmaker observe.
    #[serde(flatten)]
    pub observed: Observed,
    /// Whether the configured image reference now names another local image than the one the
    /// container runs: an upgrade (same reference) would replace it. Always false for a bot
    /// without a container.
    pub image_drift: bool,
    /// When the bot was created.
    pub created_at: DateTime<Utc>,
    /// When its configuration last changed.
    pub updated_at: DateTime<Utc>,
}

impl BotView {
    /// Assembles the view of `row` (whose spec is `spec`) in `observed` state.
    pub fn new(row: &BotRow, spec: BotSpec, observed: Observed) -> Self {
        Self {
            id: row.id.to_string(),
            name: row.name.clone(),
            template: row.template.clone(),
            image: spec.image,
            command: spec.command,
            env: spec.env,
            secrets: row.secret_names.clone(),
            ports: spec.ports,
            limits: spec.limits,
            network: spec.network,
            health_check: spec.health_check,
            settings: spec.settings,
            stop_timeout_secs: spec.stop_timeout_secs,
            desired_state: row.desired_state,
            observed,
            image_drift: false,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// The bot's stored configuration, as [`BotView::new`] took it apart.
    pub fn spec(&self) -> BotSpec {
        BotSpec {
            image: self.image.clone(),
            command: self.command.clone(),
            env: self.env.clone(),
            ports: self.ports.clone(),
            limits: self.limits.clone(),
            network: self.network.clone(),
            health_check: self.health_check.clone(),
            settings: self.settings.clone(),
            stop_timeout_secs: self.stop_timeout_secs,
        }
    }

    /// Whether the user wants it running.
    pub fn wants_running(&self) -> bool {
        self.desired_state == DesiredState::Running
    }
}

/// The bot's spec, with the default limits filled in for specs stored before every bot had
/// them (the container gets them too: see [`super::template::base_config`]).
pub(crate) fn spec_of(row: &BotRow) -> Result<BotSpec, BotError> {
    let mut spec: BotSpec = serde_json::from_value(row.spec.clone()).map_err(|_| {
        BotError::Store(StoreError::Corrupt {
            what: format!("spec of bot {}", row.id),
        })
    })?;
    super::validate::apply_default_limits(&mut spec.limits);
    Ok(spec)
}

/// The view of a stored row in `observed` state.
pub(crate) fn view_of(row: &BotRow, observed: Observed) -> Result<BotView, BotError> {
    Ok(BotView::new(row, spec_of(row)?, observed))
}
