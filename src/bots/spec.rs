//! What a user asks for: the create and update bodies, and the stored desired configuration.
//!
//! [`BotSpec`] is the one list of a bot's settings. [`CreateBot`] takes each of them,
//! [`UpdateBot`] (PATCH) takes each of them again, every one optional, and
//! [`UpdateBot::apply_to`] lays a PATCH over a spec for the server and for `apply`'s plan
//! alike. A setting added to the spec that either body lacks fails
//! `every_setting_of_a_bot_is_editable_after_creation`; one `apply_to` forgets does not
//! compile (it destructures the PATCH field by field).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::docker::{Placement, PortPublish, Protocol};

/// Template used when a create request names none.
pub const DEFAULT_TEMPLATE: &str = "generic";

/// Body of `POST /api/bots`: a new bot. Unknown fields are rejected: a typo must not silently
/// do nothing. Only `id` is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(create_example))]
pub struct CreateBot {
    /// Bot id: a DNS label, also the container's hostname.
    #[schema(value_type = crate::BotId)]
    pub id: String,
    /// Display name (defaults to the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Template: what kind of bot, how its container is made (`generic` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Image reference, already present on the engine (botmaker never pulls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Command (exec form); the image's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Non-secret environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secrets, name → value: written to files in the bot's secrets directory, never to its
    /// environment or the database.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Published ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "LimitsSpec::is_unset")]
    pub limits: LimitsSpec,
    /// Docker network to attach to: the default bridge when absent, `none` for no network.
    /// `host` is refused unless the server runs with `--allow-host-network`: it would give the
    /// bot the host's network stack, botmaker's own API on 127.0.0.1 included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// HTTP health probe run by botmaker (not by Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HttpProbe>,
    /// Numeric `uid` or `uid:gid` the container runs as, overriding the image's `USER`; the
    /// bot's secret files are owned by it. Absent: the image's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]+(:[0-9]+)?$")]
    pub user: Option<String>,
    /// Template-specific settings: none for `generic` (`{}` or absent); for `openclaw` an
    /// `OpenClawSettings` object (provider, model, channels, persona, gateway_port, base_url,
    /// http_chat, agent_id, config).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub settings: serde_json::Value,
    /// Seconds between SIGTERM and SIGKILL when the bot stops (stop, restart, apply, delete);
    /// the template's default, else the server's `--stop-timeout`. 1–600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_secs: Option<u64>,
    /// Where the bot may run: a node (host name or id) and node labels. On `--backend swarm`
    /// placement constraints, the workspace then a volume on that node; on `docker` only a
    /// placement the one engine satisfies is accepted. Absent: anywhere (spread over nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Start the bot after creating it (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schema(default = true)]
    pub start: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn create_example() -> serde_json::Value {
    serde_json::json!({
        "id": "support-bot",
        "name": "Support bot",
        "template": "generic",
        "image": "mybot:1.0",
        "command": ["python", "bot.py"],
        "env": { "LOG_LEVEL": "info" },
        "secrets": { "OPENAI_API_KEY": "sk-..." },
        "ports": [{ "container": 8080, "host": 18080, "host_ip": "127.0.0.1", "protocol": "tcp" }],
        "limits": { "memory_mb": 512, "cpus": 1.5, "pids": 256 },
        "network": "bots",
        "health_check": {
            "port": 8080, "path": "/healthz", "interval_secs": 30,
            "start_period_secs": 180, "failure_threshold": 3,
        },
        "user": "1000:1000",
        "settings": {},
        "stop_timeout_secs": 30,
        "placement": { "node": "worker-1", "labels": { "zone": "eu" } },
        "start": true,
    })
}

/// Body of `PATCH /api/bots/{id}`: changes to a bot. Every field is optional and a present one
/// replaces the stored value; `null` clears the optional settings (`network`, `health_check`,
/// `stop_timeout_secs`, `placement`).
/// Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(update_example))]
pub struct UpdateBot {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// New command; `[]` clears it (the image's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the whole environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Secrets to set (name → value); existing others are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
    /// Replaces the published ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortSpec>>,
    /// Replaces the limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
    /// Replaces the Docker network; `null` goes back to the default bridge.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    #[schema(value_type = Option<String>)]
    pub network: Option<Option<String>>,
    /// Replaces botmaker's HTTP probe; `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    #[schema(value_type = Option<HttpProbe>)]
    pub health_check: Option<Option<HttpProbe>>,
    /// Replaces the user the container runs as (`uid` or `uid:gid`); `null` goes back to the
    /// image's own `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[0-9]+(:[0-9]+)?$")]
    pub user: Option<Option<String>>,
    /// Replaces the template settings (see `CreateBot.settings`: an `OpenClawSettings` object
    /// for `openclaw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// New stop grace period, seconds (1–600); `null` goes back to the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    #[schema(value_type = Option<u64>)]
    pub stop_timeout_secs: Option<Option<u64>>,
    /// Replaces where the bot may run; `null` lets it run anywhere again.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "present")]
    #[schema(value_type = Option<Placement>)]
    pub placement: Option<Option<Placement>>,
    /// Recreate the container now so the change takes effect (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[schema(default = true)]
    pub apply: bool,
}

impl Default for UpdateBot {
    /// Changes nothing, and applies at once (as a PATCH without `apply` does).
    fn default() -> Self {
        Self {
            name: None,
            image: None,
            command: None,
            env: None,
            secrets: None,
            ports: None,
            limits: None,
            network: None,
            health_check: None,
            user: None,
            settings: None,
            stop_timeout_secs: None,
            placement: None,
            apply: true,
        }
    }
}

impl UpdateBot {
    /// Lays the present settings over `spec`, as the server stores them. The display name and
    /// secrets are not part of the spec; `apply` says when, not what. Validation is separate
    /// ([`super::validate::check_update`]): `apply`'s plan uses this to predict what the server
    /// will store, problems included.
    pub fn apply_to(&self, spec: &mut BotSpec) {
        // Field by field, so a setting added to the PATCH cannot be forgotten here.
        let Self {
            name: _,
            secrets: _,
            apply: _,
            image,
            command,
            env,
            ports,
            limits,
            network,
            health_check,
            user,
            settings,
            stop_timeout_secs,
            placement,
        } = self;
        if let Some(v) = image {
            spec.image.clone_from(v);
        }
        if let Some(v) = command {
            spec.command = Some(v.clone()).filter(|c| !c.is_empty());
        }
        if let Some(v) = env {
            spec.env.clone_from(v);
        }
        if let Some(v) = ports {
            spec.ports.clone_from(v);
        }
        if let Some(v) = limits {
            spec.limits = v.clone();
        }
        if let Some(v) = network {
            spec.network.clone_from(v);
        }
        if let Some(v) = health_check {
            spec.health_check.clone_from(v);
        }
        if let Some(v) = user {
            spec.user.clone_from(v);
        }
        if let Some(v) = settings {
            spec.settings = v.clone();
        }
        if let Some(v) = stop_timeout_secs {
            spec.stop_timeout_secs = *v;
        }
        if let Some(v) = placement {
            spec.placement = v.clone().filter(|p| !p.is_empty());
        }
    }
}

fn update_example() -> serde_json::Value {
    serde_json::json!({
        "name": "Support bot v2",
        "image": "mybot:1.1",
        "command": [],
        "env": { "LOG_LEVEL": "debug" },
        "secrets": { "OPENAI_API_KEY": "sk-..." },
        "ports": [{ "container": 8080 }],
        "limits": { "memory_mb": 1024 },
        "network": null,
        "health_check": { "port": 8080, "path": "/healthz" },
        "user": null,
        "settings": {},
        "stop_timeout_secs": 30,
        "placement": { "labels": { "zone": "eu" } },
        "apply": true,
    })
}

/// A PATCH field that tells "absent" (`None`: keep) from `null` (`Some(None)`: clear).
pub(crate) mod present {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }

