//! The Swarm backend (`serve --backend swarm`): each bot a replicated service
//! `botmaker-<id>` on the swarm the engine manages, behind the same [`DockerService`] methods
//! the Docker backend answers, so nothing above this module knows which one runs.
//!
//! - create makes the service with 0 replicas; start is 1 replica, stop 0 (Swarm sends the
//!   stop signal and waits the stop grace before the kill); restart forces a new task;
//! - secrets: the files of the bot's secrets directory become Swarm secrets, one per value
//!   (Swarm secrets are immutable), referenced by the service at every start, restart and
//!   rotation; versions no longer referenced are removed (see `secrets.rs`);
//! - the workspace stays a host directory, bind-mounted, so the bot is pinned to the node
//!   botmaker's engine runs on by a placement constraint (see `spec.rs`), unless the bot is
//!   placed (`placement`): then it is a named volume on the node that runs it (see
//!   `placement.rs`);
//! - observed state: one services list and one tasks list for the whole fleet, plus one
//!   containers list for what only the local node's engine knows (health, image id);
//! - every call has the service's timeout; calls that wait for Swarm to converge (a task
//!   running, a task gone) poll under a deadline.

mod networks;
mod nodes;
mod observe;
mod placement;
mod ports;
mod probe_address;
mod secrets;
mod spec;
mod task_list;
mod task_watch;
mod tasks;
mod upgrade;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::models::{Service, ServiceSpec, Task};
use bollard::query_parameters::{
    InspectServiceOptions, ListSecretsOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::error::{ContainerError, Op};
use super::labels::{self, LABEL_BOT_ID};
use super::status::ContainerState;
use super::{ContainerConfig, DockerService, lenient};
use crate::BotId;

pub use nodes::NodeInfo;
pub use placement::workspace_volume;
pub use secrets::LABEL_SECRET_NAME;
pub use spec::{LABEL_SECRETS_DIR, SpecError, service_name};
pub use task_watch::TASK_POLL_INTERVAL;

/// How often a wait for Swarm to converge asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Name the backend goes by in messages.
const BACKEND: &str = "swarm";

/// Which engine backend runs the bots (`serve --backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One container per bot on one Docker Engine (or Podman).
    #[default]
    Docker,
    /// One service per bot on a Docker Swarm whose manager botmaker talks to.
    Swarm,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Docker => "docker",
            Self::Swarm => "swarm",
        })
    }
}

/// The swarm botmaker drives: which node its own engine is (where bind-mounted workspaces
/// live).
#[derive(Debug, Clone)]
pub struct Swarm {
    node_id: String,
    /// Driver of placed bots' workspace volumes (`--swarm-volume-driver`; `local` if unset).
    volume_driver: Option<String>,
    /// Whether botmaker itself runs in a container: then it reaches bots on an overlay it
    /// joined at their overlay address, else at their `docker_gwbridge` one (see
    /// `probe_address`).
    in_container: bool,
}

/// An error for an operation the Swarm backend does not offer.
pub(super) fn unsupported(operation: &'static str) -> ContainerError {
    ContainerError::Unsupported {
        operation,
        backend: BACKEND,
    }
}

impl Swarm {
    /// Checks that `svc`'s engine manages an active swarm.
    pub(super) async fn connect(
        svc: &DockerService,
        volume_driver: Option<String>,
    ) -> Result<Self, ContainerError> {
        let info = svc
            .call(Op::Info, "", svc.call_timeout, svc.docker.info())
            .await?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_default();
        if state != "active" || swarm.control_available != Some(true) {
            return Err(ContainerError::NotSwarmManager {
                host: svc.host.clone(),
                state: if state == "active" {
                    "worker".into()
                } else {
                    state
                },
            });
        }
        Ok(Self {
            node_id: swarm.node_id.unwrap_or_default(),
            volume_driver,
            in_container: super::own_container_id().is_some(),
        })
    }

