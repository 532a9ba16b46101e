//! The container lifecycle core: one long-lived bollard client driving one container per bot.
//!
//! [`DockerService`] owns every call to the Docker Engine API. It knows bots only by
//! [`BotId`] and nothing of HTTP, the database or the secrets store: callers hand it a
//! [`ContainerConfig`] with the secrets directory already prepared.
//!
//! Semantics decided here, once:
//! - "already running" / "already stopped" (HTTP 304) is success;
//! - a container that does not exist has status `None`, and removing it succeeds;
//! - a container with a bot's name that this instance does not own is never touched;
//! - every call has a timeout, so a dead daemon is a `NETWORK_ERROR`, never a hang.
//!
//! The same guarantees hold on Podman's Docker-compatible API: where Podman answers
//! differently, this module makes up the difference (see [`Engine`]).

mod cgroupfs;
mod config;
mod engine;
mod error;
mod events;
mod exec;
mod host_gateway;
mod images;
mod labels;
mod lenient;
mod logs;
mod networks;
mod own_container;
mod parked;
mod placement;
mod requested;
mod stats;
mod status;
pub mod swarm;
mod version;

use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};

pub use cgroupfs::{
    CgroupDriver, CgroupError, CgroupHint, CgroupPaths, CgroupReading, CgroupStats, HostCpu,
};
pub use config::{
    BindMount, BindScope, ConfigError, ContainerConfig, DEFAULT_HOST_IP, EVERY_ADDRESS, Hardening,
    HealthCheck, PortMapping, PortPublish, Protocol, ResourceLimits, SECRETS_MOUNT_TARGET,
    starts_with_init,
};
pub use engine::Engine;
pub use error::{ContainerError, Op};
pub use events::{ContainerEvent, EventKind};
pub use exec::{
    EXIT_CODE_WAIT, ExecId, ExecInput, ExecOutput, ExecOutputStream, ExecSession, ExecSpec,
    ExecStatus, TtySize,
};
pub use labels::{LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED};
pub use logs::{LogLine, LogOptions, LogStream};
pub use own_container::{HostPath, MountPoint, host_path, own_container_id};
pub use parked::{ImageRollout, parked_name};
pub use placement::Placement;
pub use stats::{StatsSample, StatsSnapshot};
pub use status::{BoundPort, ContainerInfo, ContainerState, ContainerStatus, Health, TaskNode};
pub use swarm::{Backend, NodeInfo};
pub use version::ApiVersion;

use crate::BotId;
use error::classify;
use version::pin_path;

/// Oldest Engine API botmaker speaks, as text for messages: [`ApiVersion::MIN`].
pub const MIN_API_VERSION: &str = "1.41";
/// Grace period between SIGTERM and SIGKILL when stopping a bot.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a single Docker call may take before the daemon is considered unresponsive.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting (ping and version negotiation) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Where Docker listens when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Instance name when none is configured.
pub const DEFAULT_INSTANCE: &str = "default";

/// How to reach the daemon, and which installation this is.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `unix:///path` or `tcp://host:port`; `None` means `DOCKER_HOST`, then the default socket.
    pub host: Option<String>,
    /// Value of the `botmaker.instance` label: containers of other instances are invisible.
    pub instance: String,
    /// Limit for ping and version negotiation.
    pub connect_timeout: Duration,
    /// Limit for every other call (stop-like calls get their grace period on top).
    pub call_timeout: Duration,
    /// What a bot is on this engine: a container, or a Swarm service.
    pub backend: Backend,
    /// On Swarm, the volume driver of a placed bot's workspace volume (`local` when unset).
    pub volume_driver: Option<String>,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            host: None,
            instance: DEFAULT_INSTANCE.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            backend: Backend::Docker,
            volume_driver: None,
        }
    }
}

/// Drives bot containers on one Docker Engine. Cheap to clone: clones share the connection.
#[derive(Clone, Debug)]
pub struct DockerService {
    docker: Docker,
    host: String,
    instance: String,
    call_timeout: Duration,
    api_version: ApiVersion,
    engine: Engine,
    requested: requested::RequestedStops,
    /// Set with `--backend swarm`: the bot lifecycle methods then drive Swarm services.
    swarm: Option<std::sync::Arc<swarm::Swarm>>,
}