    pub fn serialize<T, S>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// A published port as users write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Port)]
pub struct PortSpec {
    /// Port inside the container.
    pub container: u16,
    /// Host port; Docker picks one when absent.
    #[serde(default)]
    pub host: Option<u16>,
    /// Host address (an IP); `127.0.0.1` when absent.
    #[serde(default)]
    pub host_ip: Option<String>,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// On the Swarm backend: `host` (default), on the node running the bot, or `mesh`, on
    /// every node through Swarm's routing mesh. The Docker backend publishes on its one
    /// host either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PortPublish>,
}

/// Resource limits as users write them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Limits)]
pub struct LimitsSpec {
    /// Memory limit in MiB (swap capped alike); the default when unset, unless the template
    /// sets its own.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// CPU limit in cores; none when unset.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Process (and thread) limit; the default when unset.
    #[serde(default)]
    pub pids: Option<i64>,
    /// LLM tokens (input + output) per UTC day through botmaker's proxy; then 429 until
    /// midnight UTC. The `llm_*` limits are left out of answers when unset, so bots that use
    /// no LLM look as they did before the proxy existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_tokens_per_day: Option<u64>,
    /// LLM cost per UTC month (in the providers' price-table unit); then 429 until the 1st.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_cost_per_month: Option<f64>,
    /// LLM requests per UTC minute; 0 cuts the bot off from its LLMs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_requests_per_minute: Option<u64>,
}

impl LimitsSpec {
    /// Whether no limit is set (the server's defaults apply).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// The memory limit in bytes. Validation bounds it, and a stored value from before the
    /// bound is clamped to it, so the conversion cannot overflow into a small limit.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_mb
            .map(|m| m.min(super::validate::MAX_MEMORY_MB) << 20)
    }
}

