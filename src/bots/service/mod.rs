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

mod create;
mod files;
mod lifecycle;
mod orphans;
mod policy;
mod secrets;

use files::{list_dirs, remove_dir, write_workspace};
pub use orphans::Orphans;
pub use policy::SecretChange;

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

    /// The bot's log lines (see [`DockerService::logs`]).
    pub async fn logs(
        &self,
        id: &str,
        opts: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, ContainerError>>, BotError> {
        let (bot, _) = self.row(id).await?;
        Ok(self.inner.docker.logs(&bot, opts))
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
