//! The shape of the client command line: every subcommand and flag. Values are validated into
//! the richer types of [`super::values`] while parsing, before anything is sent. No I/O
//! happens here.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::{EnvPair, PortArg, SecretFileArg, ServerUrl, Since, parse_json_object};
use crate::BotId;
use crate::secrets::SecretName;

/// Extra help of `apply`: the file format and what counts as a change.
const APPLY_HELP: &str = r#"Fleet file (TOML): one [[bot]] table per bot, with the fields of a create request:

  [[bot]]
  id = "support"                  # required: a DNS label
  image = "registry/bot:1.4"
  env = { MODE = "support" }
  ports = [{ container = 8080, host = 18080 }]
  limits = { memory_mb = 256, cpus = 0.5 }
  secrets = ["API_KEY"]           # names only; values of missing ones: DIR/support/API_KEY
  start = true                    # false: keep it stopped

Also: name, template, command, health_check, settings, stop_timeout_secs. A field left out
is not managed (neither set nor compared); `env = {}` clears the environment. A changed field
is PATCHed, which recreates the bot's container; a changed image goes through the health-gated
upgrade (see `botmaker upgrade --help`) and is rolled back if the new container fails; a
template change is refused. Secrets are compared by name only. Prints one line per change and
a summary; exits 1 if any bot failed.

--prune lists the bots it would delete and asks before changing anything; where nobody can
answer (stdin or stderr not a terminal) it refuses with exit 2 unless --yes is given."#;

/// Where to find the server and how to authenticate (global: accepted by every subcommand).
#[derive(Debug, Clone, Default, Args)]
pub struct Connection {
    /// botmaker server URL [default: the one saved by `login`, else http://127.0.0.1:7100]
    #[arg(long, env = "BOTMAKER_URL", global = true, value_parser = ServerUrl::parse,
          help_heading = "Connection")]
    pub server: Option<ServerUrl>,

    /// API or session token [default: the one `login` saved for this server]
    #[arg(
        long,
        env = "BOTMAKER_TOKEN",
        global = true,
        hide_env_values = true,
        help_heading = "Connection"
    )]
    pub token: Option<String>,

    /// CLI config file [default: $XDG_CONFIG_HOME/botmaker/cli.json, else
    /// ~/.config/botmaker/cli.json]
    #[arg(
        long = "cli-config",
        env = "BOTMAKER_CONFIG",
        global = true,
        value_name = "PATH",
        help_heading = "Connection"
    )]
    pub config: Option<PathBuf>,
}

/// The client subcommands (everything but `serve`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in: reads the admin password from stdin (never the command line) and saves a
    /// session token for this server in the CLI config file (mode 0600).
    Login(LoginArgs),
    /// End the saved session and forget its token.
    Logout,
    /// Exit 0 if the server's /health answers 200, else 1 (for a Docker HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// List, create, inspect, start, stop and remove bots, and read their logs.
    #[command(subcommand)]
    Bots(BotsCommand),
    /// A bot's secrets: values are read from stdin or a file, and only names are ever shown.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Latest CPU, memory, network and process counts of running bots.
    Stats(StatsArgs),
    /// The nodes bots run on: state, availability, memory and bots per node (one node, the
    /// engine, on the Docker backend).
    Nodes(JsonArg),
    /// Containers, secrets and workspaces that belong to no bot.
    Orphans(JsonArg),
    /// Remove every orphan.
    Cleanup(JsonArg),
    /// API tokens for scripts and CI.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Make the server match a fleet file: create missing bots, update changed ones.
    #[command(after_help = APPLY_HELP)]
    Apply(ApplyArgs),
    /// Write the server's bots as a fleet file (secret names, never values).
    Export(ExportArgs),
    /// LLM providers the proxy forwards to (their keys stay in botmaker, never in bots).
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// LLM tokens, requests and cost, per bot (or one bot's, per day and model).
    Usage(UsageArgs),
    /// The audit log: who changed what, to which bot, when, and how it ended (newest first).
    Audit(AuditArgs),
    /// Rolling upgrade: bots one (or --max-unavailable) at a time, each kept only if healthy.
    #[command(after_help = UPGRADE_HELP)]
    Upgrade(UpgradeArgs),
    /// Write a full backup (registry, every bot's secrets and workspace) from the server to a
    /// file; bring it back with `botmaker restore`.
    Backup(BackupArgs),
    /// Where alerts about bots go (webhook, Slack, Discord, Telegram): list, add, remove,
    /// send a test, and see recent deliveries.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
}

