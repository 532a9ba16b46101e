//! A bot's [`ContainerConfig`] as a Swarm service spec: the same image, command, environment,
//! user, limits, capabilities, health check, init, stop grace, labels and log rotation as the
//! container the Docker backend creates, with what Swarm does differently made explicit.
//!
//! What Swarm (Engine API 1.41) cannot express, and how it is handled:
//! - `no-new-privileges`: the service API has no such field before API 1.46; not set (see
//!   the README's backend differences);
//! - swap: no `MemorySwap`; the memory limit is still set;
//! - a port bound to one host address: Swarm publishes on every address of the node, so only
//!   ports that say `0.0.0.0` are published (see `ports`), others refused rather than exposed
//!   more widely than asked;
//! - the secrets directory: never bind-mounted; its files become Swarm secrets (see
//!   `secrets`), referenced at start.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    Limit, Mount, MountType, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecLogDriver,
    TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::super::config::{ConfigError, ContainerConfig};
use super::super::labels::container_labels;
use crate::BotId;

/// Service label holding the host directory whose files are the bot's secrets: read again at
/// every start and rotation, when the service is updated with their current versions.
pub const LABEL_SECRETS_DIR: &str = "botmaker.secrets-dir";
/// Delay before Swarm replaces a task that exited, like Docker's first restart back-off.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Why a config cannot run as a Swarm service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The config itself is invalid, whichever backend runs it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Swarm publishes a port on every address of a node; botmaker will not widen a port
    /// bound to 127.0.0.1 silently.
    #[error(
        "the swarm backend cannot publish a port on {0} only: Swarm binds it on every address \
         of the node; set host_ip \"0.0.0.0\" to publish it so (on the bot's node, or on \
         every node with publish \"mesh\"), or reach the bot over an attachable overlay \
         network instead"
    )]
    PortsUnsupported(String),
}

/// The name of a bot's service: the Docker backend's container name.
pub fn service_name(bot_id: &BotId) -> String {
    super::super::container_name(bot_id)
}

/// The service spec for `config`, with `replicas` tasks (0 = stopped, 1 = running).
///
/// `pin_to_node` is the node whose filesystem holds the config's bind-mount sources (the
/// workspace): a bot with bind mounts runs there only, so its files are where it runs.
pub fn service_spec(
    instance: &str,
    bot_id: &BotId,
    config: &ContainerConfig,
    pin_to_node: &str,
    replicas: i64,
) -> Result<ServiceSpec, SpecError> {
    config.validate()?;
    let endpoint_spec =
        super::ports::endpoint_spec(&config.ports).map_err(SpecError::PortsUnsupported)?;
    let body = config.to_create_body(instance, bot_id);
    let host = body.host_config.clone().unwrap_or_default();
    let labels = container_labels(instance, bot_id, &config.labels);
    let mut service_labels = labels.clone();
    service_labels.insert(
        LABEL_SECRETS_DIR.into(),
        config.secrets_dir.display().to_string(),
    );
    let mounts: Vec<Mount> = config
        .mounts
        .iter()
        .map(|m| Mount {
            typ: Some(MountType::BIND),
            source: Some(m.source.display().to_string()),
            target: Some(m.target.clone()),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    let constraints = (!mounts.is_empty()).then(|| vec![format!("node.id=={pin_to_node}")]);
    let container = TaskSpecContainerSpec {
        image: Some(config.image.clone()),
        labels: Some(labels),
        // Swarm's `Command` is Docker's entrypoint, its `Args` Docker's `Cmd`.
        command: config.entrypoint.clone(),
        args: config.command.clone(),
        hostname: Some(bot_id.to_string()),
        env: body.env.clone(),
        dir: config.working_dir.clone(),
        user: config.user.clone(),
        read_only: config.hardening.read_only_rootfs.then_some(true),
        mounts: (!mounts.is_empty()).then_some(mounts),
        stop_grace_period: config.stop_timeout.map(nanos),
        health_check: body.healthcheck.clone(),
        hosts: (!config.extra_hosts.is_empty())
            .then(|| config.extra_hosts.iter().map(|h| swarm_host(h)).collect()),
        init: config.init.then_some(true),
        capability_add: host.cap_add.clone(),
        capability_drop: host.cap_drop.clone(),
        ..Default::default()
    };
    let log_options: HashMap<String, String> = host
        .log_config
        .as_ref()
        .and_then(|l| l.config.clone())
        .unwrap_or_default();
    Ok(ServiceSpec {
        name: Some(service_name(bot_id)),
        labels: Some(service_labels),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: host.nano_cpus,
                    memory_bytes: host.memory,
                    pids: config.limits.pids,
                }),
                ..Default::default()
            }),
            // Docker's `unless-stopped`: a bot that exits, however, is started again; a
            // stop is a scale to zero, which no restart policy undoes.
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(RESTART_DELAY)),
                max_attempts: Some(0),
                window: None,
            }),
            placement: constraints.map(|c| TaskSpecPlacement {
                constraints: Some(c),
                ..Default::default()
            }),
            networks: config.network.clone().map(|n| {
                vec![NetworkAttachmentConfig {
                    target: Some(n),
                    ..Default::default()
                }]
            }),
            log_driver: Some(TaskSpecLogDriver {
                name: Some("json-file".into()),
                options: Some(log_options),
            }),
            ..Default::default()
        }),
        endpoint_spec,
        ..Default::default()
    })
}

