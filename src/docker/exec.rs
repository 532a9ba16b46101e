//! Running a command inside a bot's running container, as `docker exec` does: create an exec
//! instance, start it attached (with or without a terminal), resize its terminal, read its
//! exit code.
//!
//! Only a running container this instance owns gets an exec (the same ownership check as every
//! lifecycle call), and an [`ExecId`] can only be made here, so resize and inspect can never
//! reach an exec instance of a container botmaker does not own. Every call has a timeout; the
//! attached stream itself has none, since a shell may be quiet for hours: its caller bounds it.
//!
//! Engine API: <https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Exec>.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::io::AsyncWrite;

use super::error::{ContainerError, Op, classify};
use super::{ContainerState, ContainerStatus, DockerService};
use crate::BotId;

/// How long [`DockerService::exec_exit_code`] waits for Docker to record an exit after the
/// exec's output has ended.
pub const EXIT_CODE_WAIT: Duration = Duration::from_secs(5);

/// What to run, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// Program and arguments (exec form: no shell is involved).
    pub cmd: Vec<String>,
    /// Extra environment variables, on top of the container's.
    pub env: BTreeMap<String, String>,
    /// Working directory (absolute); the container's when `None`.
    pub workdir: Option<String>,
    /// `user`, `uid` or `user:group`; the container's user when `None`.
    pub user: Option<String>,
    /// Allocate a terminal: output is one stream (no stdout/stderr split) and it can be resized.
    pub tty: bool,
    /// Attach stdin, so the caller can write to the process.
    pub stdin: bool,
}

/// An exec instance made by [`DockerService::create_exec`] in a container this instance owns.
/// It cannot be built from a string elsewhere: resize and inspect take only these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecId {
    id: String,
    bot_id: BotId,
}

impl ExecId {
    /// Docker's id of the exec instance.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The bot whose container it runs in.
    pub fn bot_id(&self) -> &BotId {
        &self.bot_id
    }
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtySize {
    /// Height in lines.
    pub rows: u16,
    /// Width in character columns.
    pub cols: u16,
}

/// A chunk of an exec's output. With a terminal everything is `Stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    /// Standard output (or the terminal).
    Stdout(Bytes),
    /// Standard error (only without a terminal).
    Stderr(Bytes),
}

/// An exec's output until the process closes it (usually: exits). Has no time limit.
pub type ExecOutputStream = BoxStream<'static, Result<ExecOutput, ContainerError>>;

/// An exec's stdin. Shutting it down closes stdin (the process reads end of file); without
/// `stdin` in the spec, writes go nowhere.
pub type ExecInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A started, attached exec: its output, and its stdin when the spec asked for it.
pub struct ExecSession {
    /// See [`ExecOutputStream`].
    pub output: ExecOutputStream,
    /// See [`ExecInput`].
    pub input: ExecInput,
}

/// An exec instance as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStatus {
    /// Whether the process is still running.
    pub running: bool,
    /// Its exit code, once it has exited.
    pub exit_code: Option<i64>,
}

impl DockerService {
    /// Creates an exec instance running `spec` in the bot's container (not started yet).
    ///
    /// `NOT_RUNNING` when the bot has no container or it is not running (stopped, paused,
    /// restarting); `NOT_OWNED` when the container of that name is not this instance's. The
    /// exec is created in the container inspected here (by id, not by name), so a container
    /// swapped in under the same name meanwhile is never reached.
    pub async fn create_exec(
        &self,
        bot_id: &BotId,
        spec: &ExecSpec,
    ) -> Result<ExecId, ContainerError> {
        let not_running = |state: &str| ContainerError::NotRunning {
            bot_id: bot_id.to_string(),
            state: state.to_string(),
        };
        let Some(info) = self.inspect_owned(bot_id).await? else {
            if let Some(s) = &self.swarm
                && s.runs_elsewhere(self, bot_id).await?
            {
                return Err(super::swarm::unsupported(
                    "exec into a bot whose task runs on another node than the manager",
                ));
            }
            return Err(not_running("no container"));
        };
        let status = ContainerStatus::from_inspect(info);
        if status.state != ContainerState::Running {
            return Err(not_running(&format!("{:?}", status.state).to_lowercase()));
        }
        let options = CreateExecOptions {
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(spec.cmd.clone()),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            ..Default::default()
        };
        let created = self
            .call(
                Op::ExecCreate,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.create_exec(&status.id, options),
            )
            .await?;
        Ok(ExecId {
            id: created.id,
            bot_id: bot_id.clone(),
        })
    }

