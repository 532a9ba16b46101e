//! The CLI config file (the server and token `botmaker login` saved) and the resolution of
//! which server and token a command uses: flag, then environment, then the file, then the
//! default. The file is JSON, written atomically with mode 0600 in a 0700 directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::args::Connection;
use super::error::CliError;
use super::values::ServerUrl;

/// What `botmaker login` saves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedConfig {
    /// The server logged in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Its session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Where the config file lives: `--cli-config` / `BOTMAKER_CONFIG`, else
/// `$XDG_CONFIG_HOME/botmaker/cli.json`, else `~/.config/botmaker/cli.json`.
pub fn config_path(conn: &Connection) -> Result<PathBuf, CliError> {
    if let Some(p) = &conn.config {
        return Ok(p.clone());
    }
    let env_dir = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = env_dir("XDG_CONFIG_HOME")
        .or_else(|| env_dir("HOME").map(|h| h.join(".config")))
        .ok_or_else(|| {
            CliError::usage(
                "cannot tell where the CLI config file goes: set HOME, XDG_CONFIG_HOME or \
                 BOTMAKER_CONFIG",
            )
        })?;
    Ok(base.join("botmaker").join("cli.json"))
}

/// Reads the config file; a missing file is an empty config.
pub fn load(path: &Path) -> Result<SavedConfig, CliError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::usage(format!(
                "the CLI config file {} is not valid ({e}); delete it and run `botmaker login`",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SavedConfig::default()),
        Err(source) => Err(CliError::ReadInput {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the config file atomically (temp file, fsync, rename) with mode 0600, creating its
/// directory with mode 0700.
pub fn save(path: &Path, config: &SavedConfig) -> Result<(), CliError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CliError::Io {
            op,
            path: p,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cli.json".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(config).expect("the config serializes");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("write", path)(e)
    })
}

/// The server and token a command uses, and where the config file is.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Where commands go: `--server`, else `BOTMAKER_SERVER`, else the one saved by `login`.
    pub server: ServerUrl,
    /// The token, if any is configured for this server.
    pub token: Option<String>,
    /// The config file.
    pub config_path: PathBuf,
}

/// Resolves the server (flag/env, file, default) and the token (flag/env, file). The file's
/// token is used only for the server it was saved for, so it is never sent elsewhere.
pub fn resolve(conn: &Connection) -> Result<Resolved, CliError> {
    let config_path = config_path(conn)?;
    let saved = load(&config_path)?;
    let saved_server = saved_server(&config_path, &saved)?;
    let server = conn
        .server
        .clone()
        .or_else(|| saved_server.clone())
        .unwrap_or_default();
    let token = conn
        .token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            let same = saved_server.as_ref().unwrap_or(&ServerUrl::default()) == &server;
            saved.token.clone().filter(|_| same)
        });
    Ok(Resolved {
        server,
        token,
        config_path,
    })
}

/// The server in `saved` (read from `path`), checked.
pub fn saved_server(path: &Path, saved: &SavedConfig) -> Result<Option<ServerUrl>, CliError> {
    saved
        .server
        .as_deref()
        .map(|s| {
            ServerUrl::parse(s).map_err(|e| {
                CliError::usage(format!(
                    "the server in {} is not valid: {e}",
                    path.display()
                ))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn conn(path: &Path) -> Connection {
        Connection {
            config: Some(path.to_path_buf()),
            ..Connection::default()
        }
    }

    #[test]
    fn saved_config_is_private_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nested/dir/cli.json");
        let cfg = SavedConfig {
            server: Some("http://h:1".into()),
            token: Some("bms_x".into()),
        };
        save(&path, &cfg).unwrap();
        assert_eq!(load(&path).unwrap(), cfg);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn missing_file_is_empty_and_garbage_is_a_usage_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            load(&tmp.path().join("none.json")).unwrap(),
            SavedConfig::default()
        );
        let bad = tmp.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        assert_eq!(load(&bad).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn saved_token_goes_only_to_its_own_server() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cli.json");
        save(
            &path,
            &SavedConfig {
                server: Some("http://saved:1".into()),
                token: Some("tok".into()),
            },
        )
        .unwrap();
        let r = resolve(&conn(&path)).unwrap();
        assert_eq!(r.server.as_str(), "http://saved:1");
        assert_eq!(r.token.as_deref(), Some("tok"));

        let mut other = conn(&path);
        other.server = Some(ServerUrl::parse("http://other:2").unwrap());
        assert_eq!(resolve(&other).unwrap().token, None);

        other.token = Some("flag".into());
        assert_eq!(resolve(&other).unwrap().token.as_deref(), Some("flag"));
    }
}
