//! Orphans: containers, secrets and workspaces left with no bot; listed read-only, cleaned on request.

use super::*;

/// Leftovers with no bot: containers of this instance, secrets and workspace directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = OrphanLists)]
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
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
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
                Ok(_) => {
                    // A container an upgrade parked carries the bot's label too.
                    if let Err(e) = self.inner.docker.remove_parked(&bot).await {
                        tracing::warn!(bot = %id, error = %e, "could not remove orphan container");
                        continue;
                    }
                    removed.containers.push(id.clone())
                }
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
