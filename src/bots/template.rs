//! Templates turn a bot's stored spec into a container config and the files its workspace
//! needs. `generic` runs any image as told; `openclaw` knows what the OpenClaw runtime needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::llm::{LlmApi, LlmRoutes, LlmUse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::observed::ChannelStatus;
use super::spec::BotSpec;
use super::validate::FieldErrors;
use crate::BotId;
use crate::docker::{BindMount, BindScope, ContainerConfig, PortMapping, ResourceLimits};
use crate::secrets::SecretName;

/// Where the generic template mounts the bot's writable workspace.
pub const GENERIC_WORKSPACE_TARGET: &str = "/workspace";

/// What a template needs to render a bot.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    /// The bot.
    pub bot_id: &'a BotId,
    /// Display name.
    pub name: &'a str,
    /// Desired configuration (already prepared by the template).
    pub spec: &'a BotSpec,
    /// Host directory of its secrets.
    pub secrets_dir: &'a Path,
    /// Host directory of its workspace.
    pub workspace_dir: &'a Path,
    /// Names of the secrets it has.
    pub secret_names: &'a [SecretName],
    /// The providers it reaches through botmaker's LLM proxy (see [`Template::llm_uses`]).
    pub llm: &'a LlmRoutes,
}

/// A file the template wants in the bot's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFile {
    /// Path relative to the workspace directory.
    pub path: PathBuf,
    /// What the template writes there (text: generated configuration, never a secret).
    pub contents: String,
}

/// A rendered bot.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The container to create.
    pub config: ContainerConfig,
    /// Files to write into the workspace before the container starts.
    pub files: Vec<WorkspaceFile>,
}

/// How a changed secret value reaches a running bot: each template states its policy, and the
/// API says which one applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretRotation {
    /// The file under `/run/secrets` changes in place (atomically); the bot sees the new value
    /// the next time it reads the file, without a restart.
    InPlace,
    /// The bot reads its secrets at start only, so botmaker restarts a running bot after the
    /// change (a stopped one picks the value up when it starts).
    Restart,
}

/// An authenticated HTTP status request botmaker sends to a live, ready bot with its probes,
/// to learn what the probe cannot see (per-channel state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// Path on the probe port; the request is a `POST` of `body` as JSON.
    pub path: String,
    /// JSON body.
    pub body: String,
    /// Secret whose value is sent as `Authorization: Bearer`.
    pub bearer: Option<SecretName>,
}

/// A kind of bot.
pub trait Template: Send + Sync {
    /// Its name in the API.
    fn name(&self) -> &'static str;

    /// Fills defaults into `spec` and reports what is wrong with it, given the secrets the bot
    /// will have and where the backend binds a published port (`scope`, asked of the engine:
    /// a default port the template publishes on `127.0.0.1` cannot be kept to it on Swarm).
    fn prepare(
        &self,
        spec: &mut BotSpec,
        secret_names: &[SecretName],
        scope: BindScope,
        errors: &mut FieldErrors,
    );

