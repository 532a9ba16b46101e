//! What backups take from the bots, under their locks, and importing one bot from another
//! botmaker's archive.
//!
//! A full backup holds the registry exclusively (no create, delete or cleanup runs) and every
//! bot's lock while it copies the database and reads the secrets, so rows and secret files are
//! of one moment; the workspaces, which bots write as they run, are read afterwards.

use std::io::Read;

use super::create::Undo;
use super::*;
use crate::backup::archive::BotRecord;
use crate::backup::manifest::BackupKind;
use crate::backup::reader::{self, Target};
use crate::backup::workspace::WorkspaceWriter;
use crate::backup::{BackupError, BotSnapshot, FleetSnapshot};
use crate::store::SCHEMA_VERSION;

/// Largest archive `POST /api/bots/import` takes (it is verified in memory before anything is
/// written).
pub const MAX_IMPORT_BYTES: usize = 1 << 30;

impl BotService {
    /// The workspaces directory (backups read it).
    pub fn workspaces_root(&self) -> &Path {
        &self.inner.workspaces_root
    }

    /// The registry and every bot's secrets, of one moment (see the module doc).
    pub async fn fleet_snapshot(&self) -> Result<FleetSnapshot, BotError> {
        let _registry = self.inner.registry.write().await;
        let mut ids: Vec<BotId> = self
            .inner
            .store
            .list_bots()
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        // In id order, as every taker of several locks must, so two never wait on each other.
        let mut guards = Vec::with_capacity(ids.len());
        for id in &ids {
            guards.push(self.lock_bot_bounded(id).await?);
        }
        let registry = self.inner.store.snapshot().await?;
        let rows = self.inner.store.list_bots().await?;
        let mut bots = Vec::with_capacity(rows.len());
        for row in rows {
            bots.push(self.snapshot_of(row).await?);
        }
        // Provider keys change under the LLM service's own lock, not the bots': a key replaced
        // meanwhile is archived old or new, either a working key for the provider.
        let llm_provider_keys = match self.llm() {
            Some(llm) => llm.provider_keys().await.map_err(super::llm::bot_error)?,
            None => Vec::new(),
        };
        drop(guards);
        Ok(FleetSnapshot {
            registry,
            schema_version: SCHEMA_VERSION,
            bots,
            llm_provider_keys,
            // The caller adds the channels' (bots know nothing of alerts).
            notification_secrets: Vec::new(),
        })
    }

    /// One bot's row and secrets, under its lock.
    pub async fn bot_snapshot(&self, id: &str) -> Result<BotSnapshot, BotError> {
        self.with_bot(id, |s, row| async move {
            // Its workspace is a volume on the node that runs it: the host's empty directory
            // must not pass for it.
            s.require_workspace_on_host(
                &spec_of(&row)?,
                "backing up the workspace of a bot placed on a node (a volume on that node)",
            )?;
            s.snapshot_of(row).await
        })
        .await
    }

    async fn snapshot_of(&self, row: BotRow) -> Result<BotSnapshot, BotError> {
        let template = templates::lookup(&row.template).unwrap_or(&template::Generic);
        let (store, bot) = (self.secrets_for(template), row.id.clone());
        let secrets = blocking(move || {
            let mut values = Vec::new();
            for name in store.list(&bot)? {
                if let Some(v) = store.get(&bot, &name)? {
                    values.push((name, v));
                }
            }
            Ok::<_, BotError>(values)
        })
        .await?;
        Ok(BotSnapshot { row, secrets })
    }

    /// Creates a bot from a single-bot backup (`botmaker bots backup` of another botmaker):
    /// its record, secrets and workspace, then its container, started if it was running. The
    /// archive is verified whole before anything is written; an id already in use is refused;
    /// a failure half-way is undone like a failed create.
    pub async fn import(&self, archive: Vec<u8>) -> Result<BotView, BotError> {
        let archive = Arc::new(archive);
        let a = archive.clone();
        let (record, secrets) = blocking(move || {
            let manifest = reader::verify(a.as_slice(), BackupKind::Bot)?;
            let (record, secrets) = read_record(a.as_slice())?;
            if manifest.bots.first().map(|b| b.id.as_str()) != Some(record.id.as_str()) {
                return Err(BackupError::Corrupt(
                    "its bot record and its manifest name different bots".into(),
                )
                .into());
            }
            Ok::<_, BotError>((record, secrets))
        })
        .await?;
        let (row, template) = self.validate_import(record, &secrets).await?;
        let registry = self.inner.registry.clone().read_owned().await;
        let guard = self.lock_bot_bounded(&row.id).await?;
        let s = self.clone();
        run_to_completion(async move {
            let _registry = registry;
            let id = row.id.clone();
            let result = s.import_locked(row, template, secrets, archive).await;
            if result.is_err() && matches!(s.inner.store.get_bot(&id).await, Ok(None)) {
                s.drop_lock(&id, &guard);
            }
            result
        })
        .await
    }

