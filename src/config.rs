//! `botmaker serve` settings: flags with `BOTMAKER_*` environment fallbacks, and `_FILE`
//! variants for secrets so they need not sit in the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::docker::Backend;
use crate::llm::ProxyListen;

/// Settings of `botmaker serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "BOTMAKER_LISTEN", default_value = "127.0.0.1:7100")]
    pub listen: SocketAddr,

    /// Data directory: the SQLite database, bot secrets and workspaces. A relative path is
    /// taken from the working directory at start-up; the directory is made private (0700).
    #[arg(long, env = "BOTMAKER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Docker Engine address (`unix:///path` or `tcp://host:port`); the default socket if unset.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// What a bot is: a container on the engine (`docker`), or a one-replica service on the
    /// swarm the engine manages (`swarm`; see the README's "Scaling out with Docker Swarm").
    #[arg(long, env = "BOTMAKER_BACKEND", value_enum, default_value_t = Backend::Docker)]
    pub backend: Backend,

    /// Volume driver of the workspace volume of a bot placed on a node (`placement`) with
    /// `--backend swarm`: Swarm creates the volume on the node that runs the bot. `local`
    /// when unset (the data stays on that node); name a shared driver to let it move.
    #[arg(long, env = "BOTMAKER_SWARM_VOLUME_DRIVER", value_name = "DRIVER")]
    pub swarm_volume_driver: Option<String>,

    /// Name of this installation; containers carry it as `botmaker.instance`, so several
    /// installations can share one Docker Engine.
    #[arg(long, env = "BOTMAKER_INSTANCE", default_value = "default")]
    pub instance: String,

    /// Admin password (at least 12 characters). Not secret on the command line: every local
    /// user sees `--admin-password <value>` in `ps` and `/proc/PID/cmdline`, and the variable
    /// is in `/proc/PID/environ`. Prefer `--admin-password-file` / BOTMAKER_ADMIN_PASSWORD_FILE.
    #[arg(long, env = "BOTMAKER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// File holding the admin password (the preferred way: it shows in no process listing);
    /// wins over `--admin-password`. Changing the password revokes every login session at the
    /// next start; API tokens stay valid.
    #[arg(long, env = "BOTMAKER_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// Hours a login session lasts.
    #[arg(long, env = "BOTMAKER_SESSION_HOURS", default_value_t = 24)]
    pub session_hours: u64,

    /// Seconds a login session lasts; overrides `--session-hours` (for sessions shorter than
    /// an hour).
    #[arg(long, env = "BOTMAKER_SESSION_SECONDS")]
    pub session_seconds: Option<u64>,

    /// The URL users reach botmaker at (`https://bots.example.com`). When it is https, the
    /// session cookie is marked `Secure`, so a browser never sends it over plain HTTP.
    #[arg(long, env = "BOTMAKER_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// botmaker sits behind a reverse proxy that sets `X-Forwarded-Proto` and appends the
    /// client's address to `X-Forwarded-For`: believe both (the last `X-Forwarded-For` entry is
    /// the client rate limits apply to; `https` makes cookies `Secure`). Without it both headers
    /// are ignored, since any client could forge them.
    #[arg(
        long,
        env = "BOTMAKER_TRUST_PROXY",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_proxy: bool,

    /// Seconds a bot gets between SIGTERM and SIGKILL when stopped.
    #[arg(long, env = "BOTMAKER_STOP_TIMEOUT", default_value_t = 10)]
    pub stop_timeout: u64,

    /// Seconds between two stats readings of a running bot.
    #[arg(long, env = "BOTMAKER_STATS_INTERVAL", default_value_t = 10)]
    pub stats_interval: u64,

    /// Days the audit log keeps an entry (1 to 3650).
    #[arg(long, env = "BOTMAKER_AUDIT_RETENTION_DAYS", default_value_t = crate::audit::DEFAULT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub audit_retention_days: u32,

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

    /// Where the LLM key proxy listens: `auto` (the gateway address of Docker's default
    /// bridge, port 7101: bot containers reach it, nothing off this host does), `auto:PORT`,
    /// `IP:PORT`, or `off` (bots then hold provider keys themselves, as without the proxy).
    #[arg(long, env = "BOTMAKER_LLM_PROXY_LISTEN", default_value = "auto")]
    pub llm_proxy_listen: ProxyListen,

    /// Log filter (`info`, `debug`, `botmaker=debug,tower_http=info`, ...).
    #[arg(long, env = "BOTMAKER_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `text` (one readable line per event, coloured only on a terminal) or `json`
    /// (one JSON object per line, for a log collector).
    #[arg(long, env = "BOTMAKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Scheduled backups (`--backup-dir`, `--backup-every`, `--backup-keep`).
    #[command(flatten)]
    pub backup: crate::backup::schedule::BackupSchedule,

    /// Alerts (`--alert-webhook`, `--alert-recovery-secs`).
    #[command(flatten)]
    pub alerts: AlertFlags,
}

/// The alert settings of `botmaker serve`.
#[derive(Debug, Clone, Args)]
pub struct AlertFlags {
    /// Send every alert to this webhook (repeatable; comma-separated in the variable): the
    /// one-line setup. Each URL is kept as an unnamed `webhook` channel (see `botmaker
    /// notifications list`); a URL no longer given is removed at the next start.
    #[arg(
        long = "alert-webhook",
        env = "BOTMAKER_ALERT_WEBHOOK",
        value_delimiter = ',',
        value_name = "URL",
        value_parser = parse_alert_webhook
    )]
    pub webhooks: Vec<String>,

    /// Seconds a bot must run healthy again before `recovered` is sent (a crashing bot runs
    /// for a moment between crashes; that is no recovery).
    #[arg(
        long = "alert-recovery-secs",
        env = "BOTMAKER_ALERT_RECOVERY_SECS",
        default_value_t = 10
    )]
    pub recovery_secs: u64,
}

