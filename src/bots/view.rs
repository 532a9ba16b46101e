//! `BotView`: a bot as the API shows it: desired configuration, secret names (never values)
//! and observed state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::BotError;
use super::observed::Observed;
use super::spec::{BotSpec, HttpProbe, LimitsSpec, PortSpec};
use crate::docker::{BoundPort, Placement, PortPublish, Protocol};
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
    /// Published ports, with the host port Docker bound filled in (and `auto` set) where the
    /// bot asked for none.
    pub ports: Vec<PortView>,
    /// Resource limits.
    pub limits: LimitsSpec,
    /// Docker network, when not the default.
    pub network: Option<String>,
    /// botmaker's HTTP probe, if any.
    pub health_check: Option<HttpProbe>,
    /// `uid[:gid]` the container runs as, when set (otherwise the image's `USER`).
    pub user: Option<String>,
    /// Template settings.
    pub settings: serde_json::Value,
    /// Seconds between SIGTERM and SIGKILL on stop; `null` means the server's default.
    pub stop_timeout_secs: Option<u64>,
    /// Where the bot may run (node, node labels); `null`: anywhere.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// What the user wants; the reconciler makes Docker match it.
    pub desired_state: DesiredState,
    /// What Docker and botmaker observe.
    #[serde(flatten)]
    pub observed: Observed,
    /// Whether the configured image reference now names another local image than the one the
    /// container runs: an upgrade (same reference) would replace it. Always false for a bot
    /// without a container.
    pub image_drift: bool,
    /// Whether the observed state contradicts the desired one: a bot wanted `stopped` whose
    /// container runs, or one wanted `running` whose container is stopped or missing. (Not
    /// to be confused with an image drift, where the running image is out of date.) The
    /// reconciler stops the first kind at its next resync.
    #[serde(default)]
    pub state_drift: bool,
    /// Things worth knowing about the configuration just stored, in the answer to a create
    /// or PATCH only: an environment variable that looks like a secret, say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When the bot was created.
    pub created_at: DateTime<Utc>,
    /// When its configuration last changed.
    pub updated_at: DateTime<Utc>,
}

/// A published port as the API shows it: as configured, with the host port Docker picked
/// when the bot asked for none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PublishedPort)]
pub struct PortView {
    /// Port inside the container.
    pub container: u16,
    /// Host port: the one configured, or the one Docker bound (`auto`); `null` for a port
    /// Docker chooses when the container is not running.
    pub host: Option<u16>,
    /// Host address; `127.0.0.1` when not configured.
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// True when `host` is the port Docker picked (none was configured): not part of the
    /// bot's configuration, and it can change when the container is recreated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// On the Swarm backend: `host` (default) or `mesh` (the routing mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PortPublish>,
}

impl From<PortSpec> for PortView {
    fn from(p: PortSpec) -> Self {
        Self {
            container: p.container,
            host: p.host,
            host_ip: p.host_ip,
            protocol: p.protocol,
            auto: false,
            publish: p.publish,
        }
    }
}

