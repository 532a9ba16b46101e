//! Alert notification channels and their delivery attempts (schema v5). Persistence only: what
//! a channel's kind means, which events it gets and how a message is sent are decided in
//! `crate::alerts`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, UniqueViolation, parse_timestamp, timestamp, unique_violation};

/// Attempts kept per channel: the oldest go as new ones are recorded.
pub const DELIVERIES_KEPT: i64 = 200;

/// One row of `notification_channels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// Primary key (assigned on insert; ignored by [`Store::insert_channel`]).
    pub id: i64,
    /// Unique name; `None` for a channel `serve --alert-webhook` keeps.
    pub name: Option<String>,
    /// `webhook`, `slack`, `discord` or `telegram`.
    pub kind: String,
    /// Where messages go (for telegram: the Bot API's base URL).
    pub url: String,
    /// Telegram's chat id.
    pub chat_id: Option<String>,
    /// Event names it wants; `None` for every event.
    pub events: Option<Vec<String>>,
    /// Whether a signing secret is on file.
    pub has_signing_secret: bool,
    /// Whether a Telegram bot token is on file.
    pub has_bot_token: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One row of `notification_deliveries`: an attempt to send one alert to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Primary key (assigned on insert).
    pub id: i64,
    /// The channel.
    pub channel_id: i64,
    /// The event sent (`crash_loop`, ..., `test`).
    pub event: String,
    /// The bot it was about, if any.
    pub bot_id: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `ok`, `failed` (given up) or `retrying`.
    pub result: String,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
}

const CHANNEL_COLUMNS: &str =
    "id, name, kind, url, chat_id, events, has_signing_secret, has_bot_token, created_at";

fn read_channel(row: &Row<'_>) -> rusqlite::Result<(ChannelRow, Option<String>, String)> {
    Ok((
        ChannelRow {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: row.get(2)?,
            url: row.get(3)?,
            chat_id: row.get(4)?,
            events: None,
            has_signing_secret: row.get(6)?,
            has_bot_token: row.get(7)?,
            created_at: DateTime::<Utc>::MIN_UTC,
        },
        row.get(5)?,
        row.get(8)?,
    ))
}

fn parse_channel(
    (mut row, events, created_at): (ChannelRow, Option<String>, String),
) -> Result<ChannelRow, StoreError> {
    row.events = events
        .map(|e| {
            serde_json::from_str(&e).map_err(|err| {
                StoreError::corrupt(format!(
                    "notification_channels.events of {} is not a JSON list: {err}",
                    row.id
                ))
            })
        })
        .transpose()?;
    row.created_at = parse_timestamp(&created_at, || {
        format!("notification_channels.created_at of {}", row.id)
    })?;
    Ok(row)
}

/// A channel's event names as stored (`NULL`: every event).
fn events_json(row: &ChannelRow) -> Option<String> {
    row.events
        .as_ref()
        .map(|e| serde_json::to_string(e).expect("strings serialize"))
}

/// A write refused because another channel has the name is [`StoreError::AlreadyExists`].
fn name_taken(e: rusqlite::Error, row: &ChannelRow) -> StoreError {
    match unique_violation(&e) {
        Some(UniqueViolation::Unique) => StoreError::AlreadyExists {
            id: row.name.clone().unwrap_or_default(),
        },
        _ => e.into(),
    }
}

