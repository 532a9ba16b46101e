//! The registry's schema, as an ordered list of SQL scripts compiled into the binary.
//!
//! The database records how many scripts it has run in `PRAGMA user_version` (a field of the
//! file header, so it changes atomically with the transaction that applies a script). Opening
//! a database runs only the scripts after that number, each in its own transaction; a database
//! whose version is higher than this binary knows is refused rather than guessed at.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Every migration, oldest first; script `i` takes the schema from version `i` to `i + 1`.
///
/// NEVER edit, reorder or remove a script once it has been released: databases in the field have
/// already run it and will not run it again, so an edit would silently give them a different
/// schema from new installs. To change the schema, append a new script.
/// `migrations_are_frozen` below fails when an applied script changes.
pub(super) const MIGRATIONS: &[&str] = &[
    V1_INITIAL,
    V2_BOT_OPERATIONS,
    V3_UPGRADE_JOURNAL,
    V4_LLM_PROXY,
    V5_NOTIFICATIONS,
    V6_AUDIT_AND_STATS,
    V7_CRASH_HISTORY,
];

/// The schema version this binary migrates databases to: the number of embedded migrations.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// v1: bots, dashboard sessions, API tokens and settings.
///
/// Timestamps are RFC 3339 UTC text with a fixed nine-digit fraction, so they sort as text.
/// Text primary keys are declared NOT NULL because SQLite, for historical reasons, otherwise
/// lets them hold NULL.
const V1_INITIAL: &str = "
CREATE TABLE bots (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    template      TEXT NOT NULL,
    spec          TEXT NOT NULL,              -- JSON: the bot's spec
    secret_names  TEXT NOT NULL DEFAULT '[]', -- JSON array of secret names
    desired_state TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
    container_id  TEXT,
    image_id      TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
-- purge_expired_sessions deletes by expiry.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
";

/// v2: a journal of bot creates and deletes in progress.
///
/// A create or delete is several steps (row, secrets, workspace, container) that cannot share
/// one transaction; a botmaker killed half-way leaves its entry here, and the next start undoes
/// the create or finishes the delete. No foreign key: the entry of a delete outlives the row
/// until the very end, in the same transaction that removes it.
const V2_BOT_OPERATIONS: &str = "
CREATE TABLE bot_operations (
    bot_id     TEXT PRIMARY KEY NOT NULL,
    operation  TEXT NOT NULL CHECK (operation IN ('create', 'delete')),
    started_at TEXT NOT NULL
);
";

/// v3: upgrades join the `bot_operations` journal.
///
/// An upgrade parks the bot's running container under another name while the new one proves
/// itself healthy; a botmaker killed in between leaves an `upgrade` entry whose `detail` (JSON:
/// the parked container's id, the new image, whether the new container passed) tells the next
/// start whether to put the old container back or to finish. SQLite cannot change a CHECK
/// constraint in place, so the table is rebuilt with its entries.
const V3_UPGRADE_JOURNAL: &str = "
CREATE TABLE bot_operations_v3 (
    bot_id     TEXT PRIMARY KEY NOT NULL,
    operation  TEXT NOT NULL CHECK (operation IN ('create', 'delete', 'upgrade')),
    started_at TEXT NOT NULL,
    detail     TEXT                        -- JSON for 'upgrade', NULL otherwise
);
INSERT INTO bot_operations_v3 (bot_id, operation, started_at)
    SELECT bot_id, operation, started_at FROM bot_operations;
DROP TABLE bot_operations;
ALTER TABLE bot_operations_v3 RENAME TO bot_operations;
";

/// v4: the LLM key proxy (`crate::llm`): providers, the bots' virtual keys, and usage.
///
/// - `llm_providers`: what the proxy forwards to. The real API key is not here: it is a file in
///   botmaker's secrets store (`<data>/llm-providers/<name>/API_KEY`); `has_api_key` says
///   whether one was given. `prices` is a JSON object `{model: {input, output}}`, cost per
///   million tokens.
/// - `llm_keys`: one row per virtual key ever minted, by the SHA-256 of the key (the key itself
///   lives only in the bot's secrets directory). A bot's rows go with the bot (cascade); a
///   provider's are revoked (`revoked_at`) when it is deleted, so a reused name starts clean.
/// - `llm_usage`: tokens, requests and cost per bot, provider, model and UTC day (`YYYY-MM-DD`),
///   added to as requests end. No foreign key: spend outlives a deleted bot, and `/api/usage`
///   still counts it. Cost is in billionths of the price table's currency unit, so sums are
///   exact integers.
const V4_LLM_PROXY: &str = "
CREATE TABLE llm_providers (
    name        TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('openai', 'anthropic', 'openai-compatible')),
    base_url    TEXT NOT NULL,
    has_api_key INTEGER NOT NULL DEFAULT 0,
    prices      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE llm_keys (
    key_hash   TEXT PRIMARY KEY NOT NULL,
    bot_id     TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX llm_keys_by_bot ON llm_keys (bot_id, provider);

CREATE TABLE llm_usage (
    bot_id        TEXT NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    day           TEXT NOT NULL,
    requests      INTEGER NOT NULL DEFAULT 0,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nanos    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, provider, model, day)
);
CREATE INDEX llm_usage_by_day ON llm_usage (day);
";

/// v5: alert notification channels and their recent delivery attempts.
///
/// - `notification_channels`: where alerts go. `name` is NULL for the channels `serve
///   --alert-webhook` keeps (the flag owns them); named ones are the API's. `events` is a JSON
///   array of event names, NULL for every event (so events added later reach it too). Signing
///   secrets and Telegram bot tokens live in files beside the registry, never in it: the
///   `has_*` columns only say one is on file.
/// - `notification_deliveries`: one row per attempt, kept to the last few hundred per channel,
///   deleted with the channel.
const V5_NOTIFICATIONS: &str = "
CREATE TABLE notification_channels (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT UNIQUE,
    kind               TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'discord', 'telegram')),
    url                TEXT NOT NULL,
    chat_id            TEXT,
    events             TEXT,
    has_signing_secret INTEGER NOT NULL DEFAULT 0,
    has_bot_token      INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL
);

