//! The on-disk secrets store: one directory per bot, one file per secret.
//!
//! This module owns everything under the secrets root and nothing outside it. Layout:
//!
//! ```text
//! <root>/                 0700, owned by botmaker
//!   <bot-id>/             0700, owned by botmaker or by the configured container user
//!     <SECRET_NAME>       0600, the raw secret value
//! ```
//!
//! Why it is built this way:
//!
//! - **Directory mount, so rotation is visible.** A bot's container gets its whole `<bot-id>/`
//!   directory bind-mounted read-only at `/run/secrets`. Mounting the directory (not single files)
//!   means a value replaced here shows up inside the running container without recreating it: a
//!   single-file bind mount would stay pinned to the old inode after the rename below.
//! - **Atomic writes.** [`SecretsStore::set`] writes a temp file in the *same* directory, fsyncs
//!   it, renames it over the target and fsyncs the directory. `rename(2)` within one file system
//!   is atomic, so a reader (the bot, through the mount) sees either the old or the new value,
//!   never half of one, and a crash leaves one of the two on disk.
//! - **Modes set explicitly.** Directories are `0700` and files `0600`, set with `fchmod` on the
//!   open descriptor after creation rather than trusting the process umask.
//!   [`SecretsStore::with_owner`] hands the bot directory and its files to the uid/gid the
//!   container runs as (for example 1000 for a non-root image); the root stays private to
//!   botmaker, which is fine because the Docker daemon, not the container, resolves the
//!   bind-mount source.
//! - **No path escapes the root.** Every path is built from a [`BotId`] and a [`SecretName`],
//!   whose alphabets contain neither `/` nor `.`, and every operation goes through
//!   [`crate::safe_fs`]: the root and the bot directory are opened without following links (a
//!   root, bot directory or secret that turns out to be a symlink is refused, never followed),
//!   and deletion never leaves the tree. Containers mount their directory read-only, so no bot
//!   can plant a link here; the same code as the bot-writable workspaces keeps it that way if
//!   anything else does.
//!
//! Secret values travel in [`SecretValue`], whose `Debug` and `Display` print `***`, and no error
//! or log line here ever contains one.
//!
//! The API is synchronous; async callers should wrap calls in
//! [`tokio::task::spawn_blocking`].

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::BotId;
use crate::safe_fs::{Dir, FsError, Kind, NewDir, NewFile, Planted};

/// Longest allowed secret name, in characters.
pub const MAX_SECRET_NAME_LEN: usize = 64;

/// Mode of the root and of every bot directory.
const DIR_MODE: u32 = 0o700;
/// Mode of every secret file (and of temp files while they are written).
const FILE_MODE: u32 = 0o600;

// ---------------------------------------------------------------------------------------------
// SecretName
// ---------------------------------------------------------------------------------------------

/// A validated secret name: `^[A-Z][A-Z0-9_]{0,63}$`, the usual shape of an environment
/// variable name.
///
/// It is also the secret's file name, so it can never contain `/`, `.` or NUL, and can never
/// collide with the dot-prefixed temp files the store writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

/// What [`SecretName::new`] accepts, as a regular expression (for the OpenAPI document).
pub const SECRET_NAME_PATTERN: &str = "^[A-Z][A-Z0-9_]*$";

impl utoipa::PartialSchema for SecretName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_SECRET_NAME_LEN))
            .pattern(Some(SECRET_NAME_PATTERN))
            .description(Some(
                "Upper case letters, digits and '_', starting with a letter; also the name of \
                 the secret's file under /run/secrets",
            ))
            .into()
    }
}

impl utoipa::ToSchema for SecretName {}

