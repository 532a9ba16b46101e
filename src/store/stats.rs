//! Per-bot resource use at one-minute resolution (`bot_stats_minutes`), kept 24 hours: the
//! stats history the bot page charts. The sampler aggregates its readings per minute and a
//! task writes each finished minute here once (see `crate::sampler`).

use super::{Store, StoreError};

/// One bot's aggregate of one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsMinuteRow {
    /// Whole minutes since the Unix epoch.
    pub minute: i64,
    /// Mean CPU over the minute's readings, percent of one core.
    pub cpu_percent: f64,
    /// Highest CPU reading.
    pub cpu_percent_max: f64,
    /// Mean memory in use.
    pub memory_bytes: u64,
    /// Highest memory reading.
    pub memory_bytes_max: u64,
    /// Limit at the last reading.
    pub memory_limit_bytes: u64,
    /// Readings aggregated.
    pub samples: u32,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes finished minutes, all in one transaction (a minute written again replaces
    /// the first).
    pub async fn insert_stats_minutes(
        &self,
        rows: Vec<(String, StatsMinuteRow)>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO bot_stats_minutes (bot_id, minute, cpu_percent, \
                     cpu_percent_max, memory_bytes, memory_bytes_max, memory_limit_bytes, samples) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (bot, r) in rows {
                    stmt.execute(rusqlite::params![
                        bot,
                        r.minute,
                        r.cpu_percent,
                        r.cpu_percent_max,
                        to_i64(r.memory_bytes),
                        to_i64(r.memory_bytes_max),
                        to_i64(r.memory_limit_bytes),
                        r.samples,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// A bot's minutes from `since_minute` on, oldest first.
    pub async fn stats_minutes(
        &self,
        bot: &str,
        since_minute: i64,
    ) -> Result<Vec<StatsMinuteRow>, StoreError> {
        let bot = bot.to_string();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT minute, cpu_percent, cpu_percent_max, memory_bytes, memory_bytes_max, \
                 memory_limit_bytes, samples FROM bot_stats_minutes \
                 WHERE bot_id = ?1 AND minute >= ?2 ORDER BY minute",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![bot, since_minute], |r| {
                    Ok(StatsMinuteRow {
                        minute: r.get(0)?,
                        cpu_percent: r.get(1)?,
                        cpu_percent_max: r.get(2)?,
                        memory_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                        memory_bytes_max: r.get::<_, i64>(4)?.max(0) as u64,
                        memory_limit_bytes: r.get::<_, i64>(5)?.max(0) as u64,
                        samples: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Deletes minutes before `before_minute`; returns how many.
    pub async fn prune_stats_minutes(&self, before_minute: i64) -> Result<usize, StoreError> {
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM bot_stats_minutes WHERE minute < ?1",
                [before_minute],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: i64, cpu: f64) -> StatsMinuteRow {
        StatsMinuteRow {
            minute,
            cpu_percent: cpu,
            cpu_percent_max: cpu,
            memory_bytes: 10,
            memory_bytes_max: 12,
            memory_limit_bytes: 100,
            samples: 6,
        }
    }

    #[tokio::test]
    async fn minutes_are_read_per_bot_from_a_minute_on_and_pruned() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .insert_stats_minutes(vec![
                ("a".into(), row(100, 1.0)),
                ("a".into(), row(101, 2.0)),
                ("a".into(), row(102, 3.0)),
                ("b".into(), row(101, 9.0)),
            ])
            .await
            .unwrap();
        let a = store.stats_minutes("a", 101).await.unwrap();
        assert_eq!(a, vec![row(101, 2.0), row(102, 3.0)]);
        assert_eq!(store.prune_stats_minutes(102).await.unwrap(), 3);
        assert_eq!(
            store.stats_minutes("a", 0).await.unwrap(),
            vec![row(102, 3.0)]
        );
        assert!(store.stats_minutes("b", 0).await.unwrap().is_empty());
    }
}

/// The disk bound of the stats history: 500 bots' full 24 hours (720,000 minutes) in a real
/// database file. A measurement, not a test: `cargo test --lib stats_history_disk -- --ignored
/// --nocapture` prints the figure docs/benchmarks.md quotes.
#[cfg(test)]
mod measure {
    use super::*;

    #[tokio::test]
    #[ignore = "a measurement: prints the stats history's size at 500 bots"]
    async fn stats_history_disk_at_500_bots() {
        const BOTS: usize = 500;
        const MINUTES: i64 = 24 * 60;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        let store = Store::open(&path).await.unwrap();
        let start = 29_000_000;
        for m in 0..MINUTES {
            let rows = (0..BOTS)
                .map(|b| {
                    let row = StatsMinuteRow {
                        minute: start + m,
                        cpu_percent: 3.25 + b as f64 / 7.0,
                        cpu_percent_max: 9.5,
                        memory_bytes: 180_000_000 + b as u64 * 1_000,
                        memory_bytes_max: 190_000_000,
                        memory_limit_bytes: 536_870_912,
                        samples: 6,
                    };
                    (format!("support-bot-{b:04}"), row)
                })
                .collect();
            store.insert_stats_minutes(rows).await.unwrap();
        }
        store
            .call(|c| {
                c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
                Ok(())
            })
            .await
            .unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();
        let rows = BOTS as u64 * MINUTES as u64;
        println!(
            "stats history at {BOTS} bots x 24 h: {rows} rows, {:.1} MB ({} bytes/row)",
            bytes as f64 / 1e6,
            bytes / rows
        );
        let t = std::time::Instant::now();
        let one = store
            .stats_minutes("support-bot-0042", start)
            .await
            .unwrap();
        println!(
            "one bot's 24 h read: {} rows in {:?}",
            one.len(),
            t.elapsed()
        );
        let t = std::time::Instant::now();
        let pruned = store.prune_stats_minutes(start + 1).await.unwrap();
        println!(
            "pruning one minute of {BOTS} bots: {pruned} rows in {:?}",
            t.elapsed()
        );
    }
}
