//! The audit log's rows: who changed what, to which bot, when, and how it ended. Written by
//! `crate::audit`, which decides what an entry says; this file only stores and pages them.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;

use super::{Store, StoreError, parse_timestamp, timestamp};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the log: increasing, the paging cursor.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `session`, `token` or `anonymous` (a login attempt).
    pub actor_kind: String,
    /// Who: `admin` for a session, the token's name (as it was then) for a token, `-` for
    /// nobody yet.
    pub actor: String,
    /// What (`create`, `secret_set`, `login`...).
    pub action: String,
    /// Which bot, when the change was to one.
    pub bot_id: Option<String>,
    /// What else it was about: a secret's or provider's name, a token's id.
    pub target: Option<String>,
    /// `ok`, or the error code the change failed with.
    pub outcome: String,
    /// The HTTP status answered (0 where it was recorded without one: logins, recorded by the
    /// login check both front ends share).
    pub status: u16,
    /// The client's address, where it matters (logins).
    pub client: Option<String>,
}

/// A new entry; `seq` is given by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRow {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `session`, `token` or `anonymous`.
    pub actor_kind: &'static str,
    /// For a token, its id: the row records the token's name, looked up in the same statement.
    /// For the others, the name to record.
    pub actor: String,
    /// What.
    pub action: String,
    /// Which bot.
    pub bot_id: Option<String>,
    /// What else.
    pub target: Option<String>,
    /// `ok` or an error code.
    pub outcome: String,
    /// The HTTP status.
    pub status: u16,
    /// The client's address.
    pub client: Option<String>,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this bot's.
    pub bot_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries older than this cursor (a `seq`).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

const COLUMNS: &str = "seq, at, actor_kind, actor, action, bot_id, target, outcome, status, client";

impl Store {
    /// Appends an entry. A token's name is recorded as it is at this moment, so the entry
    /// still says who it was after the token is revoked.
    pub async fn append_audit(&self, row: NewAuditRow) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO audit_log (at, actor_kind, actor, action, bot_id, target, outcome, \
                 status, client) VALUES (?1, ?2, \
                 CASE WHEN ?2 = 'token' \
                      THEN coalesce((SELECT name FROM api_tokens WHERE id = ?3), ?3) \
                      ELSE ?3 END, \
                 ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![
                    timestamp(&row.at),
                    row.actor_kind,
                    row.actor,
                    row.action,
                    row.bot_id,
                    row.target,
                    row.outcome,
                    row.status,
                    row.client,
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Entries matching `filter`, newest first.
    pub async fn audit_entries(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        self.call(move |conn| {
            let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
            let mut args: Vec<Value> = Vec::new();
            if let Some(bot) = filter.bot_id {
                args.push(bot.into());
                sql.push_str(&format!(" AND bot_id = ?{}", args.len()));
            }
            if let Some(action) = filter.action {
                args.push(action.into());
                sql.push_str(&format!(" AND action = ?{}", args.len()));
            }
            if let Some(before) = filter.before {
                args.push(before.into());
                sql.push_str(&format!(" AND seq < ?{}", args.len()));
            }
            args.push(i64::from(filter.limit).into());
            sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
            let mut stmt = conn.prepare(&sql)?;
            let raw = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        AuditRow {
                            seq: r.get(0)?,
                            at: DateTime::<Utc>::MIN_UTC,
                            actor_kind: r.get(2)?,
                            actor: r.get(3)?,
                            action: r.get(4)?,
                            bot_id: r.get(5)?,
                            target: r.get(6)?,
                            outcome: r.get(7)?,
                            status: r.get(8)?,
                            client: r.get(9)?,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raw.into_iter()
                .map(|(seq, at, mut row)| {
                    row.at = parse_timestamp(&at, || format!("audit_log.at of entry {seq}"))?;
                    Ok(row)
                })
                .collect()
        })
        .await
    }

    /// Deletes entries older than `cutoff`; returns how many.
    pub async fn prune_audit(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call(move |conn| {
            Ok(conn.execute("DELETE FROM audit_log WHERE at < ?1", [timestamp(&cutoff)])?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, bot: Option<&str>, at: DateTime<Utc>) -> NewAuditRow {
        NewAuditRow {
            at,
            actor_kind: "session",
            actor: "admin".into(),
            action: action.into(),
            bot_id: bot.map(str::to_string),
            target: None,
            outcome: "ok".into(),
            status: 200,
            client: None,
        }
    }

    #[tokio::test]
    async fn entries_page_newest_first_by_filter_and_old_ones_are_pruned() {
        let store = Store::open_in_memory().await.unwrap();
        let now = Utc::now();
        let old = now - chrono::Duration::days(100);
        store
            .append_audit(entry("create", Some("a"), old))
            .await
            .unwrap();
        for i in 0..5 {
            let bot = if i % 2 == 0 { "a" } else { "b" };
            store
                .append_audit(entry("start", Some(bot), now))
                .await
                .unwrap();
        }
        let all = store
            .audit_entries(AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 6);
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
        let page = store
            .audit_entries(AuditFilter {
                bot_id: Some("a".into()),
                action: Some("start".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
        let next = store
            .audit_entries(AuditFilter {
                bot_id: Some("a".into()),
                action: Some("start".into()),
                before: Some(page[1].seq),
                limit: 2,
            })
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "three starts of a in all");
        assert!(next[0].seq < page[1].seq);
        assert_eq!(
            store
                .prune_audit(now - chrono::Duration::days(90))
                .await
                .unwrap(),
            1
        );
        let left = store
            .audit_entries(AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(left.iter().all(|r| r.action == "start"));
    }

    #[tokio::test]
    async fn a_token_is_recorded_by_its_name() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .call(|c| {
                c.execute(
                    "INSERT INTO api_tokens (id, name, token_hash, created_at) \
                     VALUES ('t1', 'ci', 'h', '2024-01-01T00:00:00.000000000Z')",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let mut e = entry("stop", Some("a"), Utc::now());
        e.actor_kind = "token";
        e.actor = "t1".into();
        store.append_audit(e).await.unwrap();
        let rows = store
            .audit_entries(AuditFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows[0].actor, "ci");
    }
}
