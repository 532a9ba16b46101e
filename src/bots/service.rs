//! `BotService`: every bot operation, from validated request to Docker, disk and database, with
//! one rule for failures: a create that fails leaves nothing behind.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::stream::BoxStream;
use serde::Serialize;
use tokio::sync::RwLock;

use super::error::BotError;
use super::observed::{Fleet, Observed};
use super::spec::{BotSpec, CreateBot, DEFAULT_TEMPLATE, UpdateBot};
use super::template::{self, RenderInput, TEMPLATE_NAMES, Template};
use super::validate::{self, FieldErrors};
use super::view::BotView;
use crate::BotId;
use crate::docker::{ContainerError, ContainerInfo, DockerService, LogLine, LogOptions};
use crate::secrets::{SecretName, SecretValue, SecretsStore};
use crate::store::{BotRow, DesiredState, Store};

/// Where a bot's files live on the host.
#[derive(Debug, Clone)]
pub struct BotPaths {
    /// Root of the per-bot secrets directories.
    pub secrets_root: PathBuf,
    /// Root of the per-bot workspace directories.
    pub workspaces_root: PathBuf,
}

/// The bot registry's operations.
#[derive(Clone)]
pub struct BotService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    docker: DockerService,
    secrets: SecretsStore,
    workspaces_root: PathBuf,
    fleet: Arc<Fleet>,
    locks: Mutex<HashMap<BotId, Arc<tokio::sync::Mutex<()>>>>,
    /// Creates and deletes hold it shared; orphan cleanup holds it exclusively, so it never
    /// mistakes a bot being created for an orphan.
    registry: RwLock<()>,
    stop_grace: Duration,
}

/// Leftovers with no bot: containers of this instance, secrets and workspace directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Orphans {
    /// Bot ids of managed containers with no bot.
    pub containers: Vec<String>,
    /// Secrets directories with no bot.
    pub secrets: Vec<String>,
    /// Workspace directories with no bot.
    pub workspaces: Vec<String>,
}

impl Orphans {
    /// How many there are in all.
    pub fn total(&self) -> usize {
        self.containers.len() + self.secrets.len() + self.workspaces.len()
    }
}

