//! The manifest: what an archive holds and the checksum of every entry, written last.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `format` of every botmaker archive.
pub const FORMAT: &str = "botmaker-backup";
/// The archive layout this botmaker writes and reads.
pub const VERSION: u32 = 1;
/// Name of the manifest entry.
pub const MANIFEST: &str = "manifest.json";
/// Name of the registry snapshot in a full backup.
pub const REGISTRY: &str = "registry.db";
/// Name of the bot's record in a single-bot backup.
pub const BOT_RECORD: &str = "bot.json";
/// Directory of the LLM providers' key files in a full backup, as in the data directory.
pub const LLM_PROVIDERS: &str = "llm-providers";
/// Directory of the notification channels' secret files in a full backup, as in the data
/// directory.
pub const NOTIFICATION_SECRETS: &str = "notification-secrets";

/// What an archive is a backup of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// A whole botmaker: registry, every bot's secrets and workspace (`botmaker restore`).
    Full,
    /// One bot, to move it to another botmaker (`POST /api/bots/import`).
    Bot,
}

/// One bot in the archive, for people reading the manifest and for restoring file owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotEntry {
    /// The bot's id.
    pub id: String,
    /// Its template (decides who owns its files).
    pub template: String,
    /// Its image reference.
    pub image: String,
    /// `running` or `stopped`.
    pub desired_state: String,
    /// Names of the secrets archived for it.
    pub secrets: Vec<String>,
}

/// What one archive entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// The checksum record of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySum {
    /// File or directory.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// SHA-256 of the content, hex (absent for a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The last entry of every archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version, [`VERSION`].
    pub version: u32,
    /// Full or single-bot.
    pub kind: BackupKind,
    /// The botmaker that wrote it.
    pub botmaker_version: String,
    /// The registry's schema version at the time.
    pub schema_version: u32,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The bots in it.
    pub bots: Vec<BotEntry>,
    /// Workspace entries that were not archived because they are not regular files or
    /// directories (links a bot made, fifos, sockets), or vanished while being read.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Every entry but this manifest, by path.
    pub entries: BTreeMap<String, EntrySum>,
}

impl Manifest {
    /// Checks what can be checked before looking at the entries: format, version, kind.
    pub fn check_header(&self, want: BackupKind) -> Result<(), super::BackupError> {
        use super::BackupError::{Corrupt, Unsupported};
        if self.format != FORMAT {
            return Err(Corrupt(format!(
                "not a botmaker backup (format {:?})",
                self.format
            )));
        }
        if self.version > VERSION {
            return Err(Unsupported(format!(
                "the archive has layout version {}, but this botmaker reads up to {VERSION}: \
                 use the botmaker that wrote it (or a newer one)",
                self.version
            )));
        }
        if self.kind != want {
            return Err(Unsupported(match want {
                BackupKind::Full => "this is a single-bot backup: import it into a running \
                                     botmaker with `botmaker bots import FILE`"
                    .to_string(),
                BackupKind::Bot => "this is a full backup: restore it with `botmaker restore \
                                    FILE --data-dir DIR` (server stopped)"
                    .to_string(),
            }));
        }
        Ok(())
    }
}
