//! Bot rows: what each bot is (name, template, spec, secret names), whether it should be running,
//! and which container and image last ran it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, UniqueViolation, parse_timestamp, timestamp, unique_violation};
use crate::BotId;

/// Whether the operator wants a bot's container running. The reconciler makes Docker match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    /// The container should be up, and be restarted if it dies.
    Running,
    /// The container should be stopped (it is kept, with its state).
    Stopped,
}

impl DesiredState {
    /// The stored and serialized form: `running` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

impl fmt::Display for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is neither `running` nor `stopped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown desired state {0:?} (expected \"running\" or \"stopped\")")]
pub struct UnknownDesiredState(String);

impl FromStr for DesiredState {
    type Err = UnknownDesiredState;

    /// Parses the exact lowercase form written by [`DesiredState::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(Self::Running),
            "stopped" => Ok(Self::Stopped),
            other => Err(UnknownDesiredState(other.to_owned())),
        }
    }
}

/// One row of the `bots` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotRow {
    /// Primary key; also the container's hostname.
    pub id: BotId,
    /// Display name.
    pub name: String,
    /// The template the bot was created from.
    pub template: String,
    /// The bot's spec, opaque to the store (the `bots` module gives it meaning).
    pub spec: serde_json::Value,
    /// Names of the secrets mounted into the bot's container (never their values).
    pub secret_names: Vec<String>,
    /// Whether the container should be running.
    pub desired_state: DesiredState,
    /// The Docker container currently serving the bot, if one has been created.
    pub container_id: Option<String>,
    /// The image that container was created from.
    pub image_id: Option<String>,
    /// When the bot was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

const BOT_COLUMNS: &str = "id, name, template, spec, secret_names, desired_state, container_id, \
                           image_id, created_at, updated_at";

/// A `bots` row as SQLite hands it over, before anything is parsed. Reading the columns and
/// parsing them are separate steps so a bad value becomes [`StoreError::Corrupt`], which
/// rusqlite's row callbacks cannot return.
struct RawBot {
    id: String,
    name: String,
    template: String,
    spec: String,
    secret_names: String,
    desired_state: String,
    container_id: Option<String>,
    image_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl RawBot {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            template: row.get(2)?,
            spec: row.get(3)?,
            secret_names: row.get(4)?,
            desired_state: row.get(5)?,
            container_id: row.get(6)?,
            image_id: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
        })
    }

    fn parse(self) -> Result<BotRow, StoreError> {
        let id = BotId::new(self.id.as_str()).map_err(|e| {
            StoreError::corrupt(format!("bots.id {:?} is not a valid bot id: {e}", self.id))
        })?;
        let column = |name: &str| format!("bots.{name} of bot '{id}'");
        let spec = serde_json::from_str(&self.spec)
            .map_err(|e| StoreError::corrupt(format!("{} is not JSON: {e}", column("spec"))))?;
        let secret_names = serde_json::from_str(&self.secret_names).map_err(|e| {
            StoreError::corrupt(format!(
                "{} is not a JSON array of strings: {e}",
                column("secret_names")
            ))
        })?;
        let desired_state = self
            .desired_state
            .parse()
            .map_err(|e| StoreError::corrupt(format!("{}: {e}", column("desired_state"))))?;
        let created_at = parse_timestamp(&self.created_at, || column("created_at"))?;
        let updated_at = parse_timestamp(&self.updated_at, || column("updated_at"))?;
        Ok(BotRow {
            id,
            name: self.name,
            template: self.template,
            spec,
            secret_names,
            desired_state,
            container_id: self.container_id,
            image_id: self.image_id,
            created_at,
            updated_at,
        })
    }
}

/// A create or delete of a bot that has begun and not yet ended (the `bot_operations` journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BotOperation {
    /// The bot is being created: a crash leaves it half-made, so it is undone.
    Create,
    /// The bot is being deleted: a crash leaves it half-deleted, so it is finished.
    Delete,
    /// The bot's container is being replaced by one of a new image: a crash leaves it with the
    /// old container parked, so it is put back, or finished if the new one had passed (see
    /// [`UpgradeJournal`](super::UpgradeJournal)).
    Upgrade,
}

pub(super) fn parse_operation(id: &str, op: &str) -> Result<(BotId, BotOperation), StoreError> {
    let bot = BotId::new(id).map_err(|e| {
        StoreError::corrupt(format!(
            "bot_operations.bot_id {id:?} is not a valid bot id: {e}"
        ))
    })?;
    let op = match op {
        "create" => BotOperation::Create,
        "delete" => BotOperation::Delete,
        "upgrade" => BotOperation::Upgrade,
        other => {
            return Err(StoreError::corrupt(format!(
                "bot_operations.operation {other:?} of bot '{id}'"
            )));
        }
    };
    Ok((bot, op))
}

