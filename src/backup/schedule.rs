//! Scheduled backups by the server: `serve --backup-dir DIR --backup-every 24h --backup-keep 7`
//! writes a full backup into DIR every interval and keeps the newest few.

use std::fmt::Display;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

use super::archive::write_full;
use super::crypt::Passphrase;
use super::file::PendingFile;
use super::{BackupError, FleetSnapshot, Manifest};

/// File names of scheduled backups start with this.
const PREFIX: &str = "botmaker-backup-";

/// Scheduled-backup settings of `botmaker serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct BackupSchedule {
    /// Write a full backup into this directory every --backup-every (made 0700 if missing).
    #[arg(long, env = "BOTMAKER_BACKUP_DIR", requires = "backup_every")]
    pub backup_dir: Option<PathBuf>,
    /// How often: `30m`, `6h`, `24h`, `7d`.
    #[arg(long, env = "BOTMAKER_BACKUP_EVERY", value_parser = parse_interval,
          requires = "backup_dir")]
    pub backup_every: Option<Duration>,
    /// How many scheduled backups to keep (the oldest are deleted).
    #[arg(long, env = "BOTMAKER_BACKUP_KEEP", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub backup_keep: u32,
    /// File with a passphrase to encrypt scheduled backups with.
    #[arg(long, env = "BOTMAKER_BACKUP_PASSPHRASE_FILE")]
    pub backup_passphrase_file: Option<PathBuf>,
}

/// `90s`, `30m`, `6h`, `1d`: at least a second (a minute is the least that makes sense; tests
/// use seconds).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (e.g. 24h)"))?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a number followed by s, m, h or d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    if secs == 0 {
        return Err(format!("{text:?} is not an interval"));
    }
    Ok(Duration::from_secs(secs))
}

/// A prepared schedule: directory made, passphrase read.
pub struct Scheduler {
    dir: PathBuf,
    every: Duration,
    keep: usize,
    passphrase: Option<Passphrase>,
}

impl Scheduler {
    /// The schedule of `s`, if one is set; fails (at start-up) when the directory cannot be
    /// made or the passphrase file read.
    pub fn prepare(s: &BackupSchedule) -> Result<Option<Self>, BackupError> {
        let (Some(dir), Some(every)) = (&s.backup_dir, s.backup_every) else {
            return Ok(None);
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .map_err(BackupError::io("create the backup directory", dir))?;
        let passphrase = s
            .backup_passphrase_file
            .as_deref()
            .map(Passphrase::from_file)
            .transpose()?;
        Ok(Some(Self {
            dir: dir.clone(),
            every,
            keep: s.backup_keep.max(1) as usize,
            passphrase,
        }))
    }

    /// Writes a backup of `snap` (workspaces read beneath `root`) now, then prunes; returns
    /// its path and manifest.
    pub async fn backup_now(
        &self,
        snap: FleetSnapshot,
        root: PathBuf,
    ) -> Result<(PathBuf, Manifest), BackupError> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let ext = if self.passphrase.is_some() {
            "tar.gz.age"
        } else {
            "tar.gz"
        };
        let path = self.dir.join(format!("{PREFIX}{stamp}.{ext}"));
        let (dir, passphrase, keep) = (self.dir.clone(), self.passphrase.clone(), self.keep);
        let written = path.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            let mut file = PendingFile::create(&written, passphrase.as_ref())?;
            let (manifest, _) = write_full(file.sink(), &snap, &root)?;
            file.commit(None)?;
            prune(&dir, keep)?;
            Ok::<_, BackupError>(manifest)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok((path, manifest))
    }

    /// Backs up every interval until `shutdown` (the first one an interval after start):
    /// `snapshot` takes the registry's snapshot (the domain's to take: this module only
    /// writes archives), and workspaces are read beneath `root`.
    pub async fn run<F, Fut, E>(
        self,
        snapshot: F,
        root: PathBuf,
        mut shutdown: watch::Receiver<bool>,
    ) where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FleetSnapshot, E>>,
        E: Display,
    {
        let mut tick = tokio::time::interval(self.every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let snap = match snapshot().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "scheduled backup failed: no snapshot");
                    continue;
                }
            };
            match self.backup_now(snap, root.clone()).await {
                Ok((path, m)) => tracing::info!(
                    path = %path.display(), bots = m.bots.len(), "scheduled backup written"
                ),
                Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
            }
        }
    }
}

/// Deletes the oldest scheduled backups in `dir` beyond the newest `keep` (their names sort by
/// time).
fn prune(dir: &Path, keep: usize) -> Result<(), BackupError> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(BackupError::io("list", dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX) && !n.contains(".partial-"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for old in &names[..excess] {
        let path = dir.join(old);
        fs::remove_file(&path).map_err(BackupError::io("delete an old backup", &path))?;
        tracing::info!(path = %path.display(), "deleted an old scheduled backup");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_need_a_unit_and_a_minute() {
        assert_eq!(parse_interval("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1800)));
        for bad in ["24", "h", "0s", "1w", "-1h", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["20240101", "20240102", "20240103", "20240104"] {
            fs::write(dir.path().join(format!("{PREFIX}{n}.tar.gz")), b"x").unwrap();
        }
        fs::write(dir.path().join("mine.txt"), b"x").unwrap();
        fs::write(
            dir.path()
                .join(format!("{PREFIX}20240105.tar.gz.partial-1")),
            b"x",
        )
        .unwrap();
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{PREFIX}20240103.tar.gz"),
                format!("{PREFIX}20240104.tar.gz"),
                format!("{PREFIX}20240105.tar.gz.partial-1"),
                "mine.txt".to_string(),
            ]
        );
    }
}
