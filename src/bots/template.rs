//! Templates turn a bot's stored spec into a container config and the files its workspace
//! needs. `generic` runs any image as told; `openclaw` knows what the OpenClaw runtime needs.

use std::path::{Path, PathBuf};

use super::spec::BotSpec;
use super::validate::FieldErrors;
use crate::BotId;
use crate::docker::{BindMount, ContainerConfig, PortMapping, ResourceLimits};
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
}

/// A file the template wants in the bot's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFile {
    /// Path relative to the workspace directory.
    pub path: PathBuf,
    /// Contents.
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

/// A kind of bot.
pub trait Template: Send + Sync {
    /// Its name in the API.
    fn name(&self) -> &'static str;

    /// Fills defaults into `spec` and reports what is wrong with it, given the secrets the bot
    /// will have.
    fn prepare(&self, spec: &mut BotSpec, secret_names: &[SecretName], errors: &mut FieldErrors);

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
}

/// Names of every template, for error messages and the dashboard (each found by
/// [`super::templates::lookup`]).
pub const TEMPLATE_NAMES: &[&str] = &["generic", "openclaw"];

/// Any local image, configured entirely by the user.
#[derive(Debug, Clone, Copy)]
pub struct Generic;

impl Template for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn prepare(&self, spec: &mut BotSpec, _secrets: &[SecretName], errors: &mut FieldErrors) {
        super::validate::check_image(&spec.image, errors);
        if !(spec.settings.is_null() || spec.settings.as_object().is_some_and(|o| o.is_empty())) {
            errors.add("settings", "the generic template takes no settings");
        }
    }

    fn render(&self, input: &RenderInput<'_>) -> Rendered {
        let mut config = base_config(input);
        config.mounts.push(BindMount {
            source: input.workspace_dir.to_path_buf(),
            target: GENERIC_WORKSPACE_TARGET.into(),
            read_only: false,
        });
        Rendered {
            config,
            files: Vec::new(),
        }
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
    config
}