/// Docker's `host:ip` extra-host entry in Swarm's `/etc/hosts` order, `ip host`.
fn swarm_host(entry: &str) -> String {
    match entry.rsplit_once(':') {
        // An IPv6 address holds colons too: the host name is what comes before the first.
        Some(_) => {
            let (host, ip) = entry.split_once(':').expect("has a colon");
            format!("{ip} {host}")
        }
        None => entry.to_string(),
    }
}

pub(super) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{BindMount, PortMapping};

    fn bot() -> BotId {
        BotId::new("alpha").unwrap()
    }

    #[test]
    fn keeps_the_containers_limits_hardening_labels_and_grace() {
        let mut c = ContainerConfig::new("img:1", "/s/alpha");
        c.command = Some(vec!["run".into()]);
        c.entrypoint = Some(vec!["/init".into()]);
        c.user = Some("1000:1000".into());
        c.limits.memory_bytes = Some(64 << 20);
        c.limits.cpus = Some(0.5);
        c.limits.pids = Some(128);
        c.init = true;
        c.stop_timeout = Some(Duration::from_secs(7));
        c.hardening.read_only_rootfs = true;
        let spec = service_spec("inst", &bot(), &c, "node1", 0).unwrap();
        assert_eq!(spec.name.as_deref(), Some("botmaker-alpha"));
        let labels = spec.labels.as_ref().unwrap();
        assert_eq!(labels["botmaker.instance"], "inst");
        assert_eq!(labels[LABEL_SECRETS_DIR], "/s/alpha");
        let task = spec.task_template.unwrap();
        let cs = task.container_spec.unwrap();
        assert_eq!(cs.command, Some(vec!["/init".to_string()]));
        assert_eq!(cs.args, Some(vec!["run".to_string()]));
        assert_eq!(cs.labels.as_ref().unwrap()["botmaker.bot-id"], "alpha");
        assert_eq!(cs.capability_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(cs.stop_grace_period, Some(7_000_000_000));
        assert_eq!(cs.init, Some(true));
        assert_eq!(cs.read_only, Some(true));
        assert!(cs.mounts.is_none(), "the secrets dir is never bind-mounted");
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.memory_bytes, Some(64 << 20));
        assert_eq!(limits.nano_cpus, Some(500_000_000));
        assert_eq!(limits.pids, Some(128));
        assert_eq!(
            task.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::ANY)
        );
        assert!(
            task.placement.is_none(),
            "no bind mount: free to go anywhere"
        );
        assert_eq!(
            spec.mode.unwrap().replicated.unwrap().replicas,
            Some(0),
            "created stopped"
        );
    }

    #[test]
    fn a_bot_with_a_workspace_is_pinned_to_the_node_that_holds_it() {
        let mut c = ContainerConfig::new("img:1", "/s/alpha");
        c.mounts.push(BindMount {
            source: "/w/alpha".into(),
            target: "/workspace".into(),
            read_only: false,
        });
        let spec = service_spec("inst", &bot(), &c, "node1", 1).unwrap();
        let task = spec.task_template.unwrap();
        assert_eq!(
            task.placement.unwrap().constraints,
            Some(vec!["node.id==node1".to_string()])
        );
        let mounts = task.container_spec.unwrap().mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("/w/alpha"));
    }

    #[test]
    fn a_loopback_port_is_refused_rather_than_published_on_every_address() {
        let mut c = ContainerConfig::new("img:1", "/s/alpha");
        c.ports.push(PortMapping {
            container_port: 8080,
            host_port: None,
            host_ip: None,
            protocol: Default::default(),
            publish: Default::default(),
        });
        assert_eq!(
            service_spec("inst", &bot(), &c, "n", 0).unwrap_err(),
            SpecError::PortsUnsupported("127.0.0.1".into())
        );
    }

    #[test]
    fn extra_hosts_are_written_ip_first() {
        assert_eq!(swarm_host("llm.local:10.0.0.1"), "10.0.0.1 llm.local");
        assert_eq!(swarm_host("v6:fd00::1"), "fd00::1 v6");
    }
}
