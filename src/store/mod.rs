//! The embedded SQLite registry: bots, dashboard sessions, API tokens and settings.
//!
//! This module owns persistence only: the schema, its migrations and typed reads and writes of
//! rows. It knows nothing of Docker or HTTP, and it makes no decisions: whether a session has
//! expired, what a bot's spec means or which container is current is for its callers to say. It
//! never sees a raw session cookie or API token either, only the hashes callers compute.
//!
//! There is no database server to install: the registry is one file in the data directory. One
//! writing [`rusqlite::Connection`] sits behind a mutex, beside [`READ_CONNECTIONS`] read-only
//! ones, and every public method is `async`, running its SQL on tokio's blocking pool so a slow
//! disk never stalls the runtime. The database runs in WAL mode, so readers (a session lookup, a
//! bot read, the CLI, `sqlite3` while debugging) see the last commit without waiting for a write
//! in progress, and a writer that finds the file locked waits up to [`BUSY_TIMEOUT`] before
//! failing. An in-memory store (tests) has the one connection only.
//!
//! Timestamps are stored as RFC 3339 UTC text with a fixed nine-digit fraction
//! (`2024-05-01T12:00:00.000000000Z`), so text order is time order and `ORDER BY` and `<=` work in
//! SQL, and every [`DateTime<Utc>`] comes back exactly as it went in.

mod audit;
mod auth;
mod bots;
mod crashes;
mod llm;
mod migrations;
mod notifications;
mod settings;
mod snapshot;
mod stats;
mod upgrades;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};

pub use audit::{AuditFilter, AuditRow, NewAuditRow};
pub use auth::{ApiTokenRow, LAST_USED_RESOLUTION};
pub use bots::{BotChanges, BotOperation, BotRow, DesiredState, UnknownDesiredState};
pub use crashes::CrashHistory;
pub use llm::{LlmKeyRow, LlmLimitsRow, LlmProviderRow, LlmUsageRow};
pub use migrations::SCHEMA_VERSION;
pub use notifications::{ChannelRow, DELIVERIES_KEPT, DeliveryRow};
pub use stats::StatsMinuteRow;
pub use upgrades::UpgradeJournal;

/// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Read-only connections a file-backed store keeps beside its writer: enough that session
/// lookups and bot reads on both cores never queue behind a write or each other.
pub const READ_CONNECTIONS: usize = 4;

/// Page cache of each read-only connection, in KiB (SQLite's default is 2,000 per connection).
/// The readers take turns, so every one of them ends up caching the same pages of the bots
/// table, which the watch cache reads whole at each resync: at 10,000 bots (a 7 MB database)
/// four full 2 MB caches were about 8 MB of the server's memory for data the kernel's page
/// cache holds anyway. Small reads (a session, a bot, a page of the audit log) stay cached;
/// a full scan reads the rest from the kernel (docs/benchmarks.md, 2026-12-01, issue #16).
const READER_CACHE_KIB: i64 = 256;

/// The read-only connections, handed out round robin, a free one first.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.conns[(start + i) % n].try_lock() {
                Ok(conn) => return f(&conn),
                // A read cannot leave a connection half-changed: keep using it.
                Err(TryLockError::Poisoned(p)) => return f(&p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        f(&self.conns[start]
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

/// Handle to the registry database.
///
/// Cloning is cheap (the connection is shared behind an [`Arc`]), so hand a clone to every task
/// that needs one rather than wrapping the `Store` in another lock.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Bots whose row this handle's writes may have changed since a reader last asked
    /// ([`Store::take_bot_changes`]): how a cache of the rows stays exact without re-reading
    /// them all.
    changed: Arc<Mutex<BotChanges>>,
    /// Read-only connections of a file-backed store; `None` in memory (reads use `conn`).
    readers: Option<Arc<Readers>>,
    /// Where the database lives, for `Debug`; `None` for an in-memory store.
    path: Option<Arc<Path>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.path {
            Some(path) => path.display().to_string(),
            None => ":memory:".to_owned(),
        };
        f.debug_struct("Store").field("path", &location).finish()
    }
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error the store has no more specific variant for.
    #[error("botmaker registry database (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row with the same key already exists.
    #[error("{id} already exists")]
    AlreadyExists {
        /// The bot or API-token id. For a session or token-hash collision it names the kind
        /// (`session`, `api token hash`) instead, because hashes are never echoed.
        id: String,
    },
    /// A stored value cannot be read back (not valid JSON, not a valid bot id, not a timestamp,
    /// ...): someone edited the database by hand, or a bug wrote it.
    #[error("the botmaker registry database holds corrupt data: {what}")]
    Corrupt {
        /// Which value, in which row, and why it is unreadable.
        what: String,
    },
    /// The database was migrated by a newer botmaker than this one; opening it could corrupt it.
    #[error(
        "the botmaker registry database has schema version {found}, but this botmaker only \
         knows versions up to {supported}; run the newer botmaker that wrote it, or restore a \
         backup taken before the upgrade"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: u32,
        /// The newest version this binary knows ([`SCHEMA_VERSION`]).
        supported: u32,
    },
    /// The database file could not be opened or configured.
    #[error(
        "cannot open database at {}: {source}; check that the data directory exists and is \
         writable, and that the file is a botmaker SQLite database",
        path.display()
    )]
    Open {
        /// The file that was tried.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The blocking task running the SQL panicked or was cancelled (a bug in the store).
    #[error("a database task failed to complete: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl StoreError {
    /// A stable machine-readable code, for APIs and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "STORE_ERROR",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::Corrupt { .. } => "STORE_CORRUPT",
            Self::SchemaTooNew { .. } => "SCHEMA_TOO_NEW",
            Self::Open { .. } => "STORE_OPEN_FAILED",
            Self::Join(_) => "STORE_TASK_FAILED",
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into() }
    }
}

