//! `BotService`: every bot operation, from validated request to Docker, disk and database, with
//! one rule for failures: an operation that fails leaves the bot as it was (a create that
//! fails leaves nothing behind).
//!
//! Concurrency: every operation that changes a bot takes the bot's lock BEFORE it reads the
//! bot's row, so it acts on what the previous operation left, never on a stale copy; a caller
//! that gives up while queued for the lock changes nothing, and once the lock is held the
//! operation runs as a task of its own, so a client that disconnects or times out cannot cut
//! a multi-step change in half. Reads (`get`, `list`) take no lock.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Serialize;
use tokio::sync::{OwnedMutexGuard, RwLock};

use super::cache::BotCache;
use super::error::BotError;
use super::images::{ImageIds, drifted};
use super::observed::{BotEventKind, Fleet};
use super::spec::{BotSpec, CreateBot, DEFAULT_TEMPLATE, UpdateBot};
use super::template::{self, RenderInput, TEMPLATE_NAMES, Template};
use super::templates;
use super::validate::{self, FieldErrors};
use super::view::{BotView, spec_of, view_of};
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

/// What the server allows bots to do, beyond what every bot may.
#[derive(Debug, Clone, Copy, Default)]
pub struct BotPolicy {
    /// Whether a bot may use the host's network stack (`network: "host"`).
    pub allow_host_network: bool,
}

/// Longest wait for another operation on the same bot to finish before giving up with
/// `BOT_BUSY` (nothing done): shorter than the HTTP request timeout, so a request queued
/// behind a stuck operation gets a clear answer instead of a timeout of unknown outcome.
pub const LOCK_WAIT_TIMEOUT: Duration = Duration::from_secs(40);

/// How a bot's container may differ from its row after a call Docker did not answer: the
/// daemon may still carry out a request whose answer never came. The reconciler settles such
/// bots as soon as Docker answers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unsettled {
    /// Whether it runs may differ from `desired_state` (or the container may be gone).
    State,
    /// The container may be missing or made from another config: recreate it from the row.
    Container,
}

/// How long a log read may take in all: a daemon that answers slowly must not keep the
/// request waiting until the HTTP timeout.
pub const LOG_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Rows and rendered views, trusted while the reconciler keeps it synced.
    cache: BotCache,
    locks: Mutex<HashMap<BotId, BotLock>>,
    /// Creates and deletes hold it shared; orphan cleanup holds it exclusively, so it never
    /// mistakes a bot being created for an orphan.
    registry: Arc<RwLock<()>>,
    stop_grace: Duration,
    policy: BotPolicy,
    unsettled: Mutex<HashMap<BotId, Unsettled>>,
    /// The LLM key proxy's state (see [`BotService::with_llm`]).
    llm: Option<crate::llm::LlmService>,
    /// What configured image references resolve to, for drift.
    images: ImageIds,
}

/// One bot's lock.
type BotLock = Arc<tokio::sync::Mutex<()>>;
/// A held bot lock.
type BotGuard = OwnedMutexGuard<()>;

mod backup;
mod create;
mod exec;
mod files;
mod image_facts;
mod lifecycle;
mod llm;
mod orphans;
mod placement;
mod policy;
mod recovery;
mod run_as;
mod secrets;
mod upgrade;

pub use backup::MAX_IMPORT_BYTES;
pub use exec::{
    DEFAULT_EXEC_TIMEOUT_SECS, EXEC_OUTPUT_CAP, ExecOutcome, MAX_EXEC_ARGS, MAX_EXEC_ARGV_BYTES,
    MAX_EXEC_ENV, MAX_EXEC_TIMEOUT_SECS, MAX_EXEC_USER_LEN, MAX_EXEC_WORKDIR_LEN, check_exec,
    check_timeout,
};
use files::{list_dirs, remove_dir, write_workspace};
pub use orphans::Orphans;
pub use policy::SecretChange;
pub use recovery::Recovered;

