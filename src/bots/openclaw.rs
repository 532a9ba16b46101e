//! The `openclaw` template: what the OpenClaw runtime needs from its container, and the
//! `openclaw.json` that wires its credentials from files instead of the environment.
//!
//! This module turns validated settings into a container config and workspace files. It never
//! sees a secret value (except the gateway token it generates, handed straight to the caller)
//! and never touches the disk, Docker or the store.
//!
//! # What the container gets, and why
//!
//! | what | value | why |
//! |---|---|---|
//! | image | [`DEFAULT_IMAGE`] unless the spec names one | `scripts/openclaw-image` builds it from package registries; botmaker never pulls; pin a version in production |
//! | user | `1000:1000` | the image runs as `node` (uid 1000); secrets and workspace are handed to it |
//! | workspace | bind-mounted read-write at [`STATE_DIR`] | OpenClaw rewrites `openclaw.json` by temp file + rename, so the *directory* must be writable |
//! | secrets | `/run/secrets/<NAME>`, read-only | referenced from `openclaw.json`; env would show in `docker inspect` |
//! | port | the gateway port on `127.0.0.1` only; none on an `--internal` network (Docker publishes nothing there) nor where every port is bound on all of a node's addresses (Swarm: a user's gateway port there must say `0.0.0.0`) | the Control UI is not meant for the network; botmaker's probes reach the gateway at the bot's own address |
//! | probe | alive: `GET /healthz`; healthy: `GET /readyz`; channels: the `channels.status` admin RPC with the gateway token; 300 s start period | `/readyz` says ready while a configured channel has no plugin, only OpenClaw's channel status shows it |
//! | env | `OPENCLAW_CONFIG_READONLY=1`, `OPENCLAW_NO_RESPAWN=1`, `OPENCLAW_DISABLE_BONJOUR=1`, `OPENCLAW_NO_AUTO_UPDATE=1`, `NODE_OPTIONS=--max-old-space-size` at 75 % of the memory limit | botmaker owns `openclaw.json` (below); no detached self-respawn under Docker; no mDNS crash loop on bridges; a fleet does not update itself; V8 aborts at boot if its heap can outgrow the cgroup |
//! | init | Docker's, unless the image's entrypoint is an init (the images OpenClaw and `scripts/openclaw-image` build run tini) | signals reach the gateway and zombies are reaped, by exactly one init |
//! | stop grace | [`DEFAULT_STOP_TIMEOUT_SECS`] unless `stop_timeout_secs` says otherwise | the gateway drains on SIGTERM; a SIGKILL mid-drain loses work |
//! | secrets | rotation restarts the bot | the gateway reads its SecretRefs at start: a changed file alone changes nothing (`openclaw secrets reload` cannot rotate the gateway token it authenticates with) |
//!
//! # Who owns `openclaw.json`
//!
//! botmaker does. The file is generated from the settings on every create, apply and recreate,
//! and the gateway runs with `OPENCLAW_CONFIG_READONLY=1`: `openclaw config set`, onboarding,
//! `doctor --fix` and plugin installs refuse to edit it (by design; they exit non-zero and say
//! the config is externally managed), so nothing changed inside a container is silently lost
//! at the next apply, and OpenClaw never "restores" a file botmaker wrote. Every setting goes
//! through botmaker: the first-class ones below, and anything else OpenClaw knows through
//! `settings.config`, a JSON merge patch (RFC 7386) laid over the generated file. Keys that
//! wire credentials and the gateway (`gateway.auth`, `gateway.port`, `gateway.bind`,
//! `gateway.mode`, `secrets`) stay botmaker's, and plain-text credentials are refused.
//!
//! # Plugins
//!
//! Channels and providers whose OpenClaw plugin is not part of the npm package would make the
//! gateway install it at boot (minutes where the registry is slow, forever where it is out of
//! reach). Discord and Slack get `plugins.entries.<id>.enabled: true` and come pre-installed in
//! the image `scripts/openclaw-image` builds. Providers whose official plugin is external
//! ([`EXTERNAL_PROVIDER_PLUGINS`]) are driven through OpenClaw's generic adapter for the API
//! they speak, with that plugin disabled, so nothing is installed. The bundled
//! `admin-http-rpc` plugin is enabled: it is how botmaker reads channel status, and it gives a
//! holder of the gateway token nothing the token does not already give over the WebSocket.
//!
//! # Settings
//!
//! ```json
//! {
//!   "provider": "anthropic",
//!   "model": "claude-opus-4-5",
//!   "channels": ["telegram", "discord"],
//!   "persona": { "name": "Ada", "soul": "Curious and kind.", "identity": "..." },
//!   "gateway_port": 18789,
//!   "base_url": "https://llm.example.com/v1",
//!   "http_chat": true,
//!   "agent_id": "support",
//!   "config": { "agents": { "defaults": { "timeoutSeconds": 120 } } }
//! }
//! ```
//!
//! `http_chat` serves the gateway's OpenAI-compatible `POST /v1/chat/completions` (and
//! `/v1/models`), authenticated with the gateway token; `agent_id` names the default agent
//! (`openclaw agent --agent <id>`, model `openclaw:<id>` over HTTP; OpenClaw's default is
//! `main`); `config` is the merge patch described above. Only `provider` and `model` are
//! required. Secrets the bot then needs: one or two per channel
//! (see [`Channel::secrets`]), `<PROVIDER>_API_KEY` for every provider but `ollama`, and
//! [`GATEWAY_TOKEN_SECRET`], which botmaker generates when the user does not supply it.

use std::fmt;
use std::path::PathBuf;

use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::llm::{LlmApi, LlmRoute, LlmUse};
use super::observed::ChannelStatus;
use super::spec::{BotSpec, HttpProbe, PortSpec};
use super::template::{
    RenderInput, Rendered, SecretRotation, StatusRequest, Template, WorkspaceFile,
};
use super::validate::FieldErrors;
use crate::docker::{BindMount, BindScope, Protocol, SECRETS_MOUNT_TARGET};
use crate::secrets::SecretName;

/// Image used when the spec names none: what `scripts/openclaw-image` builds and tags.
pub const DEFAULT_IMAGE: &str = "botmaker-openclaw:latest";
/// OpenClaw's gateway port (HTTP and WebSocket on one port).
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;
/// Where OpenClaw keeps its state, as the `node` user of the official image; the bot's
/// workspace is mounted here.
pub const STATE_DIR: &str = "/home/node/.openclaw";
/// The agent workspace (SOUL.md, IDENTITY.md...), relative to [`STATE_DIR`].
pub const AGENT_WORKSPACE: &str = "workspace";
/// The config file, relative to [`STATE_DIR`] (OpenClaw's default config path).
pub const CONFIG_FILE: &str = "openclaw.json";
/// uid and gid of the `node` user the image runs as.
pub const CONTAINER_OWNER: (u32, u32) = (1000, 1000);
/// Memory limit when the spec sets none: steady state is 250-450 MiB, boot and tool-heavy
/// sessions peak far higher.
pub const DEFAULT_MEMORY_MB: u64 = 2048;
/// Grace period before probe failures count: cold starts range from 3 s to over 3 minutes.
pub const HEALTH_START_PERIOD_SECS: u64 = 300;
/// The gateway's auth token, generated by botmaker unless the user supplies one.
pub const GATEWAY_TOKEN_SECRET: &str = "OPENCLAW_GATEWAY_TOKEN";
/// Stop grace when the spec sets none: the gateway drains active runs and channels on SIGTERM
/// (its own stop budget is minutes); an idle gateway exits in 8-40 s on a busy 2-core host.
pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 90;
/// OpenClaw's liveness and readiness probes.
pub const LIVENESS_PATH: &str = "/healthz";
/// See [`LIVENESS_PATH`].
pub const READINESS_PATH: &str = "/readyz";
/// The bundled plugin serving the gateway's admin RPC over HTTP, and its route.
const ADMIN_RPC_PLUGIN: &str = "admin-http-rpc";
const ADMIN_RPC_PATH: &str = "/api/v1/admin/rpc";
/// Provider ids whose official OpenClaw plugin is not in the npm package (OpenClaw 2026.9.6's
/// external provider catalogue, intersected with [`PROVIDERS`]): configured by id, OpenClaw
/// would install it at boot, so the template disables it and uses the generic adapter.
pub const EXTERNAL_PROVIDER_PLUGINS: &[&str] = &[
    "cerebras",
    "deepinfra",
    "deepseek",
    "fireworks",
    "groq",
    "mistral",
    "moonshot",
    "venice",
];
/// `settings.config` keys that stay botmaker's, with why.
const OWNED_CONFIG_PATHS: &[(&str, &str)] = &[
    (
        "gateway.auth",
        "the gateway token is a secret (OPENCLAW_GATEWAY_TOKEN)",
    ),
    ("gateway.port", "use settings.gateway_port"),
    (
        "gateway.bind",
        "the gateway must listen where Docker's port mapping reaches it",
    ),
    ("gateway.mode", "the gateway runs in local mode"),
    (
        "secrets",
        "secret providers are the bot's files under /run/secrets",
    ),
];
/// Keys whose plain-text value would be a credential in the config file.
const CREDENTIAL_KEYS: &[&str] = &[
    "token",
    "tokenFile",
    "botToken",
    "appToken",
    "userToken",
    "apiKey",
    "password",
    "signingSecret",
    "webhookSecret",
];
/// Longest agent id.
const MAX_AGENT_ID_LEN: usize = 64;
/// Share of the memory limit given to V8's old space, leaving room for the rest of the process.
const HEAP_PERCENT_OF_MEMORY: u64 = 75;
/// Longest model name (the origin's limit).
const MAX_MODEL_LEN: usize = 128;
/// Longest persona name.
const MAX_PERSONA_NAME_LEN: usize = 128;
/// Largest SOUL.md / IDENTITY.md body.
const MAX_PERSONA_TEXT_LEN: usize = 64 * 1024;
/// Longest base URL.
const MAX_BASE_URL_LEN: usize = 2048;
/// Host alias ollama's default base URL uses, mapped to the Docker host.
const DOCKER_HOST_ALIAS: &str = "host.docker.internal";
/// Environment variables the template sets itself: a user value would move OpenClaw's state or
/// port away from where the mount and probe point.
const MANAGED_ENV: &[&str] = &[
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_HOME",
    "OPENCLAW_GATEWAY_PORT",
    "OPENCLAW_CONFIG_READONLY",
];
/// Suffixes of environment variable names that carry credentials.
const SECRET_ENV_SUFFIXES: &[&str] = &["_TOKEN", "_API_KEY", "_SECRET", "_PASSWORD"];

