//! Workspaces in and out of archives, through [`crate::safe_fs`]: a bot writes its workspace,
//! so nothing here follows a link. Reading, links, fifos and sockets are left out (and named in
//! the manifest); writing, whatever a bot planted where an archived file goes is replaced.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::BackupError;
use super::manifest::EntryKind;
use super::reader::EntryInfo;
use super::writer::ArchiveWriter;
use crate::BotId;
use crate::safe_fs::{Dir, FsError, Kind, NewDir, NewFile, Planted};

/// Mode of a workspace directory itself, whatever the archive says (as when botmaker makes it).
const WORKSPACE_MODE: u32 = 0o700;

/// Adds `bot`'s workspace under `root` (the workspaces directory) to `w` as
/// `workspaces/<id>/...`: directories and regular files, depth first. Entries that are not
/// regular files or directories, or that change kind while being read, are appended to
/// `skipped`. A bot without a workspace adds nothing.
///
/// Directories are walked by path from the workspace (one descriptor held at a time, each
/// path resolved without following links), so a deep tree cannot exhaust descriptors.
pub fn archive<W: Write>(
    w: &mut ArchiveWriter<W>,
    root: &Path,
    bot: &BotId,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    let Some(root) = Dir::open_root(root)? else {
        return Ok(());
    };
    let Some(ws) = root.open_dir(Path::new(bot.as_str()))? else {
        return Ok(());
    };
    let prefix = format!("workspaces/{bot}");
    w.add_dir(&prefix, ws.mode()?)?;
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let opened;
        let dir = if rel.as_os_str().is_empty() {
            &ws
        } else {
            match ws.open_dir(&rel) {
                Ok(Some(d)) => {
                    opened = d;
                    &opened
                }
                // Gone or replaced by a link since it was listed.
                Ok(None) | Err(FsError::Symlink { .. } | FsError::NotADirectory { .. }) => {
                    skipped.push(format!("{prefix}/{}", rel.display()));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut entries = dir.entries()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subdirs = Vec::new();
        for e in entries {
            let child = rel.join(&e.name);
            let Some(name) = child.to_str() else {
                skipped.push(format!("{prefix}/{}", child.to_string_lossy()));
                continue;
            };
            let path = format!("{prefix}/{name}");
            match e.kind {
                Kind::Dir => match ws.open_dir(&child) {
                    Ok(Some(d)) => {
                        w.add_dir(&path, d.mode()?)?;
                        subdirs.push(child);
                    }
                    Ok(None) | Err(FsError::Symlink { .. } | FsError::NotADirectory { .. }) => {
                        skipped.push(path)
                    }
                    Err(e) => return Err(e.into()),
                },
                Kind::File => match ws.open_file(&child) {
                    Ok(Some(f)) => w.add_reader(&path, f.file, f.size, f.mode)?,
                    Ok(None) | Err(FsError::Symlink { .. } | FsError::NotAFile { .. }) => {
                        skipped.push(path)
                    }
                    Err(e) => return Err(e.into()),
                },
                Kind::Symlink | Kind::Other => skipped.push(path),
            }
        }
        // Depth first, in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Writes archived workspace entries beneath a workspaces directory.
pub struct WorkspaceWriter {
    root: Dir,
    current: Option<(BotId, Dir)>,
}

impl WorkspaceWriter {
    /// Writes beneath the workspaces directory `root` (made 0700 if missing).
    pub fn new(root: &Path) -> Result<Self, BackupError> {
        Ok(Self {
            root: Dir::create_root(root, WORKSPACE_MODE)?,
            current: None,
        })
    }

    /// The workspace of `bot`, made (0700, owned by `owner`) if missing.
    fn workspace(&mut self, bot: &BotId, owner: Option<(u32, u32)>) -> Result<&Dir, BackupError> {
        if self.current.as_ref().is_none_or(|(b, _)| b != bot) {
            let ws = self.root.ensure_dir(
                std::ffi::OsStr::new(bot.as_str()),
                &NewDir {
                    mode: WORKSPACE_MODE,
                    owner,
                    planted: Planted::Refuse,
                },
            )?;
            ws.set_owner(owner)?;
            ws.set_mode(WORKSPACE_MODE)?;
            self.current = Some((bot.clone(), ws));
        }
        Ok(&self.current.as_ref().expect("just set").1)
    }

    /// Writes one entry of `bot`'s workspace (`rel` empty: the workspace itself), owned by
    /// `owner`, with the archived mode (permission bits only).
    pub fn write(
        &mut self,
        bot: &BotId,
        rel: &Path,
        info: EntryInfo,
        data: &mut dyn Read,
        owner: Option<(u32, u32)>,
    ) -> Result<(), BackupError> {
        let ws = self.workspace(bot, owner)?;
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        let dirs = NewDir {
            mode: WORKSPACE_MODE,
            owner,
            planted: Planted::Replace,
        };
        match info.kind {
            EntryKind::Dir => {
                let d = ws.ensure_dirs(rel, &dirs)?;
                d.set_owner(owner)?;
                d.set_mode(info.mode & 0o777)?;
            }
            EntryKind::File => {
                let mut bytes = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
                data.take(info.size)
                    .read_to_end(&mut bytes)
                    .map_err(|e| BackupError::Corrupt(format!("it cannot be read ({e})")))?;
                let file = NewFile {
                    mode: info.mode & 0o777,
                    owner,
                    planted: Planted::Replace,
                };
                ws.write_path(rel, &bytes, &dirs, &file)?;
            }
        }
        Ok(())
    }
}
