//! The LLM proxy's rows (schema v3): providers, the bots' virtual keys (by hash only) and daily
//! usage. Persistence only: what a price means or whether a key may be used is decided in
//! `crate::llm`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::BotId;

/// One row of `llm_providers`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmProviderRow {
    /// Primary key.
    pub name: String,
    /// `openai`, `anthropic` or `openai-compatible`.
    pub kind: String,
    /// Upstream base URL.
    pub base_url: String,
    /// Whether a real API key is on file for it.
    pub has_api_key: bool,
    /// The price table, as JSON.
    pub prices: String,
    /// When it was first configured.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A live virtual key: which bot holds it for which provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmKeyRow {
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// The bot holding it.
    pub bot_id: BotId,
    /// The provider it opens.
    pub provider: String,
    /// When it was minted.
    pub created_at: DateTime<Utc>,
}

/// What one bot spent with one provider on one model on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LlmUsageRow {
    /// The bot that made the requests (kept after the bot is deleted, for the month's cost).
    pub bot_id: String,
    /// The configured provider's name the requests went to.
    pub provider: String,
    /// The model the bot asked for.
    pub model: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Requests forwarded.
    pub requests: u64,
    /// Input (prompt) tokens, as the provider counted them.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Cost in billionths of the price table's unit.
    pub cost_nanos: u64,
}

