//! The upgrade entries of the `bot_operations` journal: what a restart needs to know to take an
//! upgrade cut short to a safe end.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::bots::secret_names_json;
use super::{Store, StoreError, timestamp};
use crate::BotId;
use crate::store::BotRow;

/// How far an upgrade got, kept in its journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeJournal {
    /// Id of the container the bot ran before, which the upgrade parks and restores on
    /// failure; `None` when the bot had no container.
    pub old_container: Option<String>,
    /// The image reference being upgraded to.
    pub image: String,
    /// Set once the new container has passed its health gate: from then on a restart finishes
    /// the upgrade instead of undoing it.
    pub healthy: bool,
}

impl Store {
    /// Records that the bot's upgrade has begun, unless another operation on it is unfinished.
    /// Returns `false` if there is no such bot.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the bot has an unfinished operation (finish it first).
    pub async fn begin_upgrade(
        &self,
        id: &BotId,
        journal: &UpgradeJournal,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let detail = serde_json::to_string(journal).expect("journal serializes");
        self.call(move |conn| {
            let changed = conn
                .execute(
                    "INSERT INTO bot_operations (bot_id, operation, started_at, detail) \
                     SELECT id, 'upgrade', ?2, ?3 FROM bots WHERE id = ?1",
                    params![id.as_str(), timestamp(&Utc::now()), detail],
                )
                .map_err(|e| match super::unique_violation(&e) {
                    Some(_) => StoreError::AlreadyExists {
                        id: format!("an unfinished operation on bot '{id}'"),
                    },
                    None => e.into(),
                })?;
            Ok(changed > 0)
        })
        .await
    }

