//! An archive file being written: a 0600 temp file beside its final name, renamed into place
//! only once it is whole (and, if asked, read back and verified), so the name never holds half
//! an archive and a failure leaves nothing behind.

use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::crypt::{self, Passphrase, Sink};
use super::manifest::{BackupKind, Manifest};
use super::{BackupError, reader};

/// An archive file not yet in place.
pub struct PendingFile {
    path: PathBuf,
    tmp: PathBuf,
    sink: Option<Sink<File>>,
}

impl PendingFile {
    /// Starts writing `path`, encrypted to `passphrase` when given.
    pub fn create(path: &Path, passphrase: Option<&Passphrase>) -> Result<Self, BackupError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".partial-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(BackupError::io("create", &tmp))?;
        let mut pending = Self {
            path: path.to_path_buf(),
            tmp,
            sink: None,
        };
        pending.sink = Some(Sink::new(file, passphrase)?);
        Ok(pending)
    }

    /// Where the archive's bytes go.
    pub fn sink(&mut self) -> &mut Sink<File> {
        self.sink.as_mut().expect("not yet committed")
    }

    /// Ends the archive, makes it durable and renames it into place. With `verify`, it is
    /// first read back whole (decrypted with the passphrase) and checked as an archive of that
    /// kind: its manifest is returned.
    pub fn commit(
        mut self,
        verify: Option<(BackupKind, Option<&Passphrase>)>,
    ) -> Result<Option<Manifest>, BackupError> {
        let file = self.sink.take().expect("not yet committed").finish()?;
        file.sync_all()
            .map_err(BackupError::io("sync", &self.tmp))?;
        drop(file);
        let manifest = match verify {
            Some((kind, passphrase)) => {
                let file = File::open(&self.tmp).map_err(BackupError::io("open", &self.tmp))?;
                let plain = crypt::open(BufReader::new(file), passphrase)?;
                Some(reader::verify(plain, kind)?)
            }
            None => None,
        };
        fs::rename(&self.tmp, &self.path)
            .map_err(BackupError::io("rename into place", &self.path))?;
        self.tmp = PathBuf::new();
        Ok(manifest)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