impl Default for AlertFlags {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            recovery_secs: crate::alerts::DEFAULT_RECOVERY_SETTLE.as_secs(),
        }
    }
}

/// How the server writes its log (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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

    /// Where the LLM providers' real API keys are kept (`<name>/API_KEY`, 0600 in 0700).
    pub fn llm_keys_root(&self) -> PathBuf {
        self.data_dir.join("llm-providers")
    }

    /// Where notification channels' signing secrets and Telegram bot tokens are kept
    /// (`channel-<id>/`, 0600 in 0700).
    pub fn notification_secrets_root(&self) -> PathBuf {
        self.data_dir.join("notification-secrets")
    }

    /// Where a generated admin password is saved on first run.
    pub fn generated_password_path(&self) -> PathBuf {
        self.data_dir.join("admin-password")
    }

    /// How long a login session lasts: `--session-seconds` if given (at least one second),
    /// else `--session-hours` (at least one hour).
    pub fn session_ttl(&self) -> Duration {
        match self.session_seconds {
            Some(secs) => Duration::from_secs(secs.max(1)),
            None => Duration::from_secs(self.session_hours.max(1) * 3600),
        }
    }

    /// Whether the configured public URL is https (cookies are then `Secure`).
    pub fn public_url_is_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
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

/// An alert webhook's URL, checked as the API checks a channel's (so a typo stops start-up
/// before anything is written).
fn parse_alert_webhook(raw: &str) -> Result<String, String> {
    let mut errors = crate::field_errors::FieldErrors::default();
    crate::alerts::check_url(raw, &mut errors).ok_or_else(|| errors.summary())
}

/// Accepts an absolute `http://` or `https://` URL with a host.
fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &url[scheme.len()..])
        })
        .ok_or_else(|| {
            format!("{url:?} is not an http(s) URL; give it as https://host[:port][/path]")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{url:?} has no valid host; give it as https://host[:port][/path]"
        ));
    }
    Ok(url.to_string())
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

    fn parse(args: &[&str]) -> Result<ServeConfig, clap::Error> {
        let argv = std::iter::once("botmaker").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.serve)
    }

    #[test]
    fn alert_webhooks_repeat_and_are_checked() {
        let c = parse(&[
            "--alert-webhook",
            "https://a.example/h",
            "--alert-webhook",
            "http://127.0.0.1:9/b,http://127.0.0.1:9/c",
        ])
        .unwrap();
        assert_eq!(c.alerts.webhooks.len(), 3);
        assert_eq!(c.alerts.recovery_secs, 10);
        let err = parse(&["--alert-webhook", "hooks.example.com"]).unwrap_err();
        assert!(err.to_string().contains("http"), "{err}");
    }

    #[test]
    fn public_url_must_be_http_or_https_with_a_host() {
        for good in [
            "https://bots.example.com",
            "HTTPS://h:8443/x",
            "http://10.0.0.1",
        ] {
            assert_eq!(parse_public_url(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "bots.example.com",
            "ftp://x",
            "https://",
            "https:///path",
            "https://a b",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        assert!(parse(&["--public-url", "example.com"]).is_err());
    }

    #[test]
    fn only_an_https_public_url_makes_cookies_secure() {
        assert!(!parse(&[]).unwrap().public_url_is_https());
        assert!(
            !parse(&["--public-url", "http://bots.example.com"])
                .unwrap()
                .public_url_is_https()
        );
        assert!(
            parse(&["--public-url", "Https://bots.example.com"])
                .unwrap()
                .public_url_is_https()
        );
    }

    #[test]
    fn trust_proxy_is_a_plain_flag() {
        assert!(!parse(&[]).unwrap().trust_proxy);
        assert!(parse(&["--trust-proxy"]).unwrap().trust_proxy);
    }

    #[test]
    fn session_seconds_override_hours() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.session_ttl(), Duration::from_secs(24 * 3600));
        let c = parse(&["--session-hours", "0"]).unwrap();
        assert_eq!(c.session_ttl(), Duration::from_secs(3600));
        let c = parse(&["--session-hours", "2", "--session-seconds", "90"]).unwrap();
        assert_eq!(c.session_ttl(), Duration::from_secs(90));
    }

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!(parse(&[]).unwrap().log_format, LogFormat::Text);
        assert_eq!(
            parse(&["--log-format", "json"]).unwrap().log_format,
            LogFormat::Json
        );
        assert!(parse(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn the_password_help_warns_about_ps() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("ps"), "{help}");
        assert!(help.contains("--admin-password-file"), "{help}");
    }

    #[test]
    fn the_llm_proxy_listens_on_the_bridge_unless_told_otherwise() {
        assert_eq!(
            parse(&[]).unwrap().llm_proxy_listen,
            ProxyListen::Auto { port: 7101 }
        );
        assert_eq!(
            parse(&["--llm-proxy-listen", "off"])
                .unwrap()
                .llm_proxy_listen,
            ProxyListen::Off
        );
        assert!(parse(&["--llm-proxy-listen", "nowhere"]).is_err());
    }

    #[test]
    fn host_network_is_off_unless_asked_for() {
        let allow = |args: &[&str]| parse(args).unwrap().allow_host_network;
        assert!(!allow(&[]));
        assert!(allow(&["--allow-host-network"]));
        assert!(allow(&["--allow-host-network=yes"]));
        assert!(!allow(&["--allow-host-network=false"]));
    }
}
