//! What a user asks for: the create and update bodies, and the stored desired configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::docker::Protocol;

/// Template used when a create request names none.
pub const DEFAULT_TEMPLATE: &str = "generic";

/// Body of `POST /api/bots`. Unknown fields are rejected: a typo must not silently do nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBot {
    /// Bot id: a DNS label, also the container's hostname.
    pub id: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Template name: `generic` (default) or `openclaw`.
    #[serde(default)]
    pub template: Option<String>,
    /// Image reference (already present on the engine).
    #[serde(default)]
    pub image: Option<String>,
    /// Command (exec form).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Non-secret environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secrets, name → value: written to the bot's secrets directory, never stored elsewhere.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Resource limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Docker network to attach to (the default bridge when absent; `none` for no network).
    #[serde(default)]
    pub network: Option<String>,
    /// HTTP health probe run by botmaker (not by Docker).
    #[serde(default)]
    pub health_check: Option<HttpProbe>,
    /// Template-specific settings (for `openclaw`: provider, model, channels, persona...).
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Seconds between SIGTERM and SIGKILL when the bot stops (stop, restart, apply, delete);
    /// the template's default, else the server's `--stop-timeout`.
    #[serde(default)]
    pub stop_timeout_secs: Option<u64>,
    /// Start the bot after creating it (default true).
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

/// Body of `PATCH /api/bots/{id}`: every field optional; present ones replace the stored value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBot {
    /// New display name.
    pub name: Option<String>,
    /// New image.
    pub image: Option<String>,
    /// New command; `[]` clears it (image default).
    pub command: Option<Vec<String>>,
    /// Replaces the whole environment.
    pub env: Option<BTreeMap<String, String>>,
    /// Secrets to set (name → value); existing others are kept.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Replaces the published ports.
    pub ports: Option<Vec<PortSpec>>,
    /// Replaces the limits.
    pub limits: Option<LimitsSpec>,
    /// Replaces the template settings.
    pub settings: Option<serde_json::Value>,
    /// New stop grace period, seconds.
    pub stop_timeout_secs: Option<u64>,
    /// Recreate the container now so the change takes effect (default true).
    #[serde(default = "yes")]
    pub apply: bool,
}

/// A published port as users write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Port inside the container.
    pub container: u16,
    /// Host port; Docker picks one when absent.
    #[serde(default)]
    pub host: Option<u16>,
    /// Host address; `127.0.0.1` when absent.
    #[serde(default)]
    pub host_ip: Option<String>,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// Resource limits as users write them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Memory limit in MiB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// CPU limit in cores.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Process limit.
    #[serde(default)]
    pub pids: Option<i64>,
}

/// An HTTP health probe botmaker runs against the bot (like kubelet's httpGet), far cheaper for
/// the daemon than a Docker HEALTHCHECK, which execs a process in the container every interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Container port serving the endpoint.
    pub port: u16,
    /// Path, e.g. `/healthz`: answering it means the bot is alive.
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

/// The desired configuration of a bot as stored (secret values are never part of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Template settings.
    pub settings: serde_json::Value,
    /// Stop grace period in seconds; `None` means the server's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout_secs: Option<u64>,
}

/// Longest stop grace period a bot may ask for: a stop must end within a bounded time.
pub const MAX_STOP_TIMEOUT_SECS: u64 = 600;