/// Which uniqueness constraint `err` broke, if any, read from SQLite's extended result code
/// rather than its message text (which names columns and may change between releases).
fn unique_violation(err: &rusqlite::Error) -> Option<UniqueViolation> {
    use rusqlite::ffi;
    match err.sqlite_error()?.extended_code {
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Some(UniqueViolation::PrimaryKey),
        ffi::SQLITE_CONSTRAINT_UNIQUE => Some(UniqueViolation::Unique),
        _ => None,
    }
}

/// Which uniqueness constraint an insert broke; see [`unique_violation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UniqueViolation {
    PrimaryKey,
    Unique,
}

impl Store {
    /// Opens (creating if needed) the registry at `path` and brings its schema up to date.
    ///
    /// The parent directory must exist. The connection is set to `journal_mode=WAL`,
    /// `busy_timeout=5000`, `foreign_keys=ON` and `synchronous=NORMAL`, then every embedded
    /// migration newer than the file's schema version is applied.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the file cannot be opened or is not a SQLite database,
    /// [`StoreError::SchemaTooNew`] if a newer botmaker migrated it, and [`StoreError::Sqlite`]
    /// if a migration fails (the database is then left at the last version that applied).
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let path: Arc<Path> = Arc::from(path);
        let file = Arc::clone(&path);
        let conn = tokio::task::spawn_blocking(move || {
            let open_failed = |source| StoreError::Open {
                path: file.to_path_buf(),
                source,
            };
            // No SQLITE_OPEN_URI: the data directory is a path, never a `file:` URI.
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let mut conn = Connection::open_with_flags(&*file, flags).map_err(open_failed)?;
            // SQLite opens lazily: a file that is not a database fails here, at the first
            // statement, so this is still "cannot open".
            configure(&conn, false).map_err(open_failed)?;
            migrations::apply(&mut conn, migrations::MIGRATIONS)?;
            // After the migrations, so no reader sees an older schema.
            let readers = (0..READ_CONNECTIONS)
                .map(|_| {
                    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    let reader = Connection::open_with_flags(&*file, flags)?;
                    reader.busy_timeout(BUSY_TIMEOUT)?;
                    reader.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                    Ok(Mutex::new(reader))
                })
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(open_failed)?;
            Ok::<_, StoreError>((conn, readers))
        })
        .await??;
        let (conn, readers) = conn;
        tracing::debug!(path = %path.display(), "opened registry database");
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            changed: Arc::default(),
            readers: Some(Arc::new(Readers {
                conns: readers,
                next: AtomicUsize::new(0),
            })),
            path: Some(path),
        })
    }

    /// Opens a fresh, migrated database that lives in memory and vanishes when the last clone
    /// is dropped. For tests.
    ///
    /// # Errors
    /// As [`Store::open`], minus the file errors.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let conn = tokio::task::spawn_blocking(|| {
            let mut conn = Connection::open_in_memory()?;
            configure(&conn, true)?;
            migrations::apply(&mut conn, migrations::MIGRATIONS)?;
            Ok::<_, StoreError>(conn)
        })
        .await??;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            changed: Arc::default(),
            readers: None,
            path: None,
        })
    }

    /// The schema version the database is at; equal to [`SCHEMA_VERSION`] once opened.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the version cannot be read.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(migrations::user_version).await
    }

    /// Runs the read-only `f` on a reader on the blocking pool: it sees the last commit and
    /// never waits for the writer. Without readers (in memory), on the one connection.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(readers) = self.readers.clone() else {
            return self.call(move |conn| f(conn)).await;
        };
        tokio::task::spawn_blocking(move || readers.with(f)).await?
    }

    /// Runs `f` with the connection on the blocking pool.
    ///
    /// The lock is taken and released inside the blocking task, so it is never held across an
    /// await.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held cannot leave a half-applied write behind: an open
            // `Transaction` rolls back when dropped during unwinding, and single statements are
            // atomic. The connection is therefore still sound, so keep using it.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await?
    }
}