impl Store {
    /// Adds a channel and returns its id.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if another channel has that name.
    pub async fn insert_channel(&self, row: &ChannelRow) -> Result<i64, StoreError> {
        let row = row.clone();
        self.call(move |conn| {
            let events = events_json(&row);
            conn.execute(
                "INSERT INTO notification_channels \
                 (name, kind, url, chat_id, events, has_signing_secret, has_bot_token, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    row.name,
                    row.kind,
                    row.url,
                    row.chat_id,
                    events,
                    row.has_signing_secret,
                    row.has_bot_token,
                    timestamp(&row.created_at)
                ],
            )
            .map_err(|e| name_taken(e, &row))?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Every channel, oldest first.
    pub async fn list_channels(&self) -> Result<Vec<ChannelRow>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {CHANNEL_COLUMNS} FROM notification_channels ORDER BY id"
            ))?;
            let raw = stmt
                .query_map([], read_channel)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(parse_channel).collect()
        })
        .await
    }

    /// One channel.
    pub async fn get_channel(&self, id: i64) -> Result<Option<ChannelRow>, StoreError> {
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE id = ?1"),
                [id],
                read_channel,
            )
            .optional()?
            .map(parse_channel)
            .transpose()
        })
        .await
    }

    /// Replaces a channel's settings (everything but its id, kind and creation time); whether
    /// it exists. A name another channel has is [`StoreError::AlreadyExists`].
    pub async fn update_channel(&self, row: &ChannelRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.call(move |conn| {
            let events = events_json(&row);
            let changed = conn
                .execute(
                    "UPDATE notification_channels SET name = ?2, url = ?3, chat_id = ?4, \
                     events = ?5, has_signing_secret = ?6, has_bot_token = ?7 WHERE id = ?1",
                    params![
                        row.id,
                        row.name,
                        row.url,
                        row.chat_id,
                        events,
                        row.has_signing_secret,
                        row.has_bot_token,
                    ],
                )
                .map_err(|e| name_taken(e, &row))?;
            Ok(changed > 0)
        })
        .await
    }

    /// Deletes a channel and its delivery history; whether it existed.
    pub async fn delete_channel(&self, id: i64) -> Result<bool, StoreError> {
        self.call(move |conn| {
            Ok(conn.execute("DELETE FROM notification_channels WHERE id = ?1", [id])? > 0)
        })
        .await
    }

    /// Records one delivery attempt, dropping the channel's oldest beyond [`DELIVERIES_KEPT`];
    /// returns its id. An attempt for a channel deleted meanwhile is dropped (nothing to show
    /// it under; the id is then 0).
    pub async fn record_delivery(&self, row: &DeliveryRow) -> Result<i64, StoreError> {
        let row = row.clone();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let exists: bool = tx.query_row(
                "SELECT count(*) > 0 FROM notification_channels WHERE id = ?1",
                [row.channel_id],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(0);
            }
            tx.execute(
                "INSERT INTO notification_deliveries \
                 (channel_id, event, bot_id, attempt, result, http_status, error, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    row.channel_id,
                    row.event,
                    row.bot_id,
                    row.attempt,
                    row.result,
                    row.http_status,
                    row.error,
                    timestamp(&row.at)
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM notification_deliveries WHERE channel_id = ?1 AND id <= \
                 (SELECT id FROM notification_deliveries WHERE channel_id = ?1 \
                  ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![row.channel_id, DELIVERIES_KEPT],
            )?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// A channel's most recent attempts, newest first, at most `limit`.
    pub async fn list_deliveries(
        &self,
        channel_id: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, channel_id, event, bot_id, attempt, result, http_status, error, at \
                 FROM notification_deliveries WHERE channel_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let raw = stmt
                .query_map(params![channel_id, limit], |r| {
                    Ok((
                        DeliveryRow {
                            id: r.get(0)?,
                            channel_id: r.get(1)?,
                            event: r.get(2)?,
                            bot_id: r.get(3)?,
                            attempt: r.get(4)?,
                            result: r.get(5)?,
                            http_status: r.get(6)?,
                            error: r.get(7)?,
                            at: DateTime::<Utc>::MIN_UTC,
                        },
                        r.get::<_, String>(8)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter()
                .map(|(mut d, at)| {
                    d.at =
                        parse_timestamp(&at, || format!("notification_deliveries.at of {}", d.id))?;
                    Ok(d)
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: Option<&str>) -> ChannelRow {
        ChannelRow {
            id: 0,
            name: name.map(str::to_string),
            kind: "webhook".into(),
            url: "http://127.0.0.1:9/hook".into(),
            chat_id: None,
            events: Some(vec!["crash_loop".into()]),
            has_signing_secret: true,
            has_bot_token: false,
            created_at: Utc::now(),
        }
    }

    fn attempt(channel_id: i64, n: u32) -> DeliveryRow {
        DeliveryRow {
            id: 0,
            channel_id,
            event: "crash_loop".into(),
            bot_id: Some("b".into()),
            attempt: n,
            result: "retrying".into(),
            http_status: Some(500),
            error: Some("HTTP 500".into()),
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn channels_round_trip_and_names_are_unique() {
        let store = Store::open_in_memory().await.unwrap();
        let row = channel(Some("ops"));
        let id = store.insert_channel(&row).await.unwrap();
        let back = store.get_channel(id).await.unwrap().unwrap();
        assert_eq!(back, ChannelRow { id, ..row.clone() });
        let err = store.insert_channel(&row).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
        // Unnamed channels (the flag's) do not collide with each other.
        store.insert_channel(&channel(None)).await.unwrap();
        store.insert_channel(&channel(None)).await.unwrap();
        assert_eq!(store.list_channels().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn deliveries_are_kept_to_the_newest_and_go_with_their_channel() {
        let store = Store::open_in_memory().await.unwrap();
        let id = store.insert_channel(&channel(Some("ops"))).await.unwrap();
        for n in 1..=(DELIVERIES_KEPT as u32 + 5) {
            store.record_delivery(&attempt(id, n)).await.unwrap();
        }
        let all = store.list_deliveries(id, 1000).await.unwrap();
        assert_eq!(all.len(), DELIVERIES_KEPT as usize);
        assert_eq!(all[0].attempt, DELIVERIES_KEPT as u32 + 5, "newest first");
        assert_eq!(store.list_deliveries(id, 2).await.unwrap().len(), 2);
        assert!(store.delete_channel(id).await.unwrap());
        assert!(!store.delete_channel(id).await.unwrap());
        assert!(store.list_deliveries(id, 10).await.unwrap().is_empty());
        // An attempt that ends after its channel is gone is dropped, not an error.
        store.record_delivery(&attempt(id, 1)).await.unwrap();
        assert!(store.list_deliveries(id, 10).await.unwrap().is_empty());
    }
}
