//! Creating a bot: validate everything first, then take each step, undoing them all if one fails.

use super::*;

impl BotService {
    /// Validates `req`, then stores the bot, writes its secrets and workspace, creates its
    /// container and starts it (unless `start` is false). On any failure every step already
    /// taken is undone; a crash half-way is undone at the next start (the create is journaled,
    /// see [`BotService::recover_interrupted`]).
    pub async fn create(&self, req: CreateBot) -> Result<BotView, BotError> {
        // Asked before the lock: a Docker call (bounded by the client's timeout) that reads
        // only the network, never the bot.
        let internal = self.network_internal(req.network.as_deref()).await?;
        let mut placement = FieldErrors::default();
        self.check_placement_fits(req.placement.as_ref(), &mut placement)
            .await?;
        let valid = self.validate_create(req, internal, placement)?;
        let registry = self.inner.registry.clone().read_owned().await;
        let guard = self.lock_bot_bounded(&valid.id).await?;
        let s = self.clone();
        run_to_completion(async move {
            let _registry = registry;
            let id = valid.id.clone();
            let result = s.create_locked(valid).await.map(with_warnings);
            if result.is_err() && matches!(s.inner.store.get_bot(&id).await, Ok(None)) {
                s.drop_lock(&id, &guard);
            }
            result
        })
        .await
    }

