//! The health-gated upgrade: replace a bot's container by one of a new image, keep it only if
//! it proves healthy, and put the old one back otherwise.
//!
//! Steps, under the bot's lock, each recorded in the `bot_operations` journal so that a
//! botmaker killed at any point recovers to exactly one container of the bot at its next
//! start (see [`BotService::recover_upgrade`]):
//!
//! 1. the old container is stopped (its grace period) and parked under another name, never
//!    removed;
//! 2. a new container is made from the stored config with the new image, and started;
//! 3. it must pass the health gate before the deadline: it keeps running for a grace period
//!    and, when it has a probe, its probe answers; an exit, a restart or an unhealthy
//!    deadline fails it;
//! 4. on success the parked container is removed and the new image recorded; on failure the
//!    new container is removed first, then the old one is renamed back and started.
//!
//! The old and the new container never run at once: they share a workspace and ports.
//!
//! A backend that upgrades in place (Swarm, see [`DockerService::upgrades_in_place`]) has
//! nothing to park: steps 1 and 2 are one rolling update of the bot's service to the new
//! image (the old task stopped first), step 3 is the same gate, and a rollback re-applies
//! the previous image. The journal and the answer are the same.

use std::time::Instant;

use super::*;
use crate::bots::upgrade::{
    DEFAULT_UPGRADE_TIMEOUT, MAX_UPGRADE_TIMEOUT, RUN_GRACE, UpgradeBot, UpgradeOutcome,
    UpgradeResult,
};
use crate::docker::{ContainerStatus, DockerService, ImageRollout};
use crate::store::{BotOperation, UpgradeJournal};

mod gate;

/// A validated upgrade request.
struct Plan {
    image: String,
    image_id: String,
    timeout: Duration,
}

impl BotService {
    /// Upgrades the bot to `req.image` (or re-resolves its configured reference), keeping the
    /// new container only if it passes the health gate. A rollback is an outcome, not an
    /// error: the bot runs as before and the answer says why.
    pub async fn upgrade(&self, id: &str, req: UpgradeBot) -> Result<UpgradeOutcome, BotError> {
        let mut errors = FieldErrors::default();
        if let Some(image) = &req.image {
            validate::check_image(image, &mut errors);
        }
        let timeout = match req.timeout_secs {
            None => DEFAULT_UPGRADE_TIMEOUT,
            Some(s) if (1..=MAX_UPGRADE_TIMEOUT.as_secs()).contains(&s) => Duration::from_secs(s),
            Some(_) => {
                errors.add(
                    "timeout_secs",
                    format!("must be 1 to {}", MAX_UPGRADE_TIMEOUT.as_secs()),
                );
                DEFAULT_UPGRADE_TIMEOUT
            }
        };
        errors.into_result().map_err(BotError::Validation)?;
        self.with_bot(id, move |s, row| async move {
            s.upgrade_locked(row, req.image, timeout).await
        })
        .await
    }