/// An LLM provider OpenClaw can talk to: the 22 of the origin's catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Id in settings and in model refs (`<id>/<model>`).
    pub id: &'static str,
    /// OpenClaw's request adapter (`models.providers.*.api`).
    pub api: &'static str,
    /// Upstream API base URL (`models.providers.*.baseUrl`), overridable with `base_url`.
    pub base_url: &'static str,
    /// Whether the provider needs an API key (`<ID>_API_KEY`).
    pub needs_key: bool,
}

const fn provider(id: &'static str, api: &'static str, base_url: &'static str) -> Provider {
    Provider {
        id,
        api,
        base_url,
        needs_key: true,
    }
}

const COMPLETIONS: &str = "openai-completions";

/// Every supported provider. Base URLs are the upstreams of the origin's keyring proxy (origin
/// §5.5), except DeepInfra, whose OpenAI-compatible API lives under `/v1/openai`; adapters
/// follow the origin's `getApiTypeForProvider` (§4.3), with Google's adapter named as
/// OpenClaw's configuration reference spells it (`google-generative-ai`).
pub const PROVIDERS: &[Provider] = &[
    provider("openai", "openai-responses", "https://api.openai.com/v1"),
    provider(
        "anthropic",
        "anthropic-messages",
        "https://api.anthropic.com",
    ),
    provider(
        "google",
        "google-generative-ai",
        "https://generativelanguage.googleapis.com/v1beta",
    ),
    provider("venice", COMPLETIONS, "https://api.venice.ai/api/v1"),
    provider("openrouter", COMPLETIONS, "https://openrouter.ai/api/v1"),
    Provider {
        id: "ollama",
        api: COMPLETIONS,
        base_url: "http://host.docker.internal:11434/v1",
        needs_key: false,
    },
    provider("grok", COMPLETIONS, "https://api.x.ai/v1"),
    provider("deepseek", COMPLETIONS, "https://api.deepseek.com/v1"),
    provider("mistral", COMPLETIONS, "https://api.mistral.ai/v1"),
    provider("groq", COMPLETIONS, "https://api.groq.com/openai/v1"),
    provider("cerebras", COMPLETIONS, "https://api.cerebras.ai/v1"),
    provider(
        "fireworks",
        COMPLETIONS,
        "https://api.fireworks.ai/inference/v1",
    ),
    provider("togetherai", COMPLETIONS, "https://api.together.xyz/v1"),
    provider(
        "deepinfra",
        COMPLETIONS,
        "https://api.deepinfra.com/v1/openai",
    ),
    provider("perplexity", COMPLETIONS, "https://api.perplexity.ai"),
    provider("nvidia", COMPLETIONS, "https://integrate.api.nvidia.com/v1"),
    provider("minimax", COMPLETIONS, "https://api.minimax.chat/v1"),
    provider("moonshot", COMPLETIONS, "https://api.moonshot.ai/v1"),
    provider("scaleway", COMPLETIONS, "https://api.scaleway.ai/v1"),
    provider(
        "nebius",
        COMPLETIONS,
        "https://api.tokenfactory.nebius.com/v1",
    ),
    provider(
        "ovhcloud",
        COMPLETIONS,
        "https://api.endpoints.ai.ovh.net/v1",
    ),
    provider(
        "huggingface",
        COMPLETIONS,
        "https://api-inference.huggingface.co/v1",
    ),
];

impl Provider {
    /// Looks a provider up by id.
    pub fn find(id: &str) -> Option<&'static Provider> {
        PROVIDERS.iter().find(|p| p.id == id)
    }

    /// The secret holding its API key (`OPENAI_API_KEY`...), if it needs one.
    pub fn key_secret(&self) -> Option<SecretName> {
        self.needs_key.then(|| {
            SecretName::new(format!("{}_API_KEY", self.id.to_ascii_uppercase()))
                .expect("provider ids are lowercase ASCII letters")
        })
    }
}

/// A chat channel the template can wire to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    /// Telegram bot (long polling).
    Telegram,
    /// Discord bot.
    Discord,
    /// Slack app in Socket Mode.
    Slack,
}

impl Channel {
    /// Every supported channel.
    pub const ALL: &[Channel] = &[Channel::Telegram, Channel::Discord, Channel::Slack];

    /// Parses a channel id.
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.id() == id)
    }

    /// Its id in settings and under `channels` in `openclaw.json`.
    pub fn id(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Discord => "discord",
            Channel::Slack => "slack",
        }
    }

    /// Whether its OpenClaw plugin is external (not in the npm package): such a plugin needs
    /// `plugins.entries.<id>.enabled` to be trusted.
    pub fn external_plugin(self) -> bool {
        !matches!(self, Channel::Telegram)
    }

    /// The secrets it needs, with the `openclaw.json` key each one fills. The names are those
    /// OpenClaw itself falls back to in the environment, so users recognise them.
    pub fn secrets(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Channel::Telegram => &[("tokenFile", "TELEGRAM_BOT_TOKEN")],
            Channel::Discord => &[("token", "DISCORD_BOT_TOKEN")],
            Channel::Slack => &[
                ("botToken", "SLACK_BOT_TOKEN"),
                ("appToken", "SLACK_APP_TOKEN"),
            ],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// `spec.settings` of an openclaw bot, as users write it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenClawSettings {
    /// Provider id (`anthropic`, `openai`, ...: the dashboard's list, `PROVIDERS` in the code).
    pub provider: String,
    /// Model name at that provider.
    pub model: String,
    /// Channel ids (`telegram`, `discord`, ...: `Channel::ALL` in the code); none by default.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Who the bot is.
    #[serde(default)]
    pub persona: Option<Persona>,
    /// Gateway port inside the container, 1-65535 (default 18789).
    #[serde(default)]
    pub gateway_port: Option<u16>,
    /// Overrides the provider's base URL (a self-hosted gateway, a regional endpoint, ollama
    /// elsewhere than on the Docker host).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Serve the gateway's OpenAI-compatible HTTP chat endpoint.
    #[serde(default)]
    pub http_chat: bool,
    /// The default agent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// A JSON merge patch over the generated `openclaw.json`.
    #[serde(default)]
    pub config: Option<Value>,
}

/// The bot's persona, written to `workspace/SOUL.md` and `workspace/IDENTITY.md`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// SOUL.md body (Markdown): personality and values.
    #[serde(default)]
    pub soul: Option<String>,
    /// IDENTITY.md body (Markdown); generated from `name` when absent.
    #[serde(default)]
    pub identity: Option<String>,
}

/// A `/run/secrets` file the bot's `openclaw.json` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    /// The secret.
    pub name: SecretName,
    /// What needs it (`telegram`, `provider anthropic`, `gateway auth`).
    pub purpose: String,
    /// True when botmaker generates it if the user does not supply it.
    pub generated: bool,
}

/// Validated settings.
#[derive(Debug, Clone)]
struct Plan {
    provider: &'static Provider,
    model: String,
    channels: Vec<Channel>,
    persona: Option<Persona>,
    gateway_port: u16,
    base_url: Option<String>,
    http_chat: bool,
    agent_id: Option<String>,
    config: Option<Value>,
}

impl Plan {
    /// Parses and checks `settings`, reporting every problem under `settings.*`.
    fn from_settings(settings: &Value, errors: &mut FieldErrors) -> Option<Self> {
        let mut mine = FieldErrors::default();
        let plan = Self::check(settings, &mut mine);
        for (field, messages) in mine.fields() {
            for m in messages {
                errors.add(field.clone(), m.clone());
            }
        }
        plan.filter(|_| mine.is_empty())
    }

