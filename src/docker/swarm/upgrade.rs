//! An upgrade on Swarm: the bot's service updated in place to another image (a rolling update
//! of its one replica), where the Docker backend parks the old container and makes a new one.
//!
//! The update is `stop-first`: the old task is stopped (its stop grace) before the new one
//! starts, as the Docker backend never runs the old and the new container at once. A bot holds
//! a workspace that is not made for two writers, and a chat connection that two instances
//! would fight over (two long-polls of one Telegram token get `409 Conflict`; two Discord
//! gateway sessions answer every message twice). `start-first` would shorten the downtime by
//! the new image's start-up, at that price.
//!
//! Swarm's own `failure_action: rollback` (with a monitor period) is set for the update: a
//! new task that fails within the monitor period makes Swarm put the previous image back by
//! itself, so a botmaker that dies mid-upgrade still leaves a running bot. botmaker does not
//! rely on it: its health gate decides, and its rollback re-applies the previous image (which
//! is idempotent, unlike Swarm's `rollback`, which after Swarm's own rollback would swap the
//! new image back in).

use std::collections::HashSet;
use std::time::Duration;

use bollard::models::{
    ServiceSpec, ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, Task,
};
use bollard::query_parameters::UpdateServiceOptionsBuilder;

use super::super::error::{ContainerError, Op};
use super::super::status::ContainerState;
use super::super::{DockerService, ImageRollout};
use super::{POLL_INTERVAL, Swarm, replicas, service_name, spec::nanos, tasks};
use crate::BotId;

/// How long Swarm watches a new task for a failure before it counts the update as done (and
/// would no longer roll back by itself): as long as the upgrade's own run grace (10 s), so
/// Swarm's verdict never outlasts botmaker's.
const MONITOR: Duration = Duration::from_secs(10);

/// The update settings of an upgrade: one task, old stopped first, rolled back by Swarm on
/// a failure within [`MONITOR`].
pub(super) fn update_config() -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(1),
        delay: Some(0),
        failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
        monitor: Some(nanos(MONITOR)),
        max_failure_ratio: Some(0.0),
        order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
    }
}

/// How Swarm's own rollback replaces the task: old (failed) one stopped first, too.
pub(super) fn rollback_config() -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: Some(1),
        delay: Some(0),
        failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
        monitor: Some(nanos(MONITOR)),
        max_failure_ratio: Some(0.0),
        order: Some(ServiceSpecRollbackConfigOrderEnum::STOP_FIRST),
    }
}

/// The image a service's tasks are made from.
fn image_of(spec: &ServiceSpec) -> Option<&str> {
    spec.task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .image
        .as_deref()
}

/// The image a task runs (as its spec names it; Swarm may append `@digest`).
fn task_image(t: &Task) -> Option<&str> {
    t.spec.as_ref()?.container_spec.as_ref()?.image.as_deref()
}

/// Whether `task_ref` (a task's image, maybe pinned `@digest` by Swarm) is `image`.
fn same_image(task_ref: &str, image: &str) -> bool {
    task_ref == image || task_ref.split('@').next() == Some(image)
}

impl Swarm {
    /// Sets the image of the bot's service to `image` (a rolling update, see the module
    /// doc) and, when the bot runs, waits up to `limit` for a task of that image to run
    /// (with a Docker HEALTHCHECK Swarm reports it running only once healthy). A service
    /// already on `image` is not updated: the wait alone is done, which makes re-applying
    /// the previous image after a failed upgrade safe to repeat.
    pub(in crate::docker) async fn set_image(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        image: &str,
        limit: Duration,
    ) -> Result<ImageRollout, ContainerError> {
        let service = self.owned_or_missing(svc, bot_id).await?;
        let running = replicas(&service) > 0;
        let before = Self::task_ids(&self.tasks_of(svc, bot_id).await?);
        let mut spec = service.spec.clone().unwrap_or_default();
        if image_of(&spec) != Some(image) {
            let version = service
                .version
                .as_ref()
                .and_then(|v| v.index)
                .unwrap_or_default();
            spec.task_template
                .get_or_insert_with(Default::default)
                .container_spec
                .get_or_insert_with(Default::default)
                .image = Some(image.to_string());
            spec.update_config = Some(update_config());
            spec.rollback_config = Some(rollback_config());
            let options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            svc.call(
                Op::Create,
                bot_id.as_str(),
                svc.call_timeout,
                svc.docker
                    .update_service(&service_name(bot_id), spec, options, None),
            )
            .await?;
        }
        if !running {
            return Ok(ImageRollout::NotRunning);
        }
        self.wait_task_of_image(svc, bot_id, image, &before, limit)
            .await
    }

    /// Waits for a task of `image` to run: a new one (not in `before`), or the current one
    /// when it already runs that image. A new task of `image` that ends first is `Failed`
    /// with Swarm's reason ("task: non-zero exit (3)", "unhealthy container").
    async fn wait_task_of_image(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
        image: &str,
        before: &HashSet<String>,
        limit: Duration,
    ) -> Result<ImageRollout, ContainerError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let all = self.tasks_of(svc, bot_id).await?;
            let of_image = |t: &&Task| task_image(t).is_some_and(|i| same_image(i, image));
            let wanted: Vec<&Task> = all
                .iter()
                .filter(of_image)
                .filter(|t| t.desired_state == Some(bollard::models::TaskState::RUNNING))
                .collect();
            if wanted
                .iter()
                .any(|t| tasks::state(Some(t), 0) == ContainerState::Running)
            {
                return Ok(ImageRollout::Running);
            }
            let failed = all
                .iter()
                .filter(of_image)
                .filter(|t| t.id.as_ref().is_some_and(|id| !before.contains(id)))
                .find(|t| tasks::is_terminal(t));
            if let Some(t) = failed {
                return Ok(ImageRollout::Failed(tasks::error(t).unwrap_or_else(|| {
                    format!(
                        "the task exited with code {}",
                        tasks::exit_code(t).unwrap_or(-1)
                    )
                })));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(ImageRollout::TimedOut);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_stops_the_old_task_first_and_lets_swarm_roll_back() {
        let u = update_config();
        assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST));
        assert_eq!(
            u.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(u.monitor, Some(10_000_000_000));
        assert_eq!(
            rollback_config().order,
            Some(ServiceSpecRollbackConfigOrderEnum::STOP_FIRST)
        );
    }

    #[test]
    fn a_task_image_pinned_to_a_digest_is_still_the_image() {
        assert!(same_image("bot:2@sha256:abc", "bot:2"));
        assert!(same_image("bot:2", "bot:2"));
        assert!(!same_image("bot:20", "bot:2"));
        assert!(!same_image("bot:1@sha256:abc", "bot:2"));
    }
}
