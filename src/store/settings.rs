//! Settings: a small key-value table for instance-wide values.

use super::{Store, StoreError};

impl Store {
    /// The value stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the read fails.
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        let key = key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                    row.get(0)
                })
                .optional()?)
        })
        .await
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the write fails.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_upsert() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(store.get_setting("theme").await.unwrap(), None);
        store.set_setting("theme", "light").await.unwrap();
        store.set_setting("other", "x").await.unwrap();
        assert_eq!(
            store.get_setting("theme").await.unwrap().as_deref(),
            Some("light")
        );
        store.set_setting("theme", "dark").await.unwrap();
        assert_eq!(
            store.get_setting("theme").await.unwrap().as_deref(),
            Some("dark")
        );
        assert_eq!(
            store.get_setting("other").await.unwrap().as_deref(),
            Some("x")
        );
        store.set_setting("empty", "").await.unwrap();
        assert_eq!(
            store.get_setting("empty").await.unwrap().as_deref(),
            Some("")
        );
    }
}
