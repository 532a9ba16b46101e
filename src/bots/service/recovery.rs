//! Recovery of creates, deletes and upgrades that began and never ended: botmaker was killed
//! half-way, or Docker went away before a failed create could remove its container. The
//! `bot_operations` journal names them; each is taken to the end that cannot surprise anyone.

use super::*;
use crate::store::BotOperation;

/// What [`BotService::recover_interrupted`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Bots whose interrupted create was undone.
    pub creates_undone: Vec<String>,
    /// Bots whose interrupted delete was finished.
    pub deletes_finished: Vec<String>,
    /// Bots whose interrupted upgrade was undone: the old container runs again.
    pub upgrades_rolled_back: Vec<String>,
    /// Bots whose interrupted upgrade was finished: the new container had passed its gate.
    pub upgrades_finished: Vec<String>,
}

impl Recovered {
    /// Whether there was nothing to recover.
    pub fn is_empty(&self) -> bool {
        self.creates_undone.is_empty()
            && self.deletes_finished.is_empty()
            && self.upgrades_rolled_back.is_empty()
            && self.upgrades_finished.is_empty()
    }
}

impl BotService {
    /// Undoes every interrupted create and finishes every interrupted delete. Both end the
    /// same way: the bot's container, secrets, workspace and row are removed. A create is
    /// undone rather than finished because its secret values were only ever in the request.
    ///
    /// Each bot is handled under its lock, and its journal entry re-read under it: a live
    /// create or delete holds that lock from its first step to its last, so an entry still
    /// there is one whose operation is over. A bot whose lock is taken is left for the next
    /// round rather than waited for. Runs before botmaker serves, whenever Docker comes back,
    /// and with every resync.
    pub async fn recover_interrupted(&self) -> Result<Recovered, BotError> {
        let _registry = self.inner.registry.read().await;
        let mut done = Recovered::default();
        for (bot, _) in self.inner.store.unfinished_operations().await? {
            let lock = self.locks().entry(bot.clone()).or_default().clone();
            let Ok(guard) = lock.try_lock_owned() else {
                continue;
            };
            let Some(op) = self.inner.store.unfinished_operation(&bot).await? else {
                continue;
            };
            if op == BotOperation::Upgrade {
                let (s, b) = (self.clone(), bot.clone());
                let finished = run_to_completion(async move {
                    let finished = s.recover_upgrade(&b).await;
                    drop(guard);
                    finished
                })
                .await?;
                tracing::info!(bot = %bot, finished, "took an interrupted upgrade to its end");
                match finished {
                    true => done.upgrades_finished.push(bot.to_string()),
                    false => done.upgrades_rolled_back.push(bot.to_string()),
                }
                continue;
            }
            let (s, b) = (self.clone(), bot.clone());
            run_to_completion(async move {
                match s
                    .inner
                    .docker
                    .remove_container(&b, Some(Duration::ZERO))
                    .await
                {
                    // A container of another owner holding the name was never ours.
                    Ok(_) | Err(ContainerError::NotOwned { .. }) => {}
                    Err(e) => return Err(BotError::from(e)),
                }
                s.inner.docker.remove_parked(&b).await?;
                s.purge_files_and_row(&b).await?;
                s.drop_lock(&b, &guard);
                Ok(())
            })
            .await?;
            tracing::info!(bot = %bot, operation = ?op, "finished an interrupted operation");
            match op {
                BotOperation::Create => done.creates_undone.push(bot.to_string()),
                BotOperation::Delete => done.deletes_finished.push(bot.to_string()),
                BotOperation::Upgrade => unreachable!("handled above"),
            }
        }
        Ok(done)
    }
}
