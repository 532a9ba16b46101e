//! The `botmaker` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use botmaker::cli::{self, Connection, EXIT_CODES_HELP};
use botmaker::config::ServeConfig;
use clap::{Parser, Subcommand};

/// Runs a fleet of AI chat bots on a Docker Engine, one container per bot.
#[derive(Parser)]
#[command(name = "botmaker", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the botmaker server (REST API, dashboard, reconciler).
    Serve(Box<ServeConfig>),
    /// Restore a full backup into a data directory (server stopped; the next `serve` on it
    /// recreates every bot's container).
    Restore(botmaker::backup::restore::RestoreArgs),
    /// Client commands: talk to a running server's API.
    #[command(flatten)]
    Client(cli::Command),
}

fn main() -> ExitCode {
    // Before anything else, while this is the only thread (see the module's doc for why).
    let arenas = botmaker::malloc_tuning::bound_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_parse_error(&e),
    };
    match cli.command {
        Command::Serve(config) => serve(*config, arenas),
        Command::Restore(args) => {
            botmaker::backup::restore::run(args, botmaker::bots::templates::owner_of)
        }
        Command::Client(command) => cli::run(cli.connection, command),
    }
}

fn serve(config: ServeConfig, arenas: botmaker::malloc_tuning::ArenaBound) -> ExitCode {
    botmaker::logging::init(&config.log, config.log_format);
    botmaker::malloc_tuning::log_arena_bound(arenas);
    // Only the server: a client command exits before a trim would matter.
    if !botmaker::malloc_tuning::start_trimmer() {
        tracing::debug!(
            "no malloc_trim on this target: freed memory returns as the allocator decides"
        );
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("botmaker: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        let server = match botmaker::serve::Server::prepare(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("botmaker: {e}");
                return ExitCode::from(1);
            }
        };
        match server.run(botmaker::serve::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("botmaker: server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
