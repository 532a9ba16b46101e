//! `botmaker restore FILE --data-dir DIR`: a full backup back into a data directory, with the
//! server stopped. The next `botmaker serve` on that directory recreates every bot's
//! container (its reconciler starts what should run), from the restored registry, secrets and
//! workspaces.
//!
//! Nothing is touched until the whole archive has been verified; it is then unpacked into a
//! staging directory inside the target, the registry snapshot is checked by SQLite, and only
//! then is it moved into place. `--force` on a non-empty directory first moves what is there
//! into `pre-restore-<time>/` beside it, so nothing is lost either way.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::BackupError;
use super::crypt::{self, Passphrase};
use super::manifest::{BackupKind, LLM_PROVIDERS, Manifest, NOTIFICATION_SECRETS};
use super::reader::{self, Target};
use super::workspace::WorkspaceWriter;
use crate::BotId;
use crate::secrets::{SecretValue, SecretsStore};
use crate::store::SCHEMA_VERSION;

/// Mode of the data directory and of the directories made in it.
const DIR_MODE: u32 = 0o700;
/// Name of the registry in a data directory.
const DATABASE: &str = "botmaker.db";

/// `botmaker restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The archive (from `botmaker backup`, or a scheduled backup).
    pub file: PathBuf,
    /// The data directory to restore into; must be empty unless --force. Stop any server using
    /// it first.
    #[arg(long, env = "BOTMAKER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Restore into a non-empty data directory, moving what is there into
    /// `pre-restore-<time>/` inside it first.
    #[arg(long)]
    pub force: bool,
    /// File with the archive's passphrase, if it is encrypted.
    #[arg(long, env = "BOTMAKER_BACKUP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Secret files written.
    pub secrets: usize,
    /// Workspace files written.
    pub files: usize,
    /// Where the directory's previous content went (`--force`).
    pub moved_aside: Option<PathBuf>,
    /// The data directory, absolute.
    pub data_dir: PathBuf,
}

/// The uid/gid a template's containers run as, if not root (restored secrets and workspaces
/// are made theirs). The domain's to know, so the caller passes it in.
pub type TemplateOwner = fn(&str) -> Option<(u32, u32)>;

/// Runs `botmaker restore` and reports like the client commands: one line on stderr on error.
pub fn run(args: RestoreArgs, owner_of: TemplateOwner) -> ExitCode {
    let result = args
        .passphrase_file
        .as_deref()
        .map(Passphrase::from_file)
        .transpose()
        .and_then(|p| restore(&args.file, &args.data_dir, args.force, p.as_ref(), owner_of));
    match result {
        Ok(r) => {
            let m = &r.manifest;
            println!(
                "restored {} bot(s), {} secret(s) and {} workspace file(s) backed up at {} \
                 into {}",
                m.bots.len(),
                r.secrets,
                r.files,
                m.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                r.data_dir.display()
            );
            if let Some(old) = &r.moved_aside {
                println!("what was there before is in {}", old.display());
            }
            println!(
                "start `botmaker serve --data-dir {}`: it recreates every bot's container",
                r.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("botmaker: error: {e}");
            ExitCode::from(match e {
                BackupError::NotEmpty(_) => 2,
                _ => 1,
            })
        }
    }
}

fn open_archive<'a>(
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<Box<dyn Read + Send + 'a>, BackupError> {
    let file = File::open(path).map_err(BackupError::io("open", path))?;
    crypt::open(std::io::BufReader::new(file), passphrase)
}

