//! `bots exec`: a command in a bot's running container, through the server's API.
//!
//! Without `-i`/`-t` it is one `POST /api/bots/{id}/exec`: the command's stdout and stderr are
//! printed when it has ended, and its exit code becomes ours. With them it is the
//! `exec/ws` WebSocket: bytes both ways, and with `-t` the local terminal in raw mode (every
//! key goes to the bot, Ctrl-C included) and its size sent whenever the window changes. Raw
//! mode is a guard restored when the session ends, whichever way: the command exits, the
//! server ends it, an error, SIGINT, SIGTERM or SIGHUP.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustix::termios::{self, OptionalActions, Termios};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::args::ExecArgs;
use super::client::{ApiClient, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use super::error::CliError;
use crate::api::{ClientMessage, ExecRequest, ExecResponse, ServerMessage};
use crate::bots::{DEFAULT_EXEC_TIMEOUT_SECS, EXEC_OUTPUT_CAP};

/// Our exit code when the command outlived `--timeout`, as `timeout(1)` has it.
pub const EXIT_TIMED_OUT: u8 = 124;

/// Runs `bots exec`; the exit code is the command's.
pub async fn exec(client: &ApiClient, a: ExecArgs) -> Result<ExitCode, CliError> {
    if a.interactive || a.tty {
        interactive(client, &a).await
    } else {
        to_completion(client, a).await
    }
}

async fn to_completion(client: &ApiClient, a: ExecArgs) -> Result<ExitCode, CliError> {
    let timeout = a.timeout.unwrap_or(DEFAULT_EXEC_TIMEOUT_SECS);
    let body = ExecRequest {
        cmd: a.command,
        env: a.env.into_iter().map(|p| (p.0, p.1)).collect(),
        workdir: a.workdir,
        user: a.user,
        timeout_secs: a.timeout,
    };
    let path = format!("/api/bots/{}/exec", a.id);
    // The server waits up to `timeout` for the command: give it that, and the usual margin.
    let limit = Duration::from_secs(timeout) + REQUEST_TIMEOUT;
    let r: ExecResponse = client.post_within(&path, &body, limit).await?;
    let write = |mut out: Box<dyn Write>, text: &str| {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    };
    write(Box::new(std::io::stdout().lock()), &r.stdout);
    write(Box::new(std::io::stderr().lock()), &r.stderr);
    for (cut, which) in [
        (r.stdout_truncated, "stdout"),
        (r.stderr_truncated, "stderr"),
    ] {
        if cut {
            eprintln!(
                "botmaker: note: the command's {which} was cut at {EXEC_OUTPUT_CAP} bytes \
                 (use -it to see all of it)"
            );
        }
    }
    if r.timed_out {
        eprintln!(
            "botmaker: error: the command did not end within {timeout} s (--timeout); it may \
             still be running in the bot"
        );
        return Ok(ExitCode::from(EXIT_TIMED_OUT));
    }
    Ok(exit_code(r.exit_code))
}

/// The command's exit code as ours; one Docker did not record is a failure.
fn exit_code(code: Option<i64>) -> ExitCode {
    match code {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(u8::MAX)),
        None => {
            eprintln!("botmaker: note: Docker recorded no exit code for the command");
            ExitCode::FAILURE
        }
    }
}

/// The query of the `exec/ws` WebSocket for these arguments and terminal size.
fn socket_query(a: &ExecArgs, size: Option<(u16, u16)>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for arg in &a.command {
        q.append_pair("cmd", arg);
    }
    for e in &a.env {
        q.append_pair("env", &format!("{}={}", e.0, e.1));
    }
    if let Some(w) = &a.workdir {
        q.append_pair("workdir", w);
    }
    if let Some(u) = &a.user {
        q.append_pair("user", u);
    }
    if a.tty {
        q.append_pair("tty", "1");
        if let Some((rows, cols)) = size {
            q.append_pair("cols", &cols.to_string());
            q.append_pair("rows", &rows.to_string());
        }
    }
    q.finish()
}

/// The size of the terminal on stdin as `(rows, cols)`, if it has a usable one (a fresh pty
/// may say 0×0).
fn terminal_size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(std::io::stdin()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The local terminal in raw mode until dropped: keys go to the bot unprocessed (no echo, no
/// line editing, Ctrl-C as a byte), and the saved settings come back on drop, which runs on
/// every way out of [`interactive`], an unwinding panic included.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Reads stdin on a thread of its own (a blocking read cannot be cancelled; the thread ends
/// with the process) and hands the chunks over; `None` is end of file.
fn read_stdin() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        loop {
            let chunk = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buf[..n].to_vec()),
            };
            let eof = chunk.is_none();
            if tx.blocking_send(chunk).is_err() || eof {
                return;
            }
        }
    });
    rx
}

