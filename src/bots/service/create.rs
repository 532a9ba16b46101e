//! Creating a bot: validate everything first, then take each step, undoing them all if one fails.

use super::*;

impl BotService {
    /// Validates `req`, then stores the bot, writes its secrets and workspace, creates its
    /// container and starts it (unless `start` is false). On any failure every step already
    /// taken is undone.
    pub async fn create(&self, req: CreateBot) -> Result<BotView, BotError> {
        let internal = self.network_internal(req.network.as_deref()).await?;
        let ValidCreate {
            id,
            row,
            template,
            secrets,
        } = self.validate_create(req, internal)?;
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

    fn validate_create(&self, req: CreateBot, internal: bool) -> Result<ValidCreate, BotError> {
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
        validate::check_stop_timeout(req.stop_timeout_secs, &mut errors);
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
            stop_timeout_secs: req.stop_timeout_secs,
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
            super::policy::fit_ports_to_network(
                &mut spec,
                internal,
                !req.ports.is_empty(),
                &mut errors,
            );
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
        self.create_container_from(row).await?;
        undo.container = true;
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

fn check_probe(p: &crate::bots::spec::HttpProbe, errors: &mut FieldErrors) {
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
    if let Some(r) = &p.ready_path
        && (!r.starts_with('/') || r.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        errors.add(
            "health_check.ready_path",
            "must be an absolute URL path like /readyz",
        );
    }
}
