//! The interactive exec's WebSocket: a started exec on one side, the client on the other.
//!
//! Protocol (also in the README and the OpenAPI document):
//! - **binary frames** carry bytes: client → server is the process's stdin, server → client
//!   its output (with a terminal, the terminal's; without, stdout and stderr interleaved as
//!   they come).
//! - **text frames** carry one JSON object with a `type`. Client → server:
//!   `{"type":"resize","cols":C,"rows":R}` (a terminal's new size, 1-1000 each) and
//!   `{"type":"eof"}` (close stdin). Server → client: `{"type":"exit","code":N}` when the
//!   process has exited (`code` is `null` if Docker did not record one), then a normal close;
//!   `{"type":"error","code":"...","error":"..."}` when the session ends otherwise: the
//!   credential was revoked, logged out or expired (`UNAUTHORIZED`, checked every 2 s), the
//!   server shuts down (`SHUTTING_DOWN`), Docker failed (`EXEC_FAILED`, ...), or the client sent
//!   a text frame this protocol does not know (`BAD_MESSAGE`). A close follows.
//!
//! When the session ends before the process does (the client left, its credential ended, a bad
//! message), botmaker hangs up as well as Docker lets it: Docker has no call to stop one exec'd
//! process, so it closes stdin (a process reading it gets end of file) and, with a terminal,
//! first types Ctrl-C and Ctrl-D into it (closing stdin does not reach a program behind a
//! terminal). That ends a shell at its prompt or a command in the foreground; a program that
//! ignores both (an editor) keeps running until it exits or the container stops.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::access::{Auth, Credential, StreamEnd};
use crate::api::{ClientMessage, ServerMessage};
use crate::docker::{DockerService, ExecId, ExecInput, ExecOutput, ExecOutputStream, TtySize};

/// Largest frame or message a client may send (keystrokes and pastes, not file uploads).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Largest terminal side, in cells, a client may ask for.
pub const MAX_TTY_SIDE: u16 = 1000;
/// How often the server pings an idle connection, so proxies keep it open.
const PING_EVERY: Duration = Duration::from_secs(30);
/// What a terminal gets typed into it when its session ends early: Ctrl-C (interrupt what
/// runs in the foreground), Ctrl-D (end of input for a shell at its prompt).
const HANG_UP_KEYS: &[u8] = b"\x03\x04";
/// How long hanging up may take: the process may have stopped reading.
const HANG_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// A control message as the text frame that carries it.
fn frame(message: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(message).expect("serializable"),
    ))
}

/// How a session ends: the last control message (if any) and the close code.
struct Ending {
    last: Option<ServerMessage>,
    close: u16,
}

impl Ending {
    fn with(last: ServerMessage, close: u16) -> Self {
        Self {
            last: Some(last),
            close,
        }
    }
}

/// Starts `exec` and carries bytes both ways until the process exits, the client leaves, or
/// `credential` stops being valid (or the server shuts down).
pub async fn pump(
    socket: WebSocket,
    docker: DockerService,
    exec: ExecId,
    tty: bool,
    size: Option<TtySize>,
    auth: Arc<Auth>,
    credential: Credential,
) {
    let (mut tx, mut rx) = socket.split();
    let ending = match docker.start_exec(&exec, tty).await {
        Ok(session) => {
            if let (true, Some(size)) = (tty, size) {
                resize(&docker, &exec, size).await;
            }
            let crate::docker::ExecSession {
                mut output,
                mut input,
            } = session;
            let ended = auth.ended(credential);
            let ending = carry(
                &mut tx,
                &mut rx,
                &docker,
                &exec,
                tty,
                (&mut output, &mut input),
                ended,
            )
            .await;
            let exited = matches!(
                ending,
                Some(Ending {
                    last: Some(ServerMessage::Exit { .. }),
                    ..
                })
            );
            if !exited {
                hang_up(&mut input, tty).await;
            }
            ending
        }
        Err(e) => {
            tracing::warn!(bot = %exec.bot_id(), error = %e, "exec did not start");
            Some(Ending::with(
                ServerMessage::error(e.code(), "the command could not be started"),
                close_code::ERROR,
            ))
        }
    };
    // `None`: the client left; there is nobody to tell.
    if let Some(ending) = ending {
        if let Some(last) = ending.last {
            let _ = tx.send(frame(&last)).await;
        }
        let _ = tx
            .send(Message::Close(Some(CloseFrame {
                code: ending.close,
                reason: Utf8Bytes::default(),
            })))
            .await;
    }
}

