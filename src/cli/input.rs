//! Reading secret input (passwords, secret values) from stdin or a file, never from the
//! command line, where it would land in shell history and `ps`. On a terminal, echo is
//! switched off while typing.

use std::io::{IsTerminal, Read};
use std::path::Path;

use super::error::CliError;

/// Largest secret input read: the server's own limit is 64 KiB.
const MAX_INPUT: u64 = 1024 * 1024;

/// Drops one trailing line break (`\n` or `\r\n`), as `echo` and editors add.
pub fn strip_newline(mut v: Vec<u8>) -> Vec<u8> {
    if v.ends_with(b"\n") {
        v.pop();
        if v.ends_with(b"\r") {
            v.pop();
        }
    }
    v
}

/// The content of `path`.
pub fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let read = || -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_INPUT)
            .read_to_end(&mut v)?;
        Ok(v)
    };
    read().map_err(|source| CliError::ReadInput {
        path: path.to_path_buf(),
        source,
    })
}

/// Everything on stdin. On a terminal, says what is expected on stderr first and hides the
/// typing; one line is read there.
pub fn read_stdin(what: &str) -> Result<Vec<u8>, CliError> {
    let stdin = std::io::stdin();
    let stdin_err = |source| CliError::ReadInput {
        path: "stdin".into(),
        source,
    };
    if stdin.is_terminal() {
        eprint!("{what}: ");
        let _echo = EchoOff::new();
        let mut line = String::new();
        stdin.read_line(&mut line).map_err(stdin_err)?;
        eprintln!();
        return Ok(line.into_bytes());
    }
    let mut v = Vec::new();
    stdin
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut v)
        .map_err(stdin_err)?;
    Ok(v)
}

/// Terminal echo switched off (through `stty`, so no terminal crate is needed) until dropped.
struct EchoOff {
    active: bool,
}

impl EchoOff {
    fn new() -> Self {
        Self {
            active: stty("-echo"),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.active {
            stty("echo");
        }
    }
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(strip_newline(b"abc\n".to_vec()), b"abc");
        assert_eq!(strip_newline(b"abc\r\n".to_vec()), b"abc");
        assert_eq!(strip_newline(b"abc\n\n".to_vec()), b"abc\n");
        assert_eq!(strip_newline(b"abc".to_vec()), b"abc");
        assert_eq!(strip_newline(Vec::new()), b"");
    }
}
