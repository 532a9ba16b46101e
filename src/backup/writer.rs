//! Writing an archive: entries into a gzip-compressed tar, each one's size, mode and SHA-256
//! noted for the manifest that closes it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::BackupError;
use super::manifest::{EntryKind, EntrySum, MANIFEST, Manifest};

/// An archive being written to `W`.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    entries: BTreeMap<String, EntrySum>,
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode & 0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    h
}

fn stream_err(op: &'static str) -> impl FnOnce(io::Error) -> BackupError {
    BackupError::io(op, "backup archive")
}

impl<W: Write> ArchiveWriter<W> {
    /// An empty archive over `out`.
    pub fn new(out: W) -> Self {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
        tar.mode(tar::HeaderMode::Deterministic);
        Self {
            tar,
            entries: BTreeMap::new(),
        }
    }

    fn note(&mut self, path: &str, sum: EntrySum) -> Result<(), BackupError> {
        if self.entries.insert(path.to_string(), sum).is_some() {
            return Err(BackupError::Corrupt(format!("{path} archived twice")));
        }
        Ok(())
    }

    /// Adds the file `path` with `data`.
    pub fn add_bytes(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), BackupError> {
        self.add_reader(path, data, data.len() as u64, mode)
    }

    /// Adds the file `path` with exactly `size` bytes read from `reader`: a file that grew
    /// since its size was taken is cut there, one that shrank is padded with zeros (a bot may
    /// write its workspace while it is archived), so the archive itself is always whole.
    pub fn add_reader(
        &mut self,
        path: &str,
        reader: impl Read,
        size: u64,
        mode: u32,
    ) -> Result<(), BackupError> {
        let mut exact = Exact {
            inner: reader.take(size),
            remaining: size,
            hasher: Sha256::new(),
        };
        let mut h = header(tar::EntryType::Regular, size, mode);
        self.tar
            .append_data(&mut h, path, &mut exact)
            .map_err(stream_err("write"))?;
        let sha = hex::encode(exact.hasher.finalize());
        self.note(
            path,
            EntrySum {
                kind: EntryKind::File,
                mode: mode & 0o777,
                size,
                sha256: Some(sha),
            },
        )
    }

    /// Adds the directory `path`.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), BackupError> {
        let mut h = header(tar::EntryType::Directory, 0, mode);
        self.tar
            .append_data(&mut h, path, io::empty())
            .map_err(stream_err("write"))?;
        self.note(
            path,
            EntrySum {
                kind: EntryKind::Dir,
                mode: mode & 0o777,
                size: 0,
                sha256: None,
            },
        )
    }

    /// Writes `manifest` (with the entries added so far) as the last entry and ends the
    /// archive, returning the manifest and the output.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<(Manifest, W), BackupError> {
        manifest.entries = std::mem::take(&mut self.entries);
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        let mut h = header(tar::EntryType::Regular, json.len() as u64, 0o600);
        self.tar
            .append_data(&mut h, MANIFEST, json.as_slice())
            .map_err(stream_err("write"))?;
        let gz = self.tar.into_inner().map_err(stream_err("write"))?;
        let mut out = gz.finish().map_err(stream_err("write"))?;
        out.flush().map_err(stream_err("write"))?;
        Ok((manifest, out))
    }
}

/// Exactly `remaining` bytes of `inner` (zeros after it ends early), hashed on the way.
struct Exact<R> {
    inner: io::Take<R>,
    remaining: u64,
    hasher: Sha256,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.remaining -= n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_changes_size_while_read_is_archived_at_its_size() {
        for (data, size, want) in [
            (&b"abcdef"[..], 4, &b"abcd"[..]),
            (&b"ab"[..], 4, &b"ab\0\0"[..]),
            (&b""[..], 0, &b""[..]),
        ] {
            let mut e = Exact {
                inner: data.take(size),
                remaining: size,
                hasher: Sha256::new(),
            };
            let mut got = Vec::new();
            e.read_to_end(&mut got).unwrap();
            assert_eq!(got, want);
            assert_eq!(
                hex::encode(e.hasher.finalize()),
                hex::encode(Sha256::digest(want))
            );
        }
    }
}
