//! Opening a relative path beneath a directory descriptor without following a single link:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it (Linux 5.6+), a
//! component-by-component walk with `O_NOFOLLOW | O_DIRECTORY` where it does not.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Flags for opening a directory to work in: readable (for `getdents`, `fchmod`, `fchown`,
/// `fsync`; an `O_PATH` descriptor allows none of those), never a link.
pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Set once `openat2` answered `ENOSYS`: an old kernel, or a seccomp filter that hides it.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// How many times an `openat2` that reports a concurrent rename (`EAGAIN`) is retried before
/// the walk takes over.
const EAGAIN_RETRIES: usize = 8;

/// The components of `rel` if it is a plain relative path: no root, no `.`, no `..`.
pub(super) fn components(rel: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(name),
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Opens `rel` (already checked by [`components`]) beneath `dir` with `flags | O_NOFOLLOW`.
///
/// A symlink anywhere on the way fails with `ELOOP` (or `ENOTDIR` where a directory was asked
/// for), a non-directory on the way with `ENOTDIR`.
pub(super) fn open(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    open_with(dir, rel, flags, !OPENAT2_MISSING.load(Ordering::Relaxed))
}

/// [`open`], choosing the method: `openat2` first when `try_openat2`, else only the walk.
pub(super) fn open_with(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    try_openat2: bool,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if try_openat2 {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        for _ in 0..EAGAIN_RETRIES {
            match rustix::fs::openat2(dir, rel, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                    break;
                }
                // Some seccomp profiles answer EPERM for syscalls they do not know; the walk
                // gives the real answer.
                Err(Errno::PERM) => break,
                other => return other,
            }
        }
    }
    walk(dir, rel, flags)
}

/// The fallback: every intermediate component opened as a directory with `O_NOFOLLOW`, the
/// last with `flags` (which carry `O_NOFOLLOW`). Each step names a single entry of a directory
/// already open, so nothing can be redirected between steps.
fn walk(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let parts = components(rel).ok_or(Errno::INVAL)?;
    let (last, parents) = parts.split_last().expect("components is never empty");
    let mut held: Option<OwnedFd> = None;
    for part in parents {
        let at = held.as_ref().map_or(dir, |fd| fd.as_fd());
        held = Some(rustix::fs::openat(at, *part, DIR_FLAGS, Mode::empty())?);
    }
    let at = held.as_ref().map_or(dir, |fd| fd.as_fd());
    rustix::fs::openat(at, *last, flags, Mode::empty())
}