    /// The container config and workspace files for a prepared spec.
    fn render(&self, input: &RenderInput<'_>) -> Rendered;

    /// Secrets the template needs that botmaker can make itself (a gateway token, say), as
    /// name → fresh value; written only when the user did not supply them.
    fn generated_secrets(&self, _spec: &BotSpec) -> Vec<(SecretName, String)> {
        Vec::new()
    }

    /// uid/gid the container runs as, if not root: secrets and workspace are made readable
    /// (and the workspace writable) for it.
    fn owner(&self) -> Option<(u32, u32)> {
        None
    }

    /// The LLM providers the bot talks to, and where each key goes: botmaker routes each one it
    /// has a provider of that name for through its proxy, with a virtual key in that secret
    /// (see [`super::llm`]). Read from settings before they are validated, so it ignores what
    /// it cannot understand (`prepare` reports that).
    fn llm_uses(&self, _spec: &BotSpec) -> Vec<LlmUse> {
        Vec::new()
    }
    /// How a changed secret takes effect in a running bot.
    fn secret_rotation(&self) -> SecretRotation {
        SecretRotation::InPlace
    }

    /// Secrets the bot cannot run without, with what needs each: deleting one is refused.
    fn required_secrets(&self, _spec: &BotSpec) -> Vec<(SecretName, String)> {
        Vec::new()
    }

    /// The status request to send along with probes, if the template knows one.
    fn status_request(&self, _spec: &BotSpec) -> Option<StatusRequest> {
        None
    }

    /// Reads the answer to [`Template::status_request`] (hostile input: the bot wrote it) into
    /// the state of each channel the spec configures; `None` when the answer makes no sense.
    fn read_status(&self, _spec: &BotSpec, _body: &[u8]) -> Option<Vec<ChannelStatus>> {
        None
    }
}

/// Names of every template, for error messages and the dashboard (each found by
/// [`super::templates::lookup`]).
pub const TEMPLATE_NAMES: &[&str] = &["generic", "openclaw"];

/// The secret a generic bot's virtual LLM key is in.
pub const GENERIC_LLM_KEY_SECRET: &str = "LLM_API_KEY";
/// Environment a generic bot that asks for a provider gets: the proxy's base URL for the
/// provider's API, the provider's name, and where the key file is.
pub const GENERIC_LLM_ENV: [&str; 3] = ["LLM_BASE_URL", "LLM_PROVIDER", "LLM_API_KEY_FILE"];

/// Any local image, configured entirely by the user. Its one setting, `llm_provider`, names a
/// botmaker LLM provider the bot talks to through the proxy: it gets `LLM_BASE_URL`,
/// `LLM_PROVIDER` and `LLM_API_KEY_FILE` (`/run/secrets/LLM_API_KEY`, a virtual key).
#[derive(Debug, Clone, Copy)]
pub struct Generic;

impl Generic {
    fn llm_provider(spec: &BotSpec) -> Option<&str> {
        spec.settings.get("llm_provider").and_then(|v| v.as_str())
    }
}

impl Template for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn prepare(
        &self,
        spec: &mut BotSpec,
        _secrets: &[SecretName],
        _scope: BindScope,
        errors: &mut FieldErrors,
    ) {
        super::validate::check_image(&spec.image, errors);
        match &spec.settings {
            serde_json::Value::Null => {}
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if k != "llm_provider" {
                        errors.add(
                            format!("settings.{k}"),
                            "the generic template takes one setting, llm_provider",
                        );
                    } else if !v.is_string() {
                        errors.add(
                            "settings.llm_provider",
                            "must be the name of a botmaker LLM provider",
                        );
                    }
                }
            }
            _ => errors.add(
                "settings",
                "the generic template takes no settings but {\"llm_provider\": ...}",
            ),
        }
        if Self::llm_provider(spec).is_some() {
            for key in GENERIC_LLM_ENV {
                if spec.env.contains_key(key) {
                    errors.add(
                        format!("env.{key}"),
                        "is set by botmaker for settings.llm_provider; remove it",
                    );
                }
            }
        }
    }

    fn render(&self, input: &RenderInput<'_>) -> Rendered {
        let mut config = base_config(input);
        config.mounts.push(BindMount {
            source: input.workspace_dir.to_path_buf(),
            target: GENERIC_WORKSPACE_TARGET.into(),
            read_only: false,
        });
        if let Some(route) = Self::llm_provider(input.spec).and_then(|p| input.llm.get(p)) {
            let [base, provider, key_file] = GENERIC_LLM_ENV;
            config.env.insert(base.into(), route.base_url.clone());
            config.env.insert(provider.into(), route.provider.clone());
            config.env.insert(
                key_file.into(),
                format!("{}/{}", crate::docker::SECRETS_MOUNT_TARGET, route.secret),
            );
            config.extra_hosts.extend(input.llm.extra_host.clone());
        }
        Rendered {
            config,
            files: Vec::new(),
        }
    }

    fn llm_uses(&self, spec: &BotSpec) -> Vec<LlmUse> {
        Self::llm_provider(spec)
            .map(|provider| LlmUse {
                provider: provider.to_string(),
                secret: SecretName::new(GENERIC_LLM_KEY_SECRET).expect("a valid secret name"),
                api: LlmApi::Any,
                required: true,
                field: "settings.llm_provider",
                conflicting_setting: None,
            })
            .into_iter()
            .collect()
    }
}

