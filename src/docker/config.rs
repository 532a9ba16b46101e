//! `ContainerConfig`: everything botmaker decides about a bot's container, and its translation
//! into Docker's create request.
//!
//! The parts that are not negotiable live in [`ContainerConfig::to_create_body`], not in the
//! config: the secrets directory is always a read-only structured bind mount at
//! [`SECRETS_MOUNT_TARGET`], the restart policy is always `unless-stopped`, and log files rotate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, Mount, MountType,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use serde::{Deserialize, Serialize};

use super::labels::container_labels;
use crate::BotId;

/// Where a bot finds its secrets inside the container.
pub const SECRETS_MOUNT_TARGET: &str = "/run/secrets";
/// Host address published ports bind to unless a port says otherwise: a bot is reachable from
/// this host only, not from the network.
pub const DEFAULT_HOST_IP: &str = "127.0.0.1";
/// Host addresses that mean "every address of the host": the only binding a backend of
/// [`BindScope::EveryAddress`] makes.
pub const EVERY_ADDRESS: [&str; 2] = ["0.0.0.0", "::"];
/// The json-file log driver never rotates by default; a chatty bot would fill the disk.
const LOG_MAX_SIZE: &str = "10m";
const LOG_MAX_FILES: &str = "3";

/// The desired container of one bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerConfig {
    /// Image reference; must already be present on the daemon (botmaker never pulls).
    pub image: String,
    /// Overrides the image's `CMD`.
    pub command: Option<Vec<String>>,
    /// Overrides the image's `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// Non-secret environment. Secrets never go here: env shows in `docker inspect`.
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
    /// `user[:group]` to run as.
    pub user: Option<String>,
    /// Host directory holding the bot's secrets; bind-mounted read-only at `/run/secrets`.
    /// It must exist: a missing source is an error, never an empty directory made by Docker.
    pub secrets_dir: PathBuf,
    /// Further bind mounts (for example a workspace directory).
    pub mounts: Vec<BindMount>,
    /// Ports published on the host, on 127.0.0.1 unless a mapping says otherwise.
    pub ports: Vec<PortMapping>,
    /// Network to attach to (Docker's default bridge when unset).
    pub network: Option<String>,
    /// Extra `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
    /// Docker HEALTHCHECK, if the bot is probed by the daemon.
    pub healthcheck: Option<HealthCheck>,
    /// Memory, CPU and process limits.
    pub limits: ResourceLimits,
    /// Privilege reductions; the default drops every capability.
    pub hardening: Hardening,
    /// Run Docker's init as PID 1 so signals reach the bot and zombies are reaped. Leave it
    /// off for an image whose entrypoint is an init already (two inits: the inner one is not
    /// PID 1 and warns on every boot).
    pub init: bool,
    /// Grace period the container itself carries (`StopTimeout`), so a `docker stop` by anyone,
    /// or a daemon shutdown, gives the bot the same time to drain as botmaker does.
    #[serde(default, with = "opt_secs")]
    pub stop_timeout: Option<Duration>,
    /// Extra labels. `botmaker.*` labels are always set by botmaker itself.
    pub labels: BTreeMap<String, String>,
    /// Where the bot may run: Swarm placement constraints; the Docker backend checks it
    /// against its one engine before anything is made, and leaves it out of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::Placement>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            image: String::new(),
            command: None,
            entrypoint: None,
            env: BTreeMap::new(),
            working_dir: None,
            user: None,
            secrets_dir: PathBuf::new(),
            mounts: Vec::new(),
            ports: Vec::new(),
            network: None,
            extra_hosts: Vec::new(),
            healthcheck: None,
            limits: ResourceLimits::default(),
            hardening: Hardening::default(),
            init: false,
            stop_timeout: None,
            labels: BTreeMap::new(),
            placement: None,
        }
    }
}

/// A host directory mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    /// Absolute host path; must exist.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    /// Mount it read-only: the bot can read but not change it.
    #[serde(default)]
    pub read_only: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, the default (`8080/tcp`).
    #[default]
    Tcp,
    /// UDP (`53/udp`).
    Udp,
}

