//! Optional passphrase encryption of archives, in the `age` format (scrypt-derived key,
//! ChaCha20-Poly1305 in 64 KiB chunks): a wrong passphrase, an altered byte or a cut-off end is
//! an error, never wrong data. An encrypted archive is recognized by its header, so reading
//! needs no flag, only the passphrase.

use std::fmt;
use std::io::{self, Cursor, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;

use super::BackupError;

/// The first bytes of every age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
/// Shortest passphrase accepted for a new archive.
pub const MIN_PASSPHRASE_LEN: usize = 8;

/// A backup passphrase; `Debug` prints `***`.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Passphrase {
    /// `text`, if it is long enough to protect an archive.
    pub fn new(text: String) -> Result<Self, BackupError> {
        if text.chars().count() < MIN_PASSPHRASE_LEN {
            return Err(BackupError::Passphrase(format!(
                "the backup passphrase must be at least {MIN_PASSPHRASE_LEN} characters"
            )));
        }
        Ok(Self(SecretString::from(text)))
    }

    /// The passphrase in the file at `path` (one trailing newline dropped).
    pub fn from_file(path: &Path) -> Result<Self, BackupError> {
        let text = std::fs::read_to_string(path)
            .map_err(BackupError::io("read the passphrase file", path))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        Self::new(text.to_string())
    }
}

/// Where an archive is written: as is, or encrypted.
pub enum Sink<W: Write> {
    /// Unencrypted.
    Plain(W),
    /// Encrypted to a passphrase.
    Age(age::stream::StreamWriter<W>),
}

impl<W: Write> Sink<W> {
    /// Writes to `out`, encrypted when a passphrase is given.
    pub fn new(out: W, passphrase: Option<&Passphrase>) -> Result<Self, BackupError> {
        match passphrase {
            None => Ok(Self::Plain(out)),
            Some(p) => age::Encryptor::with_user_passphrase(p.0.clone())
                .wrap_output(out)
                .map(Self::Age)
                .map_err(BackupError::io("start encrypting", "backup archive")),
        }
    }

    /// Ends the stream (the last encrypted chunk is written here) and returns the output.
    pub fn finish(self) -> Result<W, BackupError> {
        match self {
            Self::Plain(w) => Ok(w),
            Self::Age(w) => w
                .finish()
                .map_err(BackupError::io("finish encrypting", "backup archive")),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Age(w) => w.flush(),
        }
    }
}

/// Whether the archive behind `input` is encrypted, and the input to read it from again
/// (the peeked bytes put back in front).
pub fn is_encrypted<R: Read>(mut input: R) -> Result<(bool, impl Read), BackupError> {
    let mut head = Vec::with_capacity(AGE_MAGIC.len());
    (&mut input)
        .take(AGE_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(BackupError::io("read", "backup archive"))?;
    let encrypted = head == AGE_MAGIC;
    Ok((encrypted, Cursor::new(head).chain(input)))
}

/// The plaintext of the archive behind `input`, decrypting it when it is encrypted (which
/// needs `passphrase`).
pub fn open<'a, R: Read + Send + 'a>(
    input: R,
    passphrase: Option<&Passphrase>,
) -> Result<Box<dyn Read + Send + 'a>, BackupError> {
    let (encrypted, input) = is_encrypted(input)?;
    if !encrypted {
        return Ok(Box::new(input));
    }
    let Some(p) = passphrase else {
        return Err(BackupError::Passphrase(
            "the archive is encrypted: give its passphrase (--passphrase-file, or \
             BOTMAKER_BACKUP_PASSPHRASE_FILE)"
                .into(),
        ));
    };
    let decryptor = age::Decryptor::new(input)
        .map_err(|e| BackupError::Corrupt(format!("its encryption header is damaged ({e})")))?;
    let identity = age::scrypt::Identity::new(p.0.clone());
    match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(reader) => Ok(Box::new(reader)),
        Err(age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed) => Err(
            BackupError::Passphrase("wrong passphrase for this archive".into()),
        ),
        Err(e) => Err(BackupError::Corrupt(format!(
            "it cannot be decrypted ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.into()).unwrap()
    }

    fn encrypt(data: &[u8], p: &Passphrase) -> Vec<u8> {
        let mut sink = Sink::new(Vec::new(), Some(p)).unwrap();
        sink.write_all(data).unwrap();
        sink.finish().unwrap()
    }

    #[test]
    fn encrypted_archives_round_trip_and_need_the_right_passphrase() {
        let p = pass("correct horse");
        let data = vec![7u8; 200_000];
        let sealed = encrypt(&data, &p);
        assert!(sealed.starts_with(AGE_MAGIC));
        let mut back = Vec::new();
        open(sealed.as_slice(), Some(&p))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        let err = open(sealed.as_slice(), None).err().unwrap();
        assert_eq!(err.code(), "BACKUP_PASSPHRASE");
        let err = open(sealed.as_slice(), Some(&pass("wrong horse")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");

        // An altered byte in the body fails the read, never yields other data.
        let mut bad = sealed.clone();
        let at = bad.len() - 100;
        bad[at] ^= 1;
        let mut out = Vec::new();
        let r = open(bad.as_slice(), Some(&p))
            .unwrap()
            .read_to_end(&mut out);
        assert!(r.is_err());
        // And so does a cut-off end.
        let mut out = Vec::new();
        let cut = &sealed[..sealed.len() - 10];
        assert!(open(cut, Some(&p)).unwrap().read_to_end(&mut out).is_err());
    }

    #[test]
    fn plain_archives_pass_through_and_short_passphrases_are_refused() {
        let mut back = Vec::new();
        open(&b"plain"[..], None)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"plain");
        assert!(Passphrase::new("short".into()).is_err());
        assert_eq!(format!("{:?}", pass("secret phrase")), "***");
    }
}