fn insert(conn: &rusqlite::Connection, bot: &BotRow) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO bots ({BOT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            bot.id.as_str(),
            bot.name,
            bot.template,
            bot.spec.to_string(),
            secret_names_json(&bot.secret_names),
            bot.desired_state.as_str(),
            bot.container_id,
            bot.image_id,
            timestamp(&bot.created_at),
            timestamp(&bot.updated_at),
        ],
    )
    .map_err(|e| match unique_violation(&e) {
        Some(UniqueViolation::PrimaryKey) => StoreError::AlreadyExists {
            id: bot.id.to_string(),
        },
        _ => e.into(),
    })?;
    Ok(())
}

/// The stored form of a secret-name list: a JSON array.
pub(super) fn secret_names_json(names: &[String]) -> String {
    serde_json::Value::from(names).to_string()
}

/// Which bot rows may have changed since the last [`Store::take_bot_changes`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BotChanges {
    /// The bots written (inserted, updated or deleted), whether or not the write succeeded:
    /// one that failed part-way may still have committed.
    pub ids: std::collections::HashSet<BotId>,
}

impl Store {
    /// Notes that `id`'s row may have changed. Called AFTER the write returns, so a reader
    /// that takes the note and then reads the row sees the write.
    pub(super) fn mark_bot_changed(&self, id: &BotId) {
        self.changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ids
            .insert(id.clone());
    }