/// How a port is published on the Swarm backend. On the Docker backend both are the one
/// host's port (bound to `host_ip`), so it makes no difference there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortPublish {
    /// On the node that runs the bot's task only (Swarm's `mode: host`), the default: the
    /// port is where the bot is, as on one Docker host.
    #[default]
    Host,
    /// Swarm's routing mesh (`mode: ingress`): the port answers on every node of the swarm
    /// and is forwarded to the bot wherever it runs.
    Mesh,
}

/// Where a backend binds a published port on the host running the bot. A capability the
/// layers above the engine ask (see [`DockerService::bind_scope`](super::DockerService::bind_scope)),
/// never the backend's name: a template's default ports depend on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BindScope {
    /// On the one address a port names ([`DEFAULT_HOST_IP`] unless it says otherwise): the
    /// Docker backend.
    #[default]
    OneAddress,
    /// On every address of the node, whatever the port names: Swarm (`host` mode and the
    /// routing mesh alike).
    EveryAddress,
}

impl BindScope {
    /// Whether a port asking for `host_ip` (`None`: [`DEFAULT_HOST_IP`]) is published as
    /// asked, rather than on more addresses than it names.
    pub fn publishes_as_asked(self, host_ip: Option<&str>) -> bool {
        match self {
            Self::OneAddress => true,
            Self::EveryAddress => EVERY_ADDRESS.contains(&host_ip.unwrap_or(DEFAULT_HOST_IP)),
        }
    }
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u16,
    /// Host port; `None` lets Docker pick a free one.
    #[serde(default)]
    pub host_port: Option<u16>,
    /// Host address to bind; defaults to [`DEFAULT_HOST_IP`].
    #[serde(default)]
    pub host_ip: Option<String>,
    /// TCP unless set.
    #[serde(default)]
    pub protocol: Protocol,
    /// Swarm: on the bot's node (default) or through the routing mesh.
    #[serde(default)]
    pub publish: PortPublish,
}

/// A Docker HEALTHCHECK. Every probe is an `exec` in the container, costly for the daemon with
/// many bots, hence the slow default interval and a long start period for slow cold starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Command run inside the container (exec form, no shell); exit 0 means healthy.
    pub test: Vec<String>,
    /// Time between probes.
    #[serde(default = "HealthCheck::default_interval", with = "secs")]
    pub interval: Duration,
    /// How long one probe may take.
    #[serde(default = "HealthCheck::default_timeout", with = "secs")]
    pub timeout: Duration,
    /// Failed probes in a row before the container is `unhealthy`.
    #[serde(default = "HealthCheck::default_retries")]
    pub retries: u32,
    /// Grace period after start during which failures do not count.
    #[serde(default = "HealthCheck::default_start_period", with = "secs")]
    pub start_period: Duration,
}

impl HealthCheck {
    /// A check running `test` with the default timings.
    pub fn new(test: Vec<String>) -> Self {
        Self {
            test,
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            retries: Self::default_retries(),
            start_period: Self::default_start_period(),
        }
    }
    fn default_interval() -> Duration {
        Duration::from_secs(30)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(5)
    }
    fn default_retries() -> u32 {
        3
    }
    fn default_start_period() -> Duration {
        Duration::from_secs(180)
    }
}

/// Resource limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceLimits {
    /// Memory limit in bytes (swap is capped at the same value).
    pub memory_bytes: Option<u64>,
    /// CPU limit in cores, e.g. 0.5.
    pub cpus: Option<f64>,
    /// Maximum number of processes: a fork bomb in one bot cannot exhaust the host's pids.
    pub pids: Option<i64>,
}

/// Privilege reductions applied to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hardening {
    /// Capabilities to drop (`ALL` drops every one).
    pub cap_drop: Vec<String>,
    /// Capabilities to add back after dropping.
    pub cap_add: Vec<String>,
    /// Forbid gaining privileges through setuid binaries.
    pub no_new_privileges: bool,
    /// Mount the image's filesystem read-only.
    pub read_only_rootfs: bool,
}

impl Default for Hardening {
    /// A chat bot needs no capabilities and no privilege escalation.
    fn default() -> Self {
        Self {
            cap_drop: vec!["ALL".into()],
            cap_add: Vec::new(),
            no_new_privileges: true,
            read_only_rootfs: false,
        }
    }
}

