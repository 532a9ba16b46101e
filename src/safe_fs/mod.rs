//! File operations as root inside trees a bot can write, built so that the bot cannot redirect
//! them. Owns no paths of its own: the secrets store and the workspace code call it.
//!
//! botmaker runs as root and writes into directories that a bot can change under it: an
//! `openclaw` bot's state directory is writable by uid 1000 in its container, a generic bot's
//! `/workspace` by the bot. `std::fs` resolves every path afresh and follows links, so a bot that
//! swaps `openclaw.json` for a symlink to `/etc/shadow`, or a subdirectory for a symlink to
//! `/root`, would have botmaker overwrite, `chmod` and `chown` that host file on the next write.
//!
//! Everything here therefore works from a directory file descriptor ([`Dir`]):
//!
//! - **Nothing is followed.** Relative paths are resolved beneath the descriptor with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or, where the kernel lacks `openat2`,
//!   one component at a time with `O_NOFOLLOW | O_DIRECTORY`. A symlink anywhere on the way is
//!   an error, never a detour. A root (`secrets/`, `workspaces/`) is opened with `O_NOFOLLOW`,
//!   so a root replaced by a link is refused too; only its parents, the administrator's data
//!   directory, are resolved as usual.
//! - **Metadata is changed on descriptors** (`fchmod`, `fchown`), never by path.
//! - **Files are written beside the target and renamed over it**: a fresh temp file made with
//!   `O_CREAT | O_EXCL` (which fails on any existing entry, link or not), filled, `fsync`ed, then
//!   `renameat` onto the name. A rename replaces the *directory entry*: a symlink, fifo or
//!   device there is swapped out, its target never opened. Readers see the old or the new file,
//!   never half of one.
//! - **Deletion never leaves the tree**: `unlinkat` on names inside an open directory, descending
//!   only into entries that open as real directories. A tree of any depth is removed with a
//!   bounded number of descriptors (see [`Dir::remove_tree`]).
//!
//! What a bot planted is handled by the caller's [`Planted`] policy: `Replace` for workspaces
//! (the bot may write there by design, so botmaker's files win and only the bot's own directory
//! changes), `Refuse` for secrets (nothing but botmaker writes there, so a link means tampering).
//!
//! Every call blocks on the file system; async code runs them on the blocking pool.

mod error;
mod read;
mod remove;
mod resolve;
mod write;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

pub use error::{FsError, Result};
use error::{io_err, kept_changing};
pub use read::OpenFile;
use resolve::DIR_FLAGS;

/// How many times an operation that a concurrent change undid (a name replaced between two
/// steps) is retried before it gives up with an error.
const RACE_RETRIES: usize = 16;

/// What to do with something other than what botmaker needs at a name: a symlink, fifo,
/// socket, device or file where a directory belongs, or a directory where a file belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planted {
    /// Remove it (a link itself, never its target; a directory recursively, without following
    /// links) and put botmaker's directory or file in its place. For bot-writable trees: the
    /// bot gets what its template promises and can only have changed its own directory.
    Replace,
    /// Fail with [`FsError::Symlink`] / [`FsError::NotADirectory`] and change nothing. For trees
    /// no one else writes, where anything unexpected is a sign of tampering.
    Refuse,
}

/// What an entry is, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl Kind {
    fn of(t: FileType) -> Self {
        match t {
            FileType::RegularFile => Self::File,
            FileType::Directory => Self::Dir,
            FileType::Symlink => Self::Symlink,
            _ => Self::Other,
        }
    }
}

/// An entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (one component).
    pub name: OsString,
    /// What it is, not following links.
    pub kind: Kind,
}

/// How a directory that [`Dir::ensure_dir`] has to create is made.
#[derive(Debug, Clone, Copy)]
pub struct NewDir {
    /// Its mode, set with `fchmod` (the umask does not narrow it).
    pub mode: u32,
    /// Its owner, set with `fchown`; `None` keeps botmaker's.
    pub owner: Option<(u32, u32)>,
    /// What to do with something else at the name.
    pub planted: Planted,
}

/// How [`Dir::write_file`] writes.
#[derive(Debug, Clone, Copy)]
pub struct NewFile {
    /// The file's mode.
    pub mode: u32,
    /// The file's owner; `None` keeps botmaker's.
    pub owner: Option<(u32, u32)>,
    /// What to do with a directory at the name (any non-directory is replaced by the rename
    /// whatever the policy: that never touches what a link points to).
    pub planted: Planted,
}