async fn interactive(client: &ApiClient, a: &ExecArgs) -> Result<ExitCode, CliError> {
    if a.tty && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "-t needs a terminal on stdin (use -i alone to pipe input to the command)",
        ));
    }
    let token = client.token()?;
    let http_url = client.server().join(&format!(
        "/api/bots/{}/exec/ws?{}",
        a.id,
        socket_query(a, a.tty.then(terminal_size).flatten())
    ));
    let url = format!("ws{}", http_url.strip_prefix("http").unwrap_or(&http_url));
    let mut req = url
        .into_client_request()
        .map_err(|e| CliError::usage(format!("cannot make a WebSocket request: {e}")))?;
    req.headers_mut().insert(
        tungstenite::http::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::usage("the token is not a valid header value"))?,
    );
    let unreachable = |cause: String| CliError::Unreachable {
        server: client.server().to_string(),
        cause,
    };
    let connect = tokio_tungstenite::connect_async(req);
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT + REQUEST_TIMEOUT, connect).await {
        Err(_) => return Err(unreachable("no answer in time".into())),
        Ok(Ok((ws, _))) => ws,
        Ok(Err(tungstenite::Error::Http(res))) => {
            let body = res.body().as_deref().unwrap_or_default();
            return Err(client.error_answer(res.status(), &String::from_utf8_lossy(body)));
        }
        Ok(Err(tungstenite::Error::Io(e))) => return Err(unreachable(e.to_string())),
        Ok(Err(e)) => {
            return Err(CliError::Protocol {
                server: client.server().to_string(),
                detail: format!("the WebSocket failed: {e}"),
            });
        }
    };

    let _raw = if a.tty {
        Some(RawMode::enable().map_err(|e| {
            CliError::Failed(format!("cannot switch the terminal to raw mode: {e}"))
        })?)
    } else {
        None
    };
    let signal_err = |e: std::io::Error| CliError::Failed(format!("cannot watch signals: {e}"));
    let mut winch = signal(SignalKind::window_change()).map_err(signal_err)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(signal_err)?;
    let mut stdin = a.interactive.then(read_stdin);
    let mut stdout = std::io::stdout();

    let control =
        |m: ClientMessage| Message::Text(serde_json::to_string(&m).expect("serializable").into());
    let gone = || CliError::Unreachable {
        server: client.server().to_string(),
        cause: "the connection ended before the command did".into(),
    };
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Binary(b))) => {
                    if stdout.write_all(&b).and_then(|()| stdout.flush()).is_err() {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerMessage>(&t) {
                    Ok(ServerMessage::Exit { code }) => return Ok(exit_code(code)),
                    Ok(ServerMessage::Error { code, error }) if code == "UNAUTHORIZED" => {
                        return Err(CliError::Unauthorized { code, message: error });
                    }
                    Ok(ServerMessage::Error { code, error }) => {
                        return Err(CliError::Failed(format!("{error} [{code}]")));
                    }
                    Err(e) => {
                        return Err(CliError::Protocol {
                            server: client.server().to_string(),
                            detail: format!("an unknown control message: {e}"),
                        });
                    }
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(gone()),
            },
            chunk = async { stdin.as_mut()?.recv().await }, if stdin.is_some() => {
                let msg = match chunk.flatten() {
                    Some(bytes) => Message::Binary(bytes.into()),
                    None => {
                        stdin = None;
                        control(ClientMessage::Eof)
                    }
                };
                if ws.send(msg).await.is_err() {
                    return Err(gone());
                }
            }
            _ = winch.recv(), if a.tty => {
                if let Some((rows, cols)) = terminal_size() {
                    let _ = ws.send(control(ClientMessage::Resize { cols, rows })).await;
                }
            }
            _ = sigint.recv() => return Ok(ended_by(&mut ws, 2).await),
            _ = sigterm.recv() => return Ok(ended_by(&mut ws, 15).await),
            _ = sighup.recv() => return Ok(ended_by(&mut ws, 1).await),
        }
    }
}

/// Closes the session because of signal `n`; the exit code is the shell's `128 + n`. The
/// server then hangs up the command (see the WebSocket's protocol).
async fn ended_by<S>(ws: &mut S, n: u8) -> ExitCode
where
    S: SinkExt<Message> + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.send(Message::Close(None))).await;
    ExitCode::from(128 + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: ExecArgs,
    }

    fn args(line: &[&str]) -> ExecArgs {
        Wrap::try_parse_from(std::iter::once("exec").chain(line.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn the_socket_query_carries_every_argument_in_order_escaped() {
        let a = args(&[
            "-it",
            "-e",
            "A=1 2",
            "-u",
            "node",
            "-w",
            "/srv",
            "bot",
            "--",
            "sh",
            "-c",
            "echo a&b=c",
        ]);
        assert!(a.interactive && a.tty);
        let q = socket_query(&a, Some((40, 120)));
        assert_eq!(
            q,
            "cmd=sh&cmd=-c&cmd=echo+a%26b%3Dc&env=A%3D1+2&workdir=%2Fsrv&user=node&tty=1\
             &cols=120&rows=40"
        );
        // What the server reads back is what was given.
        let parsed: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        assert_eq!(parsed[2], ("cmd".into(), "echo a&b=c".into()));
        // No terminal: no size.
        let a = args(&["-i", "bot", "--", "cat"]);
        assert_eq!(socket_query(&a, Some((40, 120))), "cmd=cat");
    }

    #[test]
    fn timeout_is_for_commands_run_to_completion_only() {
        assert!(
            Wrap::try_parse_from(["exec", "--timeout", "5", "-it", "bot", "--", "sh"]).is_err()
        );
        assert!(Wrap::try_parse_from(["exec", "--timeout", "0", "bot", "--", "sh"]).is_err());
        assert!(
            Wrap::try_parse_from(["exec", "bot"]).is_err(),
            "a command is required"
        );
        assert_eq!(
            args(&["--timeout", "5", "bot", "--", "id"]).timeout,
            Some(5)
        );
    }

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(exit_code(Some(0)), ExitCode::SUCCESS);
        assert_eq!(exit_code(Some(7)), ExitCode::from(7));
        assert_eq!(exit_code(Some(300)), ExitCode::from(255));
        assert_eq!(exit_code(None), ExitCode::FAILURE);
    }
}