/// Why a [`ContainerConfig`] cannot be used, found before Docker is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `image` is empty.
    #[error("image must not be empty")]
    EmptyImage,
    /// An env variable name is empty or contains `=` or NUL.
    #[error("invalid environment variable name {0:?}")]
    BadEnvName(String),
    /// A value contains NUL, which cannot cross the Docker API.
    #[error("value of {0} contains a NUL byte")]
    NulInValue(String),
    /// A path that must be absolute is not.
    #[error("{0} must be an absolute path (got {1:?})")]
    RelativePath(&'static str, String),
    /// Port 0 is not a port.
    #[error("container port must be 1-65535")]
    PortZero,
    /// A mount targets `/run/secrets`, which is reserved for the secrets directory.
    #[error("mount target {0} is reserved for the bot's secrets")]
    ReservedTarget(String),
    /// A limit is zero or negative.
    #[error("{0} must be positive")]
    NonPositiveLimit(&'static str),
    /// A bind-mount source does not exist on this host.
    #[error("bind source path does not exist: {0}")]
    MissingSource(String),
}

impl ContainerConfig {
    /// A config running `image` with the bot's secrets from `secrets_dir`.
    pub fn new(image: impl Into<String>, secrets_dir: impl Into<PathBuf>) -> Self {
        Self {
            image: image.into(),
            secrets_dir: secrets_dir.into(),
            ..Self::default()
        }
    }

    /// Checks what Docker would reject less clearly, or not at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.image.trim().is_empty() {
            return Err(ConfigError::EmptyImage);
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(ConfigError::BadEnvName(k.clone()));
            }
            if v.contains('\0') {
                return Err(ConfigError::NulInValue(k.clone()));
            }
        }
        if !self.secrets_dir.is_absolute() {
            return Err(ConfigError::RelativePath(
                "secrets_dir",
                self.secrets_dir.display().to_string(),
            ));
        }
        for m in &self.mounts {
            if !m.source.is_absolute() {
                return Err(ConfigError::RelativePath(
                    "mount source",
                    m.source.display().to_string(),
                ));
            }
            if !m.target.starts_with('/') {
                return Err(ConfigError::RelativePath("mount target", m.target.clone()));
            }
            if m.target.trim_end_matches('/') == SECRETS_MOUNT_TARGET {
                return Err(ConfigError::ReservedTarget(m.target.clone()));
            }
        }
        if self.ports.iter().any(|p| p.container_port == 0) {
            return Err(ConfigError::PortZero);
        }
        if self.limits.memory_bytes == Some(0) {
            return Err(ConfigError::NonPositiveLimit("memory limit"));
        }
        if self.limits.cpus.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return Err(ConfigError::NonPositiveLimit("cpu limit"));
        }
        if self.limits.pids.is_some_and(|p| p <= 0) {
            return Err(ConfigError::NonPositiveLimit("pids limit"));
        }
        Ok(())
    }

    /// Checks that every bind-mount source (the secrets directory first) exists, as Docker
    /// checks it: a link to something that exists is fine, a dangling one is missing. (A stat
    /// only: nothing is opened or written.)
    ///
    /// Docker refuses a structured bind mount of a missing path itself (400); Podman instead
    /// creates an empty root-owned directory there, so [`DockerService`](super::DockerService)
    /// asks this before creating a container on Podman. Only meaningful where botmaker shares
    /// the engine's file system, which botmaker's own bots always do (it writes their secrets).
    pub fn check_sources_exist(&self) -> Result<(), ConfigError> {
        let sources =
            std::iter::once(&self.secrets_dir).chain(self.mounts.iter().map(|m| &m.source));
        for source in sources {
            if std::fs::metadata(source).is_err() {
                return Err(ConfigError::MissingSource(source.display().to_string()));
            }
        }
        Ok(())
    }

    /// Docker's create request for this config. Uses no field newer than API 1.41.
    pub fn to_create_body(&self, instance: &str, bot_id: &BotId) -> ContainerCreateBody {
        let port_key = |p: &PortMapping| {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            format!("{}/{proto}", p.container_port)
        };
        let mut port_bindings = std::collections::HashMap::new();
        for p in &self.ports {
            port_bindings
                .entry(port_key(p))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone().unwrap_or_else(|| DEFAULT_HOST_IP.into())),
                    host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                });
        }

        let mut mounts = vec![Mount {
            typ: Some(MountType::BIND),
            source: Some(self.secrets_dir.display().to_string()),
            target: Some(SECRETS_MOUNT_TARGET.into()),
            read_only: Some(true),
            ..Default::default()
        }];
        mounts.extend(self.mounts.iter().map(|m| Mount {
            typ: Some(MountType::BIND),
            source: Some(m.source.display().to_string()),
            target: Some(m.target.clone()),
            read_only: Some(m.read_only),
            ..Default::default()
        }));

        let security_opt = self
            .hardening
            .no_new_privileges
            .then(|| vec!["no-new-privileges:true".to_string()]);
        let memory = self.limits.memory_bytes.map(|m| m as i64);

        let host_config = HostConfig {
            mounts: Some(mounts),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            network_mode: self.network.clone(),
            extra_hosts: non_empty(&self.extra_hosts),
            memory,
            // Equal to `memory`: a limit that swap can route around is no limit.
            memory_swap: memory,
            nano_cpus: self.limits.cpus.map(|c| (c * 1e9).round() as i64),
            pids_limit: self.limits.pids,
            cap_drop: non_empty(&self.hardening.cap_drop),
            cap_add: non_empty(&self.hardening.cap_add),
            security_opt,
            readonly_rootfs: self.hardening.read_only_rootfs.then_some(true),
            init: self.init.then_some(true),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(
                    [("max-size", LOG_MAX_SIZE), ("max-file", LOG_MAX_FILES)]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };

        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(bot_id.to_string()),
            cmd: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: self.working_dir.clone(),
            user: self.user.clone(),
            exposed_ports: (!self.ports.is_empty())
                .then(|| self.ports.iter().map(port_key).collect()),
            healthcheck: self.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(
                    std::iter::once("CMD".to_string())
                        .chain(h.test.iter().cloned())
                        .collect(),
                ),
                interval: Some(nanos(h.interval)),
                timeout: Some(nanos(h.timeout)),
                retries: Some(i64::from(h.retries)),
                start_period: Some(nanos(h.start_period)),
                ..Default::default()
            }),
            labels: Some(container_labels(instance, bot_id, &self.labels)),
            stop_timeout: self
                .stop_timeout
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Durations as whole seconds in JSON, the unit people write.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Optional durations as whole seconds.
mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_secs))
    }
}

