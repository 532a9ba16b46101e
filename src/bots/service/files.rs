//! Workspace files on the host, through [`crate::safe_fs`]: a bot can write its workspace, so
//! nothing here follows a link, and what the bot planted where the template writes is replaced.

use std::ffi::OsStr;

use super::*;
use crate::safe_fs::{Dir, FsError, NewDir, NewFile, Planted};

/// Mode of a workspace and of directories the template makes in it.
const DIR_MODE: u32 = 0o700;
/// Mode of the template's files.
const FILE_MODE: u32 = 0o600;

/// Splits a workspace directory into its root (the workspaces directory, which no bot can
/// write) and its name there (the bot id).
fn split(dir: &Path) -> Result<(&Path, &OsStr), BotError> {
    match (dir.parent(), dir.file_name()) {
        (Some(root), Some(name)) => Ok((root, name)),
        _ => Err(FsError::InvalidPath {
            path: dir.to_path_buf(),
        }
        .into()),
    }
}

/// Writes the template's files into a fresh (or existing) workspace: directory 0700, owned
/// by the container user when the template has one, so the bot can write its state there.
///
/// The workspace is opened beneath its root without following links, and every file is
/// written beneath it the same way: a symlink, fifo or directory the bot left where a
/// template file or directory goes is replaced (see [`Planted::Replace`]), never followed, so
/// the bot can change nothing but its own workspace. Something other than a directory at the
/// workspace's own name (which a bot cannot reach) is refused.
pub(super) async fn write_workspace(
    dir: &Path,
    files: &[crate::bots::template::WorkspaceFile],
    owner: Option<(u32, u32)>,
) -> Result<(), BotError> {
    let (root, name) = split(dir)?;
    let (root, name) = (root.to_path_buf(), name.to_os_string());
    let files = files.to_vec();
    blocking(move || {
        let root = Dir::create_root(&root, DIR_MODE)?;
        let workspace = root.ensure_dir(
            &name,
            &NewDir {
                mode: DIR_MODE,
                owner,
                planted: Planted::Refuse,
            },
        )?;
        workspace.set_owner(owner)?;
        workspace.set_mode(DIR_MODE)?;
        let dirs = NewDir {
            mode: DIR_MODE,
            owner,
            planted: Planted::Replace,
        };
        let file = NewFile {
            mode: FILE_MODE,
            owner,
            planted: Planted::Replace,
        };
        for f in &files {
            workspace.write_path(&f.path, f.contents.as_bytes(), &dirs, &file)?;
        }
        Ok(())
    })
    .await
}

/// Removes a workspace and everything in it without following links; a link at the
/// workspace's name is removed itself. Nothing there is fine.
pub(super) async fn remove_dir(dir: &Path) -> Result<(), BotError> {
    let (root, name) = split(dir)?;
    let (root, name) = (root.to_path_buf(), name.to_os_string());
    blocking(move || {
        if let Some(root) = Dir::open_root(&root)? {
            root.remove_tree(&name)?;
        }
        Ok(())
    })
    .await
}

/// The names under a workspaces root that are valid bot ids (whatever they are: an orphan
/// file or link is listed, and removed by cleanup, as well as a directory).
pub(super) async fn list_dirs(root: &Path) -> Result<Vec<String>, BotError> {
    let root = root.to_path_buf();
    blocking(move || {
        let Some(root) = Dir::open_root(&root)? else {
            return Ok(Vec::new());
        };
        Ok(root
            .entries()?
            .into_iter()
            .filter_map(|e| e.name.into_string().ok())
            .filter(|name| BotId::new(name.as_str()).is_ok())
            .collect())
    })
    .await
}