    /// The row an imported record becomes here, checked as a create would be.
    async fn validate_import(
        &self,
        record: BotRecord,
        secrets: &[(SecretName, SecretValue)],
    ) -> Result<(BotRow, &'static dyn Template), BotError> {
        let bad = |what: String| BotError::Backup(BackupError::Corrupt(what));
        let id = BotId::new(record.id.clone())
            .map_err(|e| bad(format!("its bot id {:?} is invalid: {e}", record.id)))?;
        let template = templates::lookup(&record.template).ok_or_else(|| {
            BotError::Backup(BackupError::Unsupported(format!(
                "the bot uses template {:?}, which this botmaker does not have",
                record.template
            )))
        })?;
        let spec: BotSpec = serde_json::from_value(record.spec.clone())
            .map_err(|e| bad(format!("the bot's spec is unreadable: {e}")))?;
        let mut errors = FieldErrors::default();
        validate::check_name(&record.name, &mut errors);
        if let Some(n) = &spec.network {
            validate::check_network(n, self.inner.policy.allow_host_network, &mut errors);
        }
        // Placed on a node of another swarm (or on Swarm, restored to the Docker backend).
        if let Some(p) = &spec.placement {
            validate::check_placement(p, &mut errors);
        }
        self.check_placement_fits(spec.placement.as_ref(), &mut errors)
            .await?;
        errors.into_result().map_err(BotError::Validation)?;
        let mut names: Vec<String> = secrets.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        if !self.inner.docker.image_exists(&spec.image).await? {
            return Err(BotError::ImageNotFound(spec.image));
        }
        let now = Utc::now();
        let row = BotRow {
            id,
            name: record.name,
            template: template.name().to_string(),
            spec: record.spec,
            secret_names: names,
            desired_state: record.desired_state,
            container_id: None,
            image_id: None,
            created_at: record.created_at,
            updated_at: now,
        };
        Ok((row, template))
    }

    async fn import_locked(
        &self,
        row: BotRow,
        template: &'static dyn Template,
        secrets: Vec<(SecretName, SecretValue)>,
        archive: Arc<Vec<u8>>,
    ) -> Result<BotView, BotError> {
        let id = row.id.clone();
        if self.inner.store.get_bot(&id).await?.is_some() {
            return Err(BotError::AlreadyExists(id.to_string()));
        }
        self.refuse_leftovers(&id, template).await?;
        self.inner.store.begin_create(&row).await?;
        let mut undo = Undo {
            service: self,
            id: &id,
            container: false,
            workspace: false,
            secrets: false,
            outage: false,
        };
        let made = async {
            undo.secrets = true;
            let (store, bot) = (self.secrets_for(template), id.clone());
            blocking(move || {
                store.ensure_bot_dir(&bot)?;
                for (name, value) in &secrets {
                    store.set(&bot, name, value)?;
                }
                Ok::<_, BotError>(())
            })
            .await?;
            undo.workspace = true;
            let (root, bot, owner) = (self.workspace_dir(&id), id.clone(), template.owner());
            blocking(move || {
                let root = root
                    .parent()
                    .expect("a workspace has a parent")
                    .to_path_buf();
                let mut ws = WorkspaceWriter::new(&root)?;
                reader::for_each(archive.as_slice(), |target, info, data| match target {
                    Target::Workspace(b, rel) if b == bot => ws.write(&b, &rel, info, data, owner),
                    _ => Ok(()),
                })?;
                Ok::<_, BotError>(())
            })
            .await?;
            undo.container = true;
            self.create_container_from(&row).await?;
            if row.desired_state == DesiredState::Running {
                self.inner.docker.start_container(&id).await?;
            }
            self.inner.store.end_operation(&id).await?;
            self.refresh(&row).await
        }
        .await;
        match made {
            Ok(view) => {
                tracing::info!(bot = %id, "imported a bot from a backup");
                self.inner
                    .fleet
                    .publish(&id, BotEventKind::Created, Some(view.observed.clone()));
                Ok(view)
            }
            Err(e) => {
                undo.outage = e.is_outage();
                undo.run().await;
                Err(e)
            }
        }
    }
}

/// The record and secret values of a verified single-bot archive.
fn read_record(archive: &[u8]) -> Result<(BotRecord, Vec<(SecretName, SecretValue)>), BackupError> {
    let mut record = None;
    let mut secrets = Vec::new();
    reader::for_each(archive, |target, info, data| {
        let read = |data: &mut dyn Read| {
            let mut bytes = Vec::new();
            data.take(info.size)
                .read_to_end(&mut bytes)
                .map(|_| bytes)
                .map_err(|e| BackupError::Corrupt(format!("it cannot be read ({e})")))
        };
        match target {
            Target::BotRecord => {
                let bytes = read(data)?;
                record = Some(serde_json::from_slice::<BotRecord>(&bytes).map_err(|e| {
                    BackupError::Corrupt(format!("its bot record is unreadable: {e}"))
                })?);
            }
            Target::Secret(_, name) => secrets.push((name, SecretValue::from(read(data)?))),
            _ => {}
        }
        Ok(())
    })?;
    let record = record.ok_or_else(|| BackupError::Corrupt("it has no bot record".into()))?;
    Ok((record, secrets))
}
