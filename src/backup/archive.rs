//! What goes into an archive: a full backup (registry snapshot, every bot's secrets and
//! workspace) or one bot's (its record, secrets and workspace).

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BackupError;
use super::manifest::{
    BOT_RECORD, BackupKind, BotEntry, FORMAT, LLM_PROVIDERS, Manifest, NOTIFICATION_SECRETS,
    REGISTRY, VERSION,
};
use super::workspace;
use super::writer::ArchiveWriter;
use crate::BotId;
use crate::secrets::{SecretName, SecretValue};
use crate::store::{BotRow, DesiredState};

/// Mode of every archived secret (as in the secrets directory).
const SECRET_MODE: u32 = 0o600;
/// Mode of a secrets directory.
const SECRETS_DIR_MODE: u32 = 0o700;

/// One bot as taken under its lock: its row and its secret values.
pub struct BotSnapshot {
    /// The registry's row.
    pub row: BotRow,
    /// Every secret in its secrets directory.
    pub secrets: Vec<(SecretName, SecretValue)>,
}

/// Everything but the workspaces, taken at one moment (no bot changing meanwhile).
pub struct FleetSnapshot {
    /// The registry, from SQLite's online backup.
    pub registry: Vec<u8>,
    /// Its schema version.
    pub schema_version: u32,
    /// Every bot.
    pub bots: Vec<BotSnapshot>,
    /// The LLM providers' real API keys, as files under `<data>/llm-providers/<dir>/<name>`:
    /// the registry knows the providers but not their keys.
    pub llm_provider_keys: Vec<(BotId, SecretName, SecretValue)>,
    /// The notification channels' signing secrets and Telegram bot tokens, as files under
    /// `<data>/notification-secrets/channel-<id>/<NAME>` (the registry has the channels only).
    pub notification_secrets: Vec<(BotId, SecretName, SecretValue)>,
}

/// A bot's record in a single-bot backup: what another botmaker needs to recreate it (not the
/// container or image ids of this one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotRecord {
    /// The bot's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Template name (`generic`, `openclaw`): restore re-renders the bot's files with it.
    pub template: String,
    /// Its stored spec.
    pub spec: serde_json::Value,
    /// Its secrets' names.
    pub secret_names: Vec<String>,
    /// Whether it should run.
    pub desired_state: DesiredState,
    /// When it was first created.
    pub created_at: DateTime<Utc>,
}

impl From<&BotRow> for BotRecord {
    fn from(r: &BotRow) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            template: r.template.clone(),
            spec: r.spec.clone(),
            secret_names: r.secret_names.clone(),
            desired_state: r.desired_state,
            created_at: r.created_at,
        }
    }
}

fn entry(b: &BotSnapshot) -> BotEntry {
    BotEntry {
        id: b.row.id.to_string(),
        template: b.row.template.clone(),
        image: b.row.spec["image"].as_str().unwrap_or_default().to_string(),
        desired_state: b.row.desired_state.to_string(),
        secrets: b.secrets.iter().map(|(n, _)| n.to_string()).collect(),
    }
}

fn manifest(kind: BackupKind, schema_version: u32, bots: Vec<BotEntry>) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        version: VERSION,
        kind,
        botmaker_version: env!("CARGO_PKG_VERSION").into(),
        schema_version,
        created_at: Utc::now(),
        bots,
        skipped: Vec::new(),
        entries: Default::default(),
    }
}

fn add_bot<W: Write>(
    w: &mut ArchiveWriter<W>,
    b: &BotSnapshot,
    workspaces_root: &Path,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    let id = &b.row.id;
    w.add_dir(&format!("secrets/{id}"), SECRETS_DIR_MODE)?;
    for (name, value) in &b.secrets {
        w.add_bytes(&format!("secrets/{id}/{name}"), value.expose(), SECRET_MODE)?;
    }
    workspace::archive(w, workspaces_root, id, skipped)
}

/// Writes a full backup of `snap` (workspaces read from `workspaces_root` as they are now) to
/// `out`, returning its manifest and `out`.
pub fn write_full<W: Write>(
    out: W,
    snap: &FleetSnapshot,
    workspaces_root: &Path,
) -> Result<(Manifest, W), BackupError> {
    let mut w = ArchiveWriter::new(out);
    w.add_bytes(REGISTRY, &snap.registry, SECRET_MODE)?;
    let mut skipped = Vec::new();
    for b in &snap.bots {
        add_bot(&mut w, b, workspaces_root, &mut skipped)?;
    }
    for (area, files) in [
        (LLM_PROVIDERS, &snap.llm_provider_keys),
        (NOTIFICATION_SECRETS, &snap.notification_secrets),
    ] {
        let mut dirs = std::collections::BTreeSet::new();
        for (dir, name, value) in files {
            if dirs.insert(dir) {
                w.add_dir(&format!("{area}/{dir}"), SECRETS_DIR_MODE)?;
            }
            w.add_bytes(&format!("{area}/{dir}/{name}"), value.expose(), SECRET_MODE)?;
        }
    }
    let mut m = manifest(
        BackupKind::Full,
        snap.schema_version,
        snap.bots.iter().map(entry).collect(),
    );
    m.skipped = skipped;
    w.finish(m)
}

/// Writes a backup of one bot to `out`.
pub fn write_bot<W: Write>(
    out: W,
    bot: &BotSnapshot,
    schema_version: u32,
    workspaces_root: &Path,
) -> Result<(Manifest, W), BackupError> {
    let mut w = ArchiveWriter::new(out);
    let record = serde_json::to_vec_pretty(&BotRecord::from(&bot.row)).expect("serializes");
    w.add_bytes(BOT_RECORD, &record, SECRET_MODE)?;
    let mut skipped = Vec::new();
    add_bot(&mut w, bot, workspaces_root, &mut skipped)?;
    let mut m = manifest(BackupKind::Bot, schema_version, vec![entry(bot)]);
    m.skipped = skipped;
    w.finish(m)
}