/// The session's loop; `None` when the client went away.
async fn carry(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    rx: &mut futures_util::stream::SplitStream<WebSocket>,
    docker: &DockerService,
    exec: &ExecId,
    tty: bool,
    (output, input): (&mut ExecOutputStream, &mut ExecInput),
    ended: impl std::future::Future<Output = StreamEnd>,
) -> Option<Ending> {
    let mut ended = std::pin::pin!(ended);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            // The credential's end wins over a busy terminal.
            biased;
            why = &mut ended => {
                return Some(match why {
                    StreamEnd::Unauthorized => Ending::with(
                        ServerMessage::error(
                            "UNAUTHORIZED",
                            "the credential of this session was revoked or expired; log in again",
                        ),
                        close_code::POLICY,
                    ),
                    StreamEnd::ShuttingDown => Ending::with(
                        ServerMessage::error("SHUTTING_DOWN", "the server is shutting down"),
                        close_code::AWAY,
                    ),
                });
            }
            chunk = output.next() => match chunk {
                Some(Ok(ExecOutput::Stdout(b) | ExecOutput::Stderr(b))) => {
                    if tx.send(Message::Binary(b)).await.is_err() {
                        return None;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(bot = %exec.bot_id(), error = %e, "exec output failed");
                    return Some(Ending::with(
                        ServerMessage::error(e.code(), "reading the command's output failed"),
                        close_code::ERROR,
                    ));
                }
                None => {
                    let code = match docker.exec_exit_code(exec).await {
                        Ok(code) => code,
                        Err(e) => {
                            tracing::warn!(bot = %exec.bot_id(), error = %e, "exec exit code unknown");
                            None
                        }
                    };
                    return Some(Ending::with(ServerMessage::Exit { code }, close_code::NORMAL));
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    // A process that closed its stdin (or exited) cannot take more: drop it.
                    if input.write_all(&b).await.is_ok() {
                        let _ = input.flush().await;
                    }
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMessage>(&t) {
                    Ok(ClientMessage::Resize { cols, rows })
                        if tty
                            && (1..=MAX_TTY_SIDE).contains(&cols)
                            && (1..=MAX_TTY_SIDE).contains(&rows) =>
                    {
                        resize(docker, exec, TtySize { rows, cols }).await;
                    }
                    Ok(ClientMessage::Eof) => {
                        let _ = input.shutdown().await;
                    }
                    Ok(ClientMessage::Resize { .. }) | Err(_) => {
                        return Some(Ending::with(
                            ServerMessage::error(
                                "BAD_MESSAGE",
                                format!(
                                    "text frames must be {{\"type\":\"resize\",\"cols\":C,\
                                     \"rows\":R}} (1-{MAX_TTY_SIDE} each, terminal sessions \
                                     only) or {{\"type\":\"eof\"}}"
                                ),
                            ),
                            close_code::UNSUPPORTED,
                        ));
                    }
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            },
            _ = ping.tick() => {
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// Ends the process as far as a client could (see the module's doc): with a terminal, types
/// [`HANG_UP_KEYS`]; then closes stdin.
async fn hang_up(input: &mut ExecInput, tty: bool) {
    let _ = tokio::time::timeout(HANG_UP_TIMEOUT, async {
        if tty {
            let _ = input.write_all(HANG_UP_KEYS).await;
            let _ = input.flush().await;
        }
        let _ = input.shutdown().await;
    })
    .await;
}

/// Sets the terminal's size; a failure (the process just exited) only costs the resize.
async fn resize(docker: &DockerService, exec: &ExecId, size: TtySize) {
    if let Err(e) = docker.resize_exec(exec, size).await {
        tracing::debug!(bot = %exec.bot_id(), error = %e, "exec resize failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_read_and_write_as_documented() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"resize","cols":80,"rows":24}"#).unwrap();
        assert_eq!(m, ClientMessage::Resize { cols: 80, rows: 24 });
        let m: ClientMessage = serde_json::from_str(r#"{"type":"eof"}"#).unwrap();
        assert_eq!(m, ClientMessage::Eof);
        for bad in [
            r#"{"type":"resize","cols":80}"#,
            r#"{"type":"resize","cols":80,"rows":24,"x":1}"#,
            r#"{"type":"stdin","data":"ls"}"#,
            r#"{"type":"resize","cols":-1,"rows":24}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&ServerMessage::Exit { code: Some(3) }).unwrap(),
            r#"{"type":"exit","code":3}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMessage::error("UNAUTHORIZED", "x")).unwrap(),
            r#"{"type":"error","code":"UNAUTHORIZED","error":"x"}"#
        );
    }
}
