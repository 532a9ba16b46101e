//! Start, stop, restart, apply, update and delete, serialized per bot.
//!
//! Each takes the bot's lock before reading its row (see [`BotService::with_bot`]), and the
//! registry records a change only once Docker has made it: a call that fails (Docker down, a
//! container that will not start) leaves `desired_state`, the config and the secrets as they
//! were, and the reconciler brings the container back to that recorded state when Docker
//! returns.

use super::image_facts::ImageFacts;
use super::*;
use crate::bots::template::WorkspaceFile;

impl BotService {
    /// Starts the bot; recreates its container from the stored config if it is missing.
    pub async fn start(&self, id: &str) -> Result<BotView, BotError> {
        self.with_bot(id, |s, row| async move {
            let want = with_desired(row, DesiredState::Running);
            match s.inner.docker.start_container(&want.id).await {
                Ok(()) => {}
                Err(ContainerError::NotFound { .. }) => s.recreate(&want).await?,
                Err(e) => return Err(e.into()),
            }
            s.record_desired(&want).await
        })
        .await
    }

    /// Stops the bot (SIGTERM, then SIGKILL after the grace period).
    pub async fn stop(&self, id: &str) -> Result<BotView, BotError> {
        self.with_bot(id, |s, row| async move {
            let want = with_desired(row, DesiredState::Stopped);
            let grace = Some(s.stop_grace(&want));
            s.expect_exit(&want.id);
            match s.inner.docker.stop_container(&want.id, grace).await {
                Ok(()) | Err(ContainerError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            s.record_desired(&want).await
        })
        .await
    }

    /// Stops the bot's container if the bot is (still, once its lock is held) wanted stopped:
    /// the reconciler's answer to a container started behind botmaker's back. A bot the user
    /// started meanwhile is left running.
    pub async fn enforce_stopped(&self, id: &str) -> Result<BotView, BotError> {
        self.with_bot(id, |s, row| async move {
            if row.desired_state == DesiredState::Stopped {
                let grace = Some(s.inner.stop_grace);
                s.expect_exit(&row.id);
                match s.inner.docker.stop_container(&row.id, grace).await {
                    Ok(()) | Err(ContainerError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            s.refresh(&row).await
        })
        .await
    }

    /// Restarts the bot's process in its existing container (config changes need `apply`).
    pub async fn restart(&self, id: &str) -> Result<BotView, BotError> {
        self.with_bot(id, |s, row| async move {
            let want = with_desired(row, DesiredState::Running);
            let grace = Some(s.stop_grace(&want));
            s.expect_exit(&want.id);
            match s.inner.docker.restart_container(&want.id, grace).await {
                Ok(()) => {}
                Err(ContainerError::NotFound { .. }) => s.recreate(&want).await?,
                Err(e) => return Err(e.into()),
            }
            s.record_desired(&want).await
        })
        .await
    }

    /// Notes, before botmaker signals the bot's container, that the exit to come is asked for.
    /// The `kill` event says so too, but an inspect prompted by an earlier event can see the
    /// container exited before the event loop, lagging under load, reads that `kill`: the
    /// restart then surfaced as `error` (exit 143).
    fn expect_exit(&self, id: &BotId) {
        self.inner.fleet.record_kill(id, Utc::now());
    }

    /// Records the desired state Docker now matches, and returns the bot as it now is.
    async fn record_desired(&self, want: &BotRow) -> Result<BotView, BotError> {
        let found = self
            .inner
            .store
            .set_desired_state(&want.id, want.desired_state)
            .await?;
        must_exist(found, &want.id)?;
        let row = self
            .inner
            .store
            .get_bot(&want.id)
            .await?
            .ok_or_else(|| BotError::NotFound(want.id.to_string()))?;
        self.refresh(&row).await
    }

    /// Recreates the container from the stored desired config (keeping secrets and
    /// workspace), so configuration changes take effect. Docker cannot edit a container.
    pub async fn apply(&self, id: &str) -> Result<BotView, BotError> {
        self.with_bot(id, |s, row| async move {
            let result = async {
                s.inner
                    .docker
                    .remove_container(&row.id, Some(s.stop_grace(&row)))
                    .await?;
                s.recreate(&row).await
            }
            .await;
            if result.as_ref().is_err_and(BotError::is_outage) {
                s.unsettle(&row.id, Unsettled::Container);
            }
            result?;
            s.refresh(&row).await
        })
        .await
    }

    /// Changes a bot's configuration; with `apply` (the default) recreates its container.
    ///
    /// All or nothing: if the new container cannot be made to run, the previous one is
    /// recreated, the previous secret files are put back (and new ones removed), and the
    /// stored config is untouched.
    pub async fn update(&self, id: &str, req: UpdateBot) -> Result<BotView, BotError> {
        self.with_bot(id, |s, old| async move { s.update_locked(old, req).await })
            .await
            .map(super::create::with_warnings)
    }

    async fn update_locked(&self, old: BotRow, req: UpdateBot) -> Result<BotView, BotError> {
        let bot = old.id.clone();
        let template = templates::lookup(&old.template)
            .ok_or_else(|| BotError::Store(corrupt(&format!("template of bot {bot}"))))?;
        let mut spec = spec_of(&old)?;
        let mut errors = FieldErrors::default();
        let mut row = old.clone();
        validate::check_update(&req, self.inner.policy.allow_host_network, &mut errors);
        if let Some(name) = &req.name {
            row.name.clone_from(name);
        }
        req.apply_to(&mut spec);
        // Ports the user set (a template's defaults are added by `prepare` below).
        let user_ports = !spec.ports.is_empty();
        let internal = self.network_internal(spec.network.as_deref()).await?;
        if req.placement.is_some() {
            self.check_placement_fits(spec.placement.as_ref(), &mut errors)
                .await?;
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
        for n in self.check_llm_uses(template, &spec, &names, &mut errors) {
            if !all.contains(&n) {
                all.push(n);
            }
        }
        template.prepare(&mut spec, &all, self.inner.docker.bind_scope(), &mut errors);
        policy::fit_ports_to_network(&mut spec, internal, user_ports, &mut errors);
        validate::apply_default_limits(&mut spec.limits);
        errors.into_result().map_err(BotError::Validation)?;
        if req.apply && !self.inner.docker.image_exists(&spec.image).await? {
            return Err(BotError::ImageNotFound(spec.image));
        }
        let values: Vec<(SecretName, SecretValue)> = names
            .into_iter()
            .map(|n| {
                let v = SecretValue::from(new_secrets[n.as_str()].clone());
                (n, v)
            })
            .collect();
        let mut names: Vec<String> = all.iter().map(|n| n.to_string()).collect();
        names.sort();
        row.secret_names = names;
        row.spec = serde_json::to_value(&spec).expect("spec serializes");
        row.updated_at = Utc::now();

        let secrets = self.secrets_for(template);
        if req.apply {
            self.swap_container(&old, &row, secrets, values).await?;
        } else {
            // The files show through the running container's mount at once, as a rotation.
            let backup = SecretsBackup::write(secrets, &bot, values).await?;
            if let Err(e) = self.save_row(&row).await {
                backup.restore().await;
                return Err(e);
            }
        }
        self.inner.fleet.publish(&bot, BotEventKind::Updated, None);
        let row = self
            .inner
            .store
            .get_bot(&bot)
            .await?
            .ok_or_else(|| BotError::NotFound(bot.to_string()))?;
        self.refresh(&row).await
    }

    /// Replaces the container of `old` by one made from `new`, writing `secrets` in between:
    /// the old container never sees the new values, and if the new container cannot be made
    /// to run, everything goes back as it was (container, secret files, stored row).
    async fn swap_container(
        &self,
        old: &BotRow,
        new: &BotRow,
        store: SecretsStore,
        secrets: Vec<(SecretName, SecretValue)>,
    ) -> Result<(), BotError> {
        let result = self.swap_container_steps(old, new, store, secrets).await;
        // Docker may yet carry out a call it did not answer: the container could end up
        // missing, or made from the new config. The reconciler recreates it from the row.
        if result.as_ref().is_err_and(BotError::is_outage) {
            self.unsettle(&old.id, Unsettled::Container);
        }
        result
    }

    async fn swap_container_steps(
        &self,
        old: &BotRow,
        new: &BotRow,
        store: SecretsStore,
        secrets: Vec<(SecretName, SecretValue)>,
    ) -> Result<(), BotError> {
        // Until this succeeds nothing has changed. The running container was made from the
        // previous config: its grace applies.
        self.inner
            .docker
            .remove_container(&old.id, Some(self.stop_grace(old)))
            .await?;
        let backup = match SecretsBackup::write(store, &old.id, secrets).await {
            Ok(b) => b,
            Err(e) => {
                self.put_back(old, None).await;
                return Err(e);
            }
        };
        let result = match self.recreate(new).await {
            Ok(()) => self.save_row(new).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.put_back(old, Some(backup)).await;
            return Err(e);
        }
        Ok(())
    }

    /// Puts a bot back as `old` describes it after a failed change: removes whatever
    /// container the change made, restores the secret files, recreates the old container.
    /// Failures are logged: the caller reports the error that started it, and the
    /// reconciler recreates a missing container when Docker is back.
    async fn put_back(&self, old: &BotRow, backup: Option<SecretsBackup>) {
        if let Err(e) = self
            .inner
            .docker
            .remove_container(&old.id, Some(Duration::ZERO))
            .await
        {
            tracing::error!(bot = %old.id, error = %e, "rollback: could not remove the new container");
        }
        if let Some(backup) = backup {
            backup.restore().await;
        }
        if let Err(e) = self.recreate(old).await {
            tracing::error!(bot = %old.id, error = %e, "rollback: could not restore the previous container");
        }
        // Reads answered from the watch cache see the restored container at once, not
        // whatever the failed change's container last showed before its events arrive.
        if let Err(e) = self.refresh(old).await {
            tracing::warn!(bot = %old.id, error = %e, "rollback: could not inspect the restored container");
        }
    }

    /// Writes `row` over the stored bot; a bot that is gone is `NOT_FOUND`.
    pub(super) async fn save_row(&self, row: &BotRow) -> Result<(), BotError> {
        let found = self.inner.store.update_bot(row).await?;
        must_exist(found, &row.id)
    }

    /// Creates (and, if desired, starts) the container of an existing bot from `row`,
    /// rewriting the template's workspace files.
    pub(super) async fn recreate(&self, row: &BotRow) -> Result<(), BotError> {
        self.create_container_from(row).await?;
        if row.desired_state == DesiredState::Running {
            self.inner.docker.start_container(&row.id).await?;
        }
        Ok(())
    }

    /// Renders the bot's template from `row`, writes its workspace files and creates (without
    /// starting) its container.
    pub(super) async fn create_container_from(&self, row: &BotRow) -> Result<(), BotError> {
        let template = templates::lookup(&row.template)
            .ok_or_else(|| BotError::Store(corrupt(&format!("template of bot {}", row.id))))?;
        let spec = spec_of(row)?;
        // A bot stored with the host network before the server's opt-in was withdrawn does
        // not get it back on a recreate.
        if let Some(network) = &spec.network {
            let mut errors = FieldErrors::default();
            validate::check_network(network, self.inner.policy.allow_host_network, &mut errors);
            errors.into_result().map_err(BotError::Validation)?;
        }
        let names: Vec<SecretName> = row
            .secret_names
            .iter()
            .filter_map(|n| SecretName::new(n.clone()).ok())
            .collect();
        let secrets_store = self.secrets_for(template);
        let (s, b) = (secrets_store.clone(), row.id.clone());
        let secrets_dir = blocking(move || Ok::<_, BotError>(s.ensure_bot_dir(&b)?)).await?;
        let workspace = self.workspace_dir(&row.id);
        let image = ImageFacts::new(&self.inner.docker, &spec.image);
        let run_as = self.run_as(template, &spec, &image).await?;
        let llm = self
            .llm_routes(row, template, &spec, &secrets_store)
            .await?;
        let mut rendered = template.render(&RenderInput {
            bot_id: &row.id,
            name: &row.name,
            spec: &spec,
            secrets_dir: &secrets_dir,
            workspace_dir: &workspace,
            secret_names: &names,
            llm: &llm,
        });
        if let Some(user) = &spec.user {
            rendered.config.user = Some(user.clone());
        }
        self.drop_redundant_init(&mut rendered.config, &image)
            .await?;
        let files: &[WorkspaceFile] = &rendered.files;
        if !files.is_empty() && !self.workspace_on_host(&spec) {
            let mut errors = FieldErrors::default();
            errors.add(
                "placement",
                format!(
                    "the {} template writes its files into the bot's workspace on botmaker's \
                     host, but a placed bot's workspace is a volume on the node that runs it; \
                     leave this bot unplaced (it then runs on botmaker's own node)",
                    template.name()
                ),
            );
            return Err(BotError::Validation(errors));
        }
        write_workspace(&workspace, files, run_as.owner()).await?;
        match self
            .inner
            .docker
            .create_container(&row.id, &rendered.config)
            .await
        {
            Ok(_) => self.hand_over(&row.id, run_as, &workspace).await,
            Err(ContainerError::NotFound { .. }) => Err(BotError::ImageNotFound(spec.image)),
            // The name is taken: by a foreign container, or by an orphan of ours. Either way
            // it is not ours to remove.
            Err(ContainerError::AlreadyExists { .. }) => {
                Err(BotError::NameTaken(row.id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stops and removes the bot's container, deletes its secrets and workspace, then its
    /// record. A container that already vanished is fine.
    ///
    /// The delete is journaled: once the container is gone, a crash before the end leaves an
    /// entry that the next start finishes (see [`BotService::recover_interrupted`]).
    pub async fn delete(&self, id: &str) -> Result<(), BotError> {
        let registry = self.inner.registry.clone().read_owned().await;
        let bot = BotId::new(id).map_err(|_| BotError::NotFound(id.to_string()))?;
        let guard = self.lock_bot_bounded(&bot).await?;
        let Some(row) = self.inner.store.get_bot(&bot).await? else {
            self.drop_lock(&bot, &guard);
            return Err(BotError::NotFound(id.to_string()));
        };
        let s = self.clone();
        run_to_completion(async move {
            let _registry = registry;
            let result = s.delete_locked(&row).await;
            match &result {
                Ok(()) => s.drop_lock(&bot, &guard),
                Err(e) if e.is_outage() => s.unsettle(&bot, Unsettled::State),
                Err(_) => {}
            }
            result
        })
        .await
    }

    async fn delete_locked(&self, row: &BotRow) -> Result<(), BotError> {
        let found = self.inner.store.begin_delete(&row.id).await?;
        must_exist(found, &row.id)?;
        match self
            .inner
            .docker
            .remove_container(&row.id, Some(self.stop_grace(row)))
            .await
        {
            // A container of another owner holding the name is not ours to remove.
            Ok(_) | Err(ContainerError::NotOwned { .. }) => {}
            Err(e) => {
                // Nothing was destroyed: the bot stays, whole.
                if let Err(e) = self.inner.store.end_operation(&row.id).await {
                    tracing::error!(bot = %row.id, error = %e, "could not end the delete's journal entry");
                }
                return Err(e.into());
            }
        }
        // An upgrade cut short may have left the previous container parked.
        self.inner.docker.remove_parked(&row.id).await?;
        self.purge_files_and_row(&row.id).await
    }

    /// Deletes the bot's secrets, workspace and row (its container already removed), and
    /// tells watchers it is gone.
    pub(super) async fn purge_files_and_row(&self, bot: &BotId) -> Result<(), BotError> {
        let (store, b) = (self.inner.secrets.clone(), bot.clone());
        blocking(move || Ok::<_, BotError>(store.delete_all(&b).map(drop)?)).await?;
        // A placed bot's workspace volume on this node (Swarm; nothing on Docker).
        self.inner.docker.remove_workspace_volumes(bot).await?;
        remove_dir(&self.workspace_dir(bot)).await?;
        self.inner.store.forget_bot(bot).await?;
        self.inner.fleet.forget(bot);
        self.inner.fleet.publish(bot, BotEventKind::Deleted, None);
        Ok(())
    }
}

fn with_desired(mut row: BotRow, desired: DesiredState) -> BotRow {
    row.desired_state = desired;
    row
}

/// The previous values of the secrets a change writes, kept until the change has taken
/// effect so a failed change can put them back.
pub(super) struct SecretsBackup {
    store: SecretsStore,
    bot: BotId,
    previous: Vec<(SecretName, Option<SecretValue>)>,
}

impl SecretsBackup {
    /// Writes `values`, remembering what each name held before. If a write fails, the ones
    /// already made are undone before the error is returned.
    pub(super) async fn write(
        store: SecretsStore,
        bot: &BotId,
        values: Vec<(SecretName, SecretValue)>,
    ) -> Result<Self, BotError> {
        let bot = bot.clone();
        blocking(move || {
            let mut backup = SecretsBackup {
                store,
                bot,
                previous: Vec::new(),
            };
            for (name, value) in &values {
                let written = backup.store.get(&backup.bot, name).and_then(|prev| {
                    backup.store.set(&backup.bot, name, value)?;
                    Ok(prev)
                });
                match written {
                    Ok(prev) => backup.previous.push((name.clone(), prev)),
                    Err(e) => {
                        backup.restore_now();
                        return Err(e.into());
                    }
                }
            }
            Ok(backup)
        })
        .await
    }

    /// Puts every written secret back as it was: the old value, or no file.
    pub(super) async fn restore(self) {
        let _ = blocking(move || {
            self.restore_now();
            Ok::<_, BotError>(())
        })
        .await;
    }

    fn restore_now(&self) {
        for (name, prev) in self.previous.iter().rev() {
            let result = match prev {
                Some(value) => self.store.set(&self.bot, name, value),
                None => self.store.delete(&self.bot, name).map(drop),
            };
            if let Err(e) = result {
                tracing::error!(bot = %self.bot, secret = %name, error = %e, "rollback: could not restore a secret");
            }
        }
    }
}
