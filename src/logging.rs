//! The server's log: where it goes (stderr), its format (`--log-format text|json`) and whether
//! it is coloured. Owns nothing else; what gets logged is each module's business.

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Installs the global subscriber for `botmaker serve`. An invalid `filter` falls back to
/// `info` rather than stopping the server.
///
/// Colours (ANSI escapes) only when stderr is a terminal and `NO_COLOR` is unset: a log
/// redirected to a file, a pipe, journald or `docker logs` must read as plain text.
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .init(),
        // Event fields at the top level (`{"timestamp", "level", "message", "bot", ...}`), so
        // a collector can index them without knowing tracing's nesting.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .init(),
    }
}

/// Whether text logs get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to
/// anything non-empty (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }
}
