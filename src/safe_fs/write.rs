//! Writing a file beside its name and renaming it over whatever is there.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::{
    Dir, FsError, NewDir, NewFile, Planted, RACE_RETRIES, Result, checked, io_err, kept_changing,
    set_owner, single,
};

/// Makes temp-file names unique within this process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Dir {
    /// Writes `contents` as the file `name` (one component) in this directory, atomically:
    /// a fresh temp file beside it, owner and mode set on its descriptor, `fsync`, `renameat`
    /// over the name, `fsync` of the directory. Whatever non-directory was at the name (a
    /// symlink, a fifo, an old file) is replaced, never opened; a directory there is handled by
    /// `new.planted`. On failure the temp file is removed and the old entry left in place.
    pub fn write_file(&self, name: &OsStr, contents: &[u8], new: &NewFile) -> Result<()> {
        let name = single(name)?;
        let target = self.child(name);
        let (file, tmp) = self.create_temp(name)?;
        let guard = RemoveTemp {
            dir: self.fd.as_fd(),
            name: Some(tmp.clone()),
        };
        let tmp_path = self.child(&tmp);
        set_owner(file.as_fd(), new.owner).map_err(io_err("change owner of", &tmp_path))?;
        rustix::fs::fchmod(&file, Mode::from_bits_truncate(new.mode))
            .map_err(io_err("set permissions of", &tmp_path))?;
        let mut file = File::from(file);
        file.write_all(contents).map_err(|source| FsError::Io {
            op: "write",
            path: tmp_path.clone(),
            source,
        })?;
        file.sync_all().map_err(|source| FsError::Io {
            op: "sync",
            path: tmp_path.clone(),
            source,
        })?;
        drop(file);

        let mut placed = false;
        for _ in 0..RACE_RETRIES {
            match rustix::fs::renameat(&self.fd, &tmp, &self.fd, name) {
                Ok(()) => {
                    placed = true;
                    break;
                }
                // A directory holds the name.
                Err(e @ (Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST)) => match new.planted {
                    Planted::Replace => {
                        self.remove_tree(name)?;
                    }
                    Planted::Refuse => return Err(io_err("rename into place", &target)(e)),
                },
                Err(e) => return Err(io_err("rename into place", &target)(e)),
            }
        }
        if !placed {
            return Err(kept_changing("rename into place", target));
        }
        guard.disarm();
        self.sync()
    }

    /// [`ensure_dirs`](Self::ensure_dirs) for the parents of `rel`, then
    /// [`write_file`](Self::write_file) there.
    pub fn write_path(
        &self,
        rel: &Path,
        contents: &[u8],
        dirs: &NewDir,
        file: &NewFile,
    ) -> Result<()> {
        let parts = checked(rel)?;
        let (name, parents) = parts.split_last().expect("checked paths are not empty");
        if parents.is_empty() {
            return self.write_file(name, contents, file);
        }
        let parent: PathBuf = parents.iter().collect();
        let dir = self.ensure_dirs(&parent, dirs)?;
        dir.write_file(name, contents, file)
    }

    /// A new, empty temp file for `name`, created `O_EXCL` so it is never an existing entry.
    fn create_temp(&self, name: &OsStr) -> Result<(OwnedFd, OsString)> {
        for _ in 0..RACE_RETRIES {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(
                ".tmp-{}-{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(&self.fd, &tmp, flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => return Ok((fd, tmp)),
                // Someone made an entry of that name first: take another.
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err("create", self.child(&tmp))(e)),
            }
        }
        Err(kept_changing("create a temp file in", self.path.clone()))
    }
}

/// Removes a temp file on every early return of [`Dir::write_file`].
struct RemoveTemp<'a> {
    dir: BorrowedFd<'a>,
    name: Option<OsString>,
}

impl RemoveTemp<'_> {
    fn disarm(mut self) {
        self.name = None;
    }
}

impl Drop for RemoveTemp<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            if let Err(e) = rustix::fs::unlinkat(self.dir, &name, AtFlags::empty()) {
                tracing::warn!(name = ?name, error = %e, "could not remove a temp file");
            }
        }
    }
}