impl PortView {
    /// The port as configured (a host port Docker picked is not part of it).
    pub fn spec(&self) -> PortSpec {
        PortSpec {
            container: self.container,
            host: self.host.filter(|_| !self.auto),
            host_ip: self.host_ip.clone(),
            protocol: self.protocol,
            publish: self.publish,
        }
    }
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
            ports: spec.ports.into_iter().map(PortView::from).collect(),
            limits: spec.limits,
            network: spec.network,
            health_check: spec.health_check,
            user: spec.user,
            settings: spec.settings,
            stop_timeout_secs: spec.stop_timeout_secs,
            placement: spec.placement,
            desired_state: row.desired_state,
            state_drift: state_drift(row.desired_state, &observed),
            observed,
            image_drift: false,
            warnings: Vec::new(),
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
            ports: self.ports.iter().map(PortView::spec).collect(),
            limits: self.limits.clone(),
            network: self.network.clone(),
            health_check: self.health_check.clone(),
            user: self.user.clone(),
            settings: self.settings.clone(),
            stop_timeout_secs: self.stop_timeout_secs,
            placement: self.placement.clone(),
        }
    }

    /// Fills in the host ports Docker picked for ports that asked for none, from `bound`
    /// (what the container's inspect or list reports while it runs).
    pub fn with_bound_ports(mut self, bound: &[BoundPort]) -> Self {
        self.bind_ports(bound);
        self
    }

    fn bind_ports(&mut self, bound: &[BoundPort]) {
        for p in self.ports.iter_mut().filter(|p| p.host.is_none()) {
            if let Some(b) = bound
                .iter()
                .find(|b| b.container == p.container && b.protocol == p.protocol)
            {
                p.host = Some(b.host);
                p.auto = true;
            }
        }
    }

    /// Puts `observed`, and the host ports its container got (`bound`), in a view built
    /// earlier, with what follows from them (`state_drift`): the watch cache builds a bot's
    /// view once per registry change and observes it again at every read.
    pub fn set_observed(&mut self, observed: Observed, bound: &[BoundPort]) {
        for p in self.ports.iter_mut().filter(|p| p.auto) {
            p.host = None;
            p.auto = false;
        }
        self.bind_ports(bound);
        self.state_drift = state_drift(self.desired_state, &observed);
        self.observed = observed;
    }

    /// Whether `other` shows the same registry row: every field but what observation sets
    /// (`observed`, `image_drift`, `state_drift`, the host ports Docker picked). The watch
    /// cache keeps an entry, and its rendered JSON, across a resync when this holds.
    pub fn same_registry_side(&self, other: &BotView) -> bool {
        // Destructured so that a new field cannot be left out of the comparison unnoticed.
        let BotView {
            id,
            name,
            template,
            image,
            command,
            env,
            secrets,
            ports,
            limits,
            network,
            health_check,
            user,
            settings,
            stop_timeout_secs,
            placement,
            desired_state,
            observed: _,
            image_drift: _,
            state_drift: _,
            warnings,
            created_at,
            updated_at,
        } = self;
        *id == other.id
            && *name == other.name
            && *template == other.template
            && *image == other.image
            && *command == other.command
            && *env == other.env
            && *secrets == other.secrets
            && ports.len() == other.ports.len()
            && ports
                .iter()
                .zip(&other.ports)
                .all(|(a, b)| a.spec() == b.spec())
            && *limits == other.limits
            && *network == other.network
            && *health_check == other.health_check
            && *user == other.user
            && *settings == other.settings
            && *stop_timeout_secs == other.stop_timeout_secs
            && *placement == other.placement
            && *desired_state == other.desired_state
            && *warnings == other.warnings
            && *created_at == other.created_at
            && *updated_at == other.updated_at
    }

    /// Whether the user wants it running.
    pub fn wants_running(&self) -> bool {
        self.desired_state == DesiredState::Running
    }
}

/// The bot's spec, with the default limits filled in for specs stored before every bot had
/// them (the container gets them too: see [`super::template::base_config`]).
pub(crate) fn spec_of(row: &BotRow) -> Result<BotSpec, BotError> {
    // From a reference: no copy of the stored document (the watch cache reads every row at
    // each resync).
    let mut spec = BotSpec::deserialize(&row.spec).map_err(|_| {
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

/// See [`BotView::state_drift`]. A bot that is starting, failing or crash-looping while wanted
/// running is not drifting: its state says what is wrong.
fn state_drift(desired: DesiredState, observed: &Observed) -> bool {
    use super::observed::BotState;
    match desired {
        DesiredState::Stopped => observed.is_up(),
        DesiredState::Running => matches!(observed.state, BotState::Stopped | BotState::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::super::observed::BotState;
    use super::*;

    #[test]
    fn desired_and_observed_state_that_differ_are_flagged_as_state_drift() {
        let seen = |state| Observed {
            state,
            health: Default::default(),
            exit_code: None,
            restart_count: 0,
            oom_killed: false,
            container_id: None,
            image_id: None,
            started_at: None,
            channels: None,
            node: None,
            node_state: None,
        };
        assert!(state_drift(DesiredState::Stopped, &seen(BotState::Running)));
        assert!(state_drift(
            DesiredState::Stopped,
            &seen(BotState::CrashLoop)
        ));
        assert!(!state_drift(
            DesiredState::Stopped,
            &seen(BotState::Stopped)
        ));
        assert!(!state_drift(
            DesiredState::Stopped,
            &seen(BotState::Missing)
        ));
        assert!(state_drift(DesiredState::Running, &seen(BotState::Stopped)));
        assert!(state_drift(DesiredState::Running, &seen(BotState::Missing)));
        assert!(!state_drift(
            DesiredState::Running,
            &seen(BotState::Running)
        ));
        assert!(!state_drift(DesiredState::Running, &seen(BotState::Error)));
    }
}
