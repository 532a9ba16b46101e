//! Backups: one archive with everything a botmaker needs to come back (a consistent snapshot of
//! the registry, every bot's secrets and workspace, a manifest), and the way back from it.
//!
//! This module owns the archive format and the files it reads and writes; it takes what it
//! archives from the caller (the registry snapshot and secrets come from `BotService`, under
//! the bots' locks) and never talks to Docker or HTTP.
//!
//! An archive is a gzip-compressed tar, optionally encrypted with a passphrase in the `age`
//! format ([`crypt`]):
//!
//! ```text
//! registry.db              SQLite online-backup snapshot (full backups)
//! bot.json                 the bot's record (single-bot backups)
//! secrets/<id>/<NAME>      secret values, 0600
//! workspaces/<id>/...      workspace directories and regular files (links are not followed
//!                          and not archived)
//! manifest.json            last: format, version, time, bots, and the size, mode and
//!                          SHA-256 of every entry above
//! ```
//!
//! Reading is two passes: [`reader::verify`] checks every entry against the manifest (and that
//! the manifest is there, so a truncated archive is refused) before [`reader::for_each`] hands
//! out a single byte, so a bad archive changes nothing. The checksums catch corruption and
//! truncation; an encrypted archive is also authenticated, chunk by chunk, against tampering.

pub mod archive;
pub mod channel;
pub mod crypt;
mod error;
pub mod file;
pub mod manifest;
pub mod reader;
pub mod restore;
pub mod schedule;
pub mod workspace;
pub mod writer;

pub use archive::{BotRecord, BotSnapshot, FleetSnapshot};
pub use crypt::Passphrase;
pub use error::BackupError;
pub use manifest::{BackupKind, BotEntry, Manifest};