/// The parts of a container config every template shares: image, command, env, ports,
/// limits and the secrets directory, straight from the spec.
pub fn base_config(input: &RenderInput<'_>) -> ContainerConfig {
    let spec = input.spec;
    let mut config = ContainerConfig::new(spec.image.clone(), input.secrets_dir);
    config.command = spec.command.clone().filter(|c| !c.is_empty());
    config.env = spec.env.clone();
    config.ports = spec
        .ports
        .iter()
        .map(|p| PortMapping {
            container_port: p.container,
            host_port: p.host,
            host_ip: p.host_ip.clone(),
            protocol: p.protocol,
            publish: p.publish.unwrap_or_default(),
        })
        .collect();
    // Specs stored before limits had defaults get them here too.
    let mut limits = spec.limits.clone();
    super::validate::apply_default_limits(&mut limits);
    config.limits = ResourceLimits {
        memory_bytes: limits.memory_bytes(),
        cpus: limits.cpus,
        pids: limits.pids,
    };
    config.network = spec.network.clone();
    config.init = true;
    config.stop_timeout = spec.stop_timeout_secs.map(Duration::from_secs);
    config.placement = spec.placement.clone();
    config
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bots::llm::LlmRoute;
    use serde_json::json;

    fn prepare(spec: &mut BotSpec) -> FieldErrors {
        let mut errors = FieldErrors::default();
        Generic.prepare(spec, &[], BindScope::OneAddress, &mut errors);
        errors
    }

    fn spec(settings: serde_json::Value) -> BotSpec {
        BotSpec {
            image: "bot:1".into(),
            settings,
            ..BotSpec::default()
        }
    }

    #[test]
    fn a_generic_bot_takes_only_llm_provider_as_a_setting() {
        assert!(prepare(&mut spec(serde_json::Value::Null)).is_empty());
        assert!(prepare(&mut spec(json!({}))).is_empty());
        assert!(prepare(&mut spec(json!({"llm_provider": "openai"}))).is_empty());
        let e = prepare(&mut spec(json!({"llm_provider": 1, "colour": "red"})));
        assert!(e.fields().contains_key("settings.llm_provider"), "{e}");
        assert!(e.fields().contains_key("settings.colour"), "{e}");
        assert!(!prepare(&mut spec(json!(["x"]))).is_empty());
        let mut s = spec(json!({"llm_provider": "openai"}));
        s.env
            .insert("LLM_BASE_URL".into(), "http://elsewhere".into());
        assert!(prepare(&mut s).fields().contains_key("env.LLM_BASE_URL"));
    }

    #[test]
    fn a_generic_bot_asking_for_a_provider_gets_url_name_and_key_file() {
        let s = spec(json!({"llm_provider": "openai"}));
        let uses = Generic.llm_uses(&s);
        assert_eq!(uses.len(), 1);
        assert!(uses[0].required);
        assert_eq!(uses[0].secret.as_str(), GENERIC_LLM_KEY_SECRET);
        assert!(Generic.llm_uses(&spec(serde_json::Value::Null)).is_empty());

        let id = BotId::new("g").unwrap();
        let routes = LlmRoutes {
            routes: vec![LlmRoute {
                provider: "openai".into(),
                base_url: "http://botmaker-llm:7101/v1".into(),
                secret: uses[0].secret.clone(),
            }],
            extra_host: Some("botmaker-llm:172.17.0.1".into()),
        };
        let input = |llm| RenderInput {
            bot_id: &id,
            name: "g",
            spec: &s,
            secrets_dir: Path::new("/s"),
            workspace_dir: Path::new("/w"),
            secret_names: &[],
            llm,
        };
        let r = Generic.render(&input(&routes));
        assert_eq!(r.config.env["LLM_BASE_URL"], "http://botmaker-llm:7101/v1");
        assert_eq!(r.config.env["LLM_PROVIDER"], "openai");
        assert_eq!(r.config.env["LLM_API_KEY_FILE"], "/run/secrets/LLM_API_KEY");
        assert_eq!(r.config.extra_hosts, ["botmaker-llm:172.17.0.1"]);
        assert!(!r.config.env.values().any(|v| v.starts_with("bmk-llm-")));
        let r = Generic.render(&input(&LlmRoutes::NONE));
        assert!(!r.config.env.contains_key("LLM_BASE_URL"));
    }
}