CREATE TABLE notification_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  INTEGER NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    bot_id      TEXT,
    attempt     INTEGER NOT NULL,
    result      TEXT NOT NULL CHECK (result IN ('ok', 'failed', 'retrying')),
    http_status INTEGER,
    error       TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX notification_deliveries_by_channel ON notification_deliveries (channel_id, id);
";

/// v7: crash history, so that `crash_loop` survives a server restart (issue 11).
///
/// One row per unrequested death of a bot's container, kept for the crash-loop window: the
/// container id says which run it belongs to (a recreated bot starts clean). A bot's rows go
/// with the bot.
const V7_CRASH_HISTORY: &str = "
CREATE TABLE crash_history (
    bot_id       TEXT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    container_id TEXT NOT NULL,
    died_at      TEXT NOT NULL
);
CREATE INDEX crash_history_by_bot ON crash_history (bot_id, died_at);
";

/// v6: the audit log and per-bot stats at one-minute resolution.
///
/// `audit_log.seq` is the paging cursor (AUTOINCREMENT: never reused after a prune, so a cursor
/// held by a client never points at a newer entry). `bot_stats_minutes` keeps one row per bot
/// and minute (`minute` in whole minutes since the Unix epoch), pruned after 24 hours; WITHOUT
/// ROWID, since the key is the only way it is read.
const V6_AUDIT_AND_STATS: &str = "
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('session', 'token', 'anonymous')),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    bot_id     TEXT,
    target     TEXT,
    outcome    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    client     TEXT
);
CREATE INDEX audit_log_by_at ON audit_log (at);
CREATE INDEX audit_log_by_bot ON audit_log (bot_id, seq);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);

CREATE TABLE bot_stats_minutes (
    bot_id             TEXT NOT NULL,
    minute             INTEGER NOT NULL,
    cpu_percent        REAL NOT NULL,
    cpu_percent_max    REAL NOT NULL,
    memory_bytes       INTEGER NOT NULL,
    memory_bytes_max   INTEGER NOT NULL,
    memory_limit_bytes INTEGER NOT NULL,
    samples            INTEGER NOT NULL,
    PRIMARY KEY (bot_id, minute)
) WITHOUT ROWID;
CREATE INDEX bot_stats_minutes_by_minute ON bot_stats_minutes (minute);
";

/// Brings the database behind `conn` up to `migrations.len()`.
///
/// Takes the list as a parameter so tests can migrate through made-up versions.
pub(super) fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let supported = migrations.len() as u32;
    let found = user_version(conn)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        // IMMEDIATE takes the write lock up front, so two processes opening the same file
        // cannot both run a script.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited for the lock.
        if user_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied registry schema migration");
    }
    // A newer binary may have migrated past us while we waited for the lock.
    let found = user_version(conn)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    Ok(())
}

/// The number of migrations the database has run.
pub(super) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(version)
        .map_err(|_| StoreError::corrupt(format!("PRAGMA user_version is {version}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    #[test]
    fn fresh_database_gets_every_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        for table in [
            "bots",
            "sessions",
            "api_tokens",
            "settings",
            "bot_operations",
            "llm_providers",
            "llm_keys",
            "llm_usage",
            "crash_history",
            "audit_log",
            "bot_stats_minutes",
        ] {
            assert!(table_exists(&conn, table), "{table}");
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        // v1 uses plain CREATE TABLE, so running it again would fail.
        apply(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn only_newer_migrations_run() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &["CREATE TABLE a (x)"]).unwrap();
        apply(&mut conn, &["CREATE TABLE a (x)", "CREATE TABLE b (x)"]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        assert!(table_exists(&conn, "a") && table_exists(&conn, "b"));
    }

    #[test]
    fn a_failing_migration_leaves_no_trace() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            "CREATE TABLE a (x)",
            "CREATE TABLE b (x); CREATE TABLE a (y)",
        ];
        let err = apply(&mut conn, &broken).unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(!table_exists(&conn, "b"), "half of v2 was kept");
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
        let err = apply(&mut conn, MIGRATIONS).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported }
                if found == SCHEMA_VERSION + 5 && supported == SCHEMA_VERSION),
            "{err:?}"
        );
    }

    /// Pins each released migration. If this fails you edited a script that databases in the
    /// field have already run: revert it and append a new migration instead.
    #[test]
    fn migrations_are_frozen() {
        const RELEASED: &[&str] = &[
            "147671d0ea9f91a9a644481bb319c7f328b056a88a82c40d68188e1b89d88207",
            "907fc1a35ac4fdf73cff6935ded08979bd7348049d35169953687e31a41bca78",
            "ed72b6a91b0d1b94240287b731a9a27c7164f7ab5527dbe7b88e194cbf1227fe",
            "16bf48e953c70cf13393aaac8cfa5f77d893450ef07116134f3389766c427e42",
            "936d53a6a21b66752fc0624ee0eb6e5006f22e094584aa7f023c18fca21f63fb",
        ];
        for (index, expected) in RELEASED.iter().enumerate() {
            // Ignore `\r` so a CRLF checkout does not look like an edit.
            let script = MIGRATIONS[index].replace('\r', "");
            let actual = hex::encode(Sha256::digest(script.as_bytes()));
            assert_eq!(
                &actual,
                expected,
                "migration v{} changed after release; append a new one instead",
                index + 1
            );
        }
    }
}
