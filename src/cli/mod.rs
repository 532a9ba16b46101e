//! The `botmaker` command line client: every subcommand but `serve`. It talks to a running
//! server's REST API only (never to Docker, the store or the secrets directory), so it works
//! the same against a local or a remote server.
//!
//! Flow: clap parses [`args`] into validated [`values`]; [`config`] resolves the server and token;
//! [`client::ApiClient`] sends requests; each command module prints results; [`CliError`]
//! turns any failure into one line on stderr and a documented exit code
//! ([`EXIT_CODES_HELP`]).

mod admin;
mod apply;
pub mod args;
mod audit;
mod backup;
mod bots;
pub mod client;
pub mod config;
mod error;
mod exec;
pub mod fleet;
mod input;
mod llm;
mod logs;
mod notifications;
mod output;
pub mod plan;
mod progress;
mod secrets;
mod session;
pub mod sse;
pub mod upgrade;
pub mod values;

use std::process::ExitCode;

pub use args::{Command, Connection};
pub use error::{CliError, EXIT_CODES_HELP, report_parse_error};
pub use values::{DEFAULT_SERVER, ServerUrl};

use client::ApiClient;

/// Runs a client command to completion and returns the process exit code.
pub fn run(conn: Connection, command: Command) -> ExitCode {
    quiet_on_broken_pipe();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("botmaker: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let healthcheck = matches!(command, Command::Healthcheck(_));
    match rt.block_on(dispatch(conn, command)) {
        Ok(code) => code,
        // A Docker HEALTHCHECK knows only 0 (healthy) and 1 (unhealthy); 2 is reserved.
        Err(e) if healthcheck => {
            e.report();
            ExitCode::from(1)
        }
        Err(e) => e.report(),
    }
}

/// Runs `command`; its exit code is success unless the command has its own (`bots exec`).
async fn dispatch(conn: Connection, command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Bots(args::BotsCommand::Exec(a)) => exec::exec(&client(&conn)?, *a).await,
        other => dispatch_plain(conn, other)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

fn client(conn: &Connection) -> Result<ApiClient, CliError> {
    let r = config::resolve(conn)?;
    ApiClient::new(r.server, r.token)
}

async fn dispatch_plain(conn: Connection, command: Command) -> Result<(), CliError> {
    let client = || client(&conn);
    match command {
        Command::Login(a) => session::login(&conn, &a).await,
        Command::Logout => session::logout(&conn).await,
        Command::Healthcheck(a) => session::healthcheck(&conn, &a).await,
        Command::Bots(cmd) => bots::run(&client()?, cmd).await,
        Command::Secrets(cmd) => secrets::run(&client()?, cmd).await,
        Command::Stats(a) => admin::stats(&client()?, &a).await,
        Command::Nodes(a) => admin::nodes(&client()?, a.json).await,
        Command::Orphans(a) => admin::orphans(&client()?, a.json).await,
        Command::Cleanup(a) => admin::cleanup(&client()?, a.json).await,
        Command::Tokens(cmd) => admin::tokens(&client()?, cmd).await,
        Command::Apply(a) => apply::apply(&client()?, &a).await,
        Command::Export(a) => apply::export(&client()?, &a).await,
        Command::Providers(cmd) => llm::providers(&client()?, cmd).await,
        Command::Usage(a) => llm::usage(&client()?, &a).await,
        Command::Audit(a) => audit::audit(&client()?, &a).await,
        Command::Upgrade(a) => upgrade::rolling(&client()?, &a).await,
        Command::Backup(a) => backup::backup(&client()?, &a).await,
        Command::Notifications(cmd) => notifications::run(&client()?, cmd).await,
    }
}

/// `botmaker bots logs -f | head` must end quietly when `head` exits. Rust ignores SIGPIPE,
/// so `println!` panics on a closed stdout instead; this hook turns exactly that panic into a
/// silent exit 0, as a shell user expects. (The payload's text is all a panic hook gets.)
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
