//! Recursive removal that never follows a link and needs a bounded number of descriptors.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, RenameFlags};
use rustix::io::Errno;

use super::resolve::{self, DIR_FLAGS};

/// Directories held open at once (and the recursion depth). Deeper subdirectories are moved
/// up to the top of the tree and removed from there.
pub(super) const MAX_HELD_DEPTH: usize = 32;

/// Passes over one directory before giving up: each pass removes or moves everything it sees,
/// so only a tree that keeps growing while it is removed (or one deeper than
/// `MAX_PASSES * MAX_HELD_DEPTH`) runs out.
const MAX_PASSES: usize = 100_000;

static MOVED: AtomicU64 = AtomicU64::new(0);

/// Removes `name` in `parent` and everything beneath it. `Ok(false)` if it did not exist.
pub(super) fn tree(parent: BorrowedFd<'_>, name: &OsStr) -> Result<bool, Errno> {
    for _ in 0..MAX_PASSES {
        match resolve::open(parent, Path::new(name), DIR_FLAGS) {
            Ok(top) => {
                clear(top.as_fd(), top.as_fd(), 0)?;
                match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
                    Ok(()) => return Ok(true),
                    // Refilled or replaced meanwhile: go again.
                    Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => continue,
                    Err(Errno::NOENT) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            Err(Errno::NOENT) => return Ok(false),
            // A link (to anything), file, fifo...: the entry itself goes.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                    Ok(()) => return Ok(true),
                    Err(Errno::NOENT) => return Ok(false),
                    // Became a directory meanwhile.
                    Err(Errno::ISDIR) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Errno::BUSY)
}

/// Empties `dir`, which lies `depth` levels below `top`, the directory being removed.
fn clear(dir: BorrowedFd<'_>, top: BorrowedFd<'_>, depth: usize) -> Result<(), Errno> {
    for _ in 0..MAX_PASSES {
        let mut stream = rustix::fs::Dir::read_from(dir)?;
        let mut seen = false;
        while let Some(entry) = stream.read() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            seen = true;
            let maybe_dir = matches!(entry.file_type(), FileType::Directory | FileType::Unknown);
            if !maybe_dir {
                unlink_entry(dir, name)?;
                continue;
            }
            if depth + 1 >= MAX_HELD_DEPTH {
                move_to_top(dir, name, top)?;
                continue;
            }
            match resolve::open(dir, Path::new(name), DIR_FLAGS) {
                Ok(sub) => {
                    clear(sub.as_fd(), top, depth + 1)?;
                    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                        // Refilled meanwhile: the next pass sees it again.
                        Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                }
                // Not a directory after all (or swapped for a link): the entry itself goes.
                Err(Errno::LOOP | Errno::NOTDIR) => unlink_entry(dir, name)?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
        }
        if !seen {
            return Ok(());
        }
    }
    Err(Errno::BUSY)
}

/// Unlinks a non-directory; one that turned into a directory is left for the next pass.
fn unlink_entry(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT | Errno::ISDIR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Moves the subdirectory `name` of `dir` to a fresh name in `top`, where a later pass over
/// `top` removes it.
fn move_to_top(dir: BorrowedFd<'_>, name: &OsStr, top: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        let mut fresh = OsString::from(".botmaker-rm-");
        fresh.push(format!(
            "{}-{}",
            std::process::id(),
            MOVED.fetch_add(1, Ordering::Relaxed)
        ));
        match rustix::fs::renameat_with(dir, name, top, &fresh, RenameFlags::NOREPLACE) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e),
        }
    }
}