/// A bot's per-bot LLM limits, read from its stored spec (`limits.llm_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LlmLimitsRow {
    /// `limits.llm_tokens_per_day`.
    pub tokens_per_day: Option<u64>,
    /// `limits.llm_cost_per_month`.
    pub cost_per_month: Option<f64>,
    /// `limits.llm_requests_per_minute`.
    pub requests_per_minute: Option<u64>,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Every provider, by name.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`], or [`StoreError::Corrupt`] for an unreadable timestamp.
    pub async fn llm_providers(&self) -> Result<Vec<LlmProviderRow>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(
                "SELECT name, kind, base_url, has_api_key, prices, created_at, updated_at \
                 FROM llm_providers ORDER BY name",
            )?;
            let raw = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter()
                .map(|(name, kind, base_url, has_api_key, prices, c, u)| {
                    let what = |col: &str| format!("llm_providers.{col} of '{name}'");
                    Ok(LlmProviderRow {
                        created_at: parse_timestamp(&c, || what("created_at"))?,
                        updated_at: parse_timestamp(&u, || what("updated_at"))?,
                        name,
                        kind,
                        base_url,
                        has_api_key,
                        prices,
                    })
                })
                .collect()
        })
        .await
    }

    /// Creates the provider or replaces the one of that name (keeping its creation time).
    /// Returns `true` when it was created.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn put_llm_provider(&self, row: &LlmProviderRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let existed: bool = tx
                .query_row(
                    "SELECT 1 FROM llm_providers WHERE name = ?1",
                    [&row.name],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            tx.execute(
                "INSERT INTO llm_providers \
                   (name, kind, base_url, has_api_key, prices, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
                   base_url = excluded.base_url, has_api_key = excluded.has_api_key, \
                   prices = excluded.prices, updated_at = excluded.updated_at",
                params![
                    row.name,
                    row.kind,
                    row.base_url,
                    row.has_api_key,
                    row.prices,
                    timestamp(&row.created_at),
                    timestamp(&row.updated_at),
                ],
            )?;
            tx.commit()?;
            Ok(!existed)
        })
        .await
    }

    /// Deletes the provider and revokes every virtual key for it, in one transaction. Returns
    /// the hashes revoked, or `None` if there was no such provider.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn delete_llm_provider(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let name = name.to_string();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            if tx.execute("DELETE FROM llm_providers WHERE name = ?1", [&name])? == 0 {
                return Ok(None);
            }
            let revoked = revoke_where(&tx, "provider = ?1", &[&name], &now)?;
            tx.commit()?;
            Ok(Some(revoked))
        })
        .await
    }

    /// Every live (unrevoked) virtual key.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`], or [`StoreError::Corrupt`] for a bad bot id or timestamp.
    pub async fn llm_live_keys(&self) -> Result<Vec<LlmKeyRow>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key_hash, bot_id, provider, created_at FROM llm_keys \
                 WHERE revoked_at IS NULL ORDER BY bot_id, provider",
            )?;
            let raw = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter()
                .map(|(key_hash, bot, provider, created)| {
                    let bot_id = BotId::new(bot.as_str()).map_err(|e| {
                        StoreError::corrupt(format!("llm_keys.bot_id {bot:?}: {e}"))
                    })?;
                    Ok(LlmKeyRow {
                        created_at: parse_timestamp(&created, || {
                            format!("llm_keys.created_at of bot '{bot_id}'")
                        })?,
                        key_hash,
                        bot_id,
                        provider,
                    })
                })
                .collect()
        })
        .await
    }

    /// Records a new virtual key for `bot` and `provider`, revoking the bot's previous keys
    /// for that provider in the same transaction. Returns the hashes revoked, or `None` if
    /// the bot does not exist.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn insert_llm_key(
        &self,
        key_hash: &str,
        bot: &BotId,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let (hash, bot, provider) = (key_hash.to_string(), bot.clone(), provider.to_string());
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let exists = tx
                .query_row("SELECT 1 FROM bots WHERE id = ?1", [bot.as_str()], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let revoked = revoke_where(
                &tx,
                "bot_id = ?1 AND provider = ?2",
                &[&bot.as_str(), &provider],
                &now,
            )?;
            tx.execute(
                "INSERT INTO llm_keys (key_hash, bot_id, provider, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![hash, bot.as_str(), provider, timestamp(&now)],
            )?;
            tx.commit()?;
            Ok(Some(revoked))
        })
        .await
    }

    /// Revokes the bot's live keys (for one provider, or all). Returns the hashes revoked.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn revoke_llm_keys(
        &self,
        bot: &BotId,
        provider: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let (bot, provider) = (bot.clone(), provider.map(str::to_string));
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let revoked = match &provider {
                Some(p) => revoke_where(
                    &tx,
                    "bot_id = ?1 AND provider = ?2",
                    &[&bot.as_str(), p],
                    &now,
                )?,
                None => revoke_where(&tx, "bot_id = ?1", &[&bot.as_str()], &now)?,
            };
            tx.commit()?;
            Ok(revoked)
        })
        .await
    }

    /// The bot's per-bot LLM limits, read from its stored spec; `None` if there is no such bot.
    /// (The spec is the bot module's JSON; these three paths are part of its stored format.)
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn llm_limits(&self, bot: &BotId) -> Result<Option<LlmLimitsRow>, StoreError> {
        let bot = bot.clone();
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT json_extract(spec, '$.limits.llm_tokens_per_day'), \
                            json_extract(spec, '$.limits.llm_cost_per_month'), \
                            json_extract(spec, '$.limits.llm_requests_per_minute') \
                     FROM bots WHERE id = ?1",
                    [bot.as_str()],
                    |r| {
                        Ok(LlmLimitsRow {
                            tokens_per_day: r.get::<_, Option<i64>>(0)?.map(to_u64),
                            cost_per_month: r.get::<_, Option<f64>>(1)?,
                            requests_per_minute: r.get::<_, Option<i64>>(2)?.map(to_u64),
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Adds `rows` to the usage table (each row's counts are added to what is there), in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails (nothing is added then).
    pub async fn add_llm_usage(&self, rows: Vec<LlmUsageRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO llm_usage (bot_id, provider, model, day, requests, \
                       input_tokens, output_tokens, cost_nanos) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (bot_id, provider, model, day) DO UPDATE SET \
                       requests = requests + excluded.requests, \
                       input_tokens = input_tokens + excluded.input_tokens, \
                       output_tokens = output_tokens + excluded.output_tokens, \
                       cost_nanos = cost_nanos + excluded.cost_nanos",
                )?;
                for r in &rows {
                    stmt.execute(params![
                        r.bot_id,
                        r.provider,
                        r.model,
                        r.day,
                        to_i64(r.requests),
                        to_i64(r.input_tokens),
                        to_i64(r.output_tokens),
                        to_i64(r.cost_nanos),
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Usage rows from `since` (a `YYYY-MM-DD` day, inclusive), for one bot or all, ordered by
    /// day, bot, provider and model.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn llm_usage(
        &self,
        since: &str,
        bot: Option<&BotId>,
    ) -> Result<Vec<LlmUsageRow>, StoreError> {
        let (since, bot) = (since.to_string(), bot.map(|b| b.to_string()));
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT bot_id, provider, model, day, requests, input_tokens, output_tokens, \
                        cost_nanos \
                 FROM llm_usage WHERE day >= ?1 AND (?2 IS NULL OR bot_id = ?2) \
                 ORDER BY day, bot_id, provider, model",
            )?;
            let rows = stmt
                .query_map(params![since, bot], |r| {
                    Ok(LlmUsageRow {
                        bot_id: r.get(0)?,
                        provider: r.get(1)?,
                        model: r.get(2)?,
                        day: r.get(3)?,
                        requests: to_u64(r.get(4)?),
                        input_tokens: to_u64(r.get(5)?),
                        output_tokens: to_u64(r.get(6)?),
                        cost_nanos: to_u64(r.get(7)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// What the bot used on `day` (tokens) and from `month_start` on (cost in nanos): the
    /// counters its budget starts from.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn llm_spent(
        &self,
        bot: &BotId,
        day: &str,
        month_start: &str,
    ) -> Result<(u64, u64), StoreError> {
        let (bot, day, month) = (bot.to_string(), day.to_string(), month_start.to_string());
        self.call(move |conn| {
            let tokens: i64 = conn.query_row(
                "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM llm_usage \
                 WHERE bot_id = ?1 AND day = ?2",
                params![bot, day],
                |r| r.get(0),
            )?;
            let cost: i64 = conn.query_row(
                "SELECT coalesce(sum(cost_nanos), 0) FROM llm_usage \
                 WHERE bot_id = ?1 AND day >= ?2",
                params![bot, month],
                |r| r.get(0),
            )?;
            Ok((to_u64(tokens), to_u64(cost)))
        })
        .await
    }
}

/// Revokes the live keys matching `filter` (on `llm_keys`, with `params`), returning their
/// hashes.
fn revoke_where(
    tx: &rusqlite::Transaction<'_>,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
    now: &DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx.prepare(&format!(
        "SELECT key_hash FROM llm_keys WHERE revoked_at IS NULL AND {filter}"
    ))?;
    let hashes = stmt
        .query_map(params, |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let at = timestamp(now);
    for h in &hashes {
        tx.execute(
            "UPDATE llm_keys SET revoked_at = ?1 WHERE key_hash = ?2",
            params![at, h],
        )?;
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BotRow, DesiredState};
    use serde_json::json;

    async fn store_with_bot(id: &str, spec: serde_json::Value) -> (Store, BotId) {
        let store = Store::open_in_memory().await.unwrap();
        let bot = BotId::new(id).unwrap();
        store
            .insert_bot(&BotRow {
                id: bot.clone(),
                name: id.into(),
                template: "generic".into(),
                spec,
                secret_names: vec![],
                desired_state: DesiredState::Running,
                container_id: None,
                image_id: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .await
            .unwrap();
        (store, bot)
    }

    fn usage(bot: &str, model: &str, day: &str, tokens: (u64, u64), cost: u64) -> LlmUsageRow {
        LlmUsageRow {
            bot_id: bot.into(),
            provider: "openai".into(),
            model: model.into(),
            day: day.into(),
            requests: 1,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            cost_nanos: cost,
        }
    }

    #[tokio::test]
    async fn a_new_key_revokes_the_previous_one_and_keys_go_with_their_bot() {
        let (store, bot) = store_with_bot("b", json!({})).await;
        let now = Utc::now();
        assert_eq!(
            store
                .insert_llm_key("h1", &bot, "openai", now)
                .await
                .unwrap(),
            Some(vec![])
        );
        assert_eq!(
            store
                .insert_llm_key("h2", &bot, "openai", now)
                .await
                .unwrap(),
            Some(vec!["h1".to_string()])
        );
        store
            .insert_llm_key("h3", &bot, "claude", now)
            .await
            .unwrap();
        let live: Vec<_> = store
            .llm_live_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.key_hash)
            .collect();
        assert_eq!(live, ["h3", "h2"]);
        let nobody = BotId::new("nobody").unwrap();
        assert_eq!(
            store
                .insert_llm_key("h4", &nobody, "openai", now)
                .await
                .unwrap(),
            None
        );

        assert_eq!(
            store
                .revoke_llm_keys(&bot, Some("claude"), now)
                .await
                .unwrap(),
            ["h3"]
        );
        store.forget_bot(&bot).await.unwrap();
        assert!(store.llm_live_keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn deleting_a_provider_revokes_its_keys() {
        let (store, bot) = store_with_bot("b", json!({})).await;
        let now = Utc::now();
        let row = LlmProviderRow {
            name: "openai".into(),
            kind: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            has_api_key: true,
            prices: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        assert!(store.put_llm_provider(&row).await.unwrap());
        assert!(!store.put_llm_provider(&row).await.unwrap(), "a replace");
        store
            .insert_llm_key("h1", &bot, "openai", now)
            .await
            .unwrap();
        assert_eq!(
            store.delete_llm_provider("openai", now).await.unwrap(),
            Some(vec!["h1".to_string()])
        );
        assert_eq!(
            store.delete_llm_provider("openai", now).await.unwrap(),
            None
        );
        assert!(store.llm_providers().await.unwrap().is_empty());
        assert!(store.llm_live_keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn usage_adds_up_per_day_and_limits_come_from_the_spec() {
        let spec = json!({"limits": {"llm_tokens_per_day": 1000, "llm_cost_per_month": 2.5}});
        let (store, bot) = store_with_bot("b", spec).await;
        store
            .add_llm_usage(vec![
                usage("b", "m", "2025-01-31", (10, 5), 100),
                usage("b", "m", "2025-02-01", (1, 2), 10),
                usage("b", "m", "2025-02-01", (3, 4), 20),
                usage("other", "m", "2025-02-01", (100, 100), 1000),
            ])
            .await
            .unwrap();
        let rows = store.llm_usage("2025-02-01", Some(&bot)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].requests,
                rows[0].input_tokens,
                rows[0].output_tokens
            ),
            (2, 4, 6)
        );
        assert_eq!(store.llm_usage("2025-01-01", None).await.unwrap().len(), 3);
        assert_eq!(
            store
                .llm_spent(&bot, "2025-02-01", "2025-02-01")
                .await
                .unwrap(),
            (10, 30)
        );
        assert_eq!(
            store
                .llm_spent(&bot, "2025-01-31", "2025-01-01")
                .await
                .unwrap(),
            (15, 130)
        );
        let limits = store.llm_limits(&bot).await.unwrap().unwrap();
        assert_eq!(limits.tokens_per_day, Some(1000));
        assert_eq!(limits.cost_per_month, Some(2.5));
        assert_eq!(limits.requests_per_minute, None);
        assert_eq!(
            store.llm_limits(&BotId::new("x").unwrap()).await.unwrap(),
            None
        );
    }
}
