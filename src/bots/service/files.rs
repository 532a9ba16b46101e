//! Workspace files on the host: written with the container user's ownership, removed without following links.

use super::*;

/// Writes the template's files into a fresh (or existing) workspace: directory 0700, owned
/// by the container user when the template has one, so the bot can write its state there.
pub(super) async fn write_workspace(
    dir: &Path,
    files: &[crate::bots::template::WorkspaceFile],
    owner: Option<(u32, u32)>,
) -> Result<(), BotError> {
    let dir = dir.to_path_buf();
    let files = files.to_vec();
    blocking(move || {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| BotError::Io { op, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", &dir))?;
        let chown = |p: &Path| match owner {
            Some((uid, gid)) => {
                std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io("chown", p))
            }
            None => Ok(()),
        };
        chown(&dir)?;
        for f in &files {
            let path = dir.join(&f.path);
            // Template paths are relative and fixed; still, never write outside the workspace.
            if f.path.is_absolute()
                || f.path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(BotError::Io {
                    op: "write",
                    path,
                    source: std::io::Error::other("path escapes the workspace"),
                });
            }
            if let Some(parent) = path.parent() {
                let mut created = Vec::new();
                let mut p = parent;
                while p != dir && !p.exists() {
                    created.push(p.to_path_buf());
                    p = p.parent().unwrap_or(&dir);
                }
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
                for c in created {
                    chown(&c)?;
                }
            }
            std::fs::write(&path, &f.contents).map_err(io("write", &path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io("set permissions of", &path))?;
            chown(&path)?;
        }
        Ok(())
    })
    .await
}

pub(super) async fn remove_dir(dir: &Path) -> Result<(), BotError> {
    match tokio::fs::symlink_metadata(dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            tokio::fs::remove_file(dir)
                .await
                .map_err(|source| BotError::Io {
                    op: "remove",
                    path: dir.to_path_buf(),
                    source,
                })
        }
        _ => tokio::fs::remove_dir_all(dir)
            .await
            .map_err(|source| BotError::Io {
                op: "remove",
                path: dir.to_path_buf(),
                source,
            }),
    }
}

pub(super) async fn list_dirs(root: &Path) -> Result<Vec<String>, BotError> {
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(root).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(BotError::Io {
                op: "list",
                path: root.to_path_buf(),
                source,
            });
        }
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        if let Some(name) = e.file_name().to_str() {
            if BotId::new(name).is_ok() {
                out.push(name.to_string());
            }
        }
    }
    Ok(out)
}