/// The name of a bot's container.
pub fn container_name(bot_id: &BotId) -> String {
    format!("botmaker-{bot_id}")
}

impl DockerService {
    /// Connects, pings the daemon and negotiates the API version, which every later request
    /// then carries in its path.
    ///
    /// Creating a bollard client contacts nobody, so this pings: a missing daemon is reported
    /// here, with the address tried, rather than at the first real operation. A daemon older
    /// than [`ApiVersion::MIN`], or one that no longer accepts any version botmaker knows, is
    /// `UNSUPPORTED_API_VERSION`.
    pub async fn connect(settings: DockerSettings) -> Result<Self, ContainerError> {
        let host = settings
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let network = |message: String| ContainerError::Network {
            host: host.clone(),
            message,
        };
        // Our own per-call timeouts govern; bollard's must never fire first, even for a stop
        // with a long grace period, so it is set far out of the way.
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| network(e.to_string()))?
            .with_timeout(Duration::from_secs(24 * 3600));

        // The ping finds a missing or hung daemon within the connect timeout. `/version` is
        // then an ordinary call: Podman runs conmon and its OCI runtime to report their
        // versions, about a second each time, more on a busy host.
        tokio::time::timeout(settings.connect_timeout, docker.ping())
            .await
            .map_err(|_| ContainerError::timeout(&host, Op::Connect, settings.connect_timeout))?
            .map_err(|e| classify(&host, Op::Connect, "", e))?;
        let limit = settings.connect_timeout.max(settings.call_timeout);
        let server = tokio::time::timeout(limit, docker.version())
            .await
            .map_err(|_| ContainerError::timeout(&host, Op::Connect, limit))?
            .map_err(|e| classify(&host, Op::Connect, "", e))?;

