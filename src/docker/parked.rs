//! A bot's previous container, parked during an upgrade: renamed out of the way (stopped, never
//! removed) so the new container can take the bot's name, and renamed back if the new one
//! fails.
//!
//! The parked name, `botmaker-<id>.previous`, contains a `.`, which no bot id has: it can never
//! be the container name of another bot (`botmaker-<id>-previous` could).

use bollard::query_parameters::{RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder};

use super::error::{ContainerError, Op};
use super::labels::{self, LABEL_BOT_ID};
use super::status::ContainerStatus;
use super::{DockerService, container_name, swarm};
use crate::BotId;

/// The name a bot's previous container has while an upgrade is under way.
pub fn parked_name(bot_id: &BotId) -> String {
    format!("{}.previous", container_name(bot_id))
}

/// How the bot's task fared after its image was replaced in place (see
/// [`DockerService::set_image_in_place`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRollout {
    /// A task of the new image runs (and, with a Docker HEALTHCHECK, is healthy).
    Running,
    /// The bot is stopped: the next start runs the new image.
    NotRunning,
    /// A task of the new image ended first; the engine's reason.
    Failed(String),
    /// No task of the new image ran within the limit.
    TimedOut,
}

impl DockerService {
    /// Whether this backend upgrades a bot by updating it in place (Swarm: a rolling update
    /// of its service, [`DockerService::set_image_in_place`]) rather than by parking the old
    /// container beside a new one. A capability, not a backend name: the upgrade asks what
    /// to do, never which engine runs.
    pub fn upgrades_in_place(&self) -> bool {
        self.swarm.is_some()
    }

    /// Replaces the bot's image in place and, when the bot runs, waits up to `limit` for a
    /// task of it to run. Repeating it with the same image only waits, so it also rolls a
    /// failed upgrade back. `UNSUPPORTED_BY_BACKEND` where upgrades park containers.
    pub async fn set_image_in_place(
        &self,
        bot_id: &BotId,
        image: &str,
        limit: std::time::Duration,
    ) -> Result<ImageRollout, ContainerError> {
        match &self.swarm {
            Some(s) => s.set_image(self, bot_id, image, limit).await,
            None => Err(ContainerError::Unsupported {
                operation: "update in place",
                backend: "docker",
            }),
        }
    }

    /// Whether this backend can park a container: the Swarm backend cannot (a service is
    /// updated in place instead, see [`DockerService::upgrades_in_place`]),
    /// `UNSUPPORTED_BY_BACKEND`.
    pub fn check_parking(&self) -> Result<(), ContainerError> {
        match self.swarm {
            Some(_) => Err(swarm::unsupported("park a container")),
            None => Ok(()),
        }
    }

    /// Renames the bot's container to [`parked_name`]. The container must be this instance's
    /// (`NOT_OWNED` otherwise) and should be stopped first: a parked container is never run.
    pub async fn park_container(&self, bot_id: &BotId) -> Result<(), ContainerError> {
        self.check_parking()?;
        if self
            .inspect_named(bot_id, &container_name(bot_id))
            .await?
            .is_none()
        {
            return Err(ContainerError::NotFound {
                bot_id: bot_id.to_string(),
                message: format!("no container {}", container_name(bot_id)),
            });
        }
        self.rename(bot_id, &container_name(bot_id), &parked_name(bot_id))
            .await
    }

    /// Gives the parked container its bot's name back. Fails with `ALREADY_EXISTS` (HTTP 409
    /// from Docker) while another container holds that name.
    pub async fn unpark_container(&self, bot_id: &BotId) -> Result<(), ContainerError> {
        if self
            .inspect_named(bot_id, &parked_name(bot_id))
            .await?
            .is_none()
        {
            return Err(ContainerError::NotFound {
                bot_id: bot_id.to_string(),
                message: format!("no container {}", parked_name(bot_id)),
            });
        }
        self.rename(bot_id, &parked_name(bot_id), &container_name(bot_id))
            .await
    }

    /// The parked container's state, or `None` if the bot has none.
    pub async fn parked_status(
        &self,
        bot_id: &BotId,
    ) -> Result<Option<ContainerStatus>, ContainerError> {
        Ok(self
            .inspect_named(bot_id, &parked_name(bot_id))
            .await?
            .map(ContainerStatus::from_inspect))
    }

    /// Removes the parked container (killing it, should it run). `false` if there was none.
    pub async fn remove_parked(&self, bot_id: &BotId) -> Result<bool, ContainerError> {
        let name = parked_name(bot_id);
        if self.inspect_named(bot_id, &name).await?.is_none() {
            return Ok(false);
        }
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self
            .call(
                Op::Remove,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.remove_container(&name, Some(options)),
            )
            .await
        {
            Ok(()) | Err(ContainerError::NotFound { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn rename(&self, bot_id: &BotId, from: &str, to: &str) -> Result<(), ContainerError> {
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        match self
            .call(
                Op::Rename,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.rename_container(from, options),
            )
            .await
        {
            Err(ContainerError::Docker { status: 409, .. }) => Err(ContainerError::AlreadyExists {
                bot_id: bot_id.to_string(),
            }),
            other => other,
        }
    }

    /// Inspects the container `name`, which must be this instance's container of `bot_id`:
    /// `NOT_OWNED` for anyone else's, `None` when there is none.
    async fn inspect_named(
        &self,
        bot_id: &BotId,
        name: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, ContainerError> {
        match self
            .call(
                Op::Inspect,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.inspect_container(name, None),
            )
            .await
        {
            Ok(r) => {
                let labels = r.config.as_ref().and_then(|c| c.labels.as_ref());
                let ours = labels::is_owned_by(labels, &self.instance)
                    && labels.and_then(|l| l.get(LABEL_BOT_ID)).map(String::as_str)
                        == Some(bot_id.as_str());
                if ours {
                    Ok(Some(r))
                } else {
                    Err(ContainerError::NotOwned {
                        bot_id: bot_id.to_string(),
                    })
                }
            }
            Err(ContainerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bot_can_have_the_parked_name() {
        let bot = BotId::new("foo").unwrap();
        assert_eq!(parked_name(&bot), "botmaker-foo.previous");
        // A bot id never contains a dot, so no other bot's container can be named this way.
        assert!(BotId::new("foo.previous").is_err());
    }
}
