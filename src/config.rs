//! `botmaker serve` settings: flags with `BOTMAKER_*` environment fallbacks, and `_FILE`
//! variants for secrets so they need not sit in the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Settings of `botmaker serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "BOTMAKER_LISTEN", default_value = "127.0.0.1:7100")]
    pub listen: SocketAddr,

    /// Data directory: the SQLite database, bot secrets and workspaces.
    #[arg(long, env = "BOTMAKER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Docker Engine address (`unix:///path` or `tcp://host:port`); the default socket if unset.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Name of this installation; containers carry it as `botmaker.instance`, so several
    /// installations can share one Docker Engine.
    #[arg(long, env = "BOTMAKER_INSTANCE", default_value = "default")]
    pub instance: String,

    /// Admin password (at least 12 characters). Prefer `--admin-password-file`.
    #[arg(long, env = "BOTMAKER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// File holding the admin password; wins over `--admin-password`.
    #[arg(long, env = "BOTMAKER_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// Hours a login session lasts.
    #[arg(long, env = "BOTMAKER_SESSION_HOURS", default_value_t = 24)]
    pub session_hours: u64,

    /// Seconds a bot gets between SIGTERM and SIGKILL when stopped.
    #[arg(long, env = "BOTMAKER_STOP_TIMEOUT", default_value_t = 10)]
    pub stop_timeout: u64,

    /// Seconds between two stats readings of a running bot.
    #[arg(long, env = "BOTMAKER_STATS_INTERVAL", default_value_t = 10)]
    pub stats_interval: u64,

    /// Seconds between full resyncs with Docker (events keep state current in between).
    #[arg(long, env = "BOTMAKER_RESYNC_INTERVAL", default_value_t = 60)]
    pub resync_interval: u64,

    /// Container deaths within the crash-loop window that make a bot `crash_loop`.
    #[arg(long, env = "BOTMAKER_CRASH_LOOP_RESTARTS", default_value_t = 3)]
    pub crash_loop_restarts: usize,

    /// Crash-loop window in seconds.
    #[arg(long, env = "BOTMAKER_CRASH_LOOP_WINDOW", default_value_t = 300)]
    pub crash_loop_window: u64,

    /// Let bots use `network: "host"`. Off by default: a bot on the host's network stack
    /// reaches every service bound to this machine's loopback, botmaker's own API included.
    #[arg(
        long,
        env = "BOTMAKER_ALLOW_HOST_NETWORK",
        value_parser = clap::builder::BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_host_network: bool,

    /// Log filter (`info`, `debug`, `botmaker=debug,tower_http=info`, ...).
    #[arg(long, env = "BOTMAKER_LOG", default_value = "info")]
    pub log: String,
}

impl ServeConfig {
    /// Where the SQLite database lives.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("botmaker.db")
    }

    /// Root of the per-bot secrets directories.
    pub fn secrets_root(&self) -> PathBuf {
        self.data_dir.join("secrets")
    }

    /// Root of the per-bot workspaces.
    pub fn workspaces_root(&self) -> PathBuf {
        self.data_dir.join("workspaces")
    }

    /// Where a generated admin password is saved on first run.
    pub fn generated_password_path(&self) -> PathBuf {
        self.data_dir.join("admin-password")
    }

    /// The stop grace period.
    pub fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.stop_timeout)
    }

    /// The configured admin password: the file wins over the variable.
    pub fn configured_password(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.admin_password_file {
            return std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| {
                    format!(
                        "cannot read the admin password file {}: {e}; fix the path or unset \
                         BOTMAKER_ADMIN_PASSWORD_FILE",
                        path.display()
                    )
                });
        }
        Ok(self.admin_password.clone().filter(|p| !p.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    fn allow_host_network(args: &[&str]) -> bool {
        let argv = std::iter::once("botmaker").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap().serve.allow_host_network
    }

    #[test]
    fn host_network_is_off_unless_asked_for() {
        assert!(!allow_host_network(&[]));
        assert!(allow_host_network(&["--allow-host-network"]));
        assert!(allow_host_network(&["--allow-host-network=yes"]));
        assert!(!allow_host_network(&["--allow-host-network=false"]));
    }
}