/// Whether a command line starts with an init process (tini, dumb-init, Docker's own init,
/// catatonit, s6), judged by the program's file name: such an image needs no `init` from
/// Docker.
pub fn starts_with_init(argv: &[String]) -> bool {
    const INITS: &[&str] = &[
        "tini",
        "tini-static",
        "docker-init",
        "dumb-init",
        "catatonit",
        "s6-svscan",
        "init",
    ];
    argv.first()
        .and_then(|a| a.rsplit('/').next())
        .is_some_and(|name| INITS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inits_are_recognised_by_program_name() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(starts_with_init(&argv(&["/usr/bin/tini", "--", "x"])));
        assert!(starts_with_init(&argv(&["tini"])));
        assert!(starts_with_init(&argv(&["/usr/bin/dumb-init", "node"])));
        assert!(starts_with_init(&argv(&["/init"])));
        assert!(!starts_with_init(&argv(&["/testbot"])));
        assert!(!starts_with_init(&argv(&["node", "tini"])));
        assert!(!starts_with_init(&[]));
    }

    #[test]
    fn stop_timeout_travels_with_the_container() {
        let mut c = ContainerConfig::new("img", "/s");
        assert_eq!(c.to_create_body("i", &bot()).stop_timeout, None);
        c.stop_timeout = Some(Duration::from_secs(90));
        assert_eq!(c.to_create_body("i", &bot()).stop_timeout, Some(90));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ContainerConfig>(&json).unwrap(), c);
    }

    fn bot() -> BotId {
        BotId::new("b1").unwrap()
    }

    #[test]
    fn secrets_are_a_read_only_bind_mount_and_policy_is_unless_stopped() {
        let body = ContainerConfig::new("img", "/s/b1").to_create_body("i", &bot());
        let hc = body.host_config.unwrap();
        let m = &hc.mounts.unwrap()[0];
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/s/b1"));
        assert_eq!(m.target.as_deref(), Some(SECRETS_MOUNT_TARGET));
        assert_eq!(m.read_only, Some(true));
        assert!(
            hc.binds.is_none(),
            "Binds would create a missing source dir"
        );
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(body.hostname.as_deref(), Some("b1"));
    }

    #[test]
    fn ports_bind_loopback_unless_told_otherwise() {
        let mut c = ContainerConfig::new("img", "/s");
        c.ports = vec![
            PortMapping {
                container_port: 8080,
                host_port: Some(18080),
                host_ip: None,
                protocol: Protocol::Tcp,
                publish: Default::default(),
            },
            PortMapping {
                container_port: 53,
                host_port: None,
                host_ip: Some("0.0.0.0".into()),
                protocol: Protocol::Udp,
                publish: Default::default(),
            },
        ];
        let body = c.to_create_body("i", &bot());
        let pb = body.host_config.unwrap().port_bindings.unwrap();
        let tcp = pb["8080/tcp"].as_ref().unwrap();
        assert_eq!(tcp[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(tcp[0].host_port.as_deref(), Some("18080"));
        let udp = pb["53/udp"].as_ref().unwrap();
        assert_eq!(udp[0].host_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(udp[0].host_port.as_deref(), Some(""));
        let mut exposed = body.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, vec!["53/udp", "8080/tcp"]);
    }

    #[test]
    fn limits_and_hardening_translate() {
        let mut c = ContainerConfig::new("img", "/s");
        c.limits = ResourceLimits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(64),
        };
        c.hardening.read_only_rootfs = true;
        c.healthcheck = Some(HealthCheck::new(vec!["/bot".into(), "healthcheck".into()]));
        let body = c.to_create_body("i", &bot());
        let hc = body.host_config.unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.memory_swap, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(64));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            hc.security_opt,
            Some(vec!["no-new-privileges:true".to_string()])
        );
        assert_eq!(hc.readonly_rootfs, Some(true));
        let health = body.healthcheck.unwrap();
        assert_eq!(health.test.unwrap()[0], "CMD");
        assert_eq!(health.interval, Some(30_000_000_000));
        assert_eq!(health.start_period, Some(180_000_000_000));
    }

    #[test]
    fn validation_rejects_what_docker_would_garble() {
        let ok = ContainerConfig::new("img", "/s");
        assert_eq!(ok.validate(), Ok(()));
        let mut c = ok.clone();
        c.image = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::EmptyImage));
        let mut c = ok.clone();
        c.env.insert("A=B".into(), "x".into());
        assert!(matches!(c.validate(), Err(ConfigError::BadEnvName(_))));
        let mut c = ok.clone();
        c.secrets_dir = "rel".into();
        assert!(matches!(c.validate(), Err(ConfigError::RelativePath(..))));
        let mut c = ok.clone();
        c.mounts.push(BindMount {
            source: "/w".into(),
            target: "/run/secrets/".into(),
            read_only: false,
        });
        assert!(matches!(c.validate(), Err(ConfigError::ReservedTarget(_))));
        let mut c = ok.clone();
        c.limits.cpus = Some(0.0);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NonPositiveLimit(_))
        ));
    }

    #[test]
    fn missing_bind_sources_are_found_as_docker_finds_them() {
        let t = tempfile::tempdir().unwrap();
        let secrets = t.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        let mut c = ContainerConfig::new("img", &secrets);
        assert_eq!(c.check_sources_exist(), Ok(()));
        let workspace = t.path().join("workspace");
        c.mounts.push(BindMount {
            source: workspace.clone(),
            target: "/workspace".into(),
            read_only: false,
        });
        assert_eq!(
            c.check_sources_exist(),
            Err(ConfigError::MissingSource(workspace.display().to_string()))
        );
        // A dangling link is missing too; a link to a directory is that directory.
        std::os::unix::fs::symlink(t.path().join("nowhere"), &workspace).unwrap();
        assert!(matches!(
            c.check_sources_exist(),
            Err(ConfigError::MissingSource(_))
        ));
        std::fs::create_dir(t.path().join("nowhere")).unwrap();
        assert_eq!(c.check_sources_exist(), Ok(()));
        let mut c = ContainerConfig::new("img", t.path().join("gone"));
        c.mounts.clear();
        assert!(matches!(
            c.check_sources_exist(),
            Err(ConfigError::MissingSource(_))
        ));
    }

    #[test]
    fn round_trips_through_json() {
        let mut c = ContainerConfig::new("img", "/s");
        c.healthcheck = Some(HealthCheck::new(vec!["x".into()]));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ContainerConfig>(&json).unwrap(), c);
    }
}