impl BotService {
    /// A service over the given parts.
    pub fn new(
        store: Store,
        docker: DockerService,
        paths: BotPaths,
        fleet: Arc<Fleet>,
        stop_grace: Duration,
        policy: BotPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                docker,
                secrets: SecretsStore::new(paths.secrets_root),
                workspaces_root: paths.workspaces_root,
                fleet,
                cache: BotCache::new(),
                locks: Mutex::default(),
                registry: Arc::new(RwLock::new(())),
                stop_grace,
                policy,
                unsettled: Mutex::default(),
                llm: None,
                images: ImageIds::default(),
            }),
        }
    }

    /// The observed-state cache shared with the reconciler.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.inner.fleet
    }

    /// The watch cache the reads answer from (see [`BotCache`]).
    pub fn cache(&self) -> &BotCache {
        &self.inner.cache
    }

    /// The Docker service.
    pub fn docker(&self) -> &DockerService {
        &self.inner.docker
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The cache of what configured image references resolve to (for drift).
    pub fn images(&self) -> &ImageIds {
        &self.inner.images
    }

    /// Marks the views whose container runs another image than their configured reference
    /// names now. One inspect per uncached reference, none for cached ones.
    async fn mark_drift(&self, views: &mut [BotView]) {
        let refs: Vec<String> = views
            .iter()
            .filter(|v| v.observed.image_id.is_some())
            .map(|v| v.image.clone())
            .collect();
        if refs.is_empty() {
            return;
        }
        let resolved = self
            .inner
            .images
            .resolve(&self.inner.docker, refs.iter().map(String::as_str))
            .await;
        for v in views {
            v.image_drift = drifted(v.observed.image_id.as_deref(), resolved.get(&v.image));
        }
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, HashMap<BotId, BotLock>> {
        self.inner.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the bot's lock. A delete drops the bot's entry from the map while holding it, so
    /// a waiter that wakes up holding a lock no longer in the map tries again: two holders of
    /// different locks for one bot would not exclude each other.
    async fn lock_bot(&self, id: &BotId) -> BotGuard {
        loop {
            let lock = self.locks().entry(id.clone()).or_default().clone();
            let guard = lock.clone().lock_owned().await;
            if self.locks().get(id).is_some_and(|l| Arc::ptr_eq(l, &lock)) {
                return guard;
            }
        }
    }

    /// Whether an operation holds the bot's lock right now: its own inspect, made before it
    /// lets go, will show what the events it causes report.
    pub(crate) fn busy(&self, id: &BotId) -> bool {
        self.locks().get(id).is_some_and(|l| l.try_lock().is_err())
    }

    /// Waits until the operation holding the bot's lock (if any) has let go. Adds no entry
    /// for a bot without one (a deleted bot's would stay in the map).
    pub(crate) async fn operation_done(&self, id: &BotId) {
        let lock = self.locks().get(id).cloned();
        if let Some(lock) = lock {
            drop(lock.lock().await);
        }
    }

    /// Takes the bot's lock, or fails with `BOT_BUSY` after [`LOCK_WAIT_TIMEOUT`].
    async fn lock_bot_bounded(&self, id: &BotId) -> Result<BotGuard, BotError> {
        tokio::time::timeout(LOCK_WAIT_TIMEOUT, self.lock_bot(id))
            .await
            .map_err(|_| BotError::Busy(id.to_string()))
    }

    /// Records that the bot may not be as its row says (see [`Unsettled`]).
    pub(crate) fn unsettle(&self, id: &BotId, how: Unsettled) {
        let mut map = self
            .inner
            .unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(id.clone()).or_insert(how);
        *entry = (*entry).max(how);
    }

    /// The bots left unsettled by calls Docker did not answer, forgetting them.
    pub(crate) fn take_unsettled(&self) -> Vec<(BotId, Unsettled)> {
        let mut map = self
            .inner
            .unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.drain().collect()
    }

    /// Forgets the lock of a bot that no longer exists (the guard stays held until dropped).
    fn drop_lock(&self, id: &BotId, guard: &BotGuard) {
        let mut locks = self.locks();
        if locks
            .get(id)
            .is_some_and(|l| Arc::ptr_eq(l, OwnedMutexGuard::mutex(guard)))
        {
            locks.remove(id);
        }
    }

    /// Runs `op` on the bot's current row with the bot's lock held.
    ///
    /// The lock is awaited, and the row read, in the caller's future: a caller that gives up
    /// while queued changes nothing. Once the lock is held, `op` runs as a task of its own and
    /// finishes even if the caller goes away (a client that disconnects, a request timeout),
    /// so no multi-step change is ever cut in half by a cancellation.
    async fn with_bot<T, F, Fut>(&self, id: &str, op: F) -> Result<T, BotError>
    where
        T: Send + 'static,
        F: FnOnce(BotService, BotRow) -> Fut,
        Fut: Future<Output = Result<T, BotError>> + Send + 'static,
    {
        let bot = BotId::new(id).map_err(|_| BotError::NotFound(id.to_string()))?;
        let guard = self.lock_bot_bounded(&bot).await?;
        let row = match self.inner.store.get_bot(&bot).await? {
            Some(row) => row,
            None => {
                self.drop_lock(&bot, &guard);
                return Err(BotError::NotFound(id.to_string()));
            }
        };
        let op = op(self.clone(), row);
        let s = self.clone();
        run_to_completion(async move {
            let result = op.await;
            if result.as_ref().is_err_and(BotError::is_outage) {
                s.unsettle(&bot, Unsettled::State);
            }
            drop(guard);
            result
        })
        .await
    }

    /// The secrets store for a bot made from `template`. Files take the owner of their bot
    /// directory, which [`BotService::hand_over`] gives to the user the container runs as.
    fn secrets_for(&self, _template: &dyn Template) -> SecretsStore {
        self.inner.secrets.clone()
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
            let found = self
                .inner
                .store
                .set_container(&row.id, container_id.as_deref(), image_id.as_deref())
                .await?;
            must_exist(found, &row.id)?;
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
        let bound = status.map(|s| s.ports).unwrap_or_default();
        Ok(view_of(&row, observed)?.with_bound_ports(&bound))
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

    /// One bot with its container's state: from the watch cache while it is fresh (no Docker
    /// call), otherwise from one inspect.
    pub async fn get(&self, id: &str) -> Result<BotView, BotError> {
        if self.inner.cache.is_fresh() {
            let bot = BotId::new(id).map_err(|_| BotError::NotFound(id.to_string()))?;
            self.inner.cache.refresh(&self.inner.store).await?;
            let mut view = self
                .inner
                .cache
                .get(&bot, &self.inner.fleet)
                .ok_or_else(|| BotError::NotFound(id.to_string()))?;
            self.mark_drift(std::slice::from_mut(&mut view)).await;
            return Ok(view);
        }
        self.inspect(id).await
    }

    /// One bot after a fresh inspect of its container, recorded for every later read: what
    /// the reconciler does when an event says the container changed.
    pub async fn inspect(&self, id: &str) -> Result<BotView, BotError> {
        let (_, row) = self.row(id).await?;
        let mut view = self.refresh(&row).await?;
        self.mark_drift(std::slice::from_mut(&mut view)).await;
        Ok(view)
    }

    /// [`BotService::inspect`] of a row already read.
    pub(crate) async fn inspect_row(&self, row: &BotRow) -> Result<BotView, BotError> {
        self.refresh(row).await
    }

    /// Every bot with its container state: from the watch cache while it is fresh, otherwise
    /// from ONE Docker list call however many bots.
    pub async fn list(&self) -> Result<Vec<BotView>, BotError> {
        if self.inner.cache.is_fresh() {
            self.inner.cache.refresh(&self.inner.store).await?;
            let mut views = self.inner.cache.list(&self.inner.fleet);
            self.mark_drift(&mut views).await;
            return Ok(views);
        }
        self.list_live().await
    }

    /// [`BotService::list`] as one JSON document per bot, in order: from the cache these are
    /// shared pieces rendered once per change, so an answer costs no copy of the fleet.
    pub async fn list_json(&self) -> Result<crate::bots::cache::ListPieces, BotError> {
        if self.inner.cache.is_fresh() {
            self.inner.cache.refresh(&self.inner.store).await?;
            // Drift from the per-reference image cache: no Docker call unless a reference is
            // new or an image event cleared it.
            let references = self.inner.cache.image_references();
            let resolved = self
                .inner
                .images
                .resolve(&self.inner.docker, references.iter().map(String::as_str))
                .await;
            return Ok(self.inner.cache.list_json(&self.inner.fleet, &resolved));
        }
        let views = self.list_live().await?;
        views
            .iter()
            .map(|v| {
                serde_json::to_vec(v)
                    .map(bytes::Bytes::from)
                    .map_err(|_| BotError::Store(corrupt(&format!("view of bot {}", v.id))))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Into::into)
    }

    /// Every bot with its container state from ONE Docker list call, whatever the cache says.
    pub async fn list_live(&self) -> Result<Vec<BotView>, BotError> {
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
        // A container parked by an upgrade carries the bot's label too; the bot's own name
        // is the one that counts.
        let by_bot: HashMap<&str, &ContainerInfo> = containers
            .iter()
            .filter(|c| is_current(c))
            .map(|c| (c.bot_id.as_str(), c))
            .collect();
        let mut views = rows
            .iter()
            .map(|row| {
                let info = by_bot.get(row.id.as_str()).copied();
                let observed = self
                    .inner
                    .fleet
                    .observe_info(&row.id, row.desired_state, info);
                let bound = info.map(|c| c.ports.as_slice()).unwrap_or_default();
                Ok::<_, BotError>(view_of(row, observed)?.with_bound_ports(bound))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.mark_drift(&mut views).await;
        Ok(views)
    }

    /// The bot's existing log lines, at most [`LOG_READ_TIMEOUT`] in the making. A bot without
    /// a container has none; a daemon that is down or does not answer is an error, never an
    /// empty answer.
    pub async fn log_lines(&self, id: &str, opts: &LogOptions) -> Result<Vec<LogLine>, BotError> {
        let opts = LogOptions {
            follow: false,
            ..opts.clone()
        };
        let mut stream = self.logs(id, &opts).await?;
        let read = async {
            let mut lines = Vec::new();
            while let Some(line) = stream.next().await {
                match line {
                    Ok(line) => lines.push(line),
                    Err(ContainerError::NotFound { .. }) if lines.is_empty() => break,
                    Err(e) => return Err(BotError::from(e)),
                }
            }
            Ok(lines)
        };
        match tokio::time::timeout(LOG_READ_TIMEOUT, read).await {
            Ok(r) => r,
            Err(_) => Err(BotError::from(ContainerError::timeout(
                self.inner.docker.host(),
                crate::docker::Op::Logs,
                LOG_READ_TIMEOUT,
            ))),
        }
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

/// Whether `c` is its bot's current container (named `botmaker-<id>`), not one an upgrade
/// parked.
pub fn is_current(c: &ContainerInfo) -> bool {
    BotId::new(c.bot_id.as_str()).is_ok_and(|b| c.name == crate::docker::container_name(&b))
}

/// A store write that matched no row means the bot is gone: `NOT_FOUND`, never a silent
/// success.
fn must_exist(found: bool, id: &BotId) -> Result<(), BotError> {
    if found {
        Ok(())
    } else {
        Err(BotError::NotFound(id.to_string()))
    }
}

fn corrupt(what: &str) -> crate::store::StoreError {
    crate::store::StoreError::Corrupt {
        what: what.to_string(),
    }
}

/// Runs `fut` as a task of its own and waits for it: dropping the waiter does not stop it.
async fn run_to_completion<T: Send + 'static>(
    fut: impl Future<Output = Result<T, BotError>> + Send + 'static,
) -> Result<T, BotError> {
    match tokio::spawn(fut).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(BotError::ShuttingDown),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BotError> + Send + 'static,
) -> Result<T, BotError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