    /// Replaces the detail of the bot's upgrade entry (no entry: nothing happens).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn set_upgrade_journal(
        &self,
        id: &BotId,
        journal: &UpgradeJournal,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let detail = serde_json::to_string(journal).expect("journal serializes");
        self.call(move |conn| {
            conn.execute(
                "UPDATE bot_operations SET detail = ?2 WHERE bot_id = ?1 AND operation = 'upgrade'",
                params![id.as_str(), detail],
            )?;
            Ok(())
        })
        .await
    }

    /// The detail of the bot's unfinished upgrade, if it has one.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry's detail cannot be read back.
    pub async fn upgrade_journal(&self, id: &BotId) -> Result<Option<UpgradeJournal>, StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            let detail: Option<Option<String>> = conn
                .query_row(
                    "SELECT detail FROM bot_operations WHERE bot_id = ?1 AND operation = 'upgrade'",
                    [id.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(detail) = detail else {
                return Ok(None);
            };
            let detail = detail.unwrap_or_default();
            serde_json::from_str(&detail).map(Some).map_err(|e| {
                StoreError::corrupt(format!(
                    "bot_operations.detail of the upgrade of bot '{id}' is unreadable: {e}"
                ))
            })
        })
        .await
    }

    /// Ends the bot's upgrade as a success: stores `row` (the new image, container and image
    /// ids) and removes the journal entry in one transaction. Returns `false` if there is no
    /// such bot (the entry is removed all the same).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn finish_upgrade(&self, row: &BotRow) -> Result<bool, StoreError> {
        let bot = row.clone();
        let result = self
            .call(move |conn| {
                let tx = conn.transaction()?;
                let changed = tx.execute(
                "UPDATE bots SET spec = ?2, secret_names = ?3, container_id = ?4, image_id = ?5, \
                 updated_at = ?6 WHERE id = ?1",
                params![
                    bot.id.as_str(),
                    bot.spec.to_string(),
                    secret_names_json(&bot.secret_names),
                    bot.container_id,
                    bot.image_id,
                    timestamp(&bot.updated_at),
                ],
            )?;
                tx.execute(
                    "DELETE FROM bot_operations WHERE bot_id = ?1",
                    [bot.id.as_str()],
                )?;
                tx.commit()?;
                Ok(changed > 0)
            })
            .await;
        // The row changed: the watch cache must read it again (see `Store::take_bot_changes`).
        self.mark_bot_changed(&row.id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BotOperation, DesiredState};
    use serde_json::json;

    fn row(id: &str) -> BotRow {
        let now = Utc::now();
        BotRow {
            id: BotId::new(id).unwrap(),
            name: id.into(),
            template: "generic".into(),
            spec: json!({ "image": "img:1" }),
            secret_names: vec![],
            desired_state: DesiredState::Running,
            container_id: Some("old".into()),
            image_id: Some("sha256:1".into()),
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn an_upgrade_is_journaled_until_it_is_finished() {
        let store = Store::open_in_memory().await.unwrap();
        let mut bot = row("up");
        store.insert_bot(&bot).await.unwrap();
        let mut journal = UpgradeJournal {
            old_container: Some("old".into()),
            image: "img:2".into(),
            healthy: false,
        };
        assert!(store.begin_upgrade(&bot.id, &journal).await.unwrap());
        assert_eq!(
            store.unfinished_operation(&bot.id).await.unwrap(),
            Some(BotOperation::Upgrade)
        );
        // One operation at a time per bot.
        let err = store.begin_upgrade(&bot.id, &journal).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
        journal.healthy = true;
        store.set_upgrade_journal(&bot.id, &journal).await.unwrap();
        assert_eq!(
            store.upgrade_journal(&bot.id).await.unwrap(),
            Some(journal.clone())
        );

        bot.spec = json!({ "image": "img:2" });
        bot.container_id = Some("new".into());
        assert!(store.finish_upgrade(&bot).await.unwrap());
        assert_eq!(store.upgrade_journal(&bot.id).await.unwrap(), None);
        assert!(store.unfinished_operations().await.unwrap().is_empty());
        let got = store.get_bot(&bot.id).await.unwrap().unwrap();
        assert_eq!(got.spec, json!({ "image": "img:2" }));
        assert_eq!(got.container_id.as_deref(), Some("new"));
    }

    /// Regression: a finished upgrade rewrote the bot's row without noting it, so the watch
    /// cache kept serving the old image and spec after an upgrade.
    #[tokio::test]
    async fn finish_upgrade_left_the_watch_cache_with_the_old_row() {
        let store = Store::open_in_memory().await.unwrap();
        let mut bot = row("noted");
        store.insert_bot(&bot).await.unwrap();
        store.take_bot_changes();
        bot.spec = json!({ "image": "img:2" });
        assert!(store.finish_upgrade(&bot).await.unwrap());
        assert!(
            store.take_bot_changes().ids.contains(&bot.id),
            "the upgraded row must be re-read by the cache"
        );
    }

    #[tokio::test]
    async fn an_unknown_bot_cannot_begin_an_upgrade() {
        let store = Store::open_in_memory().await.unwrap();
        let journal = UpgradeJournal {
            old_container: None,
            image: "img:2".into(),
            healthy: false,
        };
        let ghost = BotId::new("ghost").unwrap();
        assert!(!store.begin_upgrade(&ghost, &journal).await.unwrap());
        assert_eq!(store.upgrade_journal(&ghost).await.unwrap(), None);
    }

    /// Regression: the v3 rebuild of `bot_operations` must keep entries written under v2, or
    /// a create or delete cut short right before an upgrade of botmaker would never be
    /// recovered.
    #[test]
    fn migrating_to_v3_keeps_unfinished_creates_and_deletes() {
        use super::super::migrations::{MIGRATIONS, apply};
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        apply(&mut conn, &MIGRATIONS[..2]).unwrap();
        conn.execute(
            "INSERT INTO bot_operations VALUES ('half-made', 'create', '2024-01-01T00:00:00.000000000Z')",
            [],
        )
        .unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        let kept: (String, String, Option<String>) = conn
            .query_row(
                "SELECT bot_id, operation, detail FROM bot_operations",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(kept, ("half-made".into(), "create".into(), None));
        conn.execute(
            "INSERT INTO bot_operations VALUES ('u', 'upgrade', 'x', '{}')",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO bot_operations VALUES ('v', 'rename', 'x', NULL)",
                []
            )
            .is_err()
        );
    }
}
