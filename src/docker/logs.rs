//! Container logs as a stream of lines, demultiplexed into stdout and stderr.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Serialize;

use super::error::{ContainerError, Op, classify};
use super::{DockerService, container_name};
use crate::BotId;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output (also a TTY's combined output).
    Stdout,
    /// Standard error (only without a TTY: a TTY merges both into stdout).
    Stderr,
}

/// One line of a bot's output, re-split from Docker's frames.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Which output it was written to.
    pub stream: LogStream,
    /// When Docker received the line.
    pub timestamp: Option<DateTime<Utc>>,
    /// The text, without its newline.
    pub message: String,
}

/// What part of the log to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last `n` lines (all when `None`).
    pub tail: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Keep the stream open and deliver new lines as they are written.
    pub follow: bool,
}

impl DockerService {
    /// The bot's log lines. Without `follow` the stream ends after the existing lines; with it,
    /// it ends when the container stops. A missing container yields one `NOT_FOUND` error.
    ///
    /// Docker multiplexes stdout and stderr with 8-byte frame headers when the container has
    /// no TTY; bollard strips them, and lines are re-split here because a frame may carry
    /// several lines.
    pub fn logs(
        &self,
        bot_id: &BotId,
        opts: &LogOptions,
    ) -> BoxStream<'static, Result<LogLine, ContainerError>> {
        let mut builder = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(opts.follow);
        if let Some(n) = opts.tail {
            builder = builder.tail(&n.to_string());
        }
        if let Some(since) = opts.since {
            builder = builder.since(i32::try_from(since.timestamp()).unwrap_or(i32::MAX));
        }
        // A service's logs are its tasks' logs, from whichever node ran them.
        let raw = if let Some(swarm) = self.swarm.clone().filter(|_| opts.follow) {
            // Followed service logs deliver the lines there are, then nothing new (seen on
            // Engine 20.10): a followed bot whose task runs on this node is followed through
            // that task's container, whose stream ends with the task (the follower then
            // attaches to the next one); a task elsewhere, through the service's logs.
            let (svc, bot, options) = (self.clone(), bot_id.clone(), builder.build());
            stream::once(async move {
                let local = match swarm.local_container(&svc, &bot).await {
                    Ok(Some(id)) => svc
                        .call(
                            Op::Inspect,
                            bot.as_str(),
                            svc.call_timeout,
                            svc.docker.inspect_container(&id, None),
                        )
                        .await
                        .ok()
                        .and(Some(id)),
                    _ => None,
                };
                match local {
                    Some(id) => svc.docker.logs(&id, Some(options)).boxed(),
                    None => svc
                        .docker
                        .service_logs(&container_name(&bot), Some(options))
                        .boxed(),
                }
            })
            .flatten()
            .boxed()
        } else if self.swarm.is_some() {
            self.docker
                .service_logs(&container_name(bot_id), Some(builder.build()))
                .boxed()
        } else {
            self.docker
                .logs(&container_name(bot_id), Some(builder.build()))
                .boxed()
        };
        let host = self.host.clone();
        let id = bot_id.to_string();
        let chunks = raw.map(move |r| r.map_err(|e| classify(&host, Op::Logs, &id, e)));
        // A finite read must not hang on a stalled daemon; a followed one may be quiet for
        // hours, so only the finite kind gets a per-chunk deadline.
        let chunks = if opts.follow {
            chunks.boxed()
        } else {
            with_item_timeout(chunks.boxed(), self.call_timeout, self.host.clone())
        };
        chunks
            .flat_map(|chunk| {
                let lines: Vec<Result<LogLine, ContainerError>> = match chunk {
                    Ok(out) => split_lines(out).into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                stream::iter(lines)
            })
            .boxed()
    }
}

/// Ends the stream with a `NETWORK_ERROR` if one item takes longer than `limit`.
pub(crate) fn with_item_timeout<T: Send + 'static>(
    inner: BoxStream<'static, Result<T, ContainerError>>,
    limit: Duration,
    host: String,
) -> BoxStream<'static, Result<T, ContainerError>> {
    stream::unfold(Some(inner), move |state| {
        let host = host.clone();
        async move {
            let mut inner = state?;
            match tokio::time::timeout(limit, inner.next()).await {
                Ok(Some(item)) => Some((item, Some(inner))),
                Ok(None) => None,
                Err(_) => Some((Err(ContainerError::timeout(&host, Op::Logs, limit)), None)),
            }
        }
    })
    .boxed()
}

fn split_lines(out: LogOutput) -> Vec<LogLine> {
    let (stream, bytes) = match out {
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdIn { message } => (LogStream::Stdout, message),
    };
    String::from_utf8_lossy(&bytes)
        .split_terminator('\n')
        .map(|line| parse_line(stream, line.trim_end_matches('\r')))
        .collect()
}

/// With `timestamps=true` Docker prefixes each line with an RFC 3339 time and a space.
fn parse_line(stream: LogStream, line: &str) -> LogLine {
    if let Some((ts, rest)) = line.split_once(' ')
        && let Ok(t) = DateTime::parse_from_rfc3339(ts)
    {
        return LogLine {
            stream,
            timestamp: Some(t.with_timezone(&Utc)),
            message: rest.to_string(),
        };
    }
    LogLine {
        stream,
        timestamp: None,
        message: line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn splits_frames_into_lines_and_parses_timestamps() {
        let out = LogOutput::StdErr {
            message: Bytes::from_static(
                b"2026-11-26T09:00:00.000000001Z tock 1\n2026-11-26T09:00:01Z tock 2\n",
            ),
        };
        let lines = split_lines(out);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].stream, LogStream::Stderr);
        assert_eq!(lines[0].message, "tock 1");
        assert_eq!(lines[1].timestamp.unwrap().timestamp(), 1_795_683_601);
    }

    #[test]
    fn a_line_without_timestamp_is_kept_whole() {
        let l = parse_line(LogStream::Stdout, "hello world");
        assert_eq!(l.message, "hello world");
        assert_eq!(l.timestamp, None);
    }
}