/// Restores the full backup at `archive` into `data_dir` (see the module doc).
pub fn restore(
    archive: &Path,
    data_dir: &Path,
    force: bool,
    passphrase: Option<&Passphrase>,
    owner_of: TemplateOwner,
) -> Result<Restored, BackupError> {
    let occupied = match fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(BackupError::io("read", data_dir)(e)),
    };
    if occupied && !force {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let manifest = reader::verify(open_archive(archive, passphrase)?, BackupKind::Full)?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(BackupError::Unsupported(format!(
            "the backup's registry has schema version {}, but this botmaker knows up to \
             {SCHEMA_VERSION}: restore it with the botmaker that wrote it (or a newer one)",
            manifest.schema_version
        )));
    }

    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(data_dir)
        .map_err(BackupError::io("create", data_dir))?;
    let data_dir = fs::canonicalize(data_dir).map_err(BackupError::io("resolve", data_dir))?;
    let staging = data_dir.join(format!(".restore-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(&staging)
        .map_err(BackupError::io("create", &staging))?;
    let unpacked = unpack(archive, passphrase, &manifest, &staging, owner_of)
        .and_then(|counts| check_registry(&staging.join(DATABASE), &manifest).map(|()| counts));
    let (secrets, files) = match unpacked {
        Ok(counts) => counts,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let moved_aside = if occupied {
        Some(move_aside(&data_dir, &staging)?)
    } else {
        None
    };
    for name in [
        DATABASE,
        "secrets",
        "workspaces",
        LLM_PROVIDERS,
        NOTIFICATION_SECRETS,
    ] {
        let from = staging.join(name);
        if from.exists() {
            fs::rename(&from, data_dir.join(name))
                .map_err(BackupError::io("move into place", data_dir.join(name)))?;
        }
    }
    // What SQLite left of the check (an empty `-wal`, `-shm`) goes with the staging dir.
    let _ = fs::remove_dir_all(&staging);
    Ok(Restored {
        manifest,
        secrets,
        files,
        moved_aside,
        data_dir,
    })
}

/// Writes the archive's entries beneath `staging`; returns (secrets, workspace files).
fn unpack(
    archive: &Path,
    passphrase: Option<&Passphrase>,
    manifest: &Manifest,
    staging: &Path,
    template_owner: TemplateOwner,
) -> Result<(usize, usize), BackupError> {
    let owners: HashMap<String, Option<(u32, u32)>> = manifest
        .bots
        .iter()
        .map(|b| (b.id.clone(), template_owner(&b.template)))
        .collect();
    let owner_of = |bot: &BotId| owners.get(bot.as_str()).copied().flatten();
    let secrets_root = staging.join("secrets");
    let llm_root = staging.join(LLM_PROVIDERS);
    let notification_root = staging.join(NOTIFICATION_SECRETS);
    let mut workspaces = WorkspaceWriter::new(&staging.join("workspaces"))?;
    let (mut secrets, mut files) = (0, 0);
    reader::for_each(open_archive(archive, passphrase)?, |target, info, data| {
        match target {
            Target::Registry => {
                let path = staging.join(DATABASE);
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(BackupError::io("create", &path))?;
                std::io::copy(&mut data.take(info.size), &mut out)
                    .map_err(BackupError::io("write", &path))?;
                out.sync_all().map_err(BackupError::io("sync", &path))?;
            }
            Target::SecretsDir(bot) => {
                store_for(&secrets_root, owner_of(&bot)).ensure_bot_dir(&bot)?;
            }
            Target::Secret(bot, name) => {
                let value = read_value(data, info.size)?;
                store_for(&secrets_root, owner_of(&bot)).set(&bot, &name, &value)?;
                secrets += 1;
            }
            Target::Workspace(bot, rel) => {
                let owner = owner_of(&bot);
                if info.kind == super::manifest::EntryKind::File {
                    files += 1;
                }
                workspaces.write(&bot, &rel, info, data, owner)?;
            }
            Target::LlmProviderDir(dir) => {
                SecretsStore::new(&llm_root).ensure_bot_dir(&dir)?;
            }
            Target::LlmProviderKey(dir, name) => {
                SecretsStore::new(&llm_root).set(&dir, &name, &read_value(data, info.size)?)?;
            }
            Target::NotificationDir(dir) => {
                SecretsStore::new(&notification_root).ensure_bot_dir(&dir)?;
            }
            Target::NotificationSecret(dir, name) => {
                let value = read_value(data, info.size)?;
                SecretsStore::new(&notification_root).set(&dir, &name, &value)?;
            }
            // A single-bot record has no place in a full restore (verify refused it already).
            Target::BotRecord => {}
        }
        Ok(())
    })?;
    // Every bot gets its directories, even one that had no secret or workspace file.
    for b in &manifest.bots {
        if let Ok(bot) = BotId::new(b.id.clone()) {
            store_for(&secrets_root, owner_of(&bot)).ensure_bot_dir(&bot)?;
        }
    }
    Ok((secrets, files))
}

/// A secret file's `size` bytes from the archive.
fn read_value(data: impl Read, size: u64) -> Result<SecretValue, BackupError> {
    let mut value = Vec::new();
    data.take(size)
        .read_to_end(&mut value)
        .map_err(|e| BackupError::Corrupt(format!("it cannot be read ({e})")))?;
    Ok(SecretValue::from(value))
}

fn store_for(root: &Path, owner: Option<(u32, u32)>) -> SecretsStore {
    let store = SecretsStore::new(root);
    match owner {
        Some((uid, gid)) => store.with_owner(uid, gid),
        None => store,
    }
}

/// The unpacked registry is a sound database this botmaker can open, holding the bots the
/// manifest names.
fn check_registry(path: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let bad = |what: String| BackupError::Corrupt(format!("its registry snapshot {what}"));
    let conn = rusqlite::Connection::open(path).map_err(|e| bad(format!("does not open ({e})")))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| bad(format!("cannot be checked ({e})")))?;
    if check != "ok" {
        return Err(bad(format!("is damaged ({check})")));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| bad(format!("has no schema version ({e})")))?;
    if version > i64::from(SCHEMA_VERSION) {
        return Err(BackupError::Unsupported(format!(
            "the backup's registry has schema version {version}, but this botmaker knows up to \
             {SCHEMA_VERSION}"
        )));
    }
    let mut ids: Vec<String> = conn
        .prepare("SELECT id FROM bots ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| bad(format!("has no readable bots table ({e})")))?;
    let mut named: Vec<String> = manifest.bots.iter().map(|b| b.id.clone()).collect();
    ids.sort();
    named.sort();
    if ids != named {
        return Err(bad("holds other bots than its manifest names".into()));
    }
    Ok(())
}

/// Moves everything in `data_dir` but `staging` into a new `pre-restore-<time>` directory.
fn move_aside(data_dir: &Path, staging: &Path) -> Result<PathBuf, BackupError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = data_dir.join(format!("pre-restore-{stamp}"));
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(&aside)
        .map_err(BackupError::io("create", &aside))?;
    let entries = fs::read_dir(data_dir).map_err(BackupError::io("read", data_dir))?;
    for entry in entries {
        let entry = entry.map_err(BackupError::io("read", data_dir))?;
        let path = entry.path();
        if path == staging || path == aside {
            continue;
        }
        fs::rename(&path, aside.join(entry.file_name()))
            .map_err(BackupError::io("move aside", &path))?;
    }
    let mut marker = File::create(aside.join("README"))
        .map_err(BackupError::io("write", aside.join("README")))?;
    let _ = writeln!(
        marker,
        "The content of {} before `botmaker restore --force` replaced it.",
        data_dir.display()
    );
    Ok(aside)
}
