//! Dashboard sessions and API tokens, stored by hash, and the admin password's hash.
//!
//! The caller hashes every token before it reaches the store, so the database never holds a
//! credential that works if the file leaks, and nothing here returns a token hash.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{Store, StoreError, UniqueViolation, parse_timestamp, timestamp, unique_violation};

/// An API token as listed to its owner: everything but the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Token)]
pub struct ApiTokenRow {
    /// The token's public id, used to revoke it.
    pub id: String,
    /// A label chosen by the operator ("ci", "laptop", ...).
    pub name: String,
    /// When the token was issued.
    pub created_at: DateTime<Utc>,
    /// When the token last authenticated a request, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// How precisely an API token's `last_used_at` is kept: it is written again only once it is
/// this old, so authenticating a busy client costs a write a minute at most.
pub const LAST_USED_RESOLUTION: chrono::Duration = chrono::Duration::seconds(60);

const TOKEN_COLUMNS: &str = "id, name, created_at, last_used_at";

/// Setting under which the admin password's argon2 hash is stored.
const PASSWORD_HASH_SETTING: &str = "admin_password_hash";

/// An `api_tokens` row as SQLite hands it over; see `RawBot` for why parsing is a second step.
struct RawApiToken {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
}

impl RawApiToken {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    }

    fn parse(self) -> Result<ApiTokenRow, StoreError> {
        let id = self.id;
        let created_at = parse_timestamp(&self.created_at, || {
            format!("api_tokens.created_at of '{id}'")
        })?;
        let last_used_at = self
            .last_used_at
            .map(|s| parse_timestamp(&s, || format!("api_tokens.last_used_at of '{id}'")))
            .transpose()?;
        Ok(ApiTokenRow {
            id,
            name: self.name,
            created_at,
            last_used_at,
        })
    }
}

