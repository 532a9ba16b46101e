//! Exec into a bot: what may be run (checked once, all problems at once), opening an exec in
//! the bot's running container, and running a command to completion with its time bounded and
//! its output capped. The interactive kind is opened here and pumped by the HTTP layer.
//!
//! No per-bot lock is taken: an exec changes nothing botmaker records, and a shell may stay
//! open for hours. A bot stopped or deleted meanwhile simply ends the exec's output.

use std::time::Duration;

use futures_util::StreamExt;

use super::BotService;
use crate::bots::{BotError, FieldErrors};
use crate::docker::{ExecId, ExecOutput, ExecSpec};

/// Most arguments (the program included) an exec may have.
pub const MAX_EXEC_ARGS: usize = 256;
/// Most bytes all arguments together may have.
pub const MAX_EXEC_ARGV_BYTES: usize = 64 * 1024;
/// Most extra environment variables.
pub const MAX_EXEC_ENV: usize = 64;
/// Longest `user`.
pub const MAX_EXEC_USER_LEN: usize = 64;
/// Longest `workdir`.
pub const MAX_EXEC_WORKDIR_LEN: usize = 4096;
/// How long a command run to completion may take when the request names no limit.
pub const DEFAULT_EXEC_TIMEOUT_SECS: u64 = 30;
/// The longest limit a request may name.
pub const MAX_EXEC_TIMEOUT_SECS: u64 = 600;
/// Most bytes kept of each of stdout and stderr of a command run to completion; the rest is
/// read and dropped, so the command never blocks on a full pipe.
pub const EXEC_OUTPUT_CAP: usize = 1024 * 1024;

/// What a command run to completion left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Its exit code; `None` when it timed out (or closed its output without exiting).
    pub exit_code: Option<i64>,
    /// Standard output, at most [`EXEC_OUTPUT_CAP`] bytes.
    pub stdout: Vec<u8>,
    /// Standard error, at most [`EXEC_OUTPUT_CAP`] bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// Whether the time limit ended the wait. The process may still run: Docker has no call to
    /// stop one exec'd process; it ends with the container at the latest.
    pub timed_out: bool,
}

/// Checks what to run: a program, bounded arguments without NUL bytes, environment names as
/// for a bot, an absolute working directory, a plain `user[:group]`.
pub fn check_exec(spec: &ExecSpec, errors: &mut FieldErrors) {
    match spec.cmd.first() {
        None => errors.add("cmd", "is required: the program and its arguments"),
        Some(program) if program.is_empty() => errors.add("cmd[0]", "must name a program"),
        Some(_) => {}
    }
    if spec.cmd.len() > MAX_EXEC_ARGS {
        errors.add(
            "cmd",
            format!("must have at most {MAX_EXEC_ARGS} arguments"),
        );
    }
    if spec.cmd.iter().map(String::len).sum::<usize>() > MAX_EXEC_ARGV_BYTES {
        errors.add(
            "cmd",
            format!("must be at most {MAX_EXEC_ARGV_BYTES} bytes in all"),
        );
    }
    if let Some(i) = spec.cmd.iter().position(|a| a.contains('\0')) {
        errors.add(format!("cmd[{i}]"), "must not contain NUL bytes");
    }
    if spec.env.len() > MAX_EXEC_ENV {
        errors.add("env", format!("must have at most {MAX_EXEC_ENV} variables"));
    }
    crate::bots::validate::check_env(&spec.env, errors);
    if let Some(dir) = &spec.workdir {
        if !dir.starts_with('/') || dir.contains('\0') || dir.len() > MAX_EXEC_WORKDIR_LEN {
            errors.add(
                "workdir",
                format!("must be an absolute path of at most {MAX_EXEC_WORKDIR_LEN} bytes"),
            );
        }
    }
    if let Some(user) = &spec.user {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let valid = user.len() <= MAX_EXEC_USER_LEN
            && match user.split_once(':') {
                Some((u, g)) => part(u) && part(g),
                None => part(user),
            };
        if !valid {
            errors.add(
                "user",
                format!(
                    "must be a user name or uid, optionally `:group` (letters, digits, '_', \
                     '-', '.'; at most {MAX_EXEC_USER_LEN} characters)"
                ),
            );
        }
    }
}

/// The time limit a request names, checked: 1 to [`MAX_EXEC_TIMEOUT_SECS`] seconds.
pub fn check_timeout(secs: Option<u64>, errors: &mut FieldErrors) -> Duration {
    let secs = secs.unwrap_or(DEFAULT_EXEC_TIMEOUT_SECS);
    if !(1..=MAX_EXEC_TIMEOUT_SECS).contains(&secs) {
        errors.add(
            "timeout_secs",
            format!("must be 1 to {MAX_EXEC_TIMEOUT_SECS} seconds"),
        );
    }
    Duration::from_secs(secs)
}

/// Bytes kept up to a cap; what comes after is counted as cut.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap - self.bytes.len();
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