    /// Starts `exec` attached. Only the start (the connection upgrade) is time-limited.
    ///
    /// A program that cannot be run (not in the image, a bad user or working directory) still
    /// starts as far as Docker is concerned: its reason comes as output and its exit code is
    /// 126 or 127, as with `docker exec`.
    pub async fn start_exec(
        &self,
        exec: &ExecId,
        tty: bool,
    ) -> Result<ExecSession, ContainerError> {
        let options = StartExecOptions {
            detach: false,
            tty,
            output_capacity: None,
        };
        let started = self
            .call(
                Op::ExecStart,
                exec.bot_id.as_str(),
                self.call_timeout,
                self.docker.start_exec(&exec.id, Some(options)),
            )
            .await?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(ContainerError::ExecFailed {
                bot_id: exec.bot_id.to_string(),
                message: "Docker started the exec detached".into(),
            });
        };
        let host = self.host.clone();
        let bot = exec.bot_id.to_string();
        let output = output
            .filter_map(move |chunk| {
                let item = match chunk {
                    Ok(out) => split_output(out).map(Ok),
                    Err(e) => Some(Err(classify(&host, Op::ExecStart, &bot, e))),
                };
                std::future::ready(item)
            })
            .boxed();
        Ok(ExecSession { output, input })
    }

    /// Sets the terminal size of a running `exec` started with a terminal.
    pub async fn resize_exec(&self, exec: &ExecId, size: TtySize) -> Result<(), ContainerError> {
        let options = ResizeExecOptions {
            height: size.rows,
            width: size.cols,
        };
        self.call(
            Op::ExecResize,
            exec.bot_id.as_str(),
            self.call_timeout,
            self.docker.resize_exec(&exec.id, options),
        )
        .await
    }

    /// Whether `exec` still runs, and its exit code once it has exited.
    pub async fn inspect_exec(&self, exec: &ExecId) -> Result<ExecStatus, ContainerError> {
        let r = self
            .call(
                Op::ExecInspect,
                exec.bot_id.as_str(),
                self.call_timeout,
                self.docker.inspect_exec(&exec.id),
            )
            .await?;
        let running = r.running.unwrap_or(false);
        Ok(ExecStatus {
            running,
            exit_code: if running { None } else { r.exit_code },
        })
    }

    /// The exit code of `exec` after its output ended: Docker records the exit a moment after
    /// it closes the stream, so this asks a few times, for at most [`EXIT_CODE_WAIT`]. `None`
    /// if the process still runs then (it closed its output but did not exit).
    pub async fn exec_exit_code(&self, exec: &ExecId) -> Result<Option<i64>, ContainerError> {
        let deadline = tokio::time::Instant::now() + EXIT_CODE_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            let status = self.inspect_exec(exec).await?;
            if !status.running || tokio::time::Instant::now() >= deadline {
                return Ok(status.exit_code);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// One decoded frame as [`ExecOutput`]; a terminal's output (`Console`) is stdout. Echoed
/// stdin frames, which Docker never sends for an exec, are dropped.
fn split_output(out: LogOutput) -> Option<ExecOutput> {
    match out {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            Some(ExecOutput::Stdout(message))
        }
        LogOutput::StdErr { message } => Some(ExecOutput::Stderr(message)),
        LogOutput::StdIn { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_is_stdout_and_stdin_frames_are_dropped() {
        let b = Bytes::from_static(b"x");
        assert_eq!(
            split_output(LogOutput::Console { message: b.clone() }),
            Some(ExecOutput::Stdout(b.clone()))
        );
        assert_eq!(
            split_output(LogOutput::StdErr { message: b.clone() }),
            Some(ExecOutput::Stderr(b.clone()))
        );
        assert_eq!(split_output(LogOutput::StdIn { message: b }), None);
    }
}