    async fn create_locked(&self, valid: ValidCreate) -> Result<BotView, BotError> {
        let ValidCreate {
            id,
            row,
            template,
            secrets,
        } = valid;
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
        let made = match self.provision(&row, template, &secrets, &mut undo).await {
            Ok(view) => match self.inner.store.end_operation(&id).await {
                Ok(()) => Ok(view),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        match made {
            Ok(view) => {
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

    /// Files left by a bot deleted while botmaker was down belong to nobody: refuse rather
    /// than hand them to a new bot. Checked before anything is written, so the undo of this
    /// create (or its recovery after a crash) never removes what it did not make.
    pub(super) async fn refuse_leftovers(
        &self,
        id: &BotId,
        template: &dyn Template,
    ) -> Result<(), BotError> {
        let secrets_dir = self.secrets_for(template).bot_dir(id);
        if tokio::fs::symlink_metadata(&secrets_dir).await.is_ok() {
            return Err(BotError::Leftover {
                id: id.to_string(),
                what: "secrets directory",
            });
        }
        if tokio::fs::symlink_metadata(self.workspace_dir(id))
            .await
            .is_ok()
        {
            return Err(BotError::Leftover {
                id: id.to_string(),
                what: "workspace",
            });
        }
        Ok(())
    }

    /// The field errors of `req` (none if it is valid), without creating anything: for an
    /// answer that lists them together with the values of the wrong type the edge took out.
    pub fn check_create(&self, req: CreateBot) -> FieldErrors {
        match self.validate_create(req, false, FieldErrors::default()) {
            Err(BotError::Validation(fields)) => fields,
            _ => FieldErrors::default(),
        }
    }

    /// `errors` holds what the engine was asked already (whether a node fits the placement).
    fn validate_create(
        &self,
        req: CreateBot,
        internal: bool,
        mut errors: FieldErrors,
    ) -> Result<ValidCreate, BotError> {
        let id = BotId::new(req.id.clone())
            .map_err(|e| errors.add("id", e.to_string()))
            .ok();
        let name = req.name.clone().unwrap_or_else(|| req.id.clone());
        validate::check_name(&name, &mut errors);
        let template_name = req.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        let template = templates::lookup(template_name);
        if template.is_none() {
            errors.add(
                "template",
                format!("unknown template; one of: {}", TEMPLATE_NAMES.join(", ")),
            );
        }
        validate::check_command(req.command.as_deref(), &mut errors);
        validate::check_env(&req.env, &mut errors);
        let names = validate::check_secrets(&req.secrets, &mut errors);
        let supplied = names.clone();
        validate::check_ports(&req.ports, &mut errors);
        validate::check_limits(&req.limits, &mut errors);
        validate::check_stop_timeout(req.stop_timeout_secs, &mut errors);
        if let Some(p) = &req.health_check {
            validate::check_health_check(p, &mut errors);
        }
        if let Some(u) = &req.user {
            validate::check_user(u, &mut errors);
        }
        if let Some(n) = &req.network {
            validate::check_network(n, self.inner.policy.allow_host_network, &mut errors);
        }
        if let Some(p) = &req.placement {
            validate::check_placement(p, &mut errors);
        }
        let mut spec = BotSpec {
            image: req.image.clone().unwrap_or_default(),
            command: req.command.clone(),
            env: req.env.clone(),
            ports: req.ports.clone(),
            limits: req.limits.clone(),
            network: req.network.clone(),
            health_check: req.health_check.clone(),
            user: req.user.clone(),
            settings: req.settings.clone(),
            stop_timeout_secs: req.stop_timeout_secs,
            placement: req.placement.clone().filter(|p| !p.is_empty()),
        };
        let mut secrets: Vec<(SecretName, SecretValue)> = names
            .into_iter()
            .map(|n| {
                let v = SecretValue::from(req.secrets[n.as_str()].clone());
                (n, v)
            })
            .collect();
        // Filled with virtual LLM keys when the container is made.
        let mut virtual_keys: Vec<SecretName> = Vec::new();
        if let Some(t) = template {
            for (n, v) in t.generated_secrets(&spec) {
                if !secrets.iter().any(|(have, _)| *have == n) {
                    secrets.push((n, SecretValue::from(v)));
                }
            }
            let mut all: Vec<SecretName> = secrets.iter().map(|(n, _)| n.clone()).collect();
            virtual_keys = self.check_llm_uses(t, &spec, &supplied, &mut errors);
            all.extend(virtual_keys.iter().cloned());
            t.prepare(&mut spec, &all, self.inner.docker.bind_scope(), &mut errors);
            super::policy::fit_ports_to_network(
                &mut spec,
                internal,
                !req.ports.is_empty(),
                &mut errors,
            );
        }
        validate::apply_default_limits(&mut spec.limits);
        errors.into_result().map_err(BotError::Validation)?;
        let (Some(id), Some(template)) = (id, template) else {
            unreachable!("errors were recorded for a missing id or template");
        };
        let now = Utc::now();
        let mut secret_names: Vec<String> = secrets
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(virtual_keys.iter().map(|n| n.to_string()))
            .collect();
        secret_names.sort();
        secret_names.dedup();
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
        let secrets_store = self.secrets_for(template);
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
        // Before the call: a create that timed out may still be carried out by the daemon.
        undo.container = true;
        self.create_container_from(row).await?;
        if row.desired_state == DesiredState::Running {
            self.inner.docker.start_container(id).await?;
        }
        self.refresh(row).await
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
pub(super) struct Undo<'a> {
    pub(super) service: &'a BotService,
    pub(super) id: &'a BotId,
    pub(super) container: bool,
    pub(super) workspace: bool,
    pub(super) secrets: bool,
    /// The create failed because Docker did not answer: a request it never answered may
    /// still be carried out when it resumes, so even a container it says is not there may
    /// appear later.
    pub(super) outage: bool,
}

impl Undo<'_> {
    pub(super) async fn run(self) {
        let s = &self.service.inner;
        let mut container_gone = true;
        if self.container {
            match s
                .docker
                .remove_container(self.id, Some(Duration::ZERO))
                .await
            {
                // Another owner's container holding the name was never ours.
                Ok(_) | Err(ContainerError::NotOwned { .. }) => {}
                Err(e) => {
                    tracing::error!(bot = %self.id, error = %e, "rollback: could not remove container");
                    container_gone = false;
                }
            }
        }
        if self.workspace {
            if container_gone && let Err(e) = s.docker.remove_workspace_volumes(self.id).await {
                tracing::error!(bot = %self.id, error = %e, "rollback: could not remove workspace volume");
            }
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
        s.fleet.forget(self.id);
        let forgotten = if container_gone && !self.outage {
            // Row and journal entry go together; if this fails, the entry makes the next
            // start finish the undo.
            s.store.forget_bot(self.id).await
        } else {
            // Docker is (or was) out of reach and may yet carry out the create it was sent:
            // the journal entry stays, and the reconciler's recovery removes that container
            // once Docker answers again.
            tracing::warn!(bot = %self.id, "rollback: container removal left for recovery");
            s.store.delete_bot(self.id).await
        };
        if let Err(e) = forgotten {
            tracing::error!(bot = %self.id, error = %e, "rollback: could not delete bot record");
        }
    }
}

/// The answer to a create or PATCH: the bot, with what is worth a warning in its config.
pub(super) fn with_warnings(mut view: BotView) -> BotView {
    view.warnings = validate::env_warnings(&view.env);
    view
}