impl BotService {
    /// Creates an exec of `spec` in the bot's container, after checking `spec`.
    /// `VALIDATION_FAILED`, `NOT_FOUND` for an unknown bot, `NOT_RUNNING` (409) for a bot whose
    /// container does not run.
    pub async fn open_exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecId, BotError> {
        let mut errors = FieldErrors::default();
        check_exec(spec, &mut errors);
        errors.into_result().map_err(BotError::Validation)?;
        let (bot, _) = self.row(id).await?;
        Ok(self.inner.docker.create_exec(&bot, spec).await?)
    }

    /// Runs `exec` (opened without a terminal or stdin) until it exits or `timeout` passes,
    /// keeping at most `cap` bytes of each of its outputs.
    pub async fn run_exec(
        &self,
        exec: &ExecId,
        timeout: Duration,
        cap: usize,
    ) -> Result<ExecOutcome, BotError> {
        let docker = &self.inner.docker;
        let mut session = docker.start_exec(exec, false).await?;
        let (mut stdout, mut stderr) = (Capped::new(cap), Capped::new(cap));
        let read = async {
            while let Some(chunk) = session.output.next().await {
                match chunk? {
                    ExecOutput::Stdout(b) => stdout.push(&b),
                    ExecOutput::Stderr(b) => stderr.push(&b),
                }
            }
            Ok::<(), crate::docker::ContainerError>(())
        };
        let timed_out = match tokio::time::timeout(timeout, read).await {
            Ok(read) => {
                read?;
                false
            }
            Err(_) => true,
        };
        let exit_code = if timed_out {
            None
        } else {
            docker.exec_exit_code(exec).await?
        };
        Ok(ExecOutcome {
            exit_code,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            timed_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(spec: &ExecSpec) -> Vec<String> {
        let mut e = FieldErrors::default();
        check_exec(spec, &mut e);
        e.fields().keys().cloned().collect()
    }

    fn cmd(args: &[&str]) -> ExecSpec {
        ExecSpec {
            cmd: args.iter().map(|s| s.to_string()).collect(),
            ..ExecSpec::default()
        }
    }

    #[test]
    fn a_command_needs_a_program_and_no_nul_bytes() {
        assert!(problems(&cmd(&["/bin/sh", "-c", "echo hi"])).is_empty());
        assert_eq!(problems(&cmd(&[])), ["cmd"]);
        assert_eq!(problems(&cmd(&[""])), ["cmd[0]"]);
        assert_eq!(problems(&cmd(&["sh", "a\0b"])), ["cmd[1]"]);
        let many = vec!["x"; MAX_EXEC_ARGS + 1];
        assert_eq!(problems(&cmd(&many)), ["cmd"]);
        let long = "x".repeat(MAX_EXEC_ARGV_BYTES + 1);
        assert_eq!(problems(&cmd(&[&long])), ["cmd"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let spec = ExecSpec {
            cmd: vec![],
            env: [("1BAD".to_string(), "v".to_string())].into(),
            workdir: Some("relative".into()),
            user: Some("root; rm".into()),
            ..ExecSpec::default()
        };
        assert_eq!(problems(&spec), ["cmd", "env.1BAD", "user", "workdir"]);
    }

    #[test]
    fn users_and_workdirs_that_pass() {
        for user in ["root", "1000", "1000:1000", "node:staff", "a.b-c_d"] {
            let spec = ExecSpec {
                user: Some(user.into()),
                workdir: Some("/home/node".into()),
                ..cmd(&["id"])
            };
            assert!(problems(&spec).is_empty(), "{user}");
        }
        for user in ["", ":", "a:", ":b", "a:b:c", "a b"] {
            let spec = ExecSpec {
                user: Some(user.into()),
                ..cmd(&["id"])
            };
            assert_eq!(problems(&spec), ["user"], "{user:?}");
        }
    }

    #[test]
    fn timeouts_are_bounded() {
        let t = |s| {
            let mut e = FieldErrors::default();
            let d = check_timeout(s, &mut e);
            (d.as_secs(), e.is_empty())
        };
        assert_eq!(t(None), (DEFAULT_EXEC_TIMEOUT_SECS, true));
        assert_eq!(t(Some(1)), (1, true));
        assert_eq!(
            t(Some(MAX_EXEC_TIMEOUT_SECS)),
            (MAX_EXEC_TIMEOUT_SECS, true)
        );
        assert!(!t(Some(0)).1);
        assert!(!t(Some(MAX_EXEC_TIMEOUT_SECS + 1)).1);
    }

    #[test]
    fn output_is_kept_up_to_the_cap_and_the_rest_marks_it_cut() {
        let mut c = Capped::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"de");
        assert!(!c.truncated);
        assert_eq!(c.bytes, b"abcde");
        c.push(b"f");
        assert!(c.truncated);
        assert_eq!(c.bytes, b"abcde");
        let mut c = Capped::new(2);
        c.push(b"xyz");
        assert_eq!((c.bytes.as_slice(), c.truncated), (&b"xy"[..], true));
    }
}