/// An open directory: the anchor of every operation beneath it. Its path is kept for messages
/// only; it is never used to reach the directory again.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory at `path`, or `None` if there is none. The last component must be a
    /// real directory: a symlink is [`FsError::Symlink`], anything else
    /// [`FsError::NotADirectory`]. The parents are resolved as usual (they are the
    /// administrator's, not a bot's).
    pub fn open_root(path: &Path) -> Result<Option<Dir>> {
        match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: path.to_path_buf(),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => Err(blame_root(path, e)),
            Err(e) => Err(io_err("open directory", path)(e)),
        }
    }

    /// Opens the directory at `path` as [`open_root`](Self::open_root) does, creating it (and
    /// its missing parents) first if needed, and sets its mode to `mode`.
    pub fn create_root(path: &Path, mode: u32) -> Result<Dir> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| FsError::Io {
                op: "create directory",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        match rustix::fs::mkdir(path, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_err("create directory", path)(e)),
        }
        let dir = Self::open_root(path)?.ok_or_else(|| FsError::Io {
            op: "open directory",
            path: path.to_path_buf(),
            source: io::ErrorKind::NotFound.into(),
        })?;
        dir.set_mode(mode)?;
        Ok(dir)
    }

    /// The path this directory was reached by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Opens the directory `rel` beneath this one, or `None` if it does not exist. A symlink
    /// or non-directory anywhere on the way is refused.
    pub fn open_dir(&self, rel: &Path) -> Result<Option<Dir>> {
        checked(rel)?;
        match resolve::open(self.fd.as_fd(), rel, DIR_FLAGS) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.child(rel),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => Err(self.blame(rel, e)),
            Err(e) => Err(io_err("open directory", self.child(rel))(e)),
        }
    }

    /// Opens the directory `name` (one component) in this one, creating it if missing with
    /// `new.mode` and `new.owner`. An existing directory is returned as it is; something else
    /// at the name is handled by `new.planted`.
    pub fn ensure_dir(&self, name: &OsStr, new: &NewDir) -> Result<Dir> {
        let name = single(name)?;
        let path = self.child(name);
        for _ in 0..RACE_RETRIES {
            let created = match rustix::fs::mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700))
            {
                Ok(()) => true,
                // `mkdirat` never follows a link at the name: a link there is EEXIST too.
                Err(Errno::EXIST) => false,
                Err(e) => return Err(io_err("create directory", &path)(e)),
            };
            match resolve::open(self.fd.as_fd(), Path::new(name), DIR_FLAGS) {
                Ok(fd) => {
                    let dir = Dir {
                        fd,
                        path: path.clone(),
                    };
                    if created {
                        dir.set_owner(new.owner)?;
                        dir.set_mode(new.mode)?;
                    }
                    return Ok(dir);
                }
                Err(Errno::NOENT) => continue,
                Err(e @ (Errno::LOOP | Errno::NOTDIR)) => match new.planted {
                    Planted::Refuse => return Err(self.blame(Path::new(name), e)),
                    Planted::Replace => {
                        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                            // Removed the link (or file, fifo...) itself; or it is gone already,
                            // or became a directory meanwhile: look again.
                            Ok(()) | Err(Errno::NOENT | Errno::ISDIR) => continue,
                            Err(e) => return Err(io_err("remove", &path)(e)),
                        }
                    }
                },
                Err(e) => return Err(io_err("open directory", &path)(e)),
            }
        }
        Err(kept_changing("create directory", path))
    }

    /// [`ensure_dir`](Self::ensure_dir) for each component of `rel` in turn.
    pub fn ensure_dirs(&self, rel: &Path, new: &NewDir) -> Result<Dir> {
        let parts = checked(rel)?;
        let mut dir = self.ensure_dir(parts[0], new)?;
        for part in &parts[1..] {
            dir = dir.ensure_dir(part, new)?;
        }
        Ok(dir)
    }

    /// Sets this directory's mode with `fchmod`.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        rustix::fs::fchmod(&self.fd, Mode::from_bits_truncate(mode))
            .map_err(io_err("set permissions of", &self.path))
    }

    /// Sets this directory's owner with `fchown`; `None` does nothing.
    pub fn set_owner(&self, owner: Option<(u32, u32)>) -> Result<()> {
        set_owner(self.fd.as_fd(), owner).map_err(io_err("change owner of", &self.path))
    }

    /// Reads the regular file `rel` beneath this directory, or `None` if it does not exist.
    /// A symlink is [`FsError::Symlink`]; a directory, fifo, socket or device
    /// [`FsError::NotAFile`] (opened non-blocking and checked with `fstat` before a byte is
    /// read, so a fifo cannot block it).
    pub fn read_file(&self, rel: &Path) -> Result<Option<Vec<u8>>> {
        checked(rel)?;
        let path = self.child(rel);
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match resolve::open(self.fd.as_fd(), rel, flags) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => return Err(self.blame(rel, e)),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io_err("inspect", &path))?;
        if Kind::of(FileType::from_raw_mode(stat.st_mode)) != Kind::File {
            return Err(FsError::NotAFile { path });
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut File::from(fd), &mut bytes).map_err(|source| FsError::Io {
            op: "read",
            path,
            source,
        })?;
        Ok(Some(bytes))
    }

    /// What `name` (one component) is, without following it; `None` if it does not exist.
    pub fn kind_of(&self, name: &OsStr) -> Result<Option<Kind>> {
        let name = single(name)?;
        kind_at(self.fd.as_fd(), name).map_err(io_err("inspect", self.child(name)))
    }

    /// The entries of this directory (without `.` and `..`), kinds read without following.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let list = io_err("list", &self.path);
        let mut out = Vec::new();
        let mut stream = rustix::fs::Dir::read_from(&self.fd).map_err(list)?;
        while let Some(entry) = stream.read() {
            let entry = entry.map_err(io_err("list", &self.path))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => match kind_at(self.fd.as_fd(), name) {
                    Ok(Some(kind)) => kind,
                    Ok(None) => continue,
                    Err(e) => return Err(io_err("inspect", self.child(name))(e)),
                },
                t => Kind::of(t),
            };
            out.push(Entry {
                name: name.to_os_string(),
                kind,
            });
        }
        Ok(out)
    }

    /// Removes the non-directory `name` (a link itself, never its target). Returns `false` if
    /// there was nothing; a directory is [`FsError::NotAFile`].
    pub fn remove_file(&self, name: &OsStr) -> Result<bool> {
        let name = single(name)?;
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(Errno::ISDIR) => Err(FsError::NotAFile {
                path: self.child(name),
            }),
            Err(e) => Err(io_err("remove", self.child(name))(e)),
        }
    }

    /// Removes `name` (one component) and, if it is a directory, everything in it, never
    /// following a link: a link is removed itself, whatever it points to. Returns `false` if
    /// there was nothing.
    ///
    /// Each level is opened beneath the one above without following links, so a directory
    /// swapped for a link mid-way is unlinked as a link, not entered. Below a fixed depth,
    /// subdirectories are first moved up to the top of the tree being removed (a rename never
    /// follows links), so arbitrarily deep trees need a bounded number of descriptors and stack
    /// frames: a bot cannot make its own workspace impossible to delete.
    pub fn remove_tree(&self, name: &OsStr) -> Result<bool> {
        let name = single(name)?;
        remove::tree(self.fd.as_fd(), name).map_err(io_err("remove", self.child(name)))
    }

    /// `fsync` of the directory, which makes a rename or unlink in it durable.
    pub fn sync(&self) -> Result<()> {
        rustix::fs::fsync(&self.fd).map_err(io_err("sync directory", &self.path))
    }

    /// The error for `rel` failing to open with `ELOOP`/`ENOTDIR`: names the first component
    /// that is a link or not a directory, as seen by a no-follow `stat` of each in turn.
    fn blame(&self, rel: &Path, errno: Errno) -> FsError {
        let parts = components_of(rel);
        let mut at: Option<OwnedFd> = None;
        let mut prefix = self.path.clone();
        for (i, part) in parts.iter().enumerate() {
            prefix.push(part);
            let dir = at.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            match kind_at(dir, part) {
                Ok(Some(Kind::Symlink)) => return FsError::Symlink { path: prefix },
                Ok(Some(Kind::Dir)) if i + 1 < parts.len() => {
                    match rustix::fs::openat(dir, *part, DIR_FLAGS, Mode::empty()) {
                        Ok(fd) => at = Some(fd),
                        Err(_) => break,
                    }
                }
                Ok(Some(Kind::Dir)) => break,
                Ok(Some(_)) => return FsError::NotADirectory { path: prefix },
                _ => break,
            }
        }
        // Changed again since: report what the kernel said.
        io_err("open", self.child(rel))(errno)
    }
}