    async fn upgrade_locked(
        &self,
        row: BotRow,
        image: Option<String>,
        timeout: Duration,
    ) -> Result<UpgradeOutcome, BotError> {
        let bot = row.id.clone();
        // An upgrade cut short earlier is taken to its end first: it may have parked the
        // container this one is about to replace.
        match self.inner.store.unfinished_operation(&bot).await? {
            Some(BotOperation::Upgrade) => {
                self.recover_upgrade(&bot).await?;
            }
            // A create or delete cut short is the reconciler's to finish.
            Some(_) => return Err(BotError::Busy(bot.to_string())),
            None => {}
        }
        let row = self
            .inner
            .store
            .get_bot(&bot)
            .await?
            .ok_or_else(|| BotError::NotFound(bot.to_string()))?;
        let spec = spec_of(&row)?;
        let image = image.unwrap_or_else(|| spec.image.clone());
        let image_id = self
            .inner
            .docker
            .image_id(&image)
            .await?
            .ok_or_else(|| BotError::ImageNotFound(image.clone()))?;
        // Whatever the tag named before, it is looked up afresh from here on.
        self.inner.images.invalidate();
        let plan = Plan {
            image,
            image_id,
            timeout,
        };
        let old = match self.inner.docker.container_status(&bot).await {
            Ok(s) => s,
            Err(ContainerError::NotOwned { .. }) => {
                return Err(BotError::NameTaken(bot.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let running = old.as_ref().is_some_and(|s| s.running);
        if old.as_ref().is_some_and(|s| s.image_id == plan.image_id)
            && (running || row.desired_state == DesiredState::Stopped)
        {
            return self.unchanged(row, spec, plan.image).await;
        }
        // A parked container with no journal entry is a leftover of an upgrade whose last
        // step failed: the bot's own container is the one that counts.
        self.inner.docker.remove_parked(&bot).await?;

        let mut new_row = row.clone();
        let mut new_spec = spec.clone();
        new_spec.image = plan.image.clone();
        new_row.spec = serde_json::to_value(&new_spec).expect("spec serializes");
        new_row.updated_at = Utc::now();
        let mut journal = UpgradeJournal {
            old_container: old.as_ref().map(|s| s.id.clone()),
            image: plan.image.clone(),
            healthy: false,
        };
        if !self.inner.store.begin_upgrade(&bot, &journal).await? {
            return Err(BotError::NotFound(bot.to_string()));
        }
        tracing::info!(bot = %bot, from = %spec.image, to = %plan.image, "upgrading");

        // Updated in place, a bot's old container is never parked, only replaced.
        let in_place = old.is_some() && self.inner.docker.upgrades_in_place();
        let stopped_at = Instant::now();
        if let Some(old) = old.as_ref().filter(|_| !in_place) {
            if let Err(e) = self.park(&row, old).await {
                // Docker may yet carry out a stop or rename it did not answer: the entry stays,
                // and recovery puts the old container back once Docker answers again.
                if !e.is_outage() {
                    self.end_journal(&bot).await;
                }
                return Err(e);
            }
        }
        let outcome = match &old {
            Some(old) if in_place => {
                self.replace_in_place(&new_row, &new_spec, &plan, old.restart_count, &stopped_at)
                    .await
            }
            _ => {
                self.replace(&new_row, &new_spec, plan.timeout, &stopped_at)
                    .await
            }
        };
        match outcome {
            Ok(healthy_at) => {
                journal.healthy = true;
                self.inner.store.set_upgrade_journal(&bot, &journal).await?;
                self.inner.docker.remove_parked(&bot).await?;
                let downtime = healthy_at.unwrap_or_else(Instant::now) - stopped_at;
                let status = self.inner.docker.container_status(&bot).await?;
                new_row.container_id = status.as_ref().map(|s| s.id.clone());
                new_row.image_id = status.as_ref().map(|s| s.image_id.clone());
                let found = self.inner.store.finish_upgrade(&new_row).await?;
                must_exist(found, &bot)?;
                tracing::info!(bot = %bot, image = %plan.image, downtime_ms = downtime.as_millis() as u64, "upgraded");
                self.inner.fleet.publish(&bot, BotEventKind::Updated, None);
                Ok(UpgradeOutcome {
                    result: UpgradeResult::Upgraded,
                    reason: None,
                    previous_image: spec.image,
                    image: plan.image,
                    downtime_ms: old.is_some().then_some(downtime.as_millis() as u64),
                    bot: self.view_now(&bot).await?,
                })
            }
            Err(reason) => {
                tracing::warn!(bot = %bot, image = %plan.image, %reason, "upgrade failed; rolling back");
                self.roll_back(&row, old.is_some(), in_place, plan.timeout)
                    .await?;
                let downtime = stopped_at.elapsed();
                self.inner
                    .fleet
                    .publish(&bot, BotEventKind::UpgradeRolledBack, None);
                Ok(UpgradeOutcome {
                    result: UpgradeResult::RolledBack,
                    reason: Some(reason),
                    previous_image: spec.image.clone(),
                    image: spec.image,
                    downtime_ms: old.is_some().then_some(downtime.as_millis() as u64),
                    bot: self.view_now(&bot).await?,
                })
            }
        }
    }

    /// The bot already runs what the reference names: record the reference (a new tag for the
    /// same image) and replace nothing.
    async fn unchanged(
        &self,
        mut row: BotRow,
        mut spec: BotSpec,
        image: String,
    ) -> Result<UpgradeOutcome, BotError> {
        let previous = spec.image.clone();
        if image != previous {
            spec.image = image.clone();
            row.spec = serde_json::to_value(&spec).expect("spec serializes");
            row.updated_at = Utc::now();
            self.save_row(&row).await?;
            self.inner
                .fleet
                .publish(&row.id, BotEventKind::Updated, None);
        }
        Ok(UpgradeOutcome {
            result: UpgradeResult::Unchanged,
            reason: None,
            previous_image: previous,
            image,
            downtime_ms: None,
            bot: self.view_now(&row.id).await?,
        })
    }

    /// Stops the old container and parks it. If parking fails, the old container is started
    /// again when it was running, so a failed upgrade leaves the bot as it was.
    async fn park(&self, row: &BotRow, old: &ContainerStatus) -> Result<(), BotError> {
        let bot = &row.id;
        // A backend that cannot park (Swarm) refuses before the bot is stopped.
        self.inner.docker.check_parking()?;
        let grace = Some(self.inner.stop_grace);
        match self.inner.docker.stop_container(bot, grace).await {
            Ok(()) | Err(ContainerError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.inner.docker.park_container(bot).await {
            if old.running && row.desired_state == DesiredState::Running {
                if let Err(e) = self.inner.docker.start_container(bot).await {
                    tracing::error!(bot = %bot, error = %e, "upgrade: could not restart the old container");
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Makes and starts the new container and waits for its verdict: when it was first
    /// healthy (`None` for a bot that stays stopped). `Err` carries the reason for the
    /// rollback, in words for the operator.
    async fn replace(
        &self,
        new_row: &BotRow,
        new_spec: &BotSpec,
        timeout: Duration,
        since: &Instant,
    ) -> Result<Option<Instant>, String> {
        let bot = &new_row.id;
        self.create_container_from(new_row)
            .await
            .map_err(|e| format!("the new container could not be created: {e}"))?;
        if new_row.desired_state == DesiredState::Stopped {
            // Nothing runs, so there is nothing to judge: the next start runs the new image.
            return Ok(None);
        }
        self.inner
            .docker
            .start_container(bot)
            .await
            .map_err(|e| format!("the new container would not start: {e}"))?;
        let deadline = *since + timeout;
        gate::wait_healthy(
            &self.inner.docker,
            bot,
            new_spec.health_check.as_ref(),
            RUN_GRACE.min(timeout),
            deadline,
            timeout,
            0,
        )
        .await
        .map(Some)
    }

    /// [`Self::replace`] on a backend that upgrades in place: the bot's image is replaced by
    /// the new one (a rolling update, the old task stopped first), then the same gate judges
    /// the new task. `restarts_before` is the bot's restart count before (its task history
    /// stays). The new task must run the new image at the end: an engine that rolled it back
    /// by itself has not upgraded it.
    async fn replace_in_place(
        &self,
        new_row: &BotRow,
        new_spec: &BotSpec,
        plan: &Plan,
        restarts_before: i64,
        since: &Instant,
    ) -> Result<Option<Instant>, String> {
        let bot = &new_row.id;
        let docker: &DockerService = &self.inner.docker;
        let deadline = *since + plan.timeout;
        let probe = new_spec.health_check.as_ref();
        let run_grace = RUN_GRACE.min(plan.timeout);
        let left = deadline.saturating_duration_since(Instant::now());
        match docker.set_image_in_place(bot, &plan.image, left).await {
            Ok(ImageRollout::Running) => {}
            Ok(ImageRollout::NotRunning) if new_row.desired_state == DesiredState::Stopped => {
                return Ok(None);
            }
            Ok(ImageRollout::NotRunning) => docker
                .start_container(bot)
                .await
                .map_err(|e| format!("the new container would not start: {e}"))?,
            Ok(ImageRollout::Failed(why)) => {
                return Err(format!("the new container exited: {why}"));
            }
            Ok(ImageRollout::TimedOut) => {
                return Err(gate::never_healthy(probe, plan.timeout, run_grace));
            }
            Err(e) => return Err(format!("the new container could not be created: {e}")),
        }
        let healthy_at = gate::wait_healthy(
            docker,
            bot,
            probe,
            run_grace,
            deadline,
            plan.timeout,
            restarts_before,
        )
        .await?;
        match docker.container_status(bot).await {
            Ok(Some(s)) if s.image_id.is_empty() || s.image_id == plan.image_id => {
                Ok(Some(healthy_at))
            }
            Ok(_) => Err("the engine put the previous image back: the new one failed".into()),
            Err(e) => Err(format!(
                "Docker did not answer about the new container: {e}"
            )),
        }
    }

    /// Puts the old container back: the new one is removed first (so the two never run at
    /// once), then the parked one gets its name back and runs again if it should. Without an
    /// old container the bot is recreated from its (unchanged) stored config. The journal
    /// entry ends only once all of that is done; an outage half-way leaves it for recovery.
    async fn roll_back(
        &self,
        row: &BotRow,
        had_container: bool,
        in_place: bool,
        limit: Duration,
    ) -> Result<(), BotError> {
        let bot = &row.id;
        let result = async {
            if in_place {
                return self.roll_back_in_place(row, limit).await;
            }
            self.inner
                .docker
                .remove_container(bot, Some(Duration::ZERO))
                .await?;
            if had_container {
                self.inner.docker.unpark_container(bot).await?;
                if row.desired_state == DesiredState::Running {
                    self.inner.docker.start_container(bot).await?;
                }
                Ok::<_, BotError>(())
            } else {
                self.recreate(row).await
            }
        }
        .await;
        match result {
            Ok(()) => {
                self.end_journal(bot).await;
                Ok(())
            }
            Err(e) => {
                tracing::error!(bot = %bot, error = %e, "upgrade rollback incomplete; it is finished when Docker answers again");
                self.unsettle(bot, Unsettled::State);
                Err(e)
            }
        }
    }

    /// Puts the stored (previous) image back on a backend that upgrades in place, and waits
    /// up to `limit` for it to run again when the bot should run. Safe to repeat: a bot
    /// already on that image (the engine rolled it back itself) is only waited for.
    async fn roll_back_in_place(&self, row: &BotRow, limit: Duration) -> Result<(), BotError> {
        let bot = &row.id;
        let image = spec_of(row)?.image;
        let failed = |message: String| {
            BotError::from(ContainerError::StartFailed {
                bot_id: bot.to_string(),
                message,
            })
        };
        match self
            .inner
            .docker
            .set_image_in_place(bot, &image, limit)
            .await?
        {
            ImageRollout::Running => Ok(()),
            ImageRollout::NotRunning if row.desired_state == DesiredState::Running => {
                Ok(self.inner.docker.start_container(bot).await?)
            }
            ImageRollout::NotRunning => Ok(()),
            ImageRollout::Failed(why) => Err(failed(format!(
                "the previous image did not run again: {why}"
            ))),
            ImageRollout::TimedOut => Err(failed(format!(
                "the previous image did not run again within {} s",
                limit.as_secs()
            ))),
        }
    }

    async fn end_journal(&self, bot: &BotId) {
        if let Err(e) = self.inner.store.end_operation(bot).await {
            tracing::error!(bot = %bot, error = %e, "could not end the upgrade's journal entry");
        }
    }

    /// The bot as it is now (one inspect, not the watch cache, which may not have seen the
    /// new container's events yet), with drift.
    async fn view_now(&self, bot: &BotId) -> Result<BotView, BotError> {
        self.inspect(bot.as_str()).await
    }

    /// Takes an upgrade cut short (by a crash, or an outage during its rollback) to the end
    /// that leaves exactly one container of the bot: finished when the new container had
    /// passed its gate, undone otherwise. The caller holds the bot's lock. Returns whether the
    /// upgrade was finished (`true`) or rolled back.
    pub(super) async fn recover_upgrade(&self, bot: &BotId) -> Result<bool, BotError> {
        let Some(journal) = self.inner.store.upgrade_journal(bot).await? else {
            self.inner.store.end_operation(bot).await?;
            return Ok(false);
        };
        let Some(row) = self.inner.store.get_bot(bot).await? else {
            self.inner.docker.remove_parked(bot).await?;
            self.inner.store.end_operation(bot).await?;
            return Ok(false);
        };
        let parked = self.inner.docker.parked_status(bot).await?;
        let current = match self.inner.docker.container_status(bot).await {
            Ok(s) => s,
            Err(ContainerError::NotOwned { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let is_old = |s: &ContainerStatus| journal.old_container.as_deref() == Some(s.id.as_str());
        if journal.healthy {
            if parked.is_some() {
                self.inner.docker.remove_parked(bot).await?;
            }
            let mut new_row = row.clone();
            let mut spec = spec_of(&row)?;
            spec.image = journal.image.clone();
            new_row.spec = serde_json::to_value(&spec).expect("spec serializes");
            new_row.updated_at = Utc::now();
            let current = current.filter(|s| !is_old(s));
            new_row.container_id = current.as_ref().map(|s| s.id.clone());
            new_row.image_id = current.as_ref().map(|s| s.image_id.clone());
            self.inner.store.finish_upgrade(&new_row).await?;
            return Ok(true);
        }
        if self.inner.docker.upgrades_in_place() {
            // Nothing was parked: the service runs the new image or the old one, and the
            // stored config still names the old. Put it back without waiting for it (the
            // start below, and the reconciler, see to the rest).
            let image = spec_of(&row)?.image;
            match self
                .inner
                .docker
                .set_image_in_place(bot, &image, Duration::ZERO)
                .await
            {
                Ok(_) | Err(ContainerError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            self.put_parked_back(bot, parked.is_some(), current.as_ref(), &journal)
                .await?;
        }
        if row.desired_state == DesiredState::Running {
            match self.inner.docker.start_container(bot).await {
                Ok(()) | Err(ContainerError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.inner.store.end_operation(bot).await?;
        Ok(false)
    }

    /// Recovery on a backend that parks: the old container gets its name back, whatever new
    /// one holds it removed first; without a parked one, a new container is removed (the
    /// reconciler recreates the bot from its unchanged config).
    async fn put_parked_back(
        &self,
        bot: &BotId,
        parked: bool,
        current: Option<&ContainerStatus>,
        journal: &UpgradeJournal,
    ) -> Result<(), BotError> {
        let is_old = |s: &ContainerStatus| journal.old_container.as_deref() == Some(s.id.as_str());
        match (parked, current) {
            // The old container is parked: whatever holds the bot's name is the new one.
            (true, current) => {
                if current.is_some() {
                    self.inner
                        .docker
                        .remove_container(bot, Some(Duration::ZERO))
                        .await?;
                }
                self.inner.docker.unpark_container(bot).await?;
            }
            (false, Some(c)) if !is_old(c) => {
                self.inner
                    .docker
                    .remove_container(bot, Some(Duration::ZERO))
                    .await?;
            }
            // The old container never left its name.
            _ => {}
        }
        Ok(())
    }
}