/// An HTTP health probe botmaker runs against the bot (like kubelet's httpGet), far cheaper for
/// the daemon than a Docker HEALTHCHECK, which execs a process in the container every interval.
/// Any 2xx or 3xx answer is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HealthCheck)]
pub struct HttpProbe {
    /// Container port serving the endpoint.
    pub port: u16,
    /// Path to GET, e.g. `/healthz`: answering it means the bot is alive.
    #[serde(default = "HttpProbe::default_path")]
    pub path: String,
    /// Path that answers 2xx only once the bot can serve (OpenClaw's `/readyz`); a live bot
    /// that is not ready is `starting`, then `degraded`. Without it, alive means healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
    /// Seconds between probes.
    #[serde(default = "HttpProbe::default_interval")]
    pub interval_secs: u64,
    /// Seconds after start before failures count (cold starts can take minutes).
    #[serde(default = "HttpProbe::default_start_period")]
    pub start_period_secs: u64,
    /// Consecutive failures before the bot is `unhealthy`.
    #[serde(default = "HttpProbe::default_failures")]
    pub failure_threshold: u32,
}

impl HttpProbe {
    fn default_path() -> String {
        "/healthz".into()
    }
    fn default_interval() -> u64 {
        30
    }
    fn default_start_period() -> u64 {
        180
    }
    fn default_failures() -> u32 {
        3
    }
}

/// The desired configuration of a bot as stored (secret values are never part of it): the one
/// list of a bot's settings. (Its schema is not published; tests walk it.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct BotSpec {
    /// Image reference.
    pub image: String,
    /// Command, if it overrides the image's.
    pub command: Option<Vec<String>>,
    /// Non-secret environment set by the user.
    pub env: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// Limits.
    pub limits: LimitsSpec,
    /// Docker network.
    pub network: Option<String>,
    /// botmaker's HTTP probe.
    pub health_check: Option<HttpProbe>,
    /// `uid[:gid]` the container runs as, when not the image's own user.
    pub user: Option<String>,
    /// Template settings.
    pub settings: serde_json::Value,
    /// Stop grace period in seconds; `None` means the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout_secs: Option<u64>,
    /// Where the bot may run; `None`: anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// Longest stop grace period a bot may ask for: a stop must end within a bounded time.
pub const MAX_STOP_TIMEOUT_SECS: u64 = 600;