    /// The bots whose rows were written through this handle (or a clone of it) since the last
    /// call, forgetting them: what a cache of the rows must re-read to be exact. Writes by
    /// another process (`sqlite3` by hand) are not seen; the reconciler's periodic resync
    /// re-reads every row for those.
    pub fn take_bot_changes(&self) -> BotChanges {
        std::mem::take(
            &mut *self
                .changed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Adds a bot.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (with the bot id) if a bot with this id exists.
    pub async fn insert_bot(&self, bot: &BotRow) -> Result<(), StoreError> {
        let bot = bot.clone();
        let changed_id = bot.id.clone();
        let result = self.call(move |conn| insert(conn, &bot)).await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Adds a bot and records, in the same transaction, that its creation has begun: until
    /// [`Store::end_operation`], a restart takes the bot for a create cut short and undoes it.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (with the bot id) if a bot with this id exists.
    pub async fn begin_create(&self, bot: &BotRow) -> Result<(), StoreError> {
        let bot = bot.clone();
        let changed_id = bot.id.clone();
        let result = self
            .call(move |conn| {
                let tx = conn.transaction()?;
                insert(&tx, &bot)?;
                tx.execute(
                    "INSERT OR REPLACE INTO bot_operations (bot_id, operation, started_at) \
                 VALUES (?1, 'create', ?2)",
                    params![bot.id.as_str(), timestamp(&Utc::now())],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Records that the bot's deletion has begun: until the row is gone
    /// ([`Store::forget_bot`]), a restart finishes the delete. Returns `false` if there is no
    /// such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn begin_delete(&self, id: &BotId) -> Result<bool, StoreError> {
        let id = id.clone();
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                let changed = conn.execute(
                    "INSERT OR REPLACE INTO bot_operations (bot_id, operation, started_at) \
                 SELECT id, 'delete', ?2 FROM bots WHERE id = ?1",
                    params![id.as_str(), timestamp(&Utc::now())],
                )?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Ends the bot's create or delete: the bot stays as it now is.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn end_operation(&self, id: &BotId) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |conn| {
            conn.execute(
                "DELETE FROM bot_operations WHERE bot_id = ?1",
                [id.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes the bot's row, its create or delete entry and its stats history, in one
    /// transaction. Returns `false` if there was no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn forget_bot(&self, id: &BotId) -> Result<bool, StoreError> {
        let id = id.clone();
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                let tx = conn.transaction()?;
                let changed = tx.execute("DELETE FROM bots WHERE id = ?1", [id.as_str()])?;
                tx.execute(
                    "DELETE FROM bot_operations WHERE bot_id = ?1",
                    [id.as_str()],
                )?;
                // Its stats history goes with it: a later bot of the same id starts blank.
                tx.execute(
                    "DELETE FROM bot_stats_minutes WHERE bot_id = ?1",
                    [id.as_str()],
                )?;
                tx.commit()?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Creates and deletes that began and never ended, oldest first: after a crash, the ones
    /// to undo or finish.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry cannot be read back.
    pub async fn unfinished_operations(&self) -> Result<Vec<(BotId, BotOperation)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT bot_id, operation FROM bot_operations ORDER BY started_at, bot_id",
            )?;
            let raw = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter()
                .map(|(id, op)| parse_operation(&id, &op))
                .collect()
        })
        .await
    }

    /// The bot's create or delete that began and has not ended, if any.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry cannot be read back.
    pub async fn unfinished_operation(
        &self,
        id: &BotId,
    ) -> Result<Option<BotOperation>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT operation FROM bot_operations WHERE bot_id = ?1",
                [id.as_str()],
                |row| row.get::<_, String>(0),
            )
            .optional()?
            .map(|op| parse_operation(id.as_str(), &op).map(|(_, op)| op))
            .transpose()
        })
        .await
    }

    /// The bot with this id, if any.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the stored row cannot be read back.
    pub async fn get_bot(&self, id: &BotId) -> Result<Option<BotRow>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {BOT_COLUMNS} FROM bots WHERE id = ?1"),
                [id.as_str()],
                RawBot::read,
            )
            .optional()?
            .map(RawBot::parse)
            .transpose()
        })
        .await
    }

    /// Every bot, oldest first (ties broken by id, so the order is stable).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if any stored row cannot be read back.
    pub async fn list_bots(&self) -> Result<Vec<BotRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {BOT_COLUMNS} FROM bots ORDER BY created_at, id"
            ))?;
            let raw = stmt
                .query_map([], RawBot::read)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter().map(RawBot::parse).collect()
        })
        .await
    }

    /// Replaces the bot with `bot.id` by `bot`, including `updated_at`; `created_at` is kept.
    /// Returns `false` if there is no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn update_bot(&self, bot: &BotRow) -> Result<bool, StoreError> {
        let bot = bot.clone();
        let changed_id = bot.id.clone();
        let result = self
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE bots SET name = ?2, template = ?3, spec = ?4, secret_names = ?5, \
                 desired_state = ?6, container_id = ?7, image_id = ?8, updated_at = ?9 \
                 WHERE id = ?1",
                    params![
                        bot.id.as_str(),
                        bot.name,
                        bot.template,
                        bot.spec.to_string(),
                        secret_names_json(&bot.secret_names),
                        bot.desired_state.as_str(),
                        bot.container_id,
                        bot.image_id,
                        timestamp(&bot.updated_at),
                    ],
                )?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Records whether the bot should be running, and sets `updated_at` to now. Returns `false`
    /// if there is no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn set_desired_state(
        &self,
        id: &BotId,
        state: DesiredState,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE bots SET desired_state = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id.as_str(), state.as_str(), timestamp(&Utc::now())],
                )?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Records the bot's current container and image (`None` clears them), and sets
    /// `updated_at` to now. Returns `false` if there is no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn set_container(
        &self,
        id: &BotId,
        container_id: Option<&str>,
        image_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let container_id = container_id.map(str::to_owned);
        let image_id = image_id.map(str::to_owned);
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                let changed = conn.execute(
                "UPDATE bots SET container_id = ?2, image_id = ?3, updated_at = ?4 WHERE id = ?1",
                params![id.as_str(), container_id, image_id, timestamp(&Utc::now())],
            )?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Replaces the bot's list of secret names, and sets `updated_at` to now. Returns `false`
    /// if there is no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn set_secret_names(&self, id: &BotId, names: &[String]) -> Result<bool, StoreError> {
        let id = id.clone();
        let names = secret_names_json(names);
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE bots SET secret_names = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id.as_str(), names, timestamp(&Utc::now())],
                )?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }

    /// Removes the bot's row. Returns `false` if there was no such bot.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn delete_bot(&self, id: &BotId) -> Result<bool, StoreError> {
        let id = id.clone();
        let changed_id = id.clone();
        let result = self
            .call(move |conn| {
                // Its stats history goes with it: a later bot of the same id starts blank.
                let tx = conn.transaction()?;
                tx.execute(
                    "DELETE FROM bot_stats_minutes WHERE bot_id = ?1",
                    [id.as_str()],
                )?;
                let changed = tx.execute("DELETE FROM bots WHERE id = ?1", [id.as_str()])?;
                tx.commit()?;
                Ok(changed > 0)
            })
            .await;
        self.mark_bot_changed(&changed_id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        // A sub-microsecond part checks that timestamps come back exactly.
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
            + Duration::seconds(seconds)
            + Duration::nanoseconds(123_456_789)
    }

    fn bot(id: &str, created_at: DateTime<Utc>) -> BotRow {
        BotRow {
            id: BotId::new(id).unwrap(),
            name: format!("Bot {id}"),
            template: "echo".into(),
            spec: json!({
                "model": "small",
                "temperature": 0.5,
                "tools": ["search", null, 3],
                "greeting": "h\u{e9}llo \u{2713} 'quoted' \"double\"",
            }),
            secret_names: vec!["openai-key".into(), "telegram-token".into()],
            desired_state: DesiredState::Running,
            container_id: None,
            image_id: None,
            created_at,
            updated_at: created_at,
        }
    }

    fn id(s: &str) -> BotId {
        BotId::new(s).unwrap()
    }

    #[test]
    fn desired_state_forms() {
        for state in [DesiredState::Running, DesiredState::Stopped] {
            assert_eq!(state.as_str().parse::<DesiredState>(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{state}\"")
            );
        }
        assert_eq!(
            serde_json::from_str::<DesiredState>("\"stopped\"").unwrap(),
            DesiredState::Stopped
        );
        assert!("Running".parse::<DesiredState>().is_err());
        assert!(serde_json::from_str::<DesiredState>("\"paused\"").is_err());
    }

    #[tokio::test]
    async fn bot_round_trips_through_every_method() {
        let store = Store::open_in_memory().await.unwrap();
        let mut row = bot("alpha", at(0));
        store.insert_bot(&row).await.unwrap();
        assert_eq!(store.get_bot(&row.id).await.unwrap(), Some(row.clone()));

        row.name = "Renamed".into();
        row.spec = json!({"model": "large", "nested": {"deep": [1, 2]}});
        row.secret_names = vec![];
        row.desired_state = DesiredState::Stopped;
        row.container_id = Some("c0ffee".into());
        row.image_id = Some("sha256:abc".into());
        row.updated_at = at(60);
        let mut sent = row.clone();
        sent.created_at = at(999); // update_bot keeps the stored created_at
        assert!(store.update_bot(&sent).await.unwrap());
        assert_eq!(store.get_bot(&row.id).await.unwrap(), Some(row.clone()));

        let before = Utc::now();
        assert!(
            store
                .set_desired_state(&row.id, DesiredState::Running)
                .await
                .unwrap()
        );
        let got = store.get_bot(&row.id).await.unwrap().unwrap();
        assert_eq!(got.desired_state, DesiredState::Running);
        assert!(got.updated_at >= before);

        assert!(
            store
                .set_container(&row.id, Some("beef"), Some("sha256:def"))
                .await
                .unwrap()
        );
        let got = store.get_bot(&row.id).await.unwrap().unwrap();
        assert_eq!(got.container_id.as_deref(), Some("beef"));
        assert_eq!(got.image_id.as_deref(), Some("sha256:def"));
        assert!(store.set_container(&row.id, None, None).await.unwrap());
        let got = store.get_bot(&row.id).await.unwrap().unwrap();
        assert_eq!((got.container_id, got.image_id), (None, None));

        let names = vec!["a-key".to_string(), "b-key".to_string()];
        assert!(store.set_secret_names(&row.id, &names).await.unwrap());
        let got = store.get_bot(&row.id).await.unwrap().unwrap();
        assert_eq!(got.secret_names, names);
        assert_eq!(got.spec, row.spec);
        assert_eq!(got.created_at, at(0));

        assert!(store.delete_bot(&row.id).await.unwrap());
        assert_eq!(store.get_bot(&row.id).await.unwrap(), None);
        assert!(store.list_bots().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn duplicate_insert_is_already_exists() {
        let store = Store::open_in_memory().await.unwrap();
        store.insert_bot(&bot("dup", at(0))).await.unwrap();
        let mut other = bot("dup", at(5));
        other.name = "Other".into();
        let err = store.insert_bot(&other).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::AlreadyExists { id } if id == "dup"),
            "{err:?}"
        );
        assert_eq!(err.code(), "ALREADY_EXISTS");
        assert_eq!(
            store.get_bot(&id("dup")).await.unwrap().unwrap().name,
            "Bot dup",
            "the first row is untouched"
        );
    }

    #[tokio::test]
    async fn check_constraint_is_not_mistaken_for_a_duplicate() {
        let store = Store::open_in_memory().await.unwrap();
        let err = store
            .call(|conn| {
                conn.execute(
                    "INSERT INTO bots (id, name, template, spec, desired_state, created_at, \
                     updated_at) VALUES ('x', 'x', 't', '{}', 'paused', '', '')",
                    [],
                )
                .map_err(|e| match unique_violation(&e) {
                    Some(_) => StoreError::AlreadyExists { id: "x".into() },
                    None => e.into(),
                })
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    }

    #[tokio::test]
    async fn list_is_ordered_by_creation_then_id() {
        let store = Store::open_in_memory().await.unwrap();
        for row in [bot("late", at(10)), bot("zed", at(0)), bot("bee", at(0))] {
            store.insert_bot(&row).await.unwrap();
        }
        // 1 s vs 10 s is also a text-order trap if the fraction were not fixed-width.
        store.insert_bot(&bot("mid", at(1))).await.unwrap();
        let ids: Vec<String> = store
            .list_bots()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.id.to_string())
            .collect();
        assert_eq!(ids, ["bee", "zed", "mid", "late"]);
    }

    #[tokio::test]
    async fn unknown_id_changes_nothing() {
        let store = Store::open_in_memory().await.unwrap();
        let ghost = bot("ghost", at(0));
        assert_eq!(store.get_bot(&ghost.id).await.unwrap(), None);
        assert!(!store.update_bot(&ghost).await.unwrap());
        assert!(
            !store
                .set_desired_state(&ghost.id, DesiredState::Stopped)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_container(&ghost.id, Some("c"), None)
                .await
                .unwrap()
        );
        assert!(!store.set_secret_names(&ghost.id, &[]).await.unwrap());
        assert!(!store.delete_bot(&ghost.id).await.unwrap());
        assert!(store.list_bots().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn creates_and_deletes_are_journaled_until_they_end() {
        let store = Store::open_in_memory().await.unwrap();
        let made = bot("made", at(0));
        let going = bot("going", at(1));
        store.begin_create(&made).await.unwrap();
        store.insert_bot(&going).await.unwrap();
        assert!(store.begin_delete(&going.id).await.unwrap());
        assert!(!store.begin_delete(&id("nobody")).await.unwrap());
        assert_eq!(
            store.unfinished_operations().await.unwrap(),
            vec![
                (made.id.clone(), BotOperation::Create),
                (going.id.clone(), BotOperation::Delete)
            ]
        );
        assert_eq!(
            store.unfinished_operation(&made.id).await.unwrap(),
            Some(BotOperation::Create)
        );
        // A duplicate create changes nothing, journal included.
        let err = store.begin_create(&made).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");

        store.end_operation(&made.id).await.unwrap();
        assert_eq!(store.unfinished_operation(&made.id).await.unwrap(), None);
        assert!(store.get_bot(&made.id).await.unwrap().is_some());
        assert!(store.forget_bot(&going.id).await.unwrap());
        assert!(store.unfinished_operations().await.unwrap().is_empty());
        assert!(store.get_bot(&going.id).await.unwrap().is_none());
        assert!(!store.forget_bot(&going.id).await.unwrap());
    }

    async fn insert_raw(store: &Store, id: &'static str, spec: &'static str, names: &'static str) {
        store
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO bots (id, name, template, spec, secret_names, desired_state, \
                     created_at, updated_at) \
                     VALUES (?1, 'n', 't', ?2, ?3, 'running', ?4, ?4)",
                    params![id, spec, names, timestamp(&at(0))],
                )?;
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn corrupt_rows_are_errors_not_panics() {
        let store = Store::open_in_memory().await.unwrap();
        insert_raw(&store, "bad-spec", "{not json", "[]").await;
        let err = store.get_bot(&id("bad-spec")).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what } if what.contains("bots.spec of bot 'bad-spec'")),
            "{err:?}"
        );
        assert_eq!(err.code(), "STORE_CORRUPT");

        insert_raw(&store, "bad-names", "{}", "[1, 2]").await;
        let err = store.get_bot(&id("bad-names")).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what } if what.contains("secret_names")),
            "{err:?}"
        );

        insert_raw(&store, "Not A Bot Id", "{}", "[]").await;
        let err = store.list_bots().await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn data_survives_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        let row = bot("keeper", at(0));
        {
            let store = Store::open(&path).await.unwrap();
            store.insert_bot(&row).await.unwrap();
            store.set_setting("theme", "dark").await.unwrap();
        }
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.get_bot(&row.id).await.unwrap(), Some(row));
        assert_eq!(
            store.get_setting("theme").await.unwrap().as_deref(),
            Some("dark")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_inserts_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("botmaker.db")).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.insert_bot(&bot(&format!("bot-{i}"), at(i))).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let bots = store.list_bots().await.unwrap();
        assert_eq!(bots.len(), 20);
        let expected: Vec<String> = (0..20).map(|i| format!("bot-{i}")).collect();
        let ids: Vec<String> = bots.into_iter().map(|b| b.id.to_string()).collect();
        assert_eq!(ids, expected);
    }
}
