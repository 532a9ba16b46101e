//! [`FsError`]: what failed, on which path; never file contents.

use std::io;
use std::path::PathBuf;

use rustix::io::Errno;

/// A failed file operation: what was attempted, on which path, and why. Never file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A system call failed (permissions, disk full, a name that kept changing, ...).
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `"create directory"`.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A symlink sits where botmaker needs a directory or file, and the policy is to refuse.
    #[error("refusing to follow symlink {}", path.display())]
    Symlink {
        /// The link (or the path that crosses one).
        path: PathBuf,
    },
    /// Something other than a directory sits where a directory belongs.
    #[error("{} exists but is not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// Something other than a regular file sits where a file belongs.
    #[error("{} exists but is not a regular file", path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// A path given to this module is not plain and relative (a bug in the caller).
    #[error("{} is not a plain relative path (no root, '.' or '..')", path.display())]
    InvalidPath {
        /// The offending path, as the caller gave it.
        path: PathBuf,
    },
}

impl FsError {
    /// A stable code: `IO_ERROR` when the file system failed, `UNSAFE_PATH` when this module
    /// refused to touch something that is not what it should be.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "IO_ERROR",
            Self::Symlink { .. }
            | Self::NotADirectory { .. }
            | Self::NotAFile { .. }
            | Self::InvalidPath { .. } => "UNSAFE_PATH",
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = FsError> = std::result::Result<T, E>;

pub(super) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> FsError {
    let path = path.into();
    move |e| FsError::Io {
        op,
        path,
        source: e.into(),
    }
}

pub(super) fn kept_changing(op: &'static str, path: PathBuf) -> FsError {
    FsError::Io {
        op,
        path,
        source: io::Error::other("it kept changing while botmaker worked on it"),
    }
}
