//! A consistent copy of the live registry, for backups.

use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::Backup;

use super::{Store, StoreError};

impl Store {
    /// The whole database as one consistent SQLite file image, taken with SQLite's online
    /// backup API (a file copy of a live WAL database can miss committed pages or catch half a
    /// checkpoint). Writers wait only while the pages are copied, in memory.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the copy fails.
    pub async fn snapshot(&self) -> Result<Vec<u8>, StoreError> {
        self.call(|conn| {
            let mut copy = Connection::open_in_memory()?;
            // The connection is held for the whole copy, so no write of this process can restart
            // it; pages go in batches without pausing.
            Backup::new(conn, &mut copy)?.run_to_completion(1024, Duration::ZERO, None)?;
            let image = copy.serialize(rusqlite::MAIN_DB)?;
            Ok(image.to_vec())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_snapshot_opens_as_the_same_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("botmaker.db")).await.unwrap();
        store.set_setting("theme", "dark").await.unwrap();
        let image = store.snapshot().await.unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::write(&copy, &image).unwrap();
        let reopened = Store::open(&copy).await.unwrap();
        assert_eq!(
            reopened.get_setting("theme").await.unwrap().as_deref(),
            Some("dark")
        );
        assert_eq!(
            reopened.schema_version().await.unwrap(),
            super::super::SCHEMA_VERSION
        );
    }
}
