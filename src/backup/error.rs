//! [`BackupError`]: why an archive could not be written or read back, each with a stable code.

use std::path::PathBuf;

use crate::safe_fs::FsError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// A failed backup, restore or import.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The archive is damaged, truncated, altered or not a botmaker backup; nothing was
    /// changed.
    #[error("the backup archive is not usable: {0}; nothing was changed")]
    Corrupt(String),
    /// The archive is encrypted and no passphrase was given, or the passphrase is wrong.
    #[error("{0}")]
    Passphrase(String),
    /// The archive is of another kind, or from a newer botmaker, than this operation accepts.
    #[error("{0}")]
    Unsupported(String),
    /// The restore target is not empty, and `--force` was not given.
    #[error(
        "{} is not empty; restore into an empty directory, or pass --force to move what is \
         there aside first",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// Reading or writing a file failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path (empty for the archive stream).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file operation in a secrets or workspace tree failed or was refused.
    #[error(transparent)]
    Files(#[from] FsError),
    /// Reading or writing secrets failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackupError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Corrupt(_) => "BACKUP_CORRUPT",
            Self::Passphrase(_) => "BACKUP_PASSPHRASE",
            Self::Unsupported(_) => "BACKUP_UNSUPPORTED",
            Self::NotEmpty(_) => "NOT_EMPTY",
            Self::Io { .. } => "IO_ERROR",
            Self::Files(e) => e.code(),
            Self::Secrets(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }

    /// Whether the archive itself is at fault (as opposed to the machine reading it).
    pub fn is_bad_archive(&self) -> bool {
        matches!(
            self,
            Self::Corrupt(_) | Self::Passphrase(_) | Self::Unsupported(_)
        )
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
