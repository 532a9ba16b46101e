//! `CliError`: every way a client command fails, and the one place where a failure becomes an
//! exit code. Messages are single lines meant for a person reading a terminal.

use std::path::PathBuf;
use std::process::ExitCode;

/// The exit codes, as `--help` shows them (keep in step with [`CliError::exit_code`]).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed: the server refused it, or some bots of an `apply` failed
  2  usage error: bad flags, or an unreadable or invalid input file
  3  cannot reach the server (not running, wrong --server / BOTMAKER_URL)
  4  not logged in, or the token or password was rejected (run `botmaker login`)

`healthcheck` exits 0 (healthy) or 1 (anything else), as a Docker HEALTHCHECK expects.";

/// A failed client command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A flag or input file is wrong; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// An input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadInput {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not answer at all.
    #[error(
        "cannot reach the botmaker server at {server}: {cause}; is `botmaker serve` running \
         there? (set --server or BOTMAKER_URL)"
    )]
    Unreachable {
        /// The server tried.
        server: String,
        /// The innermost cause (connection refused, timed out, ...).
        cause: String,
    },
    /// No token is configured.
    #[error(
        "not logged in to {server}: run `botmaker login --server {server}`, or pass --token / \
         set BOTMAKER_TOKEN"
    )]
    NotLoggedIn {
        /// The server a token is needed for.
        server: String,
    },
    /// The server answered 401.
    #[error("{message} [{code}]")]
    Unauthorized {
        /// Stable code (`UNAUTHORIZED`, `INVALID_PASSWORD`).
        code: String,
        /// What the server said, or what to do.
        message: String,
    },
    /// The server answered with an error.
    #[error("{message} [{code}]")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code from the body (`NOT_FOUND`, `VALIDATION_FAILED`, ...).
        code: String,
        /// The body's `error`, on one line.
        message: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from {server}: {detail}")]
    Protocol {
        /// The server's URL, so the message says which server misbehaved.
        server: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file operation failed (saving the config, writing an export).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Several things failed; each was already reported on its own line.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// A usage error with this message.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The process exit code for this failure (documented in [`EXIT_CODES_HELP`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api { .. } | Self::Protocol { .. } | Self::Io { .. } | Self::Failed(_) => 1,
            Self::Usage(_) | Self::ReadInput { .. } => 2,
            Self::Unreachable { .. } => 3,
            Self::NotLoggedIn { .. } | Self::Unauthorized { .. } => 4,
        }
    }

    /// Prints the error as one line on stderr and returns its exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("botmaker: error: {}", one_line(&self.to_string()));
        ExitCode::from(self.exit_code())
    }
}

/// Reports a command-line parse error (exit 2) as one line, like every other error: clap's own
/// rendering is a paragraph of error, usage and tip. `--help` and `--version` print as usual.
pub fn report_parse_error(e: &clap::Error) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let first = one_line(first.trim_start_matches("error:"));
    eprintln!("botmaker: error: {first} (see --help)");
    ExitCode::from(2)
}

/// `s` with line breaks folded into spaces, so an error never spans lines.
pub fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_table() {
        assert_eq!(CliError::usage("x").exit_code(), 2);
        let unreachable = CliError::Unreachable {
            server: "s".into(),
            cause: "c".into(),
        };
        assert_eq!(unreachable.exit_code(), 3);
        assert_eq!(CliError::NotLoggedIn { server: "s".into() }.exit_code(), 4);
        let api = CliError::Api {
            status: 404,
            code: "NOT_FOUND".into(),
            message: "m".into(),
        };
        assert_eq!(api.exit_code(), 1);
        for code in 0..=4 {
            assert!(EXIT_CODES_HELP.contains(&format!("  {code}  ")));
        }
    }

    #[test]
    fn messages_are_folded_onto_one_line() {
        assert_eq!(one_line("a\n  b\r\n\nc"), "a b c");
    }
}