        let reported = server.api_version.clone().unwrap_or_default();
        let unsupported = |version: String| ContainerError::UnsupportedApiVersion {
            host: host.clone(),
            version,
            minimum: MIN_API_VERSION,
            maximum: ApiVersion::MAX.to_string(),
        };
        let server_api = ApiVersion::parse(&reported).ok_or_else(|| unsupported(reported))?;
        let server_min = server
            .min_api_version
            .as_deref()
            .and_then(ApiVersion::parse);
        let api_version = ApiVersion::negotiate(server_api, server_min)
            .map_err(|v| unsupported(v.to_string()))?;
        let engine = Engine::from_version(&server);
        tracing::debug!(%host, api = %api_version, %engine, "connected to Docker");
        let mut service = Self {
            // From here on every request carries the version in its path (see `version`).
            docker: docker.with_request_modifier(move |req| pin_path(req, api_version)),
            host,
            instance: settings.instance,
            call_timeout: settings.call_timeout,
            api_version,
            engine,
            requested: Default::default(),
            swarm: None,
        };
        if settings.backend == Backend::Swarm {
            service.swarm = Some(std::sync::Arc::new(
                swarm::Swarm::connect(&service, settings.volume_driver).await?,
            ));
        }
        Ok(service)
    }

    /// Which backend runs the bots.
    pub fn backend(&self) -> Backend {
        if self.swarm.is_some() {
            Backend::Swarm
        } else {
            Backend::Docker
        }
    }

    /// Where a published port is bound: on the one address it names (Docker), or on every
    /// address of the node (Swarm, whose `host` mode and routing mesh both bind all of them).
    /// A capability, not a backend name: a template that publishes a port of its own by
    /// default (openclaw's gateway, on `127.0.0.1`) publishes none where it cannot be kept to
    /// one address, and checks a user's port against what the backend can do.
    pub fn bind_scope(&self) -> BindScope {
        if self.swarm.is_some() {
            BindScope::EveryAddress
        } else {
            BindScope::OneAddress
        }
    }

    /// The nodes bots run on: the swarm's nodes, or this one engine on the Docker backend.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ContainerError> {
        if let Some(s) = &self.swarm {
            return s.nodes(self).await;
        }
        let info = self
            .call(Op::Info, "", self.call_timeout, self.docker.info())
            .await?;
        let bots = self.running_managed_containers().await?.len();
        Ok(vec![NodeInfo {
            id: info.id.unwrap_or_default(),
            name: info.name.unwrap_or_default(),
            state: "ready".into(),
            availability: "active".into(),
            role: "engine".into(),
            bots,
            memory_bytes: info.mem_total.unwrap_or(0),
        }])
    }

    /// Makes a change to the bot's secret files take effect where the backend needs more
    /// than the file: on Swarm, whose secrets are immutable, a new version is made, the
    /// service updated (replacing a running bot's task) and the old version removed.
    /// `None` on the Docker backend, where the directory mount shows the file at once;
    /// `Some(restarted)` on Swarm.
    pub async fn secrets_changed(&self, bot_id: &BotId) -> Result<Option<bool>, ContainerError> {
        match &self.swarm {
            Some(s) => s.rotate_secrets(self, bot_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Which engine answers: Docker, or Podman's Docker-compatible service.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The daemon address in use.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// This installation's instance label value.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The negotiated Engine API version, e.g. `1.41`: the one in every request's path.
    pub fn api_version(&self) -> String {
        self.api_version.to_string()
    }

    /// The raw bollard client, for fixtures and tools that need calls this service does not
    /// wrap (building images in tests, for example).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Whether the daemon answers a ping.
    pub async fn ping(&self) -> Result<(), ContainerError> {
        self.call(Op::Connect, "", self.call_timeout, self.docker.ping())
            .await
            .map(drop)
    }

    /// The local image `image` names, or `None` if the engine has none (botmaker never pulls).
    /// A reference that is not one at all (Docker's 400 "invalid reference format", such as a
    /// name with capitals) is the request's fault, as it is when a create is refused for it:
    /// `InvalidConfig`, whichever of the image checks meets it first.
    pub(crate) async fn local_image(
        &self,
        image: &str,
    ) -> Result<Option<bollard::models::ImageInspect>, ContainerError> {
        match self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                self.docker.inspect_image(image),
            )
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(ContainerError::NotFound { .. }) => Ok(None),
            Err(ContainerError::Docker {
                status: 400,
                message,
                ..
            }) => Err(ContainerError::InvalidConfig {
                bot_id: String::new(),
                message,
            }),
            Err(e) => Err(e),
        }
    }

    /// Whether `image` exists on the engine (botmaker never pulls).
    pub async fn image_exists(&self, image: &str) -> Result<bool, ContainerError> {
        Ok(self.local_image(image).await?.is_some())
    }

    /// The config a local image gives its containers (`USER`, `ENTRYPOINT`, ...), or `None`
    /// when the image is not on the engine.
    pub async fn image_config(
        &self,
        image: &str,
    ) -> Result<Option<bollard::models::ImageConfig>, ContainerError> {
        Ok(self
            .local_image(image)
            .await?
            .map(|i| i.config.unwrap_or_default()))
    }

    /// Whether the Docker network `name` is `--internal`, where Docker publishes no port.
    /// A network that does not exist is not internal (creating the container reports it).
    pub async fn network_is_internal(&self, name: &str) -> Result<bool, ContainerError> {
        let options = bollard::query_parameters::InspectNetworkOptions::default();
        match self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                self.docker.inspect_network(name, Some(options)),
            )
            .await
        {
            Ok(n) => Ok(n.internal.unwrap_or(false)),
            Err(ContainerError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The first `cap` bytes at most of the regular file `path` inside the bot's container
    /// (created or running), read through the archive endpoint; `None` if it is not there or
    /// not a regular file (a link is not followed). Used to read an image's `/etc/passwd`.
    pub async fn read_container_file(
        &self,
        bot_id: &BotId,
        path: &str,
        cap: usize,
    ) -> Result<Option<Vec<u8>>, ContainerError> {
        use bollard::query_parameters::DownloadFromContainerOptionsBuilder;
        use futures_util::TryStreamExt;
        if self.swarm.is_some() {
            // A service has no container before its first start, when botmaker reads the
            // image's users; a numeric `user` is what works on Swarm.
            return Ok(None);
        }
        let name = container_name(bot_id);
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        // The tar holds one header, the file, and padding: a little more than the file.
        let limit = cap + 4096;
        let read = async {
            let mut stream =
                std::pin::pin!(self.docker.download_from_container(&name, Some(options)));
            let mut tar = Vec::new();
            while let Some(chunk) = stream.try_next().await? {
                tar.extend_from_slice(&chunk);
                if tar.len() > limit {
                    break;
                }
            }
            Ok(tar)
        };
        let tar = match self
            .call(Op::Inspect, bot_id.as_str(), self.call_timeout, read)
            .await
        {
            Ok(t) => t,
            Err(ContainerError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(first_regular_file(&tar, cap))
    }

    /// Creates the bot's container (not started). Returns the container id.
    ///
    /// Fails with `ALREADY_EXISTS` if a container named `botmaker-<id>` exists, whoever owns
    /// it, and with `INVALID_CONFIG` if the secrets directory (or another mount source) is
    /// missing: a structured bind mount never conjures an empty directory.
    pub async fn create_container(
        &self,
        bot_id: &BotId,
        config: &ContainerConfig,
    ) -> Result<String, ContainerError> {
        let invalid = |e: ConfigError| ContainerError::InvalidConfig {
            bot_id: bot_id.to_string(),
            message: e.to_string(),
        };
        if let Some(s) = &self.swarm {
            return s.create(self, bot_id, config).await;
        }
        config.validate().map_err(invalid)?;
        // Docker refuses a missing bind source; Podman would create it, empty and root-owned.
        if self.engine == Engine::Podman {
            config.check_sources_exist().map_err(invalid)?;
        }
        let name = container_name(bot_id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let mut body = config.to_create_body(&self.instance, bot_id);
        if let Some(hc) = body
            .host_config
            .as_mut()
            .filter(|_| !config.extra_hosts.is_empty())
        {
            hc.extra_hosts = Some(
                self.extra_hosts_for_engine(bot_id, config.network.as_deref(), &config.extra_hosts)
                    .await?,
            );
        }
        let created = match self
            .call(
                Op::Create,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.create_container(Some(options), body),
            )
            .await
        {
            Ok(created) => created,
            // Docker says 409 for a name in use; Podman says 500. A failed create made
            // nothing, so a container that has the name now is the one that was in the way.
            Err(e @ ContainerError::CreateFailed { .. }) => {
                let taken = self
                    .call(
                        Op::Inspect,
                        bot_id.as_str(),
                        self.call_timeout,
                        lenient::tolerant(self.docker.inspect_container(&name, None)),
                    )
                    .await
                    .is_ok();
                return Err(if taken {
                    ContainerError::AlreadyExists {
                        bot_id: bot_id.to_string(),
                    }
                } else {
                    e
                });
            }
            Err(e) => return Err(e),
        };
        for w in created.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(bot = %bot_id, warning = %w, "Docker warning on create");
        }
        Ok(created.id)
    }

    /// Starts the container. Already running (HTTP 304) is success.
    pub async fn start_container(&self, bot_id: &BotId) -> Result<(), ContainerError> {
        if let Some(s) = &self.swarm {
            return s.start(self, bot_id).await;
        }
        let name = container_name(bot_id);
        let started = self
            .call(
                Op::Start,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.start_container(&name, None),
            )
            .await;
        self.missing_reference(bot_id, started).await
    }

    /// Docker answers a start (or restart) with 404 both when the container is gone and when
    /// something the container refers to is, such as its network. Only the first is
    /// `NotFound` (callers recreate a missing container); the second is a start that failed
    /// because of the bot's configuration. Told apart by asking for the container, never by
    /// Docker's message.
    async fn missing_reference(
        &self,
        bot_id: &BotId,
        result: Result<(), ContainerError>,
    ) -> Result<(), ContainerError> {
        match result {
            Err(ContainerError::NotFound {
                bot_id: id,
                message,
            }) => match self.inspect_owned(bot_id).await? {
                Some(_) => Err(ContainerError::StartFailed {
                    bot_id: id,
                    message,
                }),
                None => Err(ContainerError::NotFound {
                    bot_id: id,
                    message,
                }),
            },
            other => other,
        }
    }

    /// Stops the container: SIGTERM, then SIGKILL after `grace` (default 10 s). Already
    /// stopped (HTTP 304) is success.
    pub async fn stop_container(
        &self,
        bot_id: &BotId,
        grace: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let grace = grace.unwrap_or(DEFAULT_STOP_TIMEOUT);
        if let Some(s) = &self.swarm {
            return s.stop(self, bot_id, grace).await;
        }
        let options = StopContainerOptionsBuilder::new()
            .t(grace_secs(grace))
            .build();
        let name = container_name(bot_id);
        let _requested = self.note_requested_stop(bot_id);
        self.call(
            Op::Stop,
            bot_id.as_str(),
            self.call_timeout + grace,
            self.docker.stop_container(&name, Some(options)),
        )
        .await
    }

    /// Restarts the container (stop with `grace`, then start); starts it if it was stopped.
    pub async fn restart_container(
        &self,
        bot_id: &BotId,
        grace: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let grace = grace.unwrap_or(DEFAULT_STOP_TIMEOUT);
        if let Some(s) = &self.swarm {
            return s.restart(self, bot_id, grace).await;
        }
        let options = RestartContainerOptionsBuilder::new()
            .t(grace_secs(grace))
            .build();
        let name = container_name(bot_id);
        let _requested = self.note_requested_stop(bot_id);
        let restarted = self
            .call(
                Op::Restart,
                bot_id.as_str(),
                self.call_timeout + grace,
                self.docker.restart_container(&name, Some(options)),
            )
            .await;
        self.missing_reference(bot_id, restarted).await
    }

    /// Stops the container with `grace`, then removes it. Returns `false` if there was no
    /// container. A container with the bot's name that this instance does not own is left
    /// alone (`NOT_OWNED`).
    pub async fn remove_container(
        &self,
        bot_id: &BotId,
        grace: Option<Duration>,
    ) -> Result<bool, ContainerError> {
        if let Some(s) = &self.swarm {
            return s
                .remove(self, bot_id, grace.unwrap_or(DEFAULT_STOP_TIMEOUT))
                .await;
        }
        // Ownership is checked first: removal is the one operation that destroys something.
        if self.inspect_owned(bot_id).await?.is_none() {
            return Ok(false);
        }
        match self.stop_container(bot_id, grace).await {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let name = container_name(bot_id);
        // `force` also removes a container Docker is in the middle of restarting.
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self
            .call(
                Op::Remove,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.remove_container(&name, Some(options)),
            )
            .await
        {
            Ok(()) => Ok(true),
            // Someone else removed it in the meantime: the outcome the caller wanted.
            Err(ContainerError::NotFound { .. }) => Ok(true),
            // 409: a removal is already in progress. Done if the container is gone or going.
            Err(e @ ContainerError::RemoveFailed { .. }) => {
                match self.container_status(bot_id).await? {
                    None => Ok(true),
                    Some(s) if s.state == ContainerState::Removing => Ok(true),
                    Some(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The container's state, or `None` if the bot has no container. A container of the same
    /// name that this instance does not own is `NOT_OWNED`.
    pub async fn container_status(
        &self,
        bot_id: &BotId,
    ) -> Result<Option<ContainerStatus>, ContainerError> {
        if let Some(s) = &self.swarm {
            return s.status(self, bot_id).await;
        }
        Ok(self
            .inspect_owned(bot_id)
            .await?
            .map(ContainerStatus::from_inspect))
    }

    /// Every container of this instance, stopped ones included, in ONE list call.
    pub async fn list_managed_containers(&self) -> Result<Vec<ContainerInfo>, ContainerError> {
        self.list(true).await
    }

    /// The running containers of this instance, in one list call: what the stats sampler
    /// reads each round (stopped ones would only be filtered out again).
    pub async fn running_managed_containers(&self) -> Result<Vec<ContainerInfo>, ContainerError> {
        self.list(false).await
    }

    async fn list(&self, all: bool) -> Result<Vec<ContainerInfo>, ContainerError> {
        if let Some(s) = &self.swarm {
            return s.list(self, !all).await;
        }
        let options = ListContainersOptionsBuilder::new()
            .all(all)
            .filters(&labels::instance_filter(&self.instance))
            .build();
        let list = self
            .call(
                Op::List,
                "",
                self.call_timeout,
                lenient::tolerant(self.docker.list_containers(Some(options))),
            )
            .await?;
        // The filter is the engine's reading of it; ownership is checked here, as everywhere.
        Ok(list
            .into_iter()
            .filter(|c| labels::is_owned_by(c.labels.as_ref(), &self.instance))
            .map(ContainerInfo::from_summary)
            .collect())
    }

    async fn inspect_owned(
        &self,
        bot_id: &BotId,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, ContainerError> {
        // On Swarm the bot's container is its current task's, when it runs on this node.
        let name = match &self.swarm {
            Some(s) => match s.local_container(self, bot_id).await? {
                Some(id) => id,
                None => return Ok(None),
            },
            None => container_name(bot_id),
        };
        match self
            .call(
                Op::Inspect,
                bot_id.as_str(),
                self.call_timeout,
                lenient::tolerant(self.docker.inspect_container(&name, None)),
            )
            .await
        {
            Ok(r) => {
                let owned = labels::is_owned_by(
                    r.config.as_ref().and_then(|c| c.labels.as_ref()),
                    &self.instance,
                );
                if owned {
                    Ok(Some(r))
                } else {
                    Err(ContainerError::NotOwned {
                        bot_id: bot_id.to_string(),
                    })
                }
            }
            Err(ContainerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// On Podman, notes a stop or restart of `bot_id` for as long as the guard lives, so that
    /// the event stream can tell the death it causes from a crash (see `requested`).
    fn note_requested_stop(&self, bot_id: &BotId) -> Option<requested::Requested> {
        (self.engine == Engine::Podman).then(|| self.requested.begin(bot_id.as_str()))
    }

    /// Runs one Docker call under `limit`, classifying its error.
    async fn call<T>(
        &self,
        op: Op,
        bot_id: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, ContainerError> {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r.map_err(|e| classify(&self.host, op, bot_id, e)),
            Err(_) => Err(ContainerError::timeout(&self.host, op, limit)),
        }
    }
}

fn grace_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// The contents of the first entry of a tar archive if it is a regular file of at most `cap`
/// bytes. Only the ustar header fields needed are read: the size (octal, bytes 124..136) and
/// the type flag (byte 156).
fn first_regular_file(tar: &[u8], cap: usize) -> Option<Vec<u8>> {
    let header = tar.get(..512)?;
    if !matches!(header[156], b'0' | 0) {
        return None;
    }
    let size = std::str::from_utf8(&header[124..136])
        .ok()?
        .trim_matches(|c: char| c == '\0' || c == ' ');
    let size = usize::from_str_radix(size, 8).ok()?;
    if size > cap {
        return None;
    }
    tar.get(512..512 + size).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tar_tests {
    #[test]
    fn reads_a_regular_file_and_refuses_links_and_big_files() {
        let mut header = [0u8; 512];
        header[124..135].copy_from_slice(b"00000000005");
        header[156] = b'0';
        let mut tar = header.to_vec();
        tar.extend_from_slice(b"hello");
        tar.resize(2048, 0);
        assert_eq!(
            super::first_regular_file(&tar, 64).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(super::first_regular_file(&tar, 4), None);
        tar[156] = b'2';
        assert_eq!(super::first_regular_file(&tar, 64), None);
        assert_eq!(super::first_regular_file(&tar[..100], 64), None);
    }
}