    /// The node botmaker's own engine is.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(super) async fn create(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        config: &ContainerConfig,
    ) -> Result<String, ContainerError> {
        let mut spec = spec::service_spec(&svc.instance, bot_id, config, &self.node_id, 0)
            .map_err(|e| ContainerError::InvalidConfig {
                bot_id: bot_id.to_string(),
                message: e.to_string(),
            })?;
        placement::place(
            &mut spec,
            &svc.instance,
            bot_id,
            config,
            self.volume_driver.as_deref(),
        );
        if let Some(network) = &config.network {
            networks::check(svc, bot_id, network).await?;
        }
        let created = svc
            .call(
                Op::Create,
                bot_id.as_str(),
                svc.call_timeout,
                svc.docker.create_service(spec, None),
            )
            .await?;
        Ok(created.id.unwrap_or_default())
    }

    /// The bot's service if this instance owns it; another owner's is `NOT_OWNED`.
    async fn owned(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Option<Service>, ContainerError> {
        let found = svc
            .call(
                Op::Inspect,
                bot_id.as_str(),
                svc.call_timeout,
                lenient::tolerant(
                    svc.docker
                        .inspect_service(&service_name(bot_id), None::<InspectServiceOptions>),
                ),
            )
            .await;
        match found {
            Ok(s) => {
                let labels = s.spec.as_ref().and_then(|s| s.labels.as_ref());
                if labels::is_owned_by(labels, &svc.instance) {
                    Ok(Some(s))
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

    async fn owned_or_missing(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Service, ContainerError> {
        self.owned(svc, bot_id)
            .await?
            .ok_or_else(|| ContainerError::NotFound {
                bot_id: bot_id.to_string(),
                message: format!("no service {}", service_name(bot_id)),
            })
    }

    async fn tasks_of(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Vec<Task>, ContainerError> {
        let filters = HashMap::from([("service".to_string(), vec![service_name(bot_id)])]);
        let instance = svc.instance.clone();
        Ok(svc
            .swarm_tasks(bot_id.as_str(), &filters)
            .await?
            .into_iter()
            // The name filter also matches services whose name starts with this one's.
            .filter(|t| {
                let l = t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.labels.as_ref());
                labels::is_owned_by(l, &instance)
                    && l.and_then(|l| l.get(LABEL_BOT_ID)).map(String::as_str)
                        == Some(bot_id.as_str())
            })
            .collect())
    }

    /// Sets the service's replicas (and, when `secrets_dir` is known, its secrets to the
    /// directory's current values); `force` makes Swarm replace the task even when nothing
    /// else changed. Returns whether the service was updated.
    async fn update(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        mut service: Service,
        op: Op,
        change: Change,
    ) -> Result<bool, ContainerError> {
        let mut tries = 1;
        loop {
            let read = version_of(&service);
            match self
                .update_once(svc, bot_id, service, op, change.clone())
                .await
            {
                // Swarm changed the service since it was read (its allocator bumps a new
                // service's version when it assigns its published ports), so the update was
                // refused as out of sequence: again, on the service as it is now.
                Err(e) if tries < UPDATE_TRIES => {
                    let now = self.owned_or_missing(svc, bot_id).await?;
                    if version_of(&now) == read {
                        return Err(e);
                    }
                    service = now;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn update_once(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        service: Service,
        op: Op,
        change: Change,
    ) -> Result<bool, ContainerError> {
        let version = service
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        let mut spec: ServiceSpec = service.spec.unwrap_or_default();
        let before = spec.clone();
        if let Some(r) = change.replicas {
            let mode = spec.mode.get_or_insert_with(Default::default);
            mode.replicated
                .get_or_insert_with(Default::default)
                .replicas = Some(r);
        }
        let task = spec.task_template.get_or_insert_with(Default::default);
        if change.force {
            task.force_update = Some(task.force_update.unwrap_or(0) + 1);
        }
        if let Some(grace) = change.grace {
            task.container_spec
                .get_or_insert_with(Default::default)
                .stop_grace_period = Some(spec::nanos(grace));
        }
        let dir = spec
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SECRETS_DIR))
            .cloned();
        let mut keep = HashSet::new();
        if change.secrets
            && let Some(dir) = dir
        {
            let refs = self.secret_refs(svc, bot_id, &dir).await?;
            keep.extend(refs.iter().filter_map(|r| r.secret_name.clone()));
            let task = spec.task_template.get_or_insert_with(Default::default);
            task.container_spec
                .get_or_insert_with(Default::default)
                .secrets = (!refs.is_empty()).then_some(refs);
        }
        if spec == before {
            return Ok(false);
        }
        // An upgrade's rolling-update settings (Swarm's own rollback) are for the upgrade
        // alone: a start, restart or rotation that fails is not undone behind botmaker's back.
        spec.update_config = None;
        spec.rollback_config = None;
        let options = UpdateServiceOptionsBuilder::new()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        svc.call(
            op,
            bot_id.as_str(),
            svc.call_timeout,
            svc.docker
                .update_service(&service_name(bot_id), spec, options, None),
        )
        .await?;
        if change.secrets {
            self.prune_secrets(svc, bot_id, &keep).await;
        }
        Ok(true)
    }

    /// Makes sure a Swarm secret exists for every file of the secrets directory `dir`, and
    /// returns the service's references to them.
    async fn secret_refs(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        dir: &str,
    ) -> Result<Vec<bollard::models::TaskSpecContainerSpecSecrets>, ContainerError> {
        let (instance, bot, path) = (
            svc.instance.clone(),
            bot_id.clone(),
            std::path::PathBuf::from(dir),
        );
        let (files, owner) =
            tokio::task::spawn_blocking(move || secrets::read_dir(&instance, &bot, &path))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|message| ContainerError::InvalidConfig {
                    bot_id: bot_id.to_string(),
                    message: format!("cannot read the bot's secrets: {message}"),
                })?;
        let existing = self.bot_secrets(svc, bot_id).await?;
        let mut ids: HashMap<String, String> = existing
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .collect();
        for f in &files {
            if ids.contains_key(&f.swarm_name) {
                continue;
            }
            let created = svc
                .call(
                    Op::Create,
                    bot_id.as_str(),
                    svc.call_timeout,
                    svc.docker
                        .create_secret(secrets::secret_spec(&svc.instance, bot_id, f)),
                )
                .await?;
            ids.insert(f.swarm_name.clone(), created.id);
        }
        Ok(secrets::references(&files, &ids, owner))
    }

    async fn bot_secrets(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Vec<bollard::models::Secret>, ContainerError> {
        let options = ListSecretsOptionsBuilder::new()
            .filters(&secrets::bot_filter(&svc.instance, bot_id))
            .build();
        let list = svc
            .call(
                Op::List,
                bot_id.as_str(),
                svc.call_timeout,
                lenient::tolerant(svc.docker.list_secrets(Some(options))),
            )
            .await?;
        Ok(list
            .into_iter()
            .filter(|s| {
                let l = s.spec.as_ref().and_then(|s| s.labels.as_ref());
                labels::is_owned_by(l, &svc.instance)
                    && l.and_then(|l| l.get(LABEL_BOT_ID)).map(String::as_str)
                        == Some(bot_id.as_str())
            })
            .collect())
    }

    /// Removes the bot's Swarm secrets not in `keep`. One still held by a task that is
    /// shutting down is refused by Swarm; it is removed at the next rotation or at delete,
    /// so a failure here is logged, not returned.
    async fn prune_secrets(&self, svc: &DockerService, bot_id: &BotId, keep: &HashSet<String>) {
        let Ok(all) = self.bot_secrets(svc, bot_id).await else {
            return;
        };
        for s in all {
            let (Some(id), Some(name)) = (s.id, s.spec.and_then(|s| s.name)) else {
                continue;
            };
            if keep.contains(&name) {
                continue;
            }
            if let Err(e) = svc
                .call(
                    Op::Remove,
                    bot_id.as_str(),
                    svc.call_timeout,
                    svc.docker.delete_secret(&id),
                )
                .await
            {
                tracing::debug!(bot = %bot_id, secret = %name, error = %e, "old secret version kept for now");
            }
        }
    }

    /// Polls the bot's tasks until `done` says so (`Ok(Some)` ends the wait with that
    /// result), or `limit` passes (a `NETWORK_ERROR` naming `op`: the outcome is unknown).
    async fn wait<T>(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        op: Op,
        limit: Duration,
        mut done: impl FnMut(&[Task]) -> Option<Result<T, ContainerError>>,
    ) -> Result<T, ContainerError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let tasks = self.tasks_of(svc, bot_id).await?;
            if let Some(r) = done(&tasks) {
                return r;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ContainerError::timeout(&svc.host, op, limit));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for a task that is not in `before` to run; one that fails first is
    /// `START_FAILED` with Swarm's reason (a missing image, a command not found).
    async fn wait_new_task_running(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        op: Op,
        before: &HashSet<String>,
    ) -> Result<(), ContainerError> {
        self.wait(svc, bot_id, op, svc.call_timeout, |tasks| {
            let fresh: Vec<&Task> = tasks
                .iter()
                .filter(|t| t.id.as_ref().is_some_and(|id| !before.contains(id)))
                .collect();
            if fresh
                .iter()
                .any(|t| tasks::state(Some(t), 0) == ContainerState::Running)
            {
                return Some(Ok(()));
            }
            fresh.iter().find_map(|t| {
                let failed = tasks::is_terminal(t);
                failed.then(|| {
                    Err(ContainerError::StartFailed {
                        bot_id: bot_id.to_string(),
                        message: tasks::error(t).unwrap_or_else(|| {
                            format!(
                                "the task exited with code {}",
                                tasks::exit_code(t).unwrap_or(-1)
                            )
                        }),
                    })
                })
            })
        })
        .await
    }

    fn task_ids(tasks: &[Task]) -> HashSet<String> {
        tasks.iter().filter_map(|t| t.id.clone()).collect()
    }

    pub(super) async fn start(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<(), ContainerError> {
        let service = self.owned_or_missing(svc, bot_id).await?;
        let ids = Self::task_ids(&self.tasks_of(svc, bot_id).await?);
        let change = Change {
            replicas: Some(1),
            secrets: true,
            ..Change::default()
        };
        if !self.update(svc, bot_id, service, Op::Start, change).await? {
            // Already one replica with its current secrets: Docker's 304 (a task Swarm is
            // replacing after a crash is Docker's `restarting`, which a start leaves alone).
            return Ok(());
        }
        self.wait_new_task_running(svc, bot_id, Op::Start, &ids)
            .await
    }

    pub(super) async fn stop(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        grace: Duration,
    ) -> Result<(), ContainerError> {
        let service = self.owned_or_missing(svc, bot_id).await?;
        let change = Change {
            replicas: Some(0),
            grace: Some(grace),
            ..Change::default()
        };
        self.update(svc, bot_id, service, Op::Stop, change).await?;
        // Docker's stop returns once the container is down; so does this.
        self.wait(svc, bot_id, Op::Stop, svc.call_timeout + grace, |tasks| {
            tasks.iter().all(tasks::is_terminal).then_some(Ok(()))
        })
        .await
    }

    pub(super) async fn restart(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        grace: Duration,
    ) -> Result<(), ContainerError> {
        let service = self.owned_or_missing(svc, bot_id).await?;
        let ids = Self::task_ids(&self.tasks_of(svc, bot_id).await?);
        let change = Change {
            replicas: Some(1),
            force: true,
            secrets: true,
            grace: Some(grace),
        };
        self.update(svc, bot_id, service, Op::Restart, change)
            .await?;
        self.wait_new_task_running(svc, bot_id, Op::Restart, &ids)
            .await
    }

    /// Brings the service's secrets up to date with the bot's secrets directory: a rotation.
    /// Returns whether the bot's task was replaced for it (it was running).
    pub(super) async fn rotate_secrets(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<bool, ContainerError> {
        let Some(service) = self.owned(svc, bot_id).await? else {
            return Ok(false);
        };
        let running = replicas(&service) > 0;
        let ids = Self::task_ids(&self.tasks_of(svc, bot_id).await?);
        let change = Change {
            secrets: true,
            ..Change::default()
        };
        if !self
            .update(svc, bot_id, service, Op::Restart, change)
            .await?
            || !running
        {
            return Ok(false);
        }
        self.wait_new_task_running(svc, bot_id, Op::Restart, &ids)
            .await?;
        Ok(true)
    }

    pub(super) async fn remove(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        grace: Duration,
    ) -> Result<bool, ContainerError> {
        if self.owned(svc, bot_id).await?.is_none() {
            // No service, but secrets of an interrupted create may remain.
            self.prune_secrets(svc, bot_id, &HashSet::new()).await;
            return Ok(false);
        }
        match self.stop(svc, bot_id, grace).await {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        match svc
            .call(
                Op::Remove,
                bot_id.as_str(),
                svc.call_timeout,
                svc.docker.delete_service(&service_name(bot_id)),
            )
            .await
        {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // Swarm lets go of a secret once no service refers to it.
        self.prune_secrets(svc, bot_id, &HashSet::new()).await;
        let left = self.bot_secrets(svc, bot_id).await?;
        if !left.is_empty() {
            return Err(ContainerError::RemoveFailed {
                bot_id: bot_id.to_string(),
                message: format!("{} of its Swarm secrets could not be removed", left.len()),
            });
        }
        Ok(true)
    }

    pub(super) async fn nodes(&self, svc: &DockerService) -> Result<Vec<NodeInfo>, ContainerError> {
        nodes::list(svc, &self.list(svc, true).await?).await
    }
}

/// How many times an update is tried on a service Swarm keeps changing underneath it.
const UPDATE_TRIES: u32 = 3;

/// The version a service was read at (an update must name it).
fn version_of(service: &Service) -> u64 {
    service
        .version
        .as_ref()
        .and_then(|v| v.index)
        .unwrap_or_default()
}

/// What a service update changes.
#[derive(Debug, Default, Clone)]
struct Change {
    replicas: Option<i64>,
    force: bool,
    secrets: bool,
    grace: Option<Duration>,
}

fn replicas(service: &Service) -> i64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0)
}