/// Why a string is not a valid [`SecretName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretNameError {
    /// The name is the empty string.
    #[error("secret name must not be empty")]
    Empty,
    /// More than [`MAX_SECRET_NAME_LEN`] characters.
    #[error("secret name must be at most {MAX_SECRET_NAME_LEN} characters (got {0})")]
    TooLong(usize),
    /// A character outside `A-Z0-9_`. The code point is shown because look-alikes (Cyrillic
    /// 'А', fullwidth 'Ａ') print just like the ASCII letter.
    #[error(
        "secret name may only contain uppercase letters A-Z, digits and '_' (found {0:?}, U+{code:04X})",
        code = u32::from(*.0)
    )]
    InvalidChar(char),
    /// Starts with a digit or `_`.
    #[error("secret name must start with an uppercase letter A-Z (found {0:?})")]
    InvalidStart(char),
}

impl SecretName {
    /// Validates `s` as a secret name.
    pub fn new(s: impl Into<String>) -> Result<Self, SecretNameError> {
        let s = s.into();
        let first = s.chars().next().ok_or(SecretNameError::Empty)?;
        // Count chars, not bytes, so the message reports what the user typed.
        let len = s.chars().count();
        if len > MAX_SECRET_NAME_LEN {
            return Err(SecretNameError::TooLong(len));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(SecretNameError::InvalidChar(c));
        }
        if !first.is_ascii_uppercase() {
            return Err(SecretNameError::InvalidStart(first));
        }
        Ok(Self(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SecretName {
    type Err = SecretNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for SecretName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SecretName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretName::new(s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// SecretValue
// ---------------------------------------------------------------------------------------------

/// The bytes of a secret, redacted everywhere except through [`SecretValue::expose`].
///
/// `Debug` and `Display` print `***`, so a value inside any struct that is logged or formatted
/// stays hidden. It deliberately implements neither `Serialize` nor `PartialEq`: sending a value
/// anywhere, or comparing it, has to go through `expose`, where it is easy to spot in review.
///
/// On drop the buffer is overwritten with zeros. This is best effort: copies made before (for
/// example by the caller, or by a `Vec` reallocation) are not reached.
#[derive(Clone)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps `bytes` without copying when given a `Vec<u8>` or `String`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes of the secret. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, or `None` if it is not valid UTF-8. Never log it.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the optimiser from dropping the writes to a buffer about to be freed.
        std::hint::black_box(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A failed secrets-store operation. Messages name the path and the operation, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A file-system call failed (permissions, disk full, ...).
    #[error("secrets store: could not {op} {}: {source}", path.display())]
    Io {
        /// What was being attempted, e.g. `"create directory"`.
        op: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A bot directory or secret file is a symlink; following it could leave the root.
    #[error("secrets store: refusing to follow symlink {}", path.display())]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// Something other than a directory sits where a bot directory belongs.
    #[error("secrets store: {} exists but is not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// Something other than a regular file sits where a secret belongs.
    #[error("secrets store: {} exists but is not a regular file", path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
}

impl SecretsError {
    /// A stable machine-readable code: `SECRETS_IO` for file-system failures, or
    /// `SECRETS_UNSAFE_PATH` when the store refused to touch a path that is not what it should be.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "SECRETS_IO",
            Self::Symlink { .. } | Self::NotADirectory { .. } | Self::NotAFile { .. } => {
                "SECRETS_UNSAFE_PATH"
            }
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = SecretsError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// SecretsStore
// ---------------------------------------------------------------------------------------------

/// Per-bot secret files under one root directory.
///
/// Cheap to clone; holds no open files. All methods block on the file system.
#[derive(Clone, Debug)]
pub struct SecretsStore {
    root: PathBuf,
    owner: Option<(u32, u32)>,
}

impl SecretsStore {
    /// A store rooted at `root`. Nothing is created until the first write.
    ///
    /// Without [`with_owner`](Self::with_owner), everything stays owned by the botmaker process
    /// (normally root) with modes 0700/0600.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            owner: None,
        }
    }

    /// Makes bot directories and secret files owned by `uid:gid`, so a container that runs as a
    /// non-root user (for example uid 1000) can read its mounted secrets. The root itself stays
    /// owned by botmaker.
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding `bot`'s secrets (`<root>/<bot-id>`), the bind-mount source for the
    /// bot's container. It may not exist yet; see [`ensure_bot_dir`](Self::ensure_bot_dir).
    pub fn bot_dir(&self, bot: &BotId) -> PathBuf {
        self.root.join(bot.as_str())
    }

    /// Creates the root and `bot`'s directory if needed, with mode 0700 and the configured owner,
    /// and returns the bot directory.
    ///
    /// An existing bot directory has its mode and owner re-applied. Fails with
    /// [`SecretsError::Symlink`] or [`SecretsError::NotADirectory`] if the root or the bot path
    /// is a symlink or not a directory.
    pub fn ensure_bot_dir(&self, bot: &BotId) -> Result<PathBuf> {
        Ok(self.open_bot_dir(bot)?.path().to_path_buf())
    }

    /// The bot directory, opened (and made if missing) beneath the root, never through a link.
    fn open_bot_dir(&self, bot: &BotId) -> Result<Dir> {
        let root = Dir::create_root(&self.root, DIR_MODE)?;
        let dir = root.ensure_dir(
            OsStr::new(bot.as_str()),
            &NewDir {
                mode: DIR_MODE,
                owner: self.owner,
                planted: Planted::Refuse,
            },
        )?;
        dir.set_owner(self.owner)?;
        dir.set_mode(DIR_MODE)?;
        Ok(dir)
    }

    /// The bot directory if it exists, refusing symlinks and non-directories (at the root too).
    fn existing_bot_dir(&self, bot: &BotId) -> Result<Option<Dir>> {
        let Some(root) = Dir::open_root(&self.root)? else {
            return Ok(None);
        };
        Ok(root.open_dir(Path::new(bot.as_str()))?)
    }

    /// Atomically writes `value` as `bot`'s secret `name`, creating the bot directory if needed.
    ///
    /// The value goes to a fresh 0600 temp file in the bot directory, is fsynced, renamed over
    /// the target, and the directory is fsynced. Readers (including the container, through its
    /// directory mount) see the old value or the new one, never a mix. On failure the temp file
    /// is removed and the previous value, if any, is left in place. A symlink at the secret's
    /// name is replaced by the rename, never followed.
    ///
    /// The file is owned like its bot directory (unless the store has an owner of its own), so
    /// a secret set or rotated later stays readable by the user [`reown`](Self::reown) gave
    /// the directory to.
    pub fn set(&self, bot: &BotId, name: &SecretName, value: &SecretValue) -> Result<()> {
        let dir = self.open_bot_dir(bot)?;
        let owner = match self.owner {
            Some(o) => o,
            None => dir.owner()?,
        };
        dir.write_file(
            OsStr::new(name.as_str()),
            value.expose(),
            &NewFile {
                mode: FILE_MODE,
                owner: Some(owner),
                planted: Planted::Refuse,
            },
        )?;
        Ok(())
    }

    /// Hands `bot`'s directory and every secret in it to `owner` (`None`: botmaker's own
    /// user), keeping modes 0700/0600: only the user the bot's container runs as can read
    /// them. Files whose owner changes are rewritten atomically with the new owner, never
    /// `chown`ed through a path. Nothing is rewritten when the directory already has the owner.
    pub fn reown(&self, bot: &BotId, owner: Option<(u32, u32)>) -> Result<()> {
        let dir = self.open_bot_dir(bot)?;
        // botmaker's own user is the root's owner: botmaker made it.
        let owner = match owner {
            Some(o) => o,
            None => Dir::create_root(&self.root, DIR_MODE)?.owner()?,
        };
        if dir.owner()? == owner {
            return Ok(());
        }
        let new = NewFile {
            mode: FILE_MODE,
            owner: Some(owner),
            planted: Planted::Refuse,
        };
        for name in self.list(bot)? {
            let file = OsStr::new(name.as_str());
            if let Some(value) = dir.read_file(Path::new(name.as_str()))?.map(SecretValue) {
                dir.write_file(file, value.expose(), &new)?;
            }
        }
        // The directory last: an interrupted reown is redone the next time.
        dir.set_owner(Some(owner))?;
        dir.set_mode(DIR_MODE)?;
        Ok(())
    }

    /// Reads `bot`'s secret `name`, or `None` if it (or the bot directory) does not exist.
    ///
    /// Refuses a secret or bot directory that is a symlink or of the wrong file type.
    pub fn get(&self, bot: &BotId, name: &SecretName) -> Result<Option<SecretValue>> {
        let Some(dir) = self.existing_bot_dir(bot)? else {
            return Ok(None);
        };
        Ok(dir.read_file(Path::new(name.as_str()))?.map(SecretValue))
    }

    /// The names of `bot`'s secrets, sorted; empty if the bot directory does not exist.
    ///
    /// Only regular files whose name is a valid [`SecretName`] count, so temp files left by a
    /// crash and anything else dropped into the directory are ignored.
    pub fn list(&self, bot: &BotId) -> Result<Vec<SecretName>> {
        let Some(dir) = self.existing_bot_dir(bot)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<SecretName> = dir
            .entries()?
            .into_iter()
            .filter(|e| e.kind == Kind::File)
            .filter_map(|e| e.name.to_str().and_then(|s| SecretName::new(s).ok()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes `bot`'s secret `name`. Returns `false` if it did not exist.
    pub fn delete(&self, bot: &BotId, name: &SecretName) -> Result<bool> {
        let Some(dir) = self.existing_bot_dir(bot)? else {
            return Ok(false);
        };
        if !dir.remove_file(OsStr::new(name.as_str()))? {
            return Ok(false);
        }
        dir.sync()?;
        Ok(true)
    }

    /// Removes `bot`'s directory and every secret in it. Returns `false` if it did not exist.
    ///
    /// A bot path that is a symlink is refused, and nothing inside is followed, so this never
    /// deletes anything outside the root.
    pub fn delete_all(&self, bot: &BotId) -> Result<bool> {
        if self.existing_bot_dir(bot)?.is_none() {
            return Ok(false);
        }
        let Some(root) = Dir::open_root(&self.root)? else {
            return Ok(false);
        };
        Ok(root.remove_tree(OsStr::new(bot.as_str()))?)
    }

    /// The bots that have a directory under the root, sorted; empty if the root does not exist.
    ///
    /// Entries that are not directories or whose name is not a valid [`BotId`] are skipped. Meant
    /// for finding secrets of bots that no longer exist.
    pub fn list_bot_dirs(&self) -> Result<Vec<BotId>> {
        let Some(root) = Dir::open_root(&self.root)? else {
            return Ok(Vec::new());
        };
        let mut bots: Vec<BotId> = root
            .entries()?
            .into_iter()
            .filter(|e| e.kind == Kind::Dir)
            .filter_map(|e| e.name.to_str().and_then(|s| BotId::new(s).ok()))
            .collect();
        bots.sort();
        Ok(bots)
    }
}

impl From<FsError> for SecretsError {
    fn from(e: FsError) -> Self {
        match e {
            FsError::Symlink { path } => Self::Symlink { path },
            FsError::NotADirectory { path } => Self::NotADirectory { path },
            FsError::NotAFile { path } => Self::NotAFile { path },
            FsError::Io { op, path, source } => Self::Io { op, path, source },
            // Bot ids and secret names are single plain components; this is a bug if it shows.
            other => Self::Io {
                op: "resolve",
                path: PathBuf::new(),
                source: io::Error::other(other.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tempfile::TempDir;

    fn bot(s: &str) -> BotId {
        BotId::new(s).unwrap()
    }

    fn name(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    /// A store rooted at a not-yet-existing `secrets` directory inside a fresh temp dir.
    fn store() -> (TempDir, SecretsStore) {
        let tmp = TempDir::new().unwrap();
        let store = SecretsStore::new(tmp.path().join("secrets"));
        (tmp, store)
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn secret_names_accept_env_style() {
        let longest = format!("A{}", "B".repeat(63));
        for ok in ["A", "API_KEY", "X1", "A_", "TELEGRAM_BOT_TOKEN", &longest] {
            assert_eq!(SecretName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(longest.len(), MAX_SECRET_NAME_LEN);
    }

    #[test]
    fn secret_names_reject_everything_else() {
        use SecretNameError::*;
        assert_eq!(SecretName::new(""), Err(Empty));
        assert_eq!(SecretName::new("A".repeat(65)), Err(TooLong(65)));
        assert_eq!(SecretName::new(".."), Err(InvalidChar('.')));
        assert_eq!(SecretName::new("."), Err(InvalidChar('.')));
        assert_eq!(SecretName::new("A/B"), Err(InvalidChar('/')));
        assert_eq!(SecretName::new("../ETC"), Err(InvalidChar('.')));
        assert_eq!(SecretName::new("A\0B"), Err(InvalidChar('\0')));
        assert_eq!(SecretName::new("api_key"), Err(InvalidChar('a')));
        assert_eq!(SecretName::new("API-KEY"), Err(InvalidChar('-')));
        assert_eq!(SecretName::new("A B"), Err(InvalidChar(' ')));
        assert_eq!(SecretName::new("1KEY"), Err(InvalidStart('1')));
        assert_eq!(SecretName::new("_KEY"), Err(InvalidStart('_')));
        // Look-alikes: Cyrillic 'А' (U+0410) and fullwidth 'Ａ' (U+FF21).
        assert_eq!(SecretName::new("\u{410}PI"), Err(InvalidChar('\u{410}')));
        assert_eq!(SecretName::new("KEY\u{FF21}"), Err(InvalidChar('\u{FF21}')));
    }

    #[test]
    fn secret_name_errors_are_clear() {
        let msg = SecretName::new("\u{410}").unwrap_err().to_string();
        assert!(msg.contains("U+0410"), "{msg}");
        let msg = SecretName::new("9").unwrap_err().to_string();
        assert!(msg.contains("must start with an uppercase letter"), "{msg}");
        let msg = SecretName::new("A".repeat(65)).unwrap_err().to_string();
        assert!(msg.contains("64") && msg.contains("65"), "{msg}");
    }

    #[test]
    fn secret_name_parses_and_round_trips_through_serde() {
        let n: SecretName = "API_KEY".parse().unwrap();
        assert_eq!(n.to_string(), "API_KEY");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"API_KEY\"");
        assert_eq!(
            serde_json::from_str::<SecretName>("\"API_KEY\"").unwrap(),
            n
        );
        assert!(serde_json::from_str::<SecretName>("\"../KEY\"").is_err());
        assert!(serde_json::from_str::<SecretName>("\"key\"").is_err());
    }

    #[test]
    fn secret_value_is_redacted() {
        let v = SecretValue::from("hunter2");
        assert_eq!(format!("{v:?}"), "***");
        assert_eq!(format!("{v}"), "***");
        assert_eq!(v.expose(), b"hunter2");
        assert_eq!(v.expose_str(), Some("hunter2"));

        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            name: SecretName,
            value: SecretValue,
        }
        let h = Holder {
            name: name("PASSWORD"),
            value: SecretValue::from(String::from("hunter2")),
        };
        let dbg = format!("{h:?} {h:#?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");

        assert_eq!(SecretValue::from(vec![0xff, 0]).expose_str(), None);
    }

    #[test]
    fn ensure_bot_dir_creates_private_dirs() {
        let (_tmp, store) = store();
        let dir = store.ensure_bot_dir(&bot("alpha")).unwrap();
        assert_eq!(dir, store.root().join("alpha"));
        assert_eq!(dir, store.bot_dir(&bot("alpha")));
        assert_eq!(mode(store.root()), 0o700);
        assert_eq!(mode(&dir), 0o700);

        // A loosened directory is tightened again.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        store.ensure_bot_dir(&bot("alpha")).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn set_get_overwrite_with_private_file() {
        let (_tmp, store) = store();
        let (b, n) = (bot("alpha"), name("API_KEY"));
        assert!(store.get(&b, &n).unwrap().is_none());

        store.set(&b, &n, &SecretValue::from("one")).unwrap();
        assert_eq!(store.get(&b, &n).unwrap().unwrap().expose(), b"one");
        let path = store.bot_dir(&b).join("API_KEY");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&store.bot_dir(&b)), 0o700);

        store.set(&b, &n, &SecretValue::from("two")).unwrap();
        assert_eq!(store.get(&b, &n).unwrap().unwrap().expose(), b"two");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);

        // Binary and empty values survive unchanged.
        store
            .set(&b, &n, &SecretValue::new(vec![0, 255, 10]))
            .unwrap();
        assert_eq!(store.get(&b, &n).unwrap().unwrap().expose(), [0, 255, 10]);
        store.set(&b, &n, &SecretValue::from("")).unwrap();
        assert_eq!(store.get(&b, &n).unwrap().unwrap().expose(), b"");

        // Another bot's secrets are separate.
        assert!(store.get(&bot("beta"), &n).unwrap().is_none());
    }

    #[test]
    fn set_leaves_no_temp_files() {
        let (_tmp, store) = store();
        let b = bot("alpha");
        for i in 0..20 {
            store
                .set(&b, &name("TOKEN"), &SecretValue::from(format!("v{i}")))
                .unwrap();
        }
        store
            .set(&b, &name("OTHER"), &SecretValue::from("x"))
            .unwrap();
        assert_eq!(file_names(&store.bot_dir(&b)), ["OTHER", "TOKEN"]);
    }

    #[test]
    fn failed_set_removes_its_temp_file() {
        let (_tmp, store) = store();
        let b = bot("alpha");
        let dir = store.ensure_bot_dir(&b).unwrap();
        // A non-empty directory where the secret should go makes the rename fail.
        fs::create_dir(dir.join("TOKEN")).unwrap();
        fs::write(dir.join("TOKEN").join("f"), "").unwrap();

        let err = store
            .set(&b, &name("TOKEN"), &SecretValue::from("s3cr3t-value"))
            .unwrap_err();
        assert_eq!(err.code(), "SECRETS_IO");
        let msg = err.to_string();
        assert!(msg.contains("rename") && msg.contains("TOKEN"), "{msg}");
        assert!(!msg.contains("s3cr3t-value"), "{msg}");
        assert_eq!(file_names(&dir), ["TOKEN"]);
    }

    #[test]
    fn list_is_sorted_and_skips_junk() {
        let (_tmp, store) = store();
        let b = bot("alpha");
        assert!(store.list(&b).unwrap().is_empty(), "no bot dir yet");

        for n in ["ZETA", "ALPHA", "MIDDLE_1"] {
            store.set(&b, &name(n), &SecretValue::from("v")).unwrap();
        }
        let dir = store.bot_dir(&b);
        fs::write(dir.join(".ALPHA.tmp-1-2"), "half").unwrap();
        fs::write(dir.join("lowercase"), "x").unwrap();
        fs::write(dir.join("README.md"), "x").unwrap();
        fs::create_dir(dir.join("SUBDIR")).unwrap();
        std::os::unix::fs::symlink(dir.join("ZETA"), dir.join("LINK")).unwrap();

        let names: Vec<String> = store
            .list(&b)
            .unwrap()
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["ALPHA", "MIDDLE_1", "ZETA"]);
    }

    #[test]
    fn delete_and_delete_all() {
        let (_tmp, store) = store();
        let b = bot("alpha");
        assert!(!store.delete(&b, &name("A")).unwrap(), "no bot dir");
        assert!(!store.delete_all(&b).unwrap(), "no bot dir");

        store.set(&b, &name("A"), &SecretValue::from("1")).unwrap();
        store.set(&b, &name("B"), &SecretValue::from("2")).unwrap();
        assert!(store.delete(&b, &name("A")).unwrap());
        assert!(!store.delete(&b, &name("A")).unwrap());
        assert!(store.get(&b, &name("A")).unwrap().is_none());
        assert_eq!(store.list(&b).unwrap(), [name("B")]);

        store
            .set(&bot("beta"), &name("A"), &SecretValue::from("3"))
            .unwrap();
        assert!(store.delete_all(&b).unwrap());
        assert!(!store.bot_dir(&b).exists());
        assert!(!store.delete_all(&b).unwrap());
        assert!(store.list(&b).unwrap().is_empty());
        assert_eq!(
            store
                .get(&bot("beta"), &name("A"))
                .unwrap()
                .unwrap()
                .expose(),
            b"3"
        );
    }

    #[test]
    fn symlinked_bot_dir_is_refused() {
        let (tmp, store) = store();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("KEEP"), "precious").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();

        let b = bot("evil");
        store.ensure_bot_dir(&bot("other")).unwrap();
        std::os::unix::fs::symlink(&outside, store.bot_dir(&b)).unwrap();

        let is_symlink = |e: SecretsError| {
            assert_eq!(e.code(), "SECRETS_UNSAFE_PATH");
            matches!(e, SecretsError::Symlink { .. })
        };
        assert!(is_symlink(store.ensure_bot_dir(&b).unwrap_err()));
        assert!(is_symlink(
            store
                .set(&b, &name("X"), &SecretValue::from("v"))
                .unwrap_err()
        ));
        assert!(is_symlink(store.get(&b, &name("KEEP")).unwrap_err()));
        assert!(is_symlink(store.list(&b).unwrap_err()));
        assert!(is_symlink(store.delete(&b, &name("KEEP")).unwrap_err()));
        assert!(is_symlink(store.delete_all(&b).unwrap_err()));

        // Nothing outside the root was touched.
        assert_eq!(file_names(&outside), ["KEEP"]);
        assert_eq!(mode(&outside), 0o755);
        assert_eq!(store.list_bot_dirs().unwrap(), [bot("other")]);
    }

    #[test]
    fn symlinked_root_is_refused() {
        let (tmp, _) = store();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("alpha")).unwrap();
        fs::write(outside.join("alpha/TOKEN"), "not yours").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        let root = tmp.path().join("secrets");
        std::os::unix::fs::symlink(&outside, &root).unwrap();
        let store = SecretsStore::new(&root);
        let b = bot("alpha");

        let is_symlink = |e: SecretsError| matches!(e, SecretsError::Symlink { .. });
        assert!(is_symlink(store.ensure_bot_dir(&b).unwrap_err()));
        assert!(is_symlink(
            store
                .set(&b, &name("TOKEN"), &SecretValue::from("v"))
                .unwrap_err()
        ));
        assert!(is_symlink(store.get(&b, &name("TOKEN")).unwrap_err()));
        assert!(is_symlink(store.delete_all(&b).unwrap_err()));
        assert!(is_symlink(store.list_bot_dirs().unwrap_err()));
        assert_eq!(fs::read(outside.join("alpha/TOKEN")).unwrap(), b"not yours");
        assert_eq!(mode(&outside), 0o755);
    }

    #[test]
    fn bot_path_that_is_a_file_is_refused() {
        let (_tmp, store) = store();
        store.ensure_bot_dir(&bot("other")).unwrap();
        fs::write(store.bot_dir(&bot("file")), "x").unwrap();
        let err = store.ensure_bot_dir(&bot("file")).unwrap_err();
        assert!(matches!(err, SecretsError::NotADirectory { .. }), "{err}");
        assert_eq!(err.code(), "SECRETS_UNSAFE_PATH");
        assert!(store.delete_all(&bot("file")).is_err());
        assert!(store.bot_dir(&bot("file")).is_file());
    }

    #[test]
    fn symlinked_secret_is_not_read() {
        let (tmp, store) = store();
        let b = bot("alpha");
        let outside = tmp.path().join("host-file");
        fs::write(&outside, "not yours").unwrap();
        let dir = store.ensure_bot_dir(&b).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("TOKEN")).unwrap();
        fs::create_dir(dir.join("SUB")).unwrap();

        let err = store.get(&b, &name("TOKEN")).unwrap_err();
        assert!(matches!(err, SecretsError::Symlink { .. }), "{err}");
        let err = store.get(&b, &name("SUB")).unwrap_err();
        assert!(matches!(err, SecretsError::NotAFile { .. }), "{err}");

        // Overwriting replaces the link itself, not its target.
        store
            .set(&b, &name("TOKEN"), &SecretValue::from("mine"))
            .unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"not yours");
        assert_eq!(
            store.get(&b, &name("TOKEN")).unwrap().unwrap().expose(),
            b"mine"
        );
    }

    #[test]
    fn list_bot_dirs_finds_valid_bot_directories() {
        let (tmp, store) = store();
        assert!(store.list_bot_dirs().unwrap().is_empty(), "no root yet");

        store
            .set(&bot("zeta"), &name("A"), &SecretValue::from("1"))
            .unwrap();
        store.ensure_bot_dir(&bot("alpha")).unwrap();
        let root = store.root();
        fs::create_dir(root.join("Not_A_Bot")).unwrap();
        fs::create_dir(root.join(".hidden")).unwrap();
        fs::write(root.join("file-bot"), "x").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("link-bot")).unwrap();

        assert_eq!(store.list_bot_dirs().unwrap(), [bot("alpha"), bot("zeta")]);
    }

    #[test]
    fn with_owner_sets_ownership() {
        let (tmp, store) = store();
        let probe = tmp.path().join("probe");
        fs::write(&probe, "").unwrap();
        let meta = fs::metadata(&probe).unwrap();
        let (uid, gid) = (meta.uid(), meta.gid());

        let store = store.with_owner(uid, gid);
        let b = bot("alpha");
        store
            .set(&b, &name("TOKEN"), &SecretValue::from("v"))
            .unwrap();
        for path in [store.bot_dir(&b), store.bot_dir(&b).join("TOKEN")] {
            let meta = fs::symlink_metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", path.display());
        }
        assert_eq!(mode(&store.bot_dir(&b)), 0o700);
        assert_eq!(mode(&store.bot_dir(&b).join("TOKEN")), 0o600);
        assert_eq!(
            store.get(&b, &name("TOKEN")).unwrap().unwrap().expose(),
            b"v"
        );
    }

    #[test]
    fn io_errors_name_path_and_operation() {
        let err = SecretsError::Io {
            op: "read",
            path: "/x/bot/TOKEN".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(err.code(), "SECRETS_IO");
        let msg = err.to_string();
        assert!(
            msg.contains("read") && msg.contains("/x/bot/TOKEN"),
            "{msg}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn concurrent_reader_never_sees_a_torn_value() {
        let (_tmp, store) = store();
        let b = bot("alpha");
        let n = name("TOKEN");
        // Large values of different lengths and fills, so a torn or partial read is detectable.
        let values: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..8u8)
                .map(|i| vec![b'a' + i; 64 * 1024 + usize::from(i) * 4099])
                .collect(),
        );
        store
            .set(&b, &n, &SecretValue::new(values[0].clone()))
            .unwrap();
        let path = store.bot_dir(&b).join(n.as_str());

        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let reader = {
            let (values, done, reads) =
                (Arc::clone(&values), Arc::clone(&done), Arc::clone(&reads));
            let (store, b, n, path) = (store.clone(), b.clone(), n.clone(), path.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    // Read the way the container does (plain open through the mount) and through
                    // the store.
                    let raw = fs::read(&path).unwrap();
                    assert!(values.contains(&raw), "torn read of {} bytes", raw.len());
                    let got = store.get(&b, &n).unwrap().unwrap();
                    assert!(values.iter().any(|v| v.as_slice() == got.expose()));
                    reads.fetch_add(1, Ordering::Release);
                }
            })
        };

        // Start rotating only once the reader is running, so the two really overlap.
        while reads.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        for round in 0..200 {
            let v = &values[round % values.len()];
            store.set(&b, &n, &SecretValue::new(v.clone())).unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().expect("reader saw a torn value");
        assert!(reads.load(Ordering::Acquire) > 1);
        assert_eq!(file_names(&store.bot_dir(&b)), ["TOKEN"]);
    }
}