impl BotService {
    /// A service over the given parts.
    pub fn new(
        store: Store,
        docker: DockerService,
        paths: BotPaths,
        fleet: Arc<Fleet>,
        stop_grace: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                docker,
                secrets: SecretsStore::new(paths.secrets_root),
                workspaces_root: paths.workspaces_root,
                fleet,
                locks: Mutex::default(),
                registry: RwLock::new(()),
                stop_grace,
            }),
        }
    }

    /// The observed-state cache shared with the reconciler.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.inner.fleet
    }

    /// The Docker service.
    pub fn docker(&self) -> &DockerService {
        &self.inner.docker
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn lock_for(&self, id: &BotId) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_default()
            .clone()
    }

    fn secrets_for(&self, template: &dyn Template) -> SecretsStore {
        match template.owner() {
            Some((uid, gid)) => self.inner.secrets.clone().with_owner(uid, gid),
            None => self.inner.secrets.clone(),
        }
    }

    fn workspace_dir(&self, id: &BotId) -> PathBuf {
        self.inner.workspaces_root.join(id.as_str())
    }

    /// Validates `req`, then stores the bot, writes its secrets and workspace, creates its
    /// container and starts it (unless `start` is false). On any failure every step already
    /// taken is undone.
    pub async fn create(&self, req: CreateBot) -> Result<BotView, BotError> {
        let ValidCreate {
            id,
            row,
            template,
            secrets,
        } = self.validate_create(req)?;
        let _registry = self.inner.registry.read().await;
        let lock = self.lock_for(&id);
        let _bot = lock.lock().await;

        self.inner.store.insert_bot(&row).await?;
        let mut undo = Undo {
            service: self,
            id: &id,
            container: false,
            workspace: false,
            secrets: false,
        };
        match self.provision(&row, template, &secrets, &mut undo).await {
            Ok(view) => {
                self.inner
                    .fleet
                    .publish(&id, "created", Some(view.observed.clone()));
                Ok(view)
            }
            Err(e) => {
                undo.run().await;
                Err(e)
            }
        }
    }

    fn validate_create(&self, req: CreateBot) -> Result<ValidCreate, BotError> {
        let mut errors = FieldErrors::default();
        let id = BotId::new(req.id.clone())
            .map_err(|e| errors.add("id", e.to_string()))
            .ok();
        let name = req.name.clone().unwrap_or_else(|| req.id.clone());
        validate::check_name(&name, &mut errors);
        let template_name = req.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        let template = template::lookup(template_name);
        if template.is_none() {
            errors.add(
                "template",
                format!("unknown template; one of: {}", TEMPLATE_NAMES.join(", ")),
            );
        }
        validate::check_command(req.command.as_deref(), &mut errors);
        validate::check_env(&req.env, &mut errors);
        let names = validate::check_secrets(&req.secrets, &mut errors);
        validate::check_ports(&req.ports, &mut errors);
        validate::check_limits(&req.limits, &mut errors);
        if let Some(p) = &req.health_check {
            check_probe(p, &mut errors);
        }
        if let Some(n) = &req.network {
            validate::check_network(n, &mut errors);
        }
        let mut spec = BotSpec {
            image: req.image.clone().unwrap_or_default(),
            command: req.command.clone(),
            env: req.env.clone(),
            ports: req.ports.clone(),
            limits: req.limits.clone(),
            network: req.network.clone(),
            health_check: req.health_check.clone(),
            settings: req.settings.clone(),
        };
        let mut secrets: Vec<(SecretName, SecretValue)> = names
            .into_iter()
            .map(|n| {
                let v = SecretValue::from(req.secrets[n.as_str()].clone());
                (n, v)
            })
            .collect();
        if let Some(t) = template {
            for (n, v) in t.generated_secrets(&spec) {
                if !secrets.iter().any(|(have, _)| *have == n) {
                    secrets.push((n, SecretValue::from(v)));
                }
            }
            let all: Vec<SecretName> = secrets.iter().map(|(n, _)| n.clone()).collect();
            t.prepare(&mut spec, &all, &mut errors);
        }
        errors.into_result().map_err(BotError::Validation)?;
        let (Some(id), Some(template)) = (id, template) else {
            unreachable!("errors were recorded for a missing id or template");
        };
        let now = Utc::now();
        let mut secret_names: Vec<String> = secrets.iter().map(|(n, _)| n.to_string()).collect();
        secret_names.sort();
        let row = BotRow {
            id: id.clone(),
            name,
            template: template.name().to_string(),
            spec: serde_json::to_value(&spec).expect("spec serializes"),
            secret_names,
            desired_state: if req.start {
                DesiredState::Running
            } else {
                DesiredState::Stopped
            },
            container_id: None,
            image_id: None,
            created_at: now,
            updated_at: now,
        };
        Ok(ValidCreate {
            id,
            row,
            template,
            secrets,
        })
    }

    async fn provision(
        &self,
        row: &BotRow,
        template: &'static dyn Template,
        secrets: &[(SecretName, SecretValue)],
        undo: &mut Undo<'_>,
    ) -> Result<BotView, BotError> {
        let id = &row.id;
        // Files left by a bot deleted while botmaker was down belong to nobody: refuse rather
        // than hand them to a new bot.
        let secrets_store = self.secrets_for(template);
        let secrets_dir = secrets_store.bot_dir(id);
        if tokio::fs::symlink_metadata(&secrets_dir).await.is_ok() {
            return Err(BotError::Leftover {
                id: id.to_string(),
                what: "secrets directory",
            });
        }
        let workspace = self.workspace_dir(id);
        if tokio::fs::symlink_metadata(&workspace).await.is_ok() {
            return Err(BotError::Leftover {
                id: id.to_string(),
                what: "workspace",
            });
        }

        undo.secrets = true;
        let (store, bot, values) = (secrets_store.clone(), id.clone(), secrets.to_vec());
        blocking(move || {
            store.ensure_bot_dir(&bot)?;
            for (name, value) in &values {
                store.set(&bot, name, value)?;
            }
            Ok::<_, BotError>(())
        })
        .await?;

        undo.workspace = true;
        let spec: BotSpec = spec_of(row)?;
        let names: Vec<SecretName> = secrets.iter().map(|(n, _)| n.clone()).collect();
        let rendered = template.render(&RenderInput {
            bot_id: id,
            name: &row.name,
            spec: &spec,
            secrets_dir: &secrets_dir,
            workspace_dir: &workspace,
            secret_names: &names,
        });
        write_workspace(&workspace, &rendered.files, template.owner()).await?;

        match self
            .inner
            .docker
            .create_container(id, &rendered.config)
            .await
        {
            Ok(_) => undo.container = true,
            Err(ContainerError::NotFound { .. }) => {
                return Err(BotError::ImageNotFound(spec.image.clone()));
            }
            // The name is taken: by a foreign container, or by an orphan of ours. Either way
            // it is not this create's to remove.
            Err(ContainerError::AlreadyExists { .. }) => {
                return Err(BotError::NameTaken(id.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        if row.desired_state == DesiredState::Running {
            self.inner.docker.start_container(id).await?;
        }
        self.refresh(row).await
    }

    /// Inspects the bot's container, records what it saw and returns the bot's view.
    async fn refresh(&self, row: &BotRow) -> Result<BotView, BotError> {
        let status = match self.inner.docker.container_status(&row.id).await {
            Ok(s) => s,
            Err(ContainerError::NotOwned { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let container_id = status.as_ref().map(|s| s.id.clone());
        let image_id = status.as_ref().map(|s| s.image_id.clone());
        if container_id != row.container_id || image_id != row.image_id {
            self.inner
                .store
                .set_container(&row.id, container_id.as_deref(), image_id.as_deref())
                .await?;
        }
        self.inner.fleet.record_status(&row.id, status.clone());
        let observed = self
            .inner
            .fleet
            .observe_status(&row.id, row.desired_state, status.as_ref());
        self.inner
            .fleet
            .publish_if_changed(&row.id, observed.clone());
        let mut row = row.clone();
        row.container_id = container_id;
        row.image_id = image_id;
        view_of(&row, observed)
    }

    async fn row(&self, id: &str) -> Result<(BotId, BotRow), BotError> {
        let bot = BotId::new(id).map_err(|_| BotError::NotFound(id.to_string()))?;
        let row = self
            .inner
            .store
            .get_bot(&bot)
            .await?
            .ok_or_else(|| BotError::NotFound(id.to_string()))?;
        Ok((bot, row))
    }

    /// One bot with its container's current state (one inspect).
    pub async fn get(&self, id: &str) -> Result<BotView, BotError> {
        let (_, row) = self.row(id).await?;
        self.refresh(&row).await
    }

    /// Every bot with its container state, from ONE Docker list call however many bots.
    pub async fn list(&self) -> Result<Vec<BotView>, BotError> {
        let (rows, containers) = tokio::try_join!(
            async { self.inner.store.list_bots().await.map_err(BotError::from) },
            async {
                self.inner
                    .docker
                    .list_managed_containers()
                    .await
                    .map_err(BotError::from)
            },
        )?;
        let by_bot: HashMap<&str, &ContainerInfo> =
            containers.iter().map(|c| (c.bot_id.as_str(), c)).collect();
        rows.iter()
            .map(|row| {
                let observed = self.inner.fleet.observe_info(
                    &row.id,
                    row.desired_state,
                    by_bot.get(row.id.as_str()).copied(),
                );
                view_of(row, observed)
            })
            .collect()
    }

    /// Starts the bot; recreates its container from the stored config if it is missing.
    pub async fn start(&self, id: &str) -> Result<BotView, BotError> {
        let (bot, mut row) = self.row(id).await?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        row.desired_state = DesiredState::Running;
        self.inner
            .store
            .set_desired_state(&bot, DesiredState::Running)
            .await?;
        match self.inner.docker.start_container(&bot).await {
            Ok(()) => {}
            Err(ContainerError::NotFound { .. }) => self.recreate(&row).await?,
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Stops the bot (SIGTERM, then SIGKILL after the grace period).
    pub async fn stop(&self, id: &str) -> Result<BotView, BotError> {
        let (bot, mut row) = self.row(id).await?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        row.desired_state = DesiredState::Stopped;
        self.inner
            .store
            .set_desired_state(&bot, DesiredState::Stopped)
            .await?;
        match self
            .inner
            .docker
            .stop_container(&bot, Some(self.inner.stop_grace))
            .await
        {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Restarts the bot's process in its existing container (config changes need `apply`).
    pub async fn restart(&self, id: &str) -> Result<BotView, BotError> {
        let (bot, mut row) = self.row(id).await?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        row.desired_state = DesiredState::Running;
        self.inner
            .store
            .set_desired_state(&bot, DesiredState::Running)
            .await?;
        match self
            .inner
            .docker
            .restart_container(&bot, Some(self.inner.stop_grace))
            .await
        {
            Ok(()) => {}
            Err(ContainerError::NotFound { .. }) => self.recreate(&row).await?,
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Recreates the container from the stored desired config (keeping secrets and
    /// workspace), so configuration changes take effect. Docker cannot edit a container.
    pub async fn apply(&self, id: &str) -> Result<BotView, BotError> {
        let (bot, row) = self.row(id).await?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        self.replace_container(&row, None).await?;
        self.refresh(&row).await
    }

    /// Changes a bot's configuration; with `apply` (the default) recreates its container.
    pub async fn update(&self, id: &str, req: UpdateBot) -> Result<BotView, BotError> {
        let (bot, old) = self.row(id).await?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        let template = template::lookup(&old.template)
            .ok_or_else(|| BotError::Store(corrupt(&format!("template of bot {bot}"))))?;
        let mut spec = spec_of(&old)?;
        let mut errors = FieldErrors::default();
        let mut row = old.clone();
        if let Some(name) = req.name {
            validate::check_name(&name, &mut errors);
            row.name = name;
        }
        if let Some(image) = req.image {
            spec.image = image;
        }
        if let Some(command) = req.command {
            validate::check_command(Some(&command), &mut errors);
            spec.command = Some(command).filter(|c| !c.is_empty());
        }
        if let Some(env) = req.env {
            validate::check_env(&env, &mut errors);
            spec.env = env;
        }
        if let Some(ports) = req.ports {
            validate::check_ports(&ports, &mut errors);
            spec.ports = ports;
        }
        if let Some(limits) = req.limits {
            validate::check_limits(&limits, &mut errors);
            spec.limits = limits;
        }
        if let Some(settings) = req.settings {
            spec.settings = settings;
        }
        let new_secrets = req.secrets.unwrap_or_default();
        let names = validate::check_secrets(&new_secrets, &mut errors);
        let mut all: Vec<SecretName> = old
            .secret_names
            .iter()
            .filter_map(|n| SecretName::new(n.clone()).ok())
            .collect();
        for n in &names {
            if !all.contains(n) {
                all.push(n.clone());
            }
        }
        template.prepare(&mut spec, &all, &mut errors);
        errors.into_result().map_err(BotError::Validation)?;
        if req.apply && !self.inner.docker.image_exists(&spec.image).await? {
            return Err(BotError::ImageNotFound(spec.image));
        }

        let store = self.secrets_for(template);
        let values: Vec<(SecretName, SecretValue)> = names
            .into_iter()
            .map(|n| {
                let v = SecretValue::from(new_secrets[n.as_str()].clone());
                (n, v)
            })
            .collect();
        let b = bot.clone();
        blocking(move || {
            for (n, v) in &values {
                store.set(&b, n, v)?;
            }
            Ok::<_, BotError>(())
        })
        .await?;
        let mut names: Vec<String> = all.iter().map(|n| n.to_string()).collect();
        names.sort();
        row.secret_names = names;
        row.spec = serde_json::to_value(&spec).expect("spec serializes");
        row.updated_at = Utc::now();
        self.inner.store.update_bot(&row).await?;
        if req.apply {
            if let Err(e) = self.replace_container(&row, Some(&old)).await {
                // Keep the stored config consistent with what runs.
                let _ = self.inner.store.update_bot(&old).await;
                return Err(e);
            }
        }
        self.inner.fleet.publish(&bot, "updated", None);
        self.refresh(&row).await
    }

    /// Removes the container and creates it again from `row`; if that fails and `fallback`
    /// is given, puts the fallback config back so the bot is not left without a container.
    async fn replace_container(
        &self,
        row: &BotRow,
        fallback: Option<&BotRow>,
    ) -> Result<(), BotError> {
        match self
            .inner
            .docker
            .remove_container(&row.id, Some(self.inner.stop_grace))
            .await
        {
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match self.recreate(row).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some(old) = fallback {
                    let _ = self
                        .inner
                        .docker
                        .remove_container(&row.id, Some(Duration::ZERO))
                        .await;
                    if let Err(e2) = self.recreate(old).await {
                        tracing::error!(bot = %row.id, error = %e2, "could not restore the previous container");
                    }
                }
                Err(e)
            }
        }
    }

    /// Creates (and, if desired, starts) the container of an existing bot from its stored
    /// config, rewriting the template's workspace files.
    async fn recreate(&self, row: &BotRow) -> Result<(), BotError> {
        let template = template::lookup(&row.template)
            .ok_or_else(|| BotError::Store(corrupt(&format!("template of bot {}", row.id))))?;
        let spec = spec_of(row)?;
        let names: Vec<SecretName> = row
            .secret_names
            .iter()
            .filter_map(|n| SecretName::new(n.clone()).ok())
            .collect();
        let secrets_store = self.secrets_for(template);
        let (s, b) = (secrets_store.clone(), row.id.clone());
        let secrets_dir = blocking(move || Ok::<_, BotError>(s.ensure_bot_dir(&b)?)).await?;
        let workspace = self.workspace_dir(&row.id);
        let rendered = template.render(&RenderInput {
            bot_id: &row.id,
            name: &row.name,
            spec: &spec,
            secrets_dir: &secrets_dir,
            workspace_dir: &workspace,
            secret_names: &names,
        });
        write_workspace(&workspace, &rendered.files, template.owner()).await?;
        match self
            .inner
            .docker
            .create_container(&row.id, &rendered.config)
            .await
        {
            Ok(_) => {}
            Err(ContainerError::NotFound { .. }) => {
                return Err(BotError::ImageNotFound(spec.image));
            }
            Err(ContainerError::AlreadyExists { .. }) => {
                return Err(BotError::NameTaken(row.id.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        if row.desired_state == DesiredState::Running {
            self.inner.docker.start_container(&row.id).await?;
        }
        Ok(())
    }

    /// Stops and removes the bot's container, deletes its secrets and workspace, then its
    /// record. A container that already vanished is fine.
    pub async fn delete(&self, id: &str) -> Result<(), BotError> {
        let (bot, row) = self.row(id).await?;
        let _registry = self.inner.registry.read().await;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        match self
            .inner
            .docker
            .remove_container(&bot, Some(self.inner.stop_grace))
            .await
        {
            // A container of another owner holding the name is not ours to remove.
            Ok(_) | Err(ContainerError::NotOwned { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let template = template::lookup(&row.template).unwrap_or(&template::Generic);
        let (store, b) = (self.secrets_for(template), bot.clone());
        blocking(move || Ok::<_, BotError>(store.delete_all(&b).map(drop)?)).await?;
        remove_dir(&self.workspace_dir(&bot)).await?;
        self.inner.store.delete_bot(&bot).await?;
        self.inner.fleet.forget(&bot);
        self.inner.fleet.publish(&bot, "deleted", None);
        self.inner
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&bot);
        Ok(())
    }

    /// The names of the bot's secrets (never the values).
    pub async fn secret_names(&self, id: &str) -> Result<Vec<String>, BotError> {
        Ok(self.row(id).await?.1.secret_names)
    }

    /// Sets (creates or rotates) one secret. The file is replaced atomically and shows up in
    /// the running container through its directory mount, with no restart.
    pub async fn set_secret(
        &self,
        id: &str,
        name: &str,
        value: SecretValue,
    ) -> Result<(), BotError> {
        let (bot, row) = self.row(id).await?;
        let mut errors = FieldErrors::default();
        let name = SecretName::new(name.to_string())
            .map_err(|e| errors.add("name", e.to_string()))
            .ok();
        if value.expose().len() > validate::MAX_SECRET_LEN {
            errors.add(
                "value",
                format!("must be at most {} bytes", validate::MAX_SECRET_LEN),
            );
        }
        errors.into_result().map_err(BotError::Validation)?;
        let name = name.expect("validated");
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        let template = template::lookup(&row.template).unwrap_or(&template::Generic);
        let (store, b, n) = (self.secrets_for(template), bot.clone(), name.clone());
        blocking(move || Ok::<_, BotError>(store.set(&b, &n, &value)?)).await?;
        let mut names = row.secret_names.clone();
        if !names.iter().any(|x| x == name.as_str()) {
            names.push(name.to_string());
            names.sort();
            self.inner.store.set_secret_names(&bot, &names).await?;
        }
        Ok(())
    }

    /// Deletes one secret; `false` if the bot had no such secret.
    pub async fn delete_secret(&self, id: &str, name: &str) -> Result<bool, BotError> {
        let (bot, row) = self.row(id).await?;
        let Ok(name) = SecretName::new(name.to_string()) else {
            return Ok(false);
        };
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        let (store, b, n) = (self.inner.secrets.clone(), bot.clone(), name.clone());
        let existed = blocking(move || Ok::<_, BotError>(store.delete(&b, &n)?)).await?;
        let names: Vec<String> = row
            .secret_names
            .iter()
            .filter(|x| x.as_str() != name.as_str())
            .cloned()
            .collect();
        if names.len() != row.secret_names.len() {
            self.inner.store.set_secret_names(&bot, &names).await?;
        }
        Ok(existed)
    }

    /// The bot's log lines (see [`DockerService::logs`]).
    pub async fn logs(
        &self,
        id: &str,
        opts: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, ContainerError>>, BotError> {
        let (bot, _) = self.row(id).await?;
        Ok(self.inner.docker.logs(&bot, opts))
    }

    /// Lists orphans without changing anything.
    pub async fn orphans(&self) -> Result<Orphans, BotError> {
        let rows = self.inner.store.list_bots().await?;
        let known: std::collections::HashSet<String> =
            rows.iter().map(|r| r.id.to_string()).collect();
        let containers = self.inner.docker.list_managed_containers().await?;
        let secrets = self.inner.secrets.clone();
        let secret_dirs = blocking(move || Ok::<_, BotError>(secrets.list_bot_dirs()?)).await?;
        let workspace_dirs = list_dirs(&self.inner.workspaces_root).await?;
        let mut o = Orphans {
            containers: containers
                .into_iter()
                .map(|c| c.bot_id)
                .filter(|b| !known.contains(b))
                .collect(),
            secrets: secret_dirs
                .into_iter()
                .map(|b| b.to_string())
                .filter(|b| !known.contains(b))
                .collect(),
            workspaces: workspace_dirs
                .into_iter()
                .filter(|b| !known.contains(b))
                .collect(),
        };
        o.containers.sort();
        o.secrets.sort();
        o.workspaces.sort();
        Ok(o)
    }

    /// Removes every orphan and reports what was removed. Holds the registry exclusively so
    /// that a bot being created is never taken for an orphan.
    pub async fn cleanup(&self) -> Result<Orphans, BotError> {
        let _registry = self.inner.registry.write().await;
        let found = self.orphans().await?;
        let mut removed = Orphans::default();
        for id in &found.containers {
            let Ok(bot) = BotId::new(id.clone()) else {
                continue;
            };
            match self
                .inner
                .docker
                .remove_container(&bot, Some(Duration::ZERO))
                .await
            {
                Ok(_) => removed.containers.push(id.clone()),
                Err(e) => {
                    tracing::warn!(bot = %id, error = %e, "could not remove orphan container")
                }
            }
        }
        for id in &found.secrets {
            let Ok(bot) = BotId::new(id.clone()) else {
                continue;
            };
            let store = self.inner.secrets.clone();
            match blocking(move || Ok::<_, BotError>(store.delete_all(&bot)?)).await {
                Ok(_) => removed.secrets.push(id.clone()),
                Err(e) => tracing::warn!(bot = %id, error = %e, "could not remove orphan secrets"),
            }
        }
        for id in &found.workspaces {
            match remove_dir(&self.inner.workspaces_root.join(id)).await {
                Ok(()) => removed.workspaces.push(id.clone()),
                Err(e) => {
                    tracing::warn!(bot = %id, error = %e, "could not remove orphan workspace")
                }
            }
        }
        Ok(removed)
    }
}

/// A create request that passed validation.
struct ValidCreate {
    id: BotId,
    row: BotRow,
    template: &'static dyn Template,
    secrets: Vec<(SecretName, SecretValue)>,
}

/// Undoes a partial create, newest step first. Each step is recorded only once taken, and
/// only what this create made is undone: a container someone else owns is never touched.
struct Undo<'a> {
    service: &'a BotService,
    id: &'a BotId,
    container: bool,
    workspace: bool,
    secrets: bool,
}

impl Undo<'_> {
    async fn run(self) {
        let s = &self.service.inner;
        if self.container {
            if let Err(e) = s
                .docker
                .remove_container(self.id, Some(Duration::ZERO))
                .await
            {
                tracing::error!(bot = %self.id, error = %e, "rollback: could not remove container");
            }
        }
        if self.workspace {
            if let Err(e) = remove_dir(&self.service.workspace_dir(self.id)).await {
                tracing::error!(bot = %self.id, error = %e, "rollback: could not remove workspace");
            }
        }
        if self.secrets {
            let (store, id) = (s.secrets.clone(), self.id.clone());
            if let Err(e) = blocking(move || Ok::<_, BotError>(store.delete_all(&id)?)).await {
                tracing::error!(bot = %self.id, error = %e, "rollback: could not remove secrets");
            }
        }
        if let Err(e) = s.store.delete_bot(self.id).await {
            tracing::error!(bot = %self.id, error = %e, "rollback: could not delete bot record");
        }
        s.fleet.forget(self.id);
    }
}

fn check_probe(p: &super::spec::HttpProbe, errors: &mut FieldErrors) {
    if p.port == 0 {
        errors.add("health_check.port", "must be 1-65535");
    }
    if !p.path.starts_with('/') || p.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            "health_check.path",
            "must be an absolute URL path like /healthz",
        );
    }
    if p.interval_secs == 0 {
        errors.add("health_check.interval_secs", "must be at least 1");
    }
}

fn spec_of(row: &BotRow) -> Result<BotSpec, BotError> {
    serde_json::from_value(row.spec.clone())
        .map_err(|_| BotError::Store(corrupt(&format!("spec of bot {}", row.id))))
}

fn corrupt(what: &str) -> crate::store::StoreError {
    crate::store::StoreError::Corrupt {
        what: what.to_string(),
    }
}

fn view_of(row: &BotRow, observed: Observed) -> Result<BotView, BotError> {
    Ok(BotView::new(row, spec_of(row)?, observed))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BotError> + Send + 'static,
) -> Result<T, BotError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Writes the template's files into a fresh (or existing) workspace: directory 0700, owned
/// by the container user when the template has one, so the bot can write its state there.
async fn write_workspace(
    dir: &Path,
    files: &[super::template::WorkspaceFile],
    owner: Option<(u32, u32)>,
) -> Result<(), BotError> {
    let dir = dir.to_path_buf();
    let files = files.to_vec();
    blocking(move || {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| BotError::Io { op, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", &dir))?;
        let chown = |p: &Path| match owner {
            Some((uid, gid)) => {
                std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io("chown", p))
            }
            None => Ok(()),
        };
        chown(&dir)?;
        for f in &files {
            let path = dir.join(&f.path);
            // Template paths are relative and fixed; still, never write outside the workspace.
            if f.path.is_absolute()
                || f.path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(BotError::Io {
                    op: "write",
                    path,
                    source: std::io::Error::other("path escapes the workspace"),
                });
            }
            if let Some(parent) = path.parent() {
                let mut created = Vec::new();
                let mut p = parent;
                while p != dir && !p.exists() {
                    created.push(p.to_path_buf());
                    p = p.parent().unwrap_or(&dir);
                }
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
                for c in created {
                    chown(&c)?;
                }
            }
            std::fs::write(&path, &f.contents).map_err(io("write", &path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io("set permissions of", &path))?;
            chown(&path)?;
        }
        Ok(())
    })
    .await
}

async fn remove_dir(dir: &Path) -> Result<(), BotError> {
    match tokio::fs::symlink_metadata(dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            tokio::fs::remove_file(dir)
                .await
                .map_err(|source| BotError::Io {
                    op: "remove",
                    path: dir.to_path_buf(),
                    source,
                })
        }
        _ => tokio::fs::remove_dir_all(dir)
            .await
            .map_err(|source| BotError::Io {
                op: "remove",
                path: dir.to_path_buf(),
                source,
            }),
    }
}

async fn list_dirs(root: &Path) -> Result<Vec<String>, BotError> {
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(root).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(BotError::Io {
                op: "list",
                path: root.to_path_buf(),
                source,
            });
        }
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        if let Some(name) = e.file_name().to_str() {
            if BotId::new(name).is_ok() {
                out.push(name.to_string());
            }
        }
    }
    Ok(out)
}
