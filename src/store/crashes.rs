//! Crash history (`crash_history`): the unrequested deaths of each bot's container over the
//! crash-loop window, so a server restart does not forget that a bot is crash-looping.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::BotId;

/// The crashes of one bot's container, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashHistory {
    /// The bot.
    pub bot_id: BotId,
    /// The container that crashed.
    pub container_id: String,
    /// When, oldest first.
    pub deaths: Vec<DateTime<Utc>>,
}

impl Store {
    /// Records a crash of the bot's container `container_id` at `at`, and forgets what no
    /// longer counts: the bot's crashes before `keep_since` and those of its other containers
    /// (a new container starts clean). A bot deleted meanwhile records nothing.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn record_crash(
        &self,
        id: &BotId,
        container_id: &str,
        at: DateTime<Utc>,
        keep_since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, container) = (id.clone(), container_id.to_string());
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM crash_history WHERE bot_id = ?1 AND (container_id != ?2 OR died_at < ?3)",
                params![id.as_str(), container, timestamp(&keep_since)],
            )?;
            tx.execute(
                "INSERT INTO crash_history (bot_id, container_id, died_at) \
                 SELECT id, ?2, ?3 FROM bots WHERE id = ?1",
                params![id.as_str(), container, timestamp(&at)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Every bot's crashes since `since`, per container, oldest first; older rows are
    /// deleted on the way.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if a statement fails; [`StoreError::Corrupt`] for a row that
    /// cannot be read back.
    pub async fn crash_history(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<CrashHistory>, StoreError> {
        self.call(move |conn| {
            let since = timestamp(&since);
            conn.execute("DELETE FROM crash_history WHERE died_at < ?1", [&since])?;
            let mut stmt = conn.prepare(
                "SELECT bot_id, container_id, died_at FROM crash_history \
                 ORDER BY bot_id, container_id, died_at",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out: Vec<CrashHistory> = Vec::new();
            for (bot, container, died) in rows {
                let at = parse_timestamp(&died, || format!("crash_history.died_at of {bot}"))?;
                match out.last_mut() {
                    Some(h) if h.bot_id.as_str() == bot && h.container_id == container => {
                        h.deaths.push(at);
                    }
                    _ => out.push(CrashHistory {
                        bot_id: BotId::new(bot.clone()).map_err(|_| {
                            StoreError::corrupt(format!("crash_history.bot_id {bot:?}"))
                        })?,
                        container_id: container,
                        deaths: vec![at],
                    }),
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BotRow, DesiredState};
    use chrono::Duration;

    async fn store_with_bot(id: &str) -> (Store, BotId) {
        let store = Store::open_in_memory().await.unwrap();
        let id = BotId::new(id).unwrap();
        let now = Utc::now();
        store
            .insert_bot(&BotRow {
                id: id.clone(),
                name: id.to_string(),
                template: "generic".into(),
                spec: serde_json::json!({"image": "x"}),
                secret_names: Vec::new(),
                desired_state: DesiredState::Running,
                container_id: None,
                image_id: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        (store, id)
    }

    #[tokio::test]
    async fn crashes_are_kept_for_the_window_and_for_the_current_container_only() {
        let (store, id) = store_with_bot("b").await;
        let now = Utc::now();
        let window = Duration::seconds(300);
        for s in [400, 30, 20] {
            let at = now - Duration::seconds(s);
            store
                .record_crash(&id, "c1", at, at - window)
                .await
                .unwrap();
        }
        let h = store.crash_history(now - window).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].container_id, "c1");
        assert_eq!(
            h[0].deaths.len(),
            2,
            "the crash 400 s ago is outside the window"
        );
        // Another container: the old one's crashes go.
        store
            .record_crash(&id, "c2", now, now - window)
            .await
            .unwrap();
        let h = store.crash_history(now - window).await.unwrap();
        assert_eq!((h.len(), h[0].container_id.as_str()), (1, "c2"));
        // A deleted bot takes its history with it, and a late crash of it records nothing.
        store.delete_bot(&id).await.unwrap();
        store
            .record_crash(&id, "c2", now, now - window)
            .await
            .unwrap();
        assert!(store.crash_history(now - window).await.unwrap().is_empty());
    }
}