/// `notifications ...`.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Every channel (never a signing secret or bot token).
    #[command(visible_alias = "ls")]
    List(JsonArg),
    /// Add a channel. Secrets (a webhook's signing secret, a Telegram bot token) are read from
    /// a file or stdin, never from the command line.
    Add {
        /// A unique name.
        name: String,
        /// `webhook`, `slack`, `discord` or `telegram`.
        #[arg(long)]
        kind: String,
        /// The webhook URL; for telegram the Bot API's base URL (default
        /// https://api.telegram.org).
        #[arg(long)]
        url: Option<String>,
        /// Telegram: the chat to post in.
        #[arg(long)]
        chat_id: Option<String>,
        /// Telegram: read the bot token from this file (default: stdin).
        #[arg(long)]
        bot_token_file: Option<PathBuf>,
        /// Webhook: read a signing secret from this file; requests then carry
        /// `X-Botmaker-Signature: sha256=<hex HMAC-SHA256 of the body>`.
        #[arg(long, conflicts_with = "signing_secret_stdin")]
        signing_secret_file: Option<PathBuf>,
        /// Webhook: read the signing secret from stdin.
        #[arg(long)]
        signing_secret_stdin: bool,
        /// Only these events (comma-separated: crash_loop, oom_killed, exited, unhealthy,
        /// degraded, missing, recovered, budget_exceeded, upgrade_failed) [default: every
        /// event].
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Change a channel: only the options given (its kind stays). Secrets are read from a
    /// file or stdin and replace the stored ones; without them the stored ones stay.
    Edit {
        /// The channel's id.
        id: i64,
        /// A new unique name.
        #[arg(long)]
        name: Option<String>,
        /// A new URL (for telegram the Bot API's base URL).
        #[arg(long)]
        url: Option<String>,
        /// Telegram: a new chat.
        #[arg(long)]
        chat_id: Option<String>,
        /// Telegram: read a new bot token from this file.
        #[arg(long)]
        bot_token_file: Option<PathBuf>,
        /// Webhook: read a new signing secret from this file.
        #[arg(long, conflicts_with_all = ["signing_secret_stdin", "unsigned"])]
        signing_secret_file: Option<PathBuf>,
        /// Webhook: read a new signing secret from stdin.
        #[arg(long, conflicts_with = "unsigned")]
        signing_secret_stdin: bool,
        /// Webhook: stop signing (the signing secret is deleted).
        #[arg(long)]
        unsigned: bool,
        /// Only these events from now on (comma-separated, as for `add`).
        #[arg(long, value_delimiter = ',', conflicts_with = "all_events")]
        events: Vec<String>,
        /// Every event from now on, including ones added later.
        #[arg(long)]
        all_events: bool,
    },
    /// Remove a channel, its secrets and its delivery history.
    #[command(visible_alias = "remove")]
    Rm {
        /// The channel's id.
        id: i64,
    },
    /// Send a test message now and say how it went (exit 1 if it failed).
    Test {
        /// The channel's id.
        id: i64,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// A channel's recent delivery attempts, newest first.
    Deliveries {
        /// The channel's id.
        id: i64,
        /// At most this many (1-200).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `providers ...`.
#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Every provider (never a key) and where the proxy listens.
    #[command(visible_alias = "ls")]
    List(JsonArg),
    /// Add a provider, or replace the one of that name. The API key is read from stdin or
    /// --api-key-file, never from the command line; on a replace, a new key takes effect at
    /// the next request.
    Add {
        /// The name bots refer to it by (an OpenClaw provider id such as `openai` routes that
        /// provider's OpenClaw bots through the proxy).
        name: String,
        /// `openai`, `anthropic` or `openai-compatible`.
        #[arg(long)]
        kind: String,
        /// Upstream base URL with its version prefix (required for openai-compatible).
        #[arg(long)]
        base_url: Option<String>,
        /// Read the API key from this file instead of stdin.
        #[arg(long, conflicts_with = "no_key")]
        api_key_file: Option<PathBuf>,
        /// The provider needs no key (a local openai-compatible server).
        #[arg(long)]
        no_key: bool,
        /// A price per million tokens: MODEL=INPUT,OUTPUT (repeatable; `*` for any other).
        #[arg(long, value_parser = super::values::PriceArg::parse)]
        price: Vec<super::values::PriceArg>,
    },
    /// Remove a provider and its key.
    #[command(visible_alias = "remove")]
    Rm {
        /// The provider.
        name: String,
        /// Also when bots use it: their keys are revoked (their LLM calls then fail).
        #[arg(long)]
        force: bool,
    },
}

/// `usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// One bot's usage, per day, provider and model.
    #[arg(long)]
    pub bot: Option<BotId>,
    /// First UTC day counted (YYYY-MM-DD) [default: the 1st of this month].
    #[arg(long)]
    pub since: Option<chrono::NaiveDate>,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this bot.
    #[arg(long)]
    pub bot: Option<BotId>,
    /// Only this action (create, update, start, stop, secret_set, login, token_create...).
    #[arg(long)]
    pub action: Option<String>,
    /// At most this many entries (1 to 1000) [default: 100].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Only entries older than this cursor (printed after a full page).
    #[arg(long)]
    pub before: Option<i64>,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The archive to write (mode 0600; replaced only once whole and verified).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Encrypt with the passphrase in this file (age format; the passphrase stays here).
    #[arg(long, env = "BOTMAKER_BACKUP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Extra help of `upgrade`.
const UPGRADE_HELP: &str = "Each bot is upgraded as `bots upgrade` does: its old container stops, a new one \
starts from its stored config with the new image and must stay up (and pass its probe) before \
the deadline, or it is removed and the old one runs again. Without --image only bots whose \
configured tag now names another image (image_drift) are upgraded. Prints one line per bot \
and `upgraded N, rolled back N, unchanged N, failed N, skipped N`; exits 1 if any bot was \
rolled back or failed.";

/// `upgrade`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["template", "bots", "all"])))]
pub struct UpgradeArgs {
    /// The image every selected bot gets; default: each bot's own reference again (only bots
    /// whose tag moved are touched).
    #[arg(long)]
    pub image: Option<String>,
    /// Every bot of this template.
    #[arg(long)]
    pub template: Option<String>,
    /// These bots (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub bots: Option<Vec<BotId>>,
    /// Every bot.
    #[arg(long)]
    pub all: bool,
    /// Bots being upgraded (so possibly down) at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_unavailable: u16,
    /// Start no further bot once one has been rolled back or failed.
    #[arg(long)]
    pub stop_on_failure: bool,
    /// Seconds each new container has to become healthy [server default: 300].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
}

/// `--json`.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonArg {
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the password from this file instead of stdin.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// `healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

/// `bots ...`.
#[derive(Debug, Subcommand)]
pub enum BotsCommand {
    /// A table of every bot: id, state, health, uptime, restarts, image.
    #[command(visible_alias = "ls")]
    List(JsonArg),
    /// Create a bot from flags, a spec file, or both (flags win).
    Create(Box<CreateArgs>),
    /// One bot in detail.
    Show {
        /// The bot.
        id: BotId,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start bots (starting a running bot is fine).
    Start(IdsArg),
    /// Stop bots (stopping a stopped bot is fine).
    Stop(IdsArg),
    /// Restart bots.
    Restart(IdsArg),
    /// Delete bots: container, secrets, workspace and record.
    #[command(visible_alias = "delete")]
    Rm(IdsArg),
    /// A bot's logs; `-f` keeps following, across restarts, until interrupted.
    Logs(LogsArgs),
    /// Replace a bot's container by one of a new image, kept only if it proves healthy (the
    /// old one runs again otherwise; exit 1).
    Upgrade(BotUpgradeArgs),
    /// Write one bot (record, secrets, workspace) to an archive, to move it to another
    /// botmaker with `bots import`.
    Backup(BotBackupArgs),
    /// Create a bot from an archive of `bots backup` (its id must be free here).
    Import(BotImportArgs),
    /// Run a command in a running bot, like `docker exec`; exits with the command's exit code.
    #[command(after_help = EXEC_HELP)]
    Exec(Box<ExecArgs>),
}

/// `bots backup`.
#[derive(Debug, Args)]
pub struct BotBackupArgs {
    /// The bot.
    pub id: BotId,
    /// The archive to write (mode 0600; replaced only once whole and verified).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Encrypt with the passphrase in this file.
    #[arg(long, env = "BOTMAKER_BACKUP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `bots import`.
#[derive(Debug, Args)]
pub struct BotImportArgs {
    /// The archive (from `bots backup`).
    pub file: PathBuf,
    /// Its passphrase, if it is encrypted.
    #[arg(long, env = "BOTMAKER_BACKUP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `bots upgrade`.
#[derive(Debug, Args)]
pub struct BotUpgradeArgs {
    /// The bot.
    pub id: BotId,
    /// The image (a tag or `repo@sha256:...`); default: its configured reference again, to
    /// pick up a tag that moved.
    #[arg(long)]
    pub image: Option<String>,
    /// Seconds the new container has to become healthy [server default: 300].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
    /// Print the outcome and the bot as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Extra help of `bots exec`.
const EXEC_HELP: &str = "\
Examples:
  botmaker bots exec support -- ls -la /workspace      # prints its output, exits with its code
  botmaker bots exec -it support -- sh                 # a shell, as with docker exec -it

Without -i or -t the command runs to completion (at most --timeout seconds) and its stdout and
stderr are printed after it ends, each cut at 1 MiB (a note says so). With -t it gets a
terminal: this one, switched to raw mode until the session ends (also on errors and signals),
with its size following the window. With -i alone, stdin is piped to it until end of file.

Exit codes: the command's own; 124 when it did not end within --timeout (it may still run in
the bot); for botmaker's own failures, those listed under `botmaker --help`.";

/// One or more bot ids.
#[derive(Debug, Args)]
pub struct IdsArg {
    /// The bots.
    #[arg(required = true)]
    pub ids: Vec<BotId>,
}

/// `bots create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bot id (a DNS label); may come from the spec file instead.
    pub id: Option<BotId>,
    /// Spec file: one bot as a `[[bot]]` table of a fleet file has it, in TOML (or JSON when
    /// the name ends in .json). Secret names it declares are read from --secrets-dir.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Template: generic (default) or openclaw.
    #[arg(long)]
    pub template: Option<String>,
    /// Image (already present on the engine; botmaker never pulls).
    #[arg(long)]
    pub image: Option<String>,
    /// Environment variable KEY=VALUE (repeatable; not for credentials: see --secret-file).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = EnvPair::parse)]
    pub env: Vec<EnvPair>,
    /// Published port `[HOST_IP:][HOST:]CONTAINER[/udp][,publish=host|mesh]` (repeatable;
    /// `publish` matters on Swarm only: the bot's node, or the routing mesh).
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = PortArg::parse)]
    pub ports: Vec<PortArg>,
    /// Secret NAME whose value is the content of PATH (repeatable).
    #[arg(long = "secret-file", value_name = "NAME=PATH", value_parser = SecretFileArg::parse)]
    pub secret_files: Vec<SecretFileArg>,
    /// Directory of secret values for names the spec file declares: `DIR/<bot-id>/<NAME>`.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MIB")]
    pub memory: Option<u64>,
    /// CPU limit in cores.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Process limit.
    #[arg(long)]
    pub pids: Option<i64>,
    /// Template settings as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub settings: Option<serde_json::Value>,
    /// Node to run on (host name or Swarm node id): a placement constraint on `--backend
    /// swarm`, where the workspace is then a volume on that node.
    #[arg(long, value_name = "NODE", help_heading = "Placement")]
    pub node: Option<String>,
    /// Node label the node must carry, KEY=VALUE (repeatable).
    #[arg(long = "node-label", value_name = "KEY=VALUE", value_parser = EnvPair::parse,
          help_heading = "Placement")]
    pub node_labels: Vec<EnvPair>,
    /// Port botmaker probes over HTTP for the bot's health (its `health_check`); the other
    /// --health-* flags need it, or a health_check in the spec file.
    #[arg(long, value_name = "PORT", help_heading = "Health check",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub health_port: Option<u16>,
    /// Path of the health endpoint [default: /healthz].
    #[arg(long, value_name = "PATH", help_heading = "Health check")]
    pub health_path: Option<String>,
    /// Seconds between two probes [default: 30].
    #[arg(long, value_name = "SECS", help_heading = "Health check")]
    pub health_interval: Option<u64>,
    /// Seconds after a start before failed probes count [default: 180].
    #[arg(long, value_name = "SECS", help_heading = "Health check")]
    pub health_start_period: Option<u64>,
    /// Consecutive failed probes that make the bot unhealthy [default: 3].
    #[arg(long, value_name = "N", help_heading = "Health check")]
    pub health_failure_threshold: Option<u32>,
    /// Create the container but do not start it.
    #[arg(long)]
    pub no_start: bool,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    /// Command to run instead of the image's (exec form), after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `bots logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The bot.
    pub id: BotId,
    /// Keep printing new lines, across restarts, until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines [server default: 500].
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since T: Unix seconds, RFC 3339, or an age such as 30s, 10m, 2h, 1d.
    #[arg(long, value_name = "T", value_parser = Since::parse)]
    pub since: Option<Since>,
    /// Prefix each line with its timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,
}

