//! Reading a file beneath a directory as a stream, for files too large to hold in memory (a
//! bot's workspace in a backup).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;

use super::{Dir, FsError, Kind, Result, checked, io_err, resolve};

/// A regular file opened for reading by [`Dir::open_file`].
#[derive(Debug)]
pub struct OpenFile {
    /// The open file.
    pub file: File,
    /// Its size when it was opened (a bot may still be writing it).
    pub size: u64,
    /// Its permission bits (`0o777` part).
    pub mode: u32,
}

impl Dir {
    /// Opens the regular file `rel` beneath this directory for reading, with its size and
    /// permission bits at the time of opening, or `None` if it does not exist. Like [`Dir::read_file`]: a symlink on
    /// the way is [`FsError::Symlink`], anything but a regular file [`FsError::NotAFile`]
    /// (checked with `fstat` on the descriptor, so a fifo cannot block the caller).
    pub fn open_file(&self, rel: &Path) -> Result<Option<OpenFile>> {
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
        Ok(Some(OpenFile {
            file: File::from(fd),
            size: stat.st_size.max(0) as u64,
            mode: stat.st_mode & 0o777,
        }))
    }

    /// The permission bits (`0o777` part) of this directory.
    pub fn mode(&self) -> Result<u32> {
        let stat = rustix::fs::fstat(&self.fd).map_err(io_err("inspect", &self.path))?;
        Ok(stat.st_mode & 0o777)
    }
}