/// Applies the per-connection settings every store connection runs with.
fn configure(conn: &Connection, in_memory: bool) -> rusqlite::Result<()> {
    // First, so that switching to WAL (which needs a lock) waits for other processes too.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // In-memory databases answer "memory"; a file on a filesystem without shared memory support
    // (some network mounts) may refuse WAL, which is slower but still correct.
    if !in_memory && !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode; continuing without it");
    }
    // In WAL mode NORMAL cannot corrupt the database; only a power cut (not a crash of botmaker)
    // can lose the last few commits. FULL would pay an fsync on every commit for that.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Off by default in SQLite, per connection.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// The stored form of a timestamp: RFC 3339, UTC, `Z`, always nine fractional digits.
fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Reads back a [`timestamp`]; `what` names the column and row for the error.
fn parse_timestamp(s: &str, what: impl FnOnce() -> String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt(format!("{} {s:?} is not a timestamp: {e}", what())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn open_creates_the_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        let store = Store::open(&path).await.unwrap();
        assert!(path.is_file());
        let (mode, fk, timeout, sync) = store
            .call(|conn| {
                let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let fk: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
                let timeout: i64 = conn.pragma_query_value(None, "busy_timeout", |r| r.get(0))?;
                let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                Ok((mode, fk, timeout, sync))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
        assert_eq!(timeout, 5000);
        assert_eq!(sync, 1, "synchronous=NORMAL");
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert!(format!("{store:?}").contains("botmaker.db"));
    }

    #[tokio::test]
    async fn reads_do_not_queue_behind_a_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("botmaker.db")).await.unwrap();
        store.set_setting("k", "before").await.unwrap();
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer = store.clone();
        let write = tokio::spawn(async move {
            writer
                .call(move |conn| {
                    let tx = conn.transaction()?;
                    tx.execute("UPDATE settings SET value = 'after' WHERE key = 'k'", [])?;
                    held.send(()).unwrap();
                    released.recv().unwrap();
                    tx.commit()?;
                    Ok(())
                })
                .await
        });
        tokio::task::spawn_blocking(move || is_held.recv().unwrap())
            .await
            .unwrap();
        // The writer's lock is held and its transaction open: a read answers anyway (with the
        // last commit). Without readers it would wait here for ever, hence the bound.
        let read = tokio::time::timeout(Duration::from_secs(30), store.get_setting("k"));
        assert_eq!(read.await.unwrap().unwrap().as_deref(), Some("before"));
        release.send(()).unwrap();
        write.await.unwrap().unwrap();
        assert_eq!(
            store.get_setting("k").await.unwrap().as_deref(),
            Some("after"),
            "a read after the commit sees it"
        );
    }

    #[tokio::test]
    async fn open_in_a_missing_directory_says_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("botmaker.db");
        let err = Store::open(&path).await.unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert_eq!(err.code(), "STORE_OPEN_FAILED");
        let msg = err.to_string();
        assert!(msg.contains("no-such-dir"), "{msg}");
        assert!(
            msg.contains("data directory exists and is writable"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn open_rejects_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path).await.unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn reopening_runs_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        drop(Store::open(&path).await.unwrap());
        // v1 is plain CREATE TABLE: rerunning it would fail.
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        drop(store);
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn newer_schema_is_refused_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        drop(Store::open(&path).await.unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 99,
                    supported: SCHEMA_VERSION
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn timestamps_have_fixed_width_and_round_trip() {
        let whole = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(timestamp(&whole), "2024-05-01T12:00:00.000000000Z");
        let precise = whole + chrono::Duration::nanoseconds(123_456_789);
        let s = timestamp(&precise);
        assert_eq!(s.len(), timestamp(&whole).len());
        assert!(timestamp(&whole) < s, "text order is time order");
        assert_eq!(parse_timestamp(&s, String::new).unwrap(), precise);
        let err = parse_timestamp("yesterday", || "bots.created_at of 'x'".into()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(err.to_string().contains("bots.created_at of 'x'"));
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(
            StoreError::AlreadyExists { id: "x".into() }.code(),
            "ALREADY_EXISTS"
        );
        assert_eq!(StoreError::corrupt("x").code(), "STORE_CORRUPT");
        assert_eq!(
            StoreError::SchemaTooNew {
                found: 2,
                supported: 1
            }
            .code(),
            "SCHEMA_TOO_NEW"
        );
        assert_eq!(
            StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows).code(),
            "STORE_ERROR"
        );
    }
}
