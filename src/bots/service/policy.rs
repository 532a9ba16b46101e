//! Per-bot lifecycle policy that the image or template decides, not the server: how long a bot
//! gets to stop, whether Docker adds an init, what publishing means on an internal network, how
//! a secret change takes effect, and which secrets a bot cannot lose.

use super::image_facts::ImageFacts;
use super::*;
use crate::bots::template::SecretRotation;
use crate::docker::ContainerConfig;

/// What a secret change did, for the API's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretChange {
    /// The template's rotation policy.
    pub rotation: SecretRotation,
    /// Whether botmaker restarted the bot so the new value is in effect.
    pub restarted: bool,
    /// One sentence on when the new value takes effect.
    pub effect: &'static str,
}

impl BotService {
    /// The bot's stop grace period: its own `stop_timeout_secs` (a template default, such as
    /// OpenClaw's drain time), else the server's `--stop-timeout`.
    pub(super) fn stop_grace(&self, row: &BotRow) -> Duration {
        spec_of(row)
            .ok()
            .and_then(|s| s.stop_timeout_secs)
            .map_or(self.inner.stop_grace, Duration::from_secs)
    }

    /// Turns Docker's init off when the image's entrypoint is an init already (OpenClaw's
    /// images run tini): two inits make the inner one warn on every boot and reap nothing.
    pub(super) async fn drop_redundant_init(
        &self,
        config: &mut ContainerConfig,
        image: &ImageFacts<'_>,
    ) -> Result<(), BotError> {
        if !config.init {
            return Ok(());
        }
        let entrypoint = match &config.entrypoint {
            Some(e) => Some(e.clone()),
            None => image.entrypoint(&config.image).await?,
        };
        if entrypoint.is_some_and(|e| crate::docker::starts_with_init(&e)) {
            config.init = false;
        }
        Ok(())
    }

    /// Whether the bot's network is `--internal`.
    pub(super) async fn network_internal(&self, network: Option<&str>) -> Result<bool, BotError> {
        match network {
            // A name that is not one is a validation error, reported with every other; Docker
            // is not asked about it (a 300,000-character name was a 500).
            Some(n) if !crate::bots::validate::is_network_name(n) => Ok(false),
            None => Ok(false),
            Some(n) => Ok(self.inner.docker.network_is_internal(n).await?),
        }
    }

    /// Makes a secret change take effect as the bot's template says: a restart for templates
    /// that read secrets at start only (if the bot is running), nothing for the others. The
    /// caller holds the bot's lock.
    pub(super) async fn after_secret_change(
        &self,
        row: &BotRow,
        template: &dyn Template,
    ) -> Result<SecretChange, BotError> {
        let rotation = template.secret_rotation();
        // A backend whose secrets are not a live directory (Swarm) rotates them itself.
        if let Some(restarted) = self.inner.docker.secrets_changed(&row.id).await? {
            return Ok(SecretChange {
                rotation,
                restarted,
                effect: if restarted {
                    "Swarm secrets are immutable: a new version was made and the bot's task \
                     replaced; it runs with the new value"
                } else {
                    "the bot is not running; it reads the new value when it next starts"
                },
            });
        }
        if rotation == SecretRotation::InPlace {
            return Ok(SecretChange {
                rotation,
                restarted: false,
                effect: "the file under /run/secrets changed in place; the bot reads the new \
                         value the next time it opens it",
            });
        }
        let view = self.refresh(row).await?;
        if view.observed.state != super::super::BotState::Running {
            return Ok(SecretChange {
                rotation,
                restarted: false,
                effect: "the bot is not running; it reads the new value when it next starts",
            });
        }
        match self
            .inner
            .docker
            .restart_container(&row.id, Some(self.stop_grace(row)))
            .await
        {
            Ok(()) => {}
            // Gone since it was seen running: the reconciler recreates it with the new value.
            Err(ContainerError::NotFound { .. }) => {
                return Ok(SecretChange {
                    rotation,
                    restarted: false,
                    effect: "the bot is not running; it reads the new value when it next starts",
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.refresh(row).await?;
        Ok(SecretChange {
            rotation,
            restarted: true,
            effect: "the bot was restarted and runs with the new value",
        })
    }

    /// Reads one of the bot's secrets, for an authenticated probe (the gateway token).
    pub async fn read_secret(
        &self,
        id: &BotId,
        template: &dyn Template,
        name: &SecretName,
    ) -> Result<Option<SecretValue>, BotError> {
        let (store, b, n) = (self.secrets_for(template), id.clone(), name.clone());
        blocking(move || Ok(store.get(&b, &n)?)).await
    }

    /// Refuses to delete a secret the bot's template needs (its config refers to it, and the
    /// bot would crash-loop without it).
    pub(super) fn refuse_required_secret(
        &self,
        row: &BotRow,
        name: &SecretName,
    ) -> Result<(), BotError> {
        let Some(template) = templates::lookup(&row.template) else {
            return Ok(());
        };
        let spec = spec_of(row)?;
        match template
            .required_secrets(&spec)
            .into_iter()
            .find(|(n, _)| n == name)
        {
            Some((_, purpose)) => Err(BotError::SecretRequired {
                name: name.to_string(),
                template: template.name(),
                purpose,
            }),
            None => Ok(()),
        }
    }
}

/// Docker publishes no port of a container on an `--internal` network: refuse ports the user
/// asked for there, and drop a template's default ones (the bot is reached over that network).
pub(super) fn fit_ports_to_network(
    spec: &mut BotSpec,
    internal: bool,
    user_ports: bool,
    errors: &mut FieldErrors,
) {
    if !internal || spec.ports.is_empty() {
        return;
    }
    if user_ports {
        errors.add(
            "ports",
            format!(
                "network {} is internal: Docker publishes no port from it; remove `ports` (other \
                 containers on that network reach the bot directly)",
                spec.network.as_deref().unwrap_or_default()
            ),
        );
    } else {
        spec.ports.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::PortSpec;

    fn spec_with_port() -> BotSpec {
        BotSpec {
            network: Some("inner".into()),
            ports: vec![PortSpec {
                container: 18789,
                host: None,
                host_ip: None,
                protocol: crate::docker::Protocol::Tcp,
                publish: Default::default(),
            }],
            ..BotSpec::default()
        }
    }

    #[test]
    fn ports_on_an_internal_network_are_refused_or_dropped() {
        let mut spec = spec_with_port();
        let mut errors = FieldErrors::default();
        fit_ports_to_network(&mut spec, true, true, &mut errors);
        assert!(errors.fields()["ports"][0].contains("internal"), "{errors}");

        let mut errors = FieldErrors::default();
        fit_ports_to_network(&mut spec, true, false, &mut errors);
        assert!(errors.is_empty());
        assert!(spec.ports.is_empty(), "a template default is not published");

        let mut spec = spec_with_port();
        fit_ports_to_network(&mut spec, false, true, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(spec.ports.len(), 1);
    }
}