    fn check(settings: &Value, errors: &mut FieldErrors) -> Option<Self> {
        if settings.is_null() {
            errors.add(
                "settings",
                "the openclaw template needs settings: {\"provider\": ..., \"model\": ..., \
                 \"channels\": [...]}",
            );
            return None;
        }
        let raw: OpenClawSettings = match serde_path_to_error::deserialize(settings.clone()) {
            Ok(s) => s,
            Err(e) => {
                // At the field it concerns (`settings.persona`), in the API's words.
                let mut path = e.path().to_string();
                let message = e.into_inner().to_string();
                // An unknown field is a problem of the object that does not have it.
                if message.starts_with("unknown field") {
                    path = path.rsplit_once('.').map_or("", |(p, _)| p).to_string();
                }
                let field = if path == "." || path.is_empty() {
                    "settings".to_string()
                } else {
                    format!("settings.{path}")
                };
                errors.add(field, super::plain_words::plain(&message));
                return None;
            }
        };
        let provider = Provider::find(&raw.provider);
        if provider.is_none() {
            let ids: Vec<_> = PROVIDERS.iter().map(|p| p.id).collect();
            errors.add(
                "settings.provider",
                format!(
                    "unknown provider {:?}; expected one of {}",
                    raw.provider,
                    ids.join(", ")
                ),
            );
        }
        if !is_valid_model(&raw.model) {
            errors.add(
                "settings.model",
                format!(
                    "must be 1-{MAX_MODEL_LEN} characters of letters, digits, '.', '_', ':', '/' \
                     and '-', without '..'"
                ),
            );
        }
        let mut channels = Vec::new();
        for (i, id) in raw.channels.iter().enumerate() {
            match Channel::parse(id) {
                Some(c) if channels.contains(&c) => {
                    errors.add(format!("settings.channels[{i}]"), "is listed twice");
                }
                Some(c) => channels.push(c),
                None => {
                    let ids: Vec<_> = Channel::ALL.iter().map(|c| c.id()).collect();
                    errors.add(
                        format!("settings.channels[{i}]"),
                        format!(
                            "unsupported channel {id:?}; the openclaw template can wire {}",
                            ids.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(persona) = &raw.persona {
            check_persona(persona, errors);
        }
        if raw.gateway_port == Some(0) {
            errors.add("settings.gateway_port", "must be 1-65535");
        }
        if let Some(url) = &raw.base_url {
            check_base_url(url, errors);
        }
        if let Some(id) = &raw.agent_id {
            check_agent_id(id, errors);
        }
        if let Some(patch) = &raw.config {
            super::config_patch::check_patch(
                "settings.config",
                patch,
                OWNED_CONFIG_PATHS,
                CREDENTIAL_KEYS,
                errors,
            );
        }

        Some(Self {
            provider: provider?,
            model: raw.model,
            channels,
            persona: raw.persona,
            gateway_port: raw.gateway_port.unwrap_or(DEFAULT_GATEWAY_PORT),
            base_url: raw.base_url,
            http_chat: raw.http_chat,
            agent_id: raw.agent_id,
            config: raw.config,
        })
    }

    /// Every secret `openclaw.json` refers to, in a stable order.
    fn secret_uses(&self) -> Vec<SecretUse> {
        let mut uses = Vec::new();
        for channel in &self.channels {
            for (_, name) in channel.secrets() {
                uses.push(SecretUse {
                    name: secret(name),
                    purpose: channel.id().to_string(),
                    generated: false,
                });
            }
        }
        if let Some(name) = self.provider.key_secret() {
            uses.push(SecretUse {
                name,
                purpose: format!("provider {}", self.provider.id),
                generated: false,
            });
        }
        uses.push(SecretUse {
            name: secret(GATEWAY_TOKEN_SECRET),
            purpose: "gateway auth".into(),
            generated: true,
        });
        uses
    }

    fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(self.provider.base_url)
    }

    /// True when the provider's default URL points at the Docker host, which then needs an
    /// `/etc/hosts` entry: Docker on Linux does not define `host.docker.internal` by itself.
    fn needs_host_alias(&self) -> bool {
        self.base_url.is_none() && self.provider.base_url.contains(DOCKER_HOST_ALIAS)
    }
}

/// The origin's model rule, `^(?!.*\.\.)[a-zA-Z0-9._:/-]{1,128}$`, without a regex engine.
fn is_valid_model(model: &str) -> bool {
    (1..=MAX_MODEL_LEN).contains(&model.len())
        && !model.contains("..")
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
}

fn check_persona(persona: &Persona, errors: &mut FieldErrors) {
    if let Some(name) = &persona.name {
        if name.trim().is_empty() || name.chars().count() > MAX_PERSONA_NAME_LEN {
            errors.add(
                "settings.persona.name",
                format!("must be 1-{MAX_PERSONA_NAME_LEN} characters"),
            );
        } else if name.chars().any(char::is_control) {
            errors.add(
                "settings.persona.name",
                "must not contain control characters",
            );
        }
    }
    for (field, text) in [("soul", &persona.soul), ("identity", &persona.identity)] {
        if let Some(text) = text {
            if text.len() > MAX_PERSONA_TEXT_LEN {
                errors.add(
                    format!("settings.persona.{field}"),
                    format!("must be at most {MAX_PERSONA_TEXT_LEN} bytes"),
                );
            }
            if text.contains('\0') {
                errors.add(
                    format!("settings.persona.{field}"),
                    "must not contain NUL bytes",
                );
            }
        }
    }
}

/// OpenClaw's agent ids: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
fn check_agent_id(id: &str, errors: &mut FieldErrors) {
    let ok = (1..=MAX_AGENT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        errors.add(
            "settings.agent_id",
            format!(
                "must be 1-{MAX_AGENT_ID_LEN} of a-z, 0-9, '-' and '_', starting with a letter \
                 or digit"
            ),
        );
    }
}

fn check_base_url(url: &str, errors: &mut FieldErrors) {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = url.len() <= MAX_BASE_URL_LEN
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errors.add(
            "settings.base_url",
            "must be an http:// or https:// URL without spaces",
        );
    }
}

fn secret(name: &str) -> SecretName {
    SecretName::new(name).expect("the template's secret names are valid")
}

/// `/run/secrets/<NAME>`.
fn secret_path(name: &SecretName) -> String {
    format!("{SECRETS_MOUNT_TARGET}/{name}")
}

/// The `secrets.providers` entry name for a secret: one single-value file provider per secret
/// (names must match `^[a-z][a-z0-9_-]{0,63}$`, which a lowercased [`SecretName`] does).
fn file_provider_name(name: &SecretName) -> String {
    name.as_str().to_ascii_lowercase()
}

/// A file SecretRef to a single-value file provider (`id` must be `"value"` in that mode).
fn file_ref(name: &SecretName) -> Value {
    json!({ "source": "file", "provider": file_provider_name(name), "id": "value" })
}

/// The OpenClaw runtime.
#[derive(Debug, Clone, Copy)]
pub struct OpenClaw;

impl Template for OpenClaw {
    fn name(&self) -> &'static str {
        "openclaw"
    }

    fn prepare(
        &self,
        spec: &mut BotSpec,
        secret_names: &[SecretName],
        scope: BindScope,
        errors: &mut FieldErrors,
    ) {
        let plan = Plan::from_settings(&spec.settings, errors);

        if spec.image.trim().is_empty() {
            spec.image = DEFAULT_IMAGE.into();
        }
        super::validate::check_image(&spec.image, errors);

        for key in spec.env.keys() {
            if MANAGED_ENV.contains(&key.as_str()) {
                errors.add(
                    format!("env.{key}"),
                    "is set by the openclaw template (it decides where state and the gateway \
                     live); remove it",
                );
            } else if SECRET_ENV_SUFFIXES.iter().any(|s| key.ends_with(s)) {
                errors.add(
                    format!("env.{key}"),
                    "looks like a credential: environment variables show in `docker inspect`; \
                     pass it in `secrets` instead (openclaw.json reads it from /run/secrets)",
                );
            }
        }

        if let Some(plan) = &plan {
            for need in plan.secret_uses() {
                if !need.generated && !secret_names.contains(&need.name) {
                    errors.add(
                        format!("secrets.{}", need.name),
                        format!("required by the openclaw template for {}", need.purpose),
                    );
                }
            }
        }
        let gateway_port = plan
            .as_ref()
            .map_or(DEFAULT_GATEWAY_PORT, |p| p.gateway_port);

        if !spec.ports.is_empty() {
            check_gateway_published(&spec.ports, gateway_port, scope, errors);
        } else if scope == BindScope::OneAddress {
            spec.ports.push(PortSpec {
                container: gateway_port,
                host: None,
                host_ip: Some(crate::docker::DEFAULT_HOST_IP.into()),
                protocol: Protocol::Tcp,
                publish: None,
            });
        }
        // Else the gateway is not published: on every address of a node it would be on the
        // network, and botmaker reaches it for its probes at the bot's own address anyway.

        let memory_mb = *spec.limits.memory_mb.get_or_insert(DEFAULT_MEMORY_MB);
        set_env_default(spec, "OPENCLAW_NO_RESPAWN", "1");
        set_env_default(spec, "OPENCLAW_DISABLE_BONJOUR", "1");
        set_env_default(spec, "OPENCLAW_NO_AUTO_UPDATE", "1");
        fit_heap_to_memory(spec, memory_mb, errors);

        spec.stop_timeout_secs
            .get_or_insert(DEFAULT_STOP_TIMEOUT_SECS);
        match &mut spec.health_check {
            None => {
                spec.health_check = Some(HttpProbe {
                    port: gateway_port,
                    path: LIVENESS_PATH.into(),
                    ready_path: Some(READINESS_PATH.into()),
                    interval_secs: 30,
                    start_period_secs: HEALTH_START_PERIOD_SECS,
                    failure_threshold: 3,
                });
            }
            // OpenClaw serves nothing else; a probe left on an old port after the gateway port
            // changed would mark a healthy bot unhealthy. A probe stored before readiness was
            // probed gets it.
            Some(probe) => {
                probe.port = gateway_port;
                if probe.path == LIVENESS_PATH && probe.ready_path.is_none() {
                    probe.ready_path = Some(READINESS_PATH.into());
                }
            }
        }
    }

    fn render(&self, input: &RenderInput<'_>) -> Rendered {
        let mut config = super::template::base_config(input);
        config.mounts.push(BindMount {
            source: input.workspace_dir.to_path_buf(),
            target: STATE_DIR.into(),
            read_only: false,
        });
        config.user = Some(format!("{}:{}", CONTAINER_OWNER.0, CONTAINER_OWNER.1));
        config.init = true;
        config
            .env
            .insert("OPENCLAW_STATE_DIR".into(), STATE_DIR.into());
        // Not overridable: botmaker owns openclaw.json (see the module docs).
        config
            .env
            .insert("OPENCLAW_CONFIG_READONLY".into(), "1".into());
        for (k, v) in [
            ("OPENCLAW_NO_RESPAWN", "1"),
            ("OPENCLAW_DISABLE_BONJOUR", "1"),
            ("OPENCLAW_NO_AUTO_UPDATE", "1"),
        ] {
            config.env.entry(k.into()).or_insert_with(|| v.into());
        }

        // `prepare` refused invalid settings, so `None` only happens for a spec that was never
        // prepared: such a bot gets no config and OpenClaw reports it at start.
        let Some(plan) = Plan::from_settings(&input.spec.settings, &mut FieldErrors::default())
        else {
            return Rendered {
                config,
                files: Vec::new(),
            };
        };
        let route = input.llm.get(plan.provider.id);
        if route.is_some() {
            config.extra_hosts.extend(input.llm.extra_host.clone());
        } else if plan.needs_host_alias() {
            config
                .extra_hosts
                .push(format!("{DOCKER_HOST_ALIAS}:host-gateway"));
        }
        let control_ui_port = input
            .spec
            .ports
            .iter()
            .find(|p| p.container == plan.gateway_port && p.protocol == Protocol::Tcp)
            .and_then(|p| p.host);

        let mut files = vec![WorkspaceFile {
            path: CONFIG_FILE.into(),
            contents: render_config(&plan, control_ui_port, route),
        }];
        files.extend(persona_files(plan.persona.as_ref()));
        Rendered { config, files }
    }

    fn generated_secrets(&self, _spec: &BotSpec) -> Vec<(SecretName, String)> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        vec![(secret(GATEWAY_TOKEN_SECRET), hex::encode(bytes))]
    }

    fn owner(&self) -> Option<(u32, u32)> {
        Some(CONTAINER_OWNER)
    }

    /// The configured provider, its key in `<PROVIDER>_API_KEY` (for every provider, `ollama`
    /// included: through the proxy even a keyless provider gets a virtual key).
    fn llm_uses(&self, spec: &BotSpec) -> Vec<LlmUse> {
        let Some(provider) = spec
            .settings
            .get("provider")
            .and_then(|p| p.as_str())
            .and_then(Provider::find)
        else {
            return Vec::new();
        };
        let api = match provider.api {
            "anthropic-messages" => LlmApi::Anthropic,
            "openai-responses" | COMPLETIONS => LlmApi::OpenAi,
            other => LlmApi::Other(other),
        };
        let has_base_url = spec.settings.get("base_url").is_some_and(|v| !v.is_null());
        vec![LlmUse {
            provider: provider.id.to_string(),
            secret: provider_key_secret(provider),
            api,
            required: false,
            field: "settings.provider",
            conflicting_setting: has_base_url.then_some("settings.base_url"),
        }]
    }

    fn secret_rotation(&self) -> SecretRotation {
        SecretRotation::Restart
    }

    fn required_secrets(&self, spec: &BotSpec) -> Vec<(SecretName, String)> {
        Plan::from_settings(&spec.settings, &mut FieldErrors::default())
            .map(|plan| {
                plan.secret_uses()
                    .into_iter()
                    .map(|u| (u.name, u.purpose))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn status_request(&self, spec: &BotSpec) -> Option<StatusRequest> {
        let plan = Plan::from_settings(&spec.settings, &mut FieldErrors::default())?;
        (!plan.channels.is_empty()).then(|| StatusRequest {
            path: ADMIN_RPC_PATH.into(),
            body: json!({ "method": "channels.status", "params": {} }).to_string(),
            bearer: Some(secret(GATEWAY_TOKEN_SECRET)),
        })
    }

    fn read_status(&self, spec: &BotSpec, body: &[u8]) -> Option<Vec<ChannelStatus>> {
        let plan = Plan::from_settings(&spec.settings, &mut FieldErrors::default())?;
        let ids: Vec<&str> = plan.channels.iter().map(|c| c.id()).collect();
        super::openclaw_status::read_channels_status(&ids, body)
    }
}

/// `<PROVIDER>_API_KEY`: where the provider's key (real, or virtual through the proxy) is.
fn provider_key_secret(provider: &Provider) -> SecretName {
    SecretName::new(format!("{}_API_KEY", provider.id.to_ascii_uppercase()))
        .expect("provider ids are lowercase ASCII letters")
}

fn set_env_default(spec: &mut BotSpec, key: &str, value: &str) {
    spec.env.entry(key.into()).or_insert_with(|| value.into());
}

/// Keeps `NODE_OPTIONS` consistent with the memory limit: adds the heap flag when absent,
/// recomputes a value that is only our flag (so a changed limit moves it along), and refuses a
/// user heap at or above the limit. Other user flags are kept as they are.
fn fit_heap_to_memory(spec: &mut BotSpec, memory_mb: u64, errors: &mut FieldErrors) {
    const FLAG: &str = "--max-old-space-size=";
    let heap_mb = (memory_mb * HEAP_PERCENT_OF_MEMORY / 100).max(1);
    let ours = format!("{FLAG}{heap_mb}");
    let Some(current) = spec.env.get_mut("NODE_OPTIONS") else {
        spec.env.insert("NODE_OPTIONS".into(), ours);
        return;
    };
    let heaps: Vec<&str> = current
        .split_whitespace()
        .filter_map(|arg| arg.strip_prefix(FLAG))
        .collect();
    if heaps.is_empty() {
        *current = format!("{} {ours}", current.trim()).trim().to_string();
    } else if current.split_whitespace().count() == 1 {
        *current = ours;
    } else if heaps
        .iter()
        .any(|h| h.parse::<u64>().map_or(true, |h| h >= memory_mb))
    {
        errors.add(
            "env.NODE_OPTIONS",
            format!(
                "--max-old-space-size must be a number of MiB below the memory limit \
                 ({memory_mb}); about {heap_mb} leaves room for the rest of Node"
            ),
        );
    }
}

/// User ports must publish the gateway: on loopback only where a port can be bound to one
/// address; where every port is bound on every address of the node (Swarm), only on a port
/// that says so (`0.0.0.0` or `::`), since nothing can keep it to loopback there.
fn check_gateway_published(
    ports: &[PortSpec],
    gateway_port: u16,
    scope: BindScope,
    errors: &mut FieldErrors,
) {
    let mut published = false;
    for (i, p) in ports.iter().enumerate() {
        if p.container != gateway_port || p.protocol != Protocol::Tcp {
            continue;
        }
        published = true;
        let field = format!("ports[{i}].host_ip");
        match scope {
            BindScope::OneAddress => {
                let loopback = p.host_ip.as_deref().is_none_or(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                });
                if !loopback {
                    errors.add(
                        field,
                        "the OpenClaw gateway is published on a loopback address only \
                         (127.0.0.1); put a reverse proxy in front of it to reach it from \
                         elsewhere",
                    );
                }
            }
            BindScope::EveryAddress => {
                if !scope.publishes_as_asked(p.host_ip.as_deref()) {
                    errors.add(
                        field,
                        format!(
                            "this backend (Swarm) publishes a port on every address of a node, \
                             never on {} alone; either leave `ports` out (the gateway is then \
                             not published, and botmaker reaches it at the bot's own address) \
                             or publish it on purpose with host_ip \"0.0.0.0\" (publish \
                             \"host\": on the bot's node; \"mesh\": on every node), behind a \
                             firewall or reverse proxy",
                            p.host_ip
                                .as_deref()
                                .unwrap_or(crate::docker::DEFAULT_HOST_IP)
                        ),
                    );
                }
            }
        }
    }
    if !published {
        errors.add(
            "ports",
            format!(
                "must publish the gateway port {gateway_port}/tcp (or leave ports empty for the \
                 default)"
            ),
        );
    }
}

/// `openclaw.json`. Keys and where they are documented (OpenClaw's docs, as summarised in
/// botmaker's references `user-demand.md` §3 and `botmaker-origin.md` §4.3):
///
/// - `gateway.mode: "local"`, `gateway.port`, `gateway.bind: "lan"`: configuration reference
///   "Gateway"; a loopback bind is unreachable through Docker's port mapping (docker.md
///   "LAN vs loopback"), and the origin wrote the same block.
/// - `gateway.auth: {mode: "token", token: <file SecretRef>}`: `gateway.auth.token` is on the
///   SecretRef credential surface (secretref-credential-surface.md); the env variable
///   `OPENCLAW_GATEWAY_TOKEN` would win over it (secrets.md), so the template refuses it.
/// - `gateway.controlUi`: a non-loopback Control UI without `allowedOrigins` refuses to start
///   (user-demand §3.2), so the origins are the published loopback address when the host port
///   is known, and the Control UI is off when Docker picks the port.
/// - `secrets.providers.<name>: {source: "file", path, mode: "singleValue"}` and refs
///   `{source: "file", provider: <name>, id: "value"}`: secrets.md "File provider".
/// - `channels.telegram.tokenFile`: telegram.md (a regular file; symlinks are rejected).
/// - `channels.discord.token`, `channels.slack.botToken` / `appToken`: SecretRef targets in
///   secretref-credential-surface.md.
/// - `models.mode: "merge"`, `models.providers.<id>: {baseUrl, api, apiKey, models}`:
///   configuration reference "Custom providers and base URLs"; the origin's proxied variant
///   had the same shape.
/// - `agents.defaults.model.primary: "<provider>/<model>"`, `agents.defaults.workspace`: the
///   origin's generator; the workspace is OpenClaw's default under the state dir.
/// - `plugins.entries.<id>.enabled`: plugins.md; an external channel plugin without it is
///   "installed without explicit trust" and its channel stays off.
/// - `gateway.http.endpoints.chatCompletions.enabled`: gateway/openai-http-api.md.
/// - `agents.entries.<id>` and `agents.defaults.systemAgent.agentId`: concepts/multi-agent.md
///   and config-agents (the older `default: true` marker is retired).
/// - then `settings.config`, merged as RFC 7386 says.
///
/// Through botmaker's LLM proxy (`route`), `baseUrl` is the proxy's and `apiKey` the bot's
/// virtual key in `<PROVIDER>_API_KEY`: the real key never enters the container.
fn render_config(plan: &Plan, control_ui_port: Option<u16>, route: Option<&LlmRoute>) -> String {
    let gateway_token = secret(GATEWAY_TOKEN_SECRET);
    let mut file_secrets = vec![gateway_token.clone()];

    let mut channels = serde_json::Map::new();
    for channel in &plan.channels {
        let mut entry = serde_json::Map::new();
        entry.insert("enabled".into(), Value::Bool(true));
        for (key, name) in channel.secrets() {
            let name = secret(name);
            let value = if *key == "tokenFile" {
                Value::String(secret_path(&name))
            } else {
                file_secrets.push(name.clone());
                file_ref(&name)
            };
            entry.insert((*key).into(), value);
        }
        channels.insert(channel.id().into(), Value::Object(entry));
    }

    let mut provider = json!({
        "baseUrl": route.map_or(plan.base_url(), |r| r.base_url.as_str()),
        "api": plan.provider.api,
        "models": [{ "id": plan.model, "name": plan.model }],
    });
    let key = match route {
        Some(r) => Some(r.secret.clone()),
        None => plan.provider.key_secret(),
    };
    if let Some(key) = key {
        provider["apiKey"] = file_ref(&key);
        file_secrets.push(key);
    }

    let providers: serde_json::Map<String, Value> = file_secrets
        .iter()
        .map(|name| {
            (
                file_provider_name(name),
                json!({ "source": "file", "path": secret_path(name), "mode": "singleValue" }),
            )
        })
        .collect();

    let control_ui = match control_ui_port {
        Some(port) => json!({
            "enabled": true,
            "allowedOrigins": [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")],
        }),
        None => json!({ "enabled": false }),
    };

    let mut config = json!({
        "gateway": {
            "mode": "local",
            "port": plan.gateway_port,
            "bind": "lan",
            "auth": { "mode": "token", "token": file_ref(&gateway_token) },
            "controlUi": control_ui,
        },
        "secrets": { "providers": providers },
        "models": {
            "mode": "merge",
            "providers": { plan.provider.id: provider },
        },
        "agents": {
            "defaults": {
                "model": { "primary": format!("{}/{}", plan.provider.id, plan.model) },
                "workspace": format!("{STATE_DIR}/{AGENT_WORKSPACE}"),
            },
        },
        "channels": channels,
    });

    // Plugins: the status RPC botmaker reads, external channel plugins trusted (the image
    // carries them), external provider plugins off (the generic adapter needs none).
    let mut plugins = serde_json::Map::new();
    plugins.insert(ADMIN_RPC_PLUGIN.into(), json!({ "enabled": true }));
    for channel in plan.channels.iter().filter(|c| c.external_plugin()) {
        plugins.insert(channel.id().into(), json!({ "enabled": true }));
    }
    if EXTERNAL_PROVIDER_PLUGINS.contains(&plan.provider.id) {
        plugins.insert(plan.provider.id.into(), json!({ "enabled": false }));
    }
    config["plugins"] = json!({ "entries": plugins });
    if plan.http_chat {
        config["gateway"]["http"] =
            json!({ "endpoints": { "chatCompletions": { "enabled": true } } });
    }
    if let Some(agent) = &plan.agent_id {
        config["agents"]["entries"] = json!({ agent.as_str(): {} });
        config["agents"]["defaults"]["systemAgent"] = json!({ "agentId": agent });
    }
    if let Some(patch) = &plan.config {
        super::config_patch::merge_patch(&mut config, patch);
    }
    // A provider reached through the proxy keeps the proxy's URL and the virtual key whatever
    // the patch says: going around the proxy would skip its budgets and metering.
    if let Some(route) = route {
        let entry = &mut config["models"]["providers"][plan.provider.id];
        entry["baseUrl"] = Value::String(route.base_url.clone());
        entry["apiKey"] = file_ref(&route.secret);
    }
    let mut text = serde_json::to_string_pretty(&config).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// `workspace/SOUL.md` and `workspace/IDENTITY.md`, in the origin's format. Without a persona
/// none are written and OpenClaw bootstraps its own.
fn persona_files(persona: Option<&Persona>) -> Vec<WorkspaceFile> {
    let Some(persona) = persona else {
        return Vec::new();
    };
    let file = |name: &str, contents: String| WorkspaceFile {
        path: PathBuf::from(AGENT_WORKSPACE).join(name),
        contents,
    };
    let mut files = Vec::new();
    if let Some(soul) = &persona.soul {
        files.push(file(
            "SOUL.md",
            format!("# SOUL.md - Who You Are\n\n{}\n", soul.trim_end()),
        ));
    }
    if persona.name.is_some() || persona.identity.is_some() {
        let mut identity = String::from("# IDENTITY.md - Who Am I?\n\n");
        if let Some(name) = &persona.name {
            identity.push_str(&format!("- **Name:** {}\n", name.trim()));
        }
        if let Some(text) = &persona.identity {
            if persona.name.is_some() {
                identity.push('\n');
            }
            identity.push_str(text.trim_end());
            identity.push('\n');
        }
        files.push(file("IDENTITY.md", identity));
    }
    files
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::BotId;
    use crate::docker::PortPublish;

    fn settings() -> Value {
        json!({
            "provider": "anthropic",
            "model": "claude-opus-4-5",
            "channels": ["telegram", "discord"],
            "persona": { "name": "Ada", "soul": "Curious and kind.", "identity": "A helper." },
        })
    }

    fn spec_with(settings: Value) -> BotSpec {
        BotSpec {
            settings,
            ..BotSpec::default()
        }
    }

    fn names(names: &[&str]) -> Vec<SecretName> {
        names.iter().map(|n| secret(n)).collect()
    }

    fn all_user_secrets() -> Vec<SecretName> {
        names(&[
            "TELEGRAM_BOT_TOKEN",
            "DISCORD_BOT_TOKEN",
            "ANTHROPIC_API_KEY",
        ])
    }

    fn prepare(spec: &mut BotSpec, secrets: &[SecretName]) -> FieldErrors {
        prepare_on(spec, secrets, BindScope::OneAddress)
    }

    fn prepare_on(spec: &mut BotSpec, secrets: &[SecretName], scope: BindScope) -> FieldErrors {
        let mut errors = FieldErrors::default();
        OpenClaw.prepare(spec, secrets, scope, &mut errors);
        errors
    }

    fn prepared() -> BotSpec {
        let mut spec = spec_with(settings());
        let errors = prepare(&mut spec, &all_user_secrets());
        assert!(errors.is_empty(), "{errors}");
        spec
    }

    fn render(spec: &BotSpec, secrets: &[SecretName]) -> Rendered {
        render_routed(spec, secrets, &crate::bots::llm::LlmRoutes::NONE)
    }

    fn render_routed(
        spec: &BotSpec,
        secrets: &[SecretName],
        llm: &crate::bots::llm::LlmRoutes,
    ) -> Rendered {
        let id = BotId::new("claw").unwrap();
        OpenClaw.render(&RenderInput {
            bot_id: &id,
            name: "Claw",
            spec,
            secrets_dir: Path::new("/srv/secrets/claw"),
            workspace_dir: Path::new("/srv/workspaces/claw"),
            secret_names: secrets,
            llm,
        })
    }

    fn config_json(rendered: &Rendered) -> Value {
        let file = rendered
            .files
            .iter()
            .find(|f| f.path == Path::new(CONFIG_FILE))
            .expect("openclaw.json is rendered");
        serde_json::from_str(&file.contents).expect("openclaw.json is JSON")
    }

    /// Every string in `v` starting with `/run/secrets/`, as the stand-in bot finds them.
    fn secret_paths(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.starts_with("/run/secrets/") => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| secret_paths(v, out)),
            Value::Object(o) => o.values().for_each(|v| secret_paths(v, out)),
            _ => {}
        }
    }

    #[test]
    fn bad_settings_are_reported_per_field() {
        let cases = [
            (
                json!({"provider": "acme", "model": "m"}),
                "settings.provider",
            ),
            (
                json!({"provider": "openai", "model": "a..b"}),
                "settings.model",
            ),
            (
                json!({"provider": "openai", "model": "has space"}),
                "settings.model",
            ),
            (json!({"provider": "openai", "model": ""}), "settings.model"),
            (
                json!({"provider": "openai", "model": "x".repeat(129)}),
                "settings.model",
            ),
            (
                json!({"provider": "openai", "model": "m", "channels": ["telegram", "icq"]}),
                "settings.channels[1]",
            ),
            (
                json!({"provider": "openai", "model": "m", "channels": ["discord", "discord"]}),
                "settings.channels[1]",
            ),
            (
                json!({"provider": "openai", "model": "m", "gateway_port": 0}),
                "settings.gateway_port",
            ),
            (
                json!({"provider": "openai", "model": "m", "base_url": "ftp://x"}),
                "settings.base_url",
            ),
            (
                json!({"provider": "openai", "model": "m", "persona": {"name": " "}}),
                "settings.persona.name",
            ),
            (
                json!({"provider": "openai", "model": "m", "colour": "red"}),
                "settings",
            ),
            (json!({"provider": "openai"}), "settings"),
            (json!(["openai"]), "settings"),
            (Value::Null, "settings"),
        ];
        for (settings, field) in cases {
            let mut spec = spec_with(settings.clone());
            let errors = prepare(&mut spec, &all_user_secrets());
            assert!(
                errors.fields().contains_key(field),
                "{settings} should fail on {field}: {errors}"
            );
        }
        let mut spec = spec_with(json!({"provider": "openai", "model": "m", "colour": "red"}));
        let errors = prepare(&mut spec, &[]);
        let msg = &errors.fields()["settings"][0];
        assert!(
            msg.contains("unknown field `colour`"),
            "serde's message: {msg}"
        );
    }

    #[test]
    fn good_models_pass_the_origin_rule() {
        for m in [
            "gpt-5.2",
            "anthropic/claude-sonnet-4-5",
            "accounts/fireworks/models/llama-v3p3-70b-instruct",
            "llama3:8b",
            "a",
        ] {
            assert!(is_valid_model(m), "{m}");
        }
        for m in ["..", "a/../b", "é", "a b", "a\nb"] {
            assert!(!is_valid_model(m), "{m}");
        }
        assert!(is_valid_model(&"x".repeat(128)));
    }

    #[test]
    fn every_origin_provider_is_known_and_keys_follow_the_naming() {
        assert_eq!(PROVIDERS.len(), 22);
        for p in PROVIDERS {
            let key = p.key_secret();
            if p.id == "ollama" {
                assert_eq!(key, None);
            } else {
                assert_eq!(
                    key.unwrap().as_str(),
                    format!("{}_API_KEY", p.id.to_uppercase())
                );
            }
        }
    }

    #[test]
    fn missing_user_secrets_are_reported_by_name_and_the_gateway_token_is_not() {
        let mut spec = spec_with(settings());
        let errors = prepare(&mut spec, &names(&["DISCORD_BOT_TOKEN"]));
        let f = errors.fields();
        assert_eq!(
            f["secrets.TELEGRAM_BOT_TOKEN"],
            vec!["required by the openclaw template for telegram"]
        );
        assert_eq!(
            f["secrets.ANTHROPIC_API_KEY"],
            vec!["required by the openclaw template for provider anthropic"]
        );
        assert!(!f.contains_key("secrets.DISCORD_BOT_TOKEN"));
        assert!(!f.contains_key("secrets.OPENCLAW_GATEWAY_TOKEN"));

        let mut spec =
            spec_with(json!({"provider": "ollama", "model": "llama3", "channels": ["slack"]}));
        let errors = prepare(&mut spec, &[]);
        let keys: Vec<_> = errors.fields().keys().cloned().collect();
        assert_eq!(keys, ["secrets.SLACK_APP_TOKEN", "secrets.SLACK_BOT_TOKEN"]);
    }

    #[test]
    fn generated_gateway_token_is_fresh_random_hex() {
        let spec = prepared();
        let a = OpenClaw.generated_secrets(&spec);
        let b = OpenClaw.generated_secrets(&spec);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0.as_str(), GATEWAY_TOKEN_SECRET);
        assert_eq!(a[0].1.len(), 64);
        assert!(a[0].1.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a[0].1, b[0].1);
    }

    #[test]
    fn defaults_are_filled() {
        let spec = prepared();
        assert_eq!(spec.image, DEFAULT_IMAGE);
        assert_eq!(
            spec.ports,
            vec![PortSpec {
                container: 18789,
                host: None,
                host_ip: Some("127.0.0.1".into()),
                protocol: Protocol::Tcp,
                publish: Default::default(),
            }]
        );
        assert_eq!(spec.limits.memory_mb, Some(2048));
        assert_eq!(spec.env["NODE_OPTIONS"], "--max-old-space-size=1536");
        assert_eq!(spec.env["OPENCLAW_NO_RESPAWN"], "1");
        assert_eq!(spec.env["OPENCLAW_DISABLE_BONJOUR"], "1");
        let probe = spec.health_check.as_ref().unwrap();
        assert_eq!((probe.port, probe.path.as_str()), (18789, "/healthz"));
        assert!(probe.start_period_secs >= 120);

        // Preparing again (an update) changes nothing.
        let mut again = spec.clone();
        assert!(prepare(&mut again, &all_user_secrets()).is_empty());
        assert_eq!(again, spec);
    }

    #[test]
    fn user_choices_are_kept_and_the_heap_follows_the_memory_limit() {
        let mut spec =
            spec_with(json!({"provider": "openai", "model": "gpt-5.2", "gateway_port": 3000}));
        spec.image = "ghcr.io/openclaw/openclaw:2026.7.1".into();
        spec.limits.memory_mb = Some(1024);
        spec.ports = vec![PortSpec {
            container: 3000,
            host: Some(13000),
            host_ip: None,
            protocol: Protocol::Tcp,
            publish: Default::default(),
        }];
        spec.env.insert("OPENCLAW_NO_RESPAWN".into(), "0".into());
        spec.env
            .insert("NODE_OPTIONS".into(), "--enable-source-maps".into());
        assert!(prepare(&mut spec, &names(&["OPENAI_API_KEY"])).is_empty());
        assert_eq!(spec.image, "ghcr.io/openclaw/openclaw:2026.7.1");
        assert_eq!(spec.ports[0].host, Some(13000));
        assert_eq!(spec.env["OPENCLAW_NO_RESPAWN"], "0");
        assert_eq!(
            spec.env["NODE_OPTIONS"],
            "--enable-source-maps --max-old-space-size=768"
        );
        assert_eq!(spec.health_check.as_ref().unwrap().port, 3000);

        // A later, smaller limit moves a heap flag the template wrote...
        let mut spec = prepared();
        spec.limits.memory_mb = Some(1000);
        assert!(prepare(&mut spec, &all_user_secrets()).is_empty());
        assert_eq!(spec.env["NODE_OPTIONS"], "--max-old-space-size=750");
        // ...and a user heap at or above the limit is refused.
        spec.env.insert(
            "NODE_OPTIONS".into(),
            "--enable-source-maps --max-old-space-size=4096".into(),
        );
        let errors = prepare(&mut spec, &all_user_secrets());
        assert!(errors.fields().contains_key("env.NODE_OPTIONS"), "{errors}");
    }

    #[test]
    fn gateway_must_be_published_on_loopback() {
        let mut spec = spec_with(settings());
        spec.ports = vec![PortSpec {
            container: 18789,
            host: Some(18789),
            host_ip: Some("0.0.0.0".into()),
            protocol: Protocol::Tcp,
            publish: Default::default(),
        }];
        let errors = prepare(&mut spec, &all_user_secrets());
        assert!(errors.fields().contains_key("ports[0].host_ip"), "{errors}");

        let mut spec = spec_with(settings());
        spec.ports = vec![PortSpec {
            container: 8080,
            host: None,
            host_ip: None,
            protocol: Protocol::Tcp,
            publish: Default::default(),
        }];
        let errors = prepare(&mut spec, &all_user_secrets());
        assert!(errors.fields().contains_key("ports"), "{errors}");
    }

    fn gateway_port(host_ip: Option<&str>, publish: Option<PortPublish>) -> PortSpec {
        PortSpec {
            container: 18789,
            host: Some(18789),
            host_ip: host_ip.map(str::to_string),
            protocol: Protocol::Tcp,
            publish,
        }
    }

    /// Regression (issue 15): the default gateway port on `127.0.0.1` made the Swarm backend
    /// refuse every openclaw bot at create. Where ports bind on every address, the gateway
    /// is not published by default, and preparing again (an apply) keeps it so.
    #[test]
    fn on_every_address_the_gateway_is_not_published_by_default() {
        let mut spec = spec_with(settings());
        let errors = prepare_on(&mut spec, &all_user_secrets(), BindScope::EveryAddress);
        assert!(errors.is_empty(), "{errors}");
        assert!(spec.ports.is_empty(), "{:?}", spec.ports);
        // botmaker still probes the gateway, at the bot's own address.
        let probe = spec.health_check.as_ref().unwrap();
        assert_eq!((probe.port, probe.path.as_str()), (18789, "/healthz"));
        let mut again = spec.clone();
        assert!(prepare_on(&mut again, &all_user_secrets(), BindScope::EveryAddress).is_empty());
        assert_eq!(again, spec);
        // Nothing published: the Control UI has no origin to allow.
        assert_eq!(
            config_json(&render(&spec, &[]))["gateway"]["controlUi"],
            json!({"enabled": false})
        );
    }

    #[test]
    fn on_every_address_a_users_gateway_port_must_say_so_or_is_refused_with_the_fix() {
        for ip in [None, Some("127.0.0.1"), Some("::1"), Some("10.0.0.5")] {
            let mut spec = spec_with(settings());
            spec.ports = vec![gateway_port(ip, None)];
            let errors = prepare_on(&mut spec, &all_user_secrets(), BindScope::EveryAddress);
            let message = &errors.fields()["ports[0].host_ip"][0];
            assert!(message.contains("every address"), "{ip:?}: {message}");
            assert!(message.contains("0.0.0.0"), "the fix: {message}");
            assert!(message.contains("leave `ports` out"), "the fix: {message}");
        }
        for (ip, publish) in [
            ("0.0.0.0", None),
            ("0.0.0.0", Some(PortPublish::Host)),
            ("::", Some(PortPublish::Mesh)),
        ] {
            let mut spec = spec_with(settings());
            spec.ports = vec![gateway_port(Some(ip), publish)];
            let errors = prepare_on(&mut spec, &all_user_secrets(), BindScope::EveryAddress);
            assert!(errors.is_empty(), "{ip} {publish:?}: {errors}");
            assert_eq!(spec.ports.len(), 1, "kept as given");
        }
        // Ports without the gateway are refused on every backend.
        let mut spec = spec_with(settings());
        spec.ports = vec![PortSpec {
            container: 8080,
            ..gateway_port(Some("0.0.0.0"), None)
        }];
        let errors = prepare_on(&mut spec, &all_user_secrets(), BindScope::EveryAddress);
        assert!(errors.fields().contains_key("ports"), "{errors}");
    }

    /// The Docker backend's rule is unchanged: loopback only, default on `127.0.0.1`.
    #[test]
    fn on_one_address_the_gateway_stays_on_loopback() {
        let mut spec = spec_with(settings());
        spec.ports = vec![gateway_port(Some("0.0.0.0"), Some(PortPublish::Mesh))];
        let errors = prepare_on(&mut spec, &all_user_secrets(), BindScope::OneAddress);
        assert!(errors.fields()["ports[0].host_ip"][0].contains("loopback"));
        for ip in [None, Some("127.0.0.1"), Some("::1")] {
            let mut spec = spec_with(settings());
            spec.ports = vec![gateway_port(ip, None)];
            assert!(prepare_on(&mut spec, &all_user_secrets(), BindScope::OneAddress).is_empty());
        }
    }

    #[test]
    fn secret_looking_env_is_refused() {
        let mut spec = spec_with(settings());
        for k in [
            "TELEGRAM_BOT_TOKEN",
            "OPENAI_API_KEY",
            "OPENCLAW_GATEWAY_TOKEN",
            "DB_PASSWORD",
            "OPENCLAW_STATE_DIR",
        ] {
            spec.env.insert(k.into(), "x".into());
        }
        spec.env.insert("OPENCLAW_TZ".into(), "Europe/Paris".into());
        let errors = prepare(&mut spec, &all_user_secrets());
        let f = errors.fields();
        for k in [
            "env.TELEGRAM_BOT_TOKEN",
            "env.OPENAI_API_KEY",
            "env.OPENCLAW_GATEWAY_TOKEN",
            "env.DB_PASSWORD",
            "env.OPENCLAW_STATE_DIR",
        ] {
            assert!(f.contains_key(k), "{k}: {errors}");
        }
        assert!(f["env.OPENAI_API_KEY"][0].contains("secrets"));
        assert!(!f.contains_key("env.OPENCLAW_TZ"));
    }

    #[test]
    fn rendered_container_runs_as_node_with_state_mounted() {
        let spec = prepared();
        let mut secrets = all_user_secrets();
        secrets.push(secret(GATEWAY_TOKEN_SECRET));
        let r = render(&spec, &secrets);
        let c = &r.config;
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert!(c.init);
        assert_eq!(c.image, DEFAULT_IMAGE);
        assert_eq!(
            c.mounts,
            vec![BindMount {
                source: "/srv/workspaces/claw".into(),
                target: "/home/node/.openclaw".into(),
                read_only: false,
            }]
        );
        assert_eq!(c.secrets_dir, Path::new("/srv/secrets/claw"));
        assert_eq!(c.env["OPENCLAW_STATE_DIR"], STATE_DIR);
        assert_eq!(c.env["NODE_OPTIONS"], "--max-old-space-size=1536");
        assert_eq!(c.limits.memory_bytes, Some(2048 << 20));
        assert_eq!(c.ports[0].container_port, 18789);
        assert_eq!(c.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert!(c.extra_hosts.is_empty());
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(OpenClaw.owner(), Some((1000, 1000)));

        let paths: Vec<_> = r.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("openclaw.json"),
                PathBuf::from("workspace/SOUL.md"),
                PathBuf::from("workspace/IDENTITY.md"),
            ]
        );
        assert!(r.files[1].contents.contains("Curious and kind."));
        assert!(r.files[2].contents.contains("- **Name:** Ada"));
        assert!(r.files[2].contents.contains("A helper."));
    }

    #[test]
    fn config_references_secret_files_and_never_values() {
        let spec = prepared();
        let (_, token) = OpenClaw.generated_secrets(&spec).remove(0);
        let mut secrets = all_user_secrets();
        secrets.push(secret(GATEWAY_TOKEN_SECRET));
        let r = render(&spec, &secrets);
        let config = config_json(&r);

        assert_eq!(
            config["channels"]["telegram"]["tokenFile"],
            "/run/secrets/TELEGRAM_BOT_TOKEN"
        );
        assert_eq!(
            config["channels"]["discord"]["token"],
            json!({"source": "file", "provider": "discord_bot_token", "id": "value"})
        );
        assert_eq!(
            config["gateway"]["auth"],
            json!({"mode": "token", "token": {"source": "file", "provider": "openclaw_gateway_token", "id": "value"}})
        );
        assert_eq!(config["gateway"]["port"], 18789);
        assert_eq!(config["gateway"]["bind"], "lan");
        assert_eq!(config["gateway"]["mode"], "local");
        assert_eq!(config["gateway"]["controlUi"]["enabled"], false);
        let anthropic = &config["models"]["providers"]["anthropic"];
        assert_eq!(anthropic["apiKey"]["provider"], "anthropic_api_key");
        assert_eq!(anthropic["api"], "anthropic-messages");
        assert_eq!(
            config["agents"]["defaults"]["model"]["primary"],
            "anthropic/claude-opus-4-5"
        );
        assert_eq!(
            config["agents"]["defaults"]["workspace"],
            "/home/node/.openclaw/workspace"
        );

        // Every file provider reads /run/secrets in single-value mode, and every ref names one.
        let providers = config["secrets"]["providers"].as_object().unwrap();
        for p in providers.values() {
            assert_eq!(p["source"], "file");
            assert_eq!(p["mode"], "singleValue");
        }
        for r in [
            &config["channels"]["discord"]["token"],
            &anthropic["apiKey"],
            &config["gateway"]["auth"]["token"],
        ] {
            assert!(
                providers.contains_key(r["provider"].as_str().unwrap()),
                "{r}"
            );
        }

        // Every /run/secrets path is a secret the bot has, required or generated.
        let mut paths = Vec::new();
        secret_paths(&config, &mut paths);
        paths.sort();
        paths.dedup();
        let known: Vec<String> = Plan::from_settings(&spec.settings, &mut FieldErrors::default())
            .unwrap()
            .secret_uses()
            .iter()
            .map(|u| secret_path(&u.name))
            .collect();
        assert_eq!(paths.len(), 4, "{paths:?}");
        for p in &paths {
            assert!(known.contains(p), "{p} is not a secret of the bot");
            let name = p.strip_prefix("/run/secrets/").unwrap();
            assert!(secrets.iter().any(|s| s.as_str() == name), "{p}");
        }

        // No value anywhere: files, env, labels.
        let everything = format!("{:?} {:?} {:?}", r.files, r.config.env, r.config.labels);
        assert!(!everything.contains(&token));
    }

    #[test]
    fn control_ui_is_allowed_from_a_known_loopback_port_only() {
        let mut spec = spec_with(settings());
        spec.ports = vec![PortSpec {
            container: 18789,
            host: Some(28789),
            host_ip: None,
            protocol: Protocol::Tcp,
            publish: Default::default(),
        }];
        assert!(prepare(&mut spec, &all_user_secrets()).is_empty());
        let config = config_json(&render(&spec, &[]));
        assert_eq!(
            config["gateway"]["controlUi"],
            json!({"enabled": true, "allowedOrigins": ["http://127.0.0.1:28789", "http://localhost:28789"]})
        );
    }

    #[test]
    fn ollama_needs_no_key_and_reaches_the_docker_host() {
        let mut spec = spec_with(
            json!({"provider": "ollama", "model": "llama3.3:70b", "channels": ["telegram"]}),
        );
        assert!(prepare(&mut spec, &names(&["TELEGRAM_BOT_TOKEN"])).is_empty());
        let r = render(&spec, &[]);
        assert_eq!(r.config.extra_hosts, ["host.docker.internal:host-gateway"]);
        let config = config_json(&r);
        let ollama = &config["models"]["providers"]["ollama"];
        assert!(ollama.get("apiKey").is_none());
        assert_eq!(ollama["baseUrl"], "http://host.docker.internal:11434/v1");
        // Persona absent: OpenClaw bootstraps its own SOUL.md and IDENTITY.md.
        assert_eq!(r.files.len(), 1);

        let mut spec = spec_with(
            json!({"provider": "ollama", "model": "m", "base_url": "http://10.0.0.5:11434/v1"}),
        );
        assert!(prepare(&mut spec, &[]).is_empty());
        let r = render(&spec, &[]);
        assert!(r.config.extra_hosts.is_empty());
        assert_eq!(
            config_json(&r)["models"]["providers"]["ollama"]["baseUrl"],
            "http://10.0.0.5:11434/v1"
        );
    }

    #[test]
    fn a_configured_provider_is_reached_through_the_proxy_with_the_virtual_key() {
        use crate::bots::llm::{LlmApi, LlmRoute, LlmRoutes};
        let spec = prepared();
        let uses = OpenClaw.llm_uses(&spec);
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].provider, "anthropic");
        assert_eq!(uses[0].secret.as_str(), "ANTHROPIC_API_KEY");
        assert_eq!(uses[0].api, LlmApi::Anthropic);
        assert!(!uses[0].required && uses[0].conflicting_setting.is_none());

