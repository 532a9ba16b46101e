//! Start, stop, restart, apply, update and delete, serialized per bot.

use super::*;

impl BotService {
    /// Starts the bot; recreates its container from the stored config if it is missing.
    pub async fn start(&self, id: &str) -> Result<BotView, BotError> {
        let (row, _guard) = self.desire(id, DesiredState::Running).await?;
        match self.inner.docker.start_container(&row.id).await {
            Ok(()) => {}
            Err(ContainerError::NotFound { .. }) => self.recreate(&row).await?,
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Stops the bot (SIGTERM, then SIGKILL after the grace period).
    pub async fn stop(&self, id: &str) -> Result<BotView, BotError> {
        let (row, _guard) = self.desire(id, DesiredState::Stopped).await?;
        let grace = Some(self.stop_grace(&row));
        match self.inner.docker.stop_container(&row.id, grace).await {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Restarts the bot's process in its existing container (config changes need `apply`).
    pub async fn restart(&self, id: &str) -> Result<BotView, BotError> {
        let (row, _guard) = self.desire(id, DesiredState::Running).await?;
        let grace = Some(self.stop_grace(&row));
        match self.inner.docker.restart_container(&row.id, grace).await {
            Ok(()) => {}
            Err(ContainerError::NotFound { .. }) => self.recreate(&row).await?,
            Err(e) => return Err(e.into()),
        }
        self.refresh(&row).await
    }

    /// Takes the bot's lock and records what the user now wants; the caller then makes
    /// Docker match while still holding the returned guard.
    async fn desire(
        &self,
        id: &str,
        desired: DesiredState,
    ) -> Result<(BotRow, tokio::sync::OwnedMutexGuard<()>), BotError> {
        let (bot, mut row) = self.row(id).await?;
        let guard = self.lock_for(&bot).lock_owned().await;
        row.desired_state = desired;
        self.inner.store.set_desired_state(&bot, desired).await?;
        Ok((row, guard))
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
        if req.stop_timeout_secs.is_some() {
            validate::check_stop_timeout(req.stop_timeout_secs, &mut errors);
            spec.stop_timeout_secs = req.stop_timeout_secs;
        }
        let user_ports = !spec.ports.is_empty();
        let internal = self.network_internal(spec.network.as_deref()).await?;
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
        policy::fit_ports_to_network(&mut spec, internal, user_ports, &mut errors);
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
        // The running container was made from the previous config: its grace applies.
        let grace = self.stop_grace(fallback.unwrap_or(row));
        match self
            .inner
            .docker
            .remove_container(&row.id, Some(grace))
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
        self.create_container_from(row).await?;
        if row.desired_state == DesiredState::Running {
            self.inner.docker.start_container(&row.id).await?;
        }
        Ok(())
    }

    /// Renders the bot's template from `row`, writes its workspace files and creates (without
    /// starting) its container.
    pub(super) async fn create_container_from(&self, row: &BotRow) -> Result<(), BotError> {
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
        let mut rendered = template.render(&RenderInput {
            bot_id: &row.id,
            name: &row.name,
            spec: &spec,
            secrets_dir: &secrets_dir,
            workspace_dir: &workspace,
            secret_names: &names,
        });
        self.drop_redundant_init(&mut rendered.config).await?;
        write_workspace(&workspace, &rendered.files, template.owner()).await?;
        match self
            .inner
            .docker
            .create_container(&row.id, &rendered.config)
            .await
        {
            Ok(_) => Ok(()),
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
    pub async fn delete(&self, id: &str) -> Result<(), BotError> {
        let (bot, row) = self.row(id).await?;
        let _registry = self.inner.registry.read().await;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        match self
            .inner
            .docker
            .remove_container(&bot, Some(self.stop_grace(&row)))
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
}