/// `bots exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The bot (it must be running).
    pub id: BotId,
    /// Keep stdin open and send it to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal (needs one on stdin; usually with -i: `-it`).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Extra environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = EnvPair::parse)]
    pub env: Vec<EnvPair>,
    /// Working directory inside the container (absolute).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name, uid or user:group.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Seconds to wait for a command run without -i/-t (1-600) [server default: 30].
    #[arg(long, value_name = "SECS", conflicts_with_all = ["interactive", "tty"],
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: Option<u64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Set (create or rotate) a secret; the value comes from stdin or --file.
    Set {
        /// The bot.
        id: BotId,
        /// Secret name (`A-Z0-9_`, starting with a letter).
        name: SecretName,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Keep a trailing newline (by default one trailing newline is dropped).
        #[arg(long)]
        raw: bool,
    },
    /// The names of a bot's secrets.
    #[command(visible_alias = "ls")]
    List {
        /// The bot.
        id: BotId,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret.
    #[command(visible_alias = "delete")]
    Rm {
        /// The bot.
        id: BotId,
        /// Secret name.
        name: SecretName,
    },
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only these bots.
    pub ids: Vec<BotId>,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token; it is printed once, on stdout, and never again.
    Create {
        /// A label: "ci", "laptop", ...
        name: String,
    },
    /// Issued tokens (never their values).
    #[command(visible_alias = "ls")]
    List(JsonArg),
    /// Revoke a token by id.
    #[command(visible_alias = "rm")]
    Revoke {
        /// The token's id (see `tokens list`).
        id: String,
    },
}

/// `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The fleet file (TOML, `[[bot]]` tables).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Values of secrets of bots being created (or of declared secrets a bot lacks):
    /// `DIR/<bot-id>/<NAME>`, one trailing newline dropped.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Also delete bots the file does not declare (asks first on a terminal; elsewhere
    /// needs --yes).
    #[arg(long)]
    pub prune: bool,
    /// Delete what --prune would delete without asking: required when stdin is not a
    /// terminal (a script, CI) and --prune would delete bots.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Bots changed at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write here instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::{Args as _, Subcommand as _};
        let cmd = Connection::augment_args(clap::Command::new("botmaker"));
        Command::augment_subcommands(cmd).debug_assert();
    }
}