        let routes = LlmRoutes {
            routes: vec![LlmRoute {
                provider: "anthropic".into(),
                base_url: "http://botmaker-llm:7101".into(),
                secret: secret("ANTHROPIC_API_KEY"),
            }],
            extra_host: Some("botmaker-llm:172.17.0.1".into()),
        };
        let r = render_routed(&spec, &all_user_secrets(), &routes);
        let config = config_json(&r);
        let provider = &config["models"]["providers"]["anthropic"];
        assert_eq!(provider["baseUrl"], "http://botmaker-llm:7101");
        // settings.config cannot route the provider around the proxy.
        let mut patched = spec.clone();
        patched.settings["config"] = json!({"models": {"providers": {"anthropic": {
            "baseUrl": "https://api.anthropic.com", "apiKey": null}}}});
        let p = &config_json(&render_routed(&patched, &all_user_secrets(), &routes))["models"]["providers"]
            ["anthropic"];
        assert_eq!(p["baseUrl"], "http://botmaker-llm:7101");
        assert_eq!(p["apiKey"]["provider"], "anthropic_api_key");
        assert_eq!(provider["apiKey"]["provider"], "anthropic_api_key");
        assert_eq!(
            config["secrets"]["providers"]["anthropic_api_key"]["path"],
            "/run/secrets/ANTHROPIC_API_KEY"
        );
        assert!(
            r.config
                .extra_hosts
                .contains(&"botmaker-llm:172.17.0.1".to_string())
        );
        // Without a route, the provider's own URL and no proxy host.
        let r = render(&spec, &all_user_secrets());
        assert_eq!(
            config_json(&r)["models"]["providers"]["anthropic"]["baseUrl"],
            "https://api.anthropic.com"
        );
        assert!(r.config.extra_hosts.is_empty());
    }

    #[test]
    fn a_keyless_provider_gets_a_virtual_key_through_the_proxy_and_base_url_conflicts() {
        use crate::bots::llm::{LlmRoute, LlmRoutes};
        let mut spec = spec_with(
            json!({"provider": "ollama", "model": "llama3", "base_url": "http://x:1/v1"}),
        );
        assert!(prepare(&mut spec, &[]).is_empty());
        let uses = OpenClaw.llm_uses(&spec);
        assert_eq!(uses[0].secret.as_str(), "OLLAMA_API_KEY");
        assert_eq!(uses[0].conflicting_setting, Some("settings.base_url"));
        let routes = LlmRoutes {
            routes: vec![LlmRoute {
                provider: "ollama".into(),
                base_url: "http://botmaker-llm:7101/v1".into(),
                secret: secret("OLLAMA_API_KEY"),
            }],
            extra_host: Some("botmaker-llm:172.17.0.1".into()),
        };
        let config = config_json(&render_routed(&spec, &[], &routes));
        assert_eq!(
            config["models"]["providers"]["ollama"]["baseUrl"],
            "http://botmaker-llm:7101/v1"
        );
        assert_eq!(
            config["models"]["providers"]["ollama"]["apiKey"]["provider"],
            "ollama_api_key"
        );
        // Google's API is not one the proxy carries.
        let spec = spec_with(json!({"provider": "google", "model": "gemini"}));
        assert!(matches!(
            OpenClaw.llm_uses(&spec)[0].api,
            crate::bots::llm::LlmApi::Other("google-generative-ai")
        ));
        assert!(
            OpenClaw
                .llm_uses(&spec_with(json!({"provider": "nope"})))
                .is_empty()
        );
    }

    #[test]
    fn botmaker_owns_the_config_and_says_so_to_openclaw() {
        let spec = prepared();
        let r = render(&spec, &all_user_secrets());
        assert_eq!(r.config.env["OPENCLAW_CONFIG_READONLY"], "1");
        assert_eq!(r.config.env["OPENCLAW_NO_AUTO_UPDATE"], "1");
        // Users cannot turn it off.
        let mut spec = spec_with(settings());
        spec.env
            .insert("OPENCLAW_CONFIG_READONLY".into(), "0".into());
        let errors = prepare(&mut spec, &all_user_secrets());
        assert!(
            errors.fields().contains_key("env.OPENCLAW_CONFIG_READONLY"),
            "{errors}"
        );
    }

    #[test]
    fn stop_grace_probe_readiness_and_rotation_fit_openclaw() {
        let spec = prepared();
        assert_eq!(spec.stop_timeout_secs, Some(DEFAULT_STOP_TIMEOUT_SECS));
        let probe = spec.health_check.as_ref().unwrap();
        assert_eq!(probe.path, "/healthz");
        assert_eq!(probe.ready_path.as_deref(), Some("/readyz"));
        assert_eq!(
            render(&spec, &[]).config.stop_timeout,
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(OpenClaw.secret_rotation(), SecretRotation::Restart);

        // A user's grace is kept; a probe stored before readiness existed gets it.
        let mut spec = spec_with(settings());
        spec.stop_timeout_secs = Some(20);
        spec.health_check = Some(HttpProbe {
            port: 1,
            path: "/healthz".into(),
            ready_path: None,
            interval_secs: 10,
            start_period_secs: 60,
            failure_threshold: 2,
        });
        assert!(prepare(&mut spec, &all_user_secrets()).is_empty());
        assert_eq!(spec.stop_timeout_secs, Some(20));
        assert_eq!(
            spec.health_check.as_ref().unwrap().ready_path.as_deref(),
            Some("/readyz")
        );
    }

    #[test]
    fn every_secret_the_config_refers_to_is_required() {
        let spec = prepared();
        let required: Vec<String> = OpenClaw
            .required_secrets(&spec)
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(
            required,
            [
                "TELEGRAM_BOT_TOKEN",
                "DISCORD_BOT_TOKEN",
                "ANTHROPIC_API_KEY",
                "OPENCLAW_GATEWAY_TOKEN"
            ]
        );
    }

    #[test]
    fn plugins_are_trusted_disabled_or_enabled_so_nothing_installs_at_boot() {
        let spec = prepared();
        let config = config_json(&render(&spec, &[]));
        let entries = &config["plugins"]["entries"];
        assert_eq!(entries["admin-http-rpc"]["enabled"], true);
        assert_eq!(
            entries["discord"]["enabled"], true,
            "external channel plugin trusted"
        );
        assert!(entries.get("telegram").is_none(), "bundled");

        let mut spec = spec_with(json!({"provider": "deepseek", "model": "deepseek-chat"}));
        assert!(prepare(&mut spec, &names(&["DEEPSEEK_API_KEY"])).is_empty());
        let config = config_json(&render(&spec, &[]));
        assert_eq!(config["plugins"]["entries"]["deepseek"]["enabled"], false);
        assert_eq!(
            config["models"]["providers"]["deepseek"]["api"], "openai-completions",
            "the generic adapter drives it"
        );
    }

    #[test]
    fn status_request_asks_channels_with_the_gateway_token() {
        let spec = prepared();
        let req = OpenClaw.status_request(&spec).unwrap();
        assert_eq!(req.path, "/api/v1/admin/rpc");
        assert_eq!(req.bearer.as_ref().unwrap().as_str(), GATEWAY_TOKEN_SECRET);
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["method"], "channels.status");
        let answer = json!({"ok": true, "payload": {"channels": {"telegram": {"running": true}}}});
        let states = OpenClaw
            .read_status(&spec, answer.to_string().as_bytes())
            .unwrap();
        let ids: Vec<_> = states.iter().map(|c| (c.id.as_str(), c.state)).collect();
        assert_eq!(
            ids,
            [
                ("telegram", super::super::ChannelState::Running),
                ("discord", super::super::ChannelState::NotLoaded)
            ]
        );
        // No channels, nothing to ask.
        let mut spec = spec_with(json!({"provider": "ollama", "model": "m"}));
        assert!(prepare(&mut spec, &[]).is_empty());
        assert!(OpenClaw.status_request(&spec).is_none());
    }

    #[test]
    fn http_chat_agent_id_and_config_pass_through_reach_the_file() {
        let mut s = settings();
        s["http_chat"] = json!(true);
        s["agent_id"] = json!("support");
        s["config"] = json!({
            "agents": {"defaults": {"timeoutSeconds": 120}},
            "channels": {"telegram": {"dmPolicy": "open"}},
            "gateway": {"controlUi": null},
        });
        let mut spec = spec_with(s);
        assert!(prepare(&mut spec, &all_user_secrets()).is_empty());
        let config = config_json(&render(&spec, &[]));
        assert_eq!(
            config["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"],
            true
        );
        assert_eq!(config["agents"]["entries"]["support"], json!({}));
        assert_eq!(
            config["agents"]["defaults"]["systemAgent"]["agentId"],
            "support"
        );
        assert_eq!(config["agents"]["defaults"]["timeoutSeconds"], 120);
        assert_eq!(
            config["agents"]["defaults"]["model"]["primary"], "anthropic/claude-opus-4-5",
            "merged, not replaced"
        );
        assert_eq!(config["channels"]["telegram"]["dmPolicy"], "open");
        assert_eq!(
            config["channels"]["telegram"]["tokenFile"],
            "/run/secrets/TELEGRAM_BOT_TOKEN"
        );
        assert!(config["gateway"].get("controlUi").is_none(), "null removes");
    }

    #[test]
    fn config_pass_through_keeps_off_botmakers_keys_and_plain_credentials() {
        for (patch, field) in [
            (
                json!({"gateway": {"auth": {"mode": "none"}}}),
                "settings.config.gateway.auth",
            ),
            (
                json!({"gateway": {"port": 1}}),
                "settings.config.gateway.port",
            ),
            (json!({"secrets": {}}), "settings.config.secrets"),
            (
                json!({"channels": {"discord": {"token": "plain"}}}),
                "settings.config.channels.discord.token",
            ),
            (json!(["x"]), "settings.config"),
        ] {
            let mut s = settings();
            s["config"] = patch.clone();
            let mut spec = spec_with(s);
            let errors = prepare(&mut spec, &all_user_secrets());
            assert!(errors.fields().contains_key(field), "{patch}: {errors}");
        }
        for bad in ["", "Main", "-x", "a b", &"a".repeat(65)] {
            let mut s = settings();
            s["agent_id"] = json!(bad);
            let mut spec = spec_with(s);
            let errors = prepare(&mut spec, &all_user_secrets());
            assert!(errors.fields().contains_key("settings.agent_id"), "{bad:?}");
        }
    }
}