impl Store {
    /// Records a dashboard session under the hash of its token.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (id `session`) if the hash is already stored.
    pub async fn insert_session(
        &self,
        token_hash: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let token_hash = token_hash.to_owned();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO sessions (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, timestamp(&created_at), timestamp(&expires_at)],
            )
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::AlreadyExists {
                    id: "session".to_owned(),
                },
                None => e.into(),
            })?;
            Ok(())
        })
        .await
    }

    /// When the session with this token hash expires, or `None` if there is no such session.
    ///
    /// An expired session is still returned until [`Store::purge_expired_sessions`] removes it:
    /// comparing with the clock is the caller's job.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the stored expiry is not a timestamp.
    pub async fn session_expiry(
        &self,
        token_hash: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT expires_at FROM sessions WHERE token_hash = ?1",
                [token_hash],
                |row| row.get::<_, String>(0),
            )
            .optional()?
            .map(|s| parse_timestamp(&s, || "sessions.expires_at".to_owned()))
            .transpose()
        })
        .await
    }

    /// Ends a session (logout). Returns `false` if there was no such session.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_owned();
        self.call(move |conn| {
            let changed =
                conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(changed > 0)
        })
        .await
    }

    /// Deletes every session whose expiry is at or before `now`; returns how many went.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call(move |conn| {
            // Fixed-width timestamps compare correctly as text.
            let purged = conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                [timestamp(&now)],
            )?;
            Ok(purged)
        })
        .await
    }

    /// The stored argon2 hash (PHC string) of the admin password, if one was ever set.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        self.get_setting(PASSWORD_HASH_SETTING).await
    }

    /// Stores `hash` as the admin password's hash and ends every session, in one transaction:
    /// a session opened with the old password must not outlive it, and a crash in between
    /// must not leave the new password with the old sessions. API tokens are kept (they are
    /// separately issued and revoked credentials). Returns how many sessions ended.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails; nothing changes then.
    pub async fn replace_admin_password_hash(&self, hash: &str) -> Result<usize, StoreError> {
        let hash = hash.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [PASSWORD_HASH_SETTING, hash.as_str()],
            )?;
            let ended = tx.execute("DELETE FROM sessions", [])?;
            tx.commit()?;
            Ok(ended)
        })
        .await
    }

    /// Records a new API token under its public `id` and the hash of its secret.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] with the id if the id is taken, or with id `api token hash`
    /// if the hash is.
    pub async fn insert_api_token(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, name, token_hash) = (id.to_owned(), name.to_owned(), token_hash.to_owned());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, token_hash, timestamp(&created_at)],
            )
            .map_err(|e| match unique_violation(&e) {
                Some(UniqueViolation::PrimaryKey) => StoreError::AlreadyExists { id },
                Some(UniqueViolation::Unique) => StoreError::AlreadyExists {
                    id: "api token hash".to_owned(),
                },
                None => e.into(),
            })?;
            Ok(())
        })
        .await
    }

    /// Every API token, oldest first (ties broken by id).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a stored timestamp cannot be read back.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
            ))?;
            let raw = stmt
                .query_map([], RawApiToken::read)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter().map(RawApiToken::parse).collect()
        })
        .await
    }

    /// The token with this hash, if any, with its `last_used_at` stamped with the current time
    /// unless it was stamped less than [`LAST_USED_RESOLUTION`] ago (the returned row carries
    /// the stamp). This is the lookup that authenticates a request: a client that sends many
    /// requests a second costs one write a minute, not one per request, and the lookup itself
    /// runs on a reader.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a stored timestamp cannot be read back.
    pub async fn find_api_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRow>, StoreError> {
        let hash = token_hash.to_owned();
        let found = self
            .read(move |conn| {
                conn.query_row(
                    &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?1"),
                    [hash],
                    RawApiToken::read,
                )
                .optional()?
                .map(RawApiToken::parse)
                .transpose()
            })
            .await?;
        let now = Utc::now();
        match found {
            None => return Ok(None),
            Some(row)
                if row
                    .last_used_at
                    .is_some_and(|t| now - t < LAST_USED_RESOLUTION) =>
            {
                return Ok(Some(row));
            }
            Some(_) => {}
        }
        let hash = token_hash.to_owned();
        self.call(move |conn| {
            // One statement, so the stamp cannot resurrect a token deleted since the lookup.
            conn.query_row(
                &format!(
                    "UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1 \
                     RETURNING {TOKEN_COLUMNS}"
                ),
                params![hash, timestamp(&now)],
                RawApiToken::read,
            )
            .optional()?
            .map(RawApiToken::parse)
            .transpose()
        })
        .await
    }

    /// Whether an API token with this hash exists, without stamping its `last_used_at`: the
    /// cheap re-check of a long-lived stream, which is not a new use of the token.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn api_token_exists(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM api_tokens WHERE token_hash = ?1",
                    [token_hash],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    /// Revokes the API token with this id. Returns `false` if there was no such token.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn delete_api_token(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| {
            let changed = conn.execute("DELETE FROM api_tokens WHERE id = ?1", [id])?;
            Ok(changed > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    #[tokio::test]
    async fn sessions_insert_expire_delete_purge() {
        let store = Store::open_in_memory().await.unwrap();
        store.insert_session("h-old", at(0), at(100)).await.unwrap();
        store
            .insert_session("h-edge", at(0), at(200))
            .await
            .unwrap();
        store.insert_session("h-new", at(0), at(300)).await.unwrap();
        store
            .insert_session("h-gone", at(0), at(300))
            .await
            .unwrap();

        assert_eq!(store.session_expiry("h-old").await.unwrap(), Some(at(100)));
        assert_eq!(store.session_expiry("nope").await.unwrap(), None);

        let err = store
            .insert_session("h-old", at(1), at(2))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::AlreadyExists { id } if id == "session"),
            "{err:?}"
        );

        assert!(store.delete_session("h-gone").await.unwrap());
        assert!(!store.delete_session("h-gone").await.unwrap());
        assert_eq!(store.session_expiry("h-gone").await.unwrap(), None);

        // Expiring exactly at `now` counts as expired.
        assert_eq!(store.purge_expired_sessions(at(200)).await.unwrap(), 2);
        assert_eq!(store.session_expiry("h-old").await.unwrap(), None);
        assert_eq!(store.session_expiry("h-edge").await.unwrap(), None);
        assert_eq!(store.session_expiry("h-new").await.unwrap(), Some(at(300)));
        assert_eq!(store.purge_expired_sessions(at(200)).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_new_admin_password_ends_every_session_but_keeps_api_tokens() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(store.admin_password_hash().await.unwrap(), None);
        assert_eq!(store.replace_admin_password_hash("phc-1").await.unwrap(), 0);
        store.insert_session("h-1", at(0), at(100)).await.unwrap();
        store.insert_session("h-2", at(0), at(100)).await.unwrap();
        store
            .insert_api_token("tok", "ci", "hash-t", at(0))
            .await
            .unwrap();
        assert_eq!(store.replace_admin_password_hash("phc-2").await.unwrap(), 2);
        assert_eq!(
            store.admin_password_hash().await.unwrap().as_deref(),
            Some("phc-2")
        );
        assert_eq!(store.session_expiry("h-1").await.unwrap(), None);
        assert!(store.api_token_exists("hash-t").await.unwrap());
    }

    #[tokio::test]
    async fn api_tokens_insert_find_list_delete() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .insert_api_token("tok-b", "laptop", "hash-b", at(10))
            .await
            .unwrap();
        store
            .insert_api_token("tok-a", "ci", "hash-a", at(0))
            .await
            .unwrap();

        let listed = store.list_api_tokens().await.unwrap();
        assert_eq!(
            listed,
            [
                ApiTokenRow {
                    id: "tok-a".into(),
                    name: "ci".into(),
                    created_at: at(0),
                    last_used_at: None,
                },
                ApiTokenRow {
                    id: "tok-b".into(),
                    name: "laptop".into(),
                    created_at: at(10),
                    last_used_at: None,
                },
            ]
        );

        let before = Utc::now();
        let found = store.find_api_token("hash-b").await.unwrap().unwrap();
        assert_eq!(
            (found.id.as_str(), found.name.as_str()),
            ("tok-b", "laptop")
        );
        let used = found.last_used_at.expect("find stamps last_used_at");
        assert!(used >= before && used <= Utc::now());
        let listed = store.list_api_tokens().await.unwrap();
        assert_eq!(listed[1].last_used_at, Some(used), "the stamp is stored");
        assert_eq!(listed[0].last_used_at, None, "other tokens are untouched");

        let again = store.find_api_token("hash-b").await.unwrap().unwrap();
        assert_eq!(
            again.last_used_at,
            Some(used),
            "a use within LAST_USED_RESOLUTION writes nothing"
        );

        assert_eq!(store.find_api_token("hash-x").await.unwrap(), None);
        assert!(store.api_token_exists("hash-b").await.unwrap());
        assert!(!store.api_token_exists("hash-x").await.unwrap());
        let listed_again = store.list_api_tokens().await.unwrap();
        assert_eq!(
            listed_again[1].last_used_at,
            Some(used),
            "exists does not stamp"
        );
        // An id is not a hash.
        assert_eq!(store.find_api_token("tok-a").await.unwrap(), None);

        assert!(store.delete_api_token("tok-b").await.unwrap());
        assert!(!store.delete_api_token("tok-b").await.unwrap());
        assert_eq!(store.find_api_token("hash-b").await.unwrap(), None);
        assert!(!store.api_token_exists("hash-b").await.unwrap());
        assert_eq!(store.list_api_tokens().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn api_token_id_and_hash_are_unique() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .insert_api_token("tok", "one", "hash-1f2e3d", at(0))
            .await
            .unwrap();

        let err = store
            .insert_api_token("tok", "two", "other-hash", at(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::AlreadyExists { id } if id == "tok"),
            "{err:?}"
        );

        let err = store
            .insert_api_token("tok-2", "two", "hash-1f2e3d", at(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::AlreadyExists { id } if id == "api token hash"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("1f2e3d"), "hashes are not echoed");
        assert_eq!(store.list_api_tokens().await.unwrap().len(), 1);
    }
}