/// The error for a root that failed to open with `ELOOP`/`ENOTDIR`.
fn blame_root(path: &Path, errno: Errno) -> FsError {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => FsError::Symlink {
            path: path.to_path_buf(),
        },
        Ok(m) if !m.is_dir() => FsError::NotADirectory {
            path: path.to_path_buf(),
        },
        _ => io_err("open directory", path)(errno),
    }
}

fn components_of(rel: &Path) -> Vec<&OsStr> {
    resolve::components(rel).unwrap_or_default()
}

/// The components of `rel`, or [`FsError::InvalidPath`].
fn checked(rel: &Path) -> Result<Vec<&OsStr>> {
    resolve::components(rel).ok_or_else(|| FsError::InvalidPath {
        path: rel.to_path_buf(),
    })
}

/// `name` if it is exactly one plain component.
fn single(name: &OsStr) -> Result<&OsStr> {
    match checked(Path::new(name))?.as_slice() {
        [one] if *one == name => Ok(name),
        _ => Err(FsError::InvalidPath {
            path: PathBuf::from(name),
        }),
    }
}

/// The kind of `name` in `dir`, not following it; `None` if it does not exist.
fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<Kind>, Errno> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(Kind::of(FileType::from_raw_mode(stat.st_mode)))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn set_owner(fd: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> Result<(), Errno> {
    match owner {
        Some((uid, gid)) => {
            rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
