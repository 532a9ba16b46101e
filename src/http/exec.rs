//! `/api/bots/{id}/exec`: run a command in a bot's running container, as `docker exec` does:
//! to completion (`POST`, output as JSON) or interactively over a WebSocket (`GET .../exec/ws`,
//! see [`super::exec_socket`] for the protocol).
//!
//! Who may: any valid session or API token. botmaker has one role, the admin, and exec is an
//! admin's tool (it runs code inside a bot, with the bot's secrets in reach). A browser opening
//! the WebSocket with its session cookie must also prove the page is ours: browsers cannot set
//! headers on a WebSocket, so the CSRF token comes as the `csrf` query parameter, and the
//! `Origin` must be the server itself (the `Host` the browser asked for).
//!
//! Audit: one `info` line per exec with the bot, the actor and the program (`argv[0]`) only:
//! arguments may hold secrets (`sh -c 'curl -H "Authorization: …"'`), so they are never logged.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::{Extension, Json};

use super::exec_socket::{self, MAX_CLIENT_MESSAGE, MAX_TTY_SIDE};
use super::openapi::{Conflict, Forbidden, NotFound, ServiceUnavailable};
use crate::access::{Carrier, Credential, Principal, csrf_matches, session_cookie};
use crate::api::{ExecRequest, ExecResponse};
use crate::bots::{EXEC_OUTPUT_CAP, FieldErrors, check_exec, check_timeout};
use crate::docker::{ExecSpec, TtySize};
use crate::edge::{ApiError, ApiJson, ApiPath, AppState};

/// The one log line of an exec. Never the arguments: they may hold secrets.
fn audit(bot: &str, actor: &Principal, spec: &ExecSpec, interactive: bool) {
    let program = spec.cmd.first().map_or("", String::as_str);
    tracing::info!(bot = %bot, %actor, %program, tty = spec.tty, interactive, "exec");
}

/// Run a command in a running bot's container to completion.
///
/// Like `docker exec` without `-it`: no terminal, no stdin. Answers when the command exits or
/// its time limit passes (`timed_out`: the process may still run; Docker has no call to stop
/// it). Each output is kept up to 1 MiB, the rest read and dropped (`*_truncated`). A program
/// that cannot run answers like docker: exit code 126 or 127 and the reason as output. Not
/// bound by the 60 s request limit. Any session or API token may (botmaker has one role, the
/// admin); the server logs one `info` line per exec with the bot, the actor and the program
/// (`cmd[0]`), never the arguments, which may hold secrets.
#[utoipa::path(
    post,
    path = "/api/bots/{id}/exec",
    tag = "exec",
    params(("id" = crate::BotId, Path, description = "Bot id")),
    request_body(content = ExecRequest, description = "What to run"),
    responses(
        (status = 200, description = "What the command left", body = ExecResponse),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn exec_bot(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExecRequest>,
) -> Result<Json<ExecResponse>, ApiError> {
    let spec = ExecSpec {
        cmd: body.cmd,
        env: body.env,
        workdir: body.workdir,
        user: body.user,
        tty: false,
        stdin: false,
    };
    let mut errors = FieldErrors::default();
    check_exec(&spec, &mut errors);
    let timeout = check_timeout(body.timeout_secs, &mut errors);
    errors.into_result().map_err(ApiError::validation)?;
    let exec = s.bots.open_exec(&id, &spec).await?;
    audit(&id, &actor, &spec, false);
    let out = s.bots.run_exec(&exec, timeout, EXEC_OUTPUT_CAP).await?;
    Ok(Json(ExecResponse {
        exit_code: out.exit_code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_truncated: out.stdout_truncated,
        stderr_truncated: out.stderr_truncated,
        timed_out: out.timed_out,
    }))
}

/// The query of `GET /api/bots/{id}/exec/ws`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketQuery {
    /// `cmd`, once per argument, in order.
    pub cmd: Vec<String>,
    /// `env=KEY=VALUE`, once per variable.
    pub env: BTreeMap<String, String>,
    /// `tty=1`: allocate a terminal.
    pub tty: bool,
    /// `cols` and `rows`: the terminal's first size.
    pub size: Option<TtySize>,
    /// `user`.
    pub user: Option<String>,
    /// `workdir`.
    pub workdir: Option<String>,
    /// `csrf`: the session's CSRF token (browsers, which authenticate with the cookie).
    pub csrf: Option<String>,
}

/// Parses the WebSocket's query string: `cmd` repeats (one per argument), so this reads it by
/// hand rather than through a struct. Unknown parameters are refused, as everywhere.
pub fn parse_socket_query(query: &str) -> Result<SocketQuery, ApiError> {
    let mut q = SocketQuery::default();
    let mut errors = FieldErrors::default();
    let (mut cols, mut rows) = (None, None);
    let side = |name: &str, v: &str, errors: &mut FieldErrors| match v.parse::<u16>() {
        Ok(n) if (1..=MAX_TTY_SIDE).contains(&n) => Some(n),
        _ => {
            errors.add(name, format!("must be 1 to {MAX_TTY_SIDE}"));
            None
        }
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "cmd" => q.cmd.push(v.into_owned()),
            "env" => match v.split_once('=') {
                Some((k, v)) => {
                    q.env.insert(k.to_string(), v.to_string());
                }
                None => errors.add("env", "must be KEY=VALUE"),
            },
            "tty" => match v.as_ref() {
                "1" | "true" => q.tty = true,
                "0" | "false" => q.tty = false,
                _ => errors.add("tty", "must be 1, 0, true or false"),
            },
            "cols" => cols = side("cols", &v, &mut errors),
            "rows" => rows = side("rows", &v, &mut errors),
            "user" => q.user = Some(v.into_owned()),
            "workdir" => q.workdir = Some(v.into_owned()),
            "csrf" => q.csrf = Some(v.into_owned()),
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_QUERY",
                    format!(
                        "invalid query string: unknown parameter `{other}`, expected cmd, env, \
                         tty, cols, rows, user, workdir or csrf"
                    ),
                ));
            }
        }
    }
    q.size = match (cols, rows) {
        (Some(cols), Some(rows)) => Some(TtySize { rows, cols }),
        _ => None,
    };
    errors.into_result().map_err(ApiError::validation)?;
    Ok(q)
}

/// Whether the request's `Origin` is the server it was sent to: scheme and authority of the
/// origin against the `Host` header. Browsers always send `Origin` on a WebSocket handshake, so
/// a missing one fails too. A reverse proxy must pass `Host` through unchanged.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(host)) = (header_str(header::ORIGIN), header_str(header::HOST)) else {
        return false;
    };
    let Ok(origin) = origin.parse::<Uri>() else {
        return false;
    };
    let scheme_ok = matches!(origin.scheme_str(), Some("http" | "https"));
    let path_ok = origin.path_and_query().is_none_or(|p| p.as_str() == "/");
    scheme_ok
        && path_ok
        && origin
            .authority()
            .is_some_and(|a| a.as_str().eq_ignore_ascii_case(host))
}

/// 403 for a cookie-authenticated WebSocket from another origin or without the CSRF token.
fn socket_forbidden(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CSRF",
        format!(
            "{what}: a WebSocket authenticated by the session cookie must come from this \
             server's own pages (same Origin) and carry the page's CSRF token as `csrf`; \
             scripts should send `Authorization: Bearer <token>` instead"
        ),
    )
}

/// A command with a terminal (or plain stdin and stdout) over a WebSocket.
///
/// Like `docker exec -it`. Binary frames carry bytes: client to server the process's stdin,
/// server to client its output (stdout and stderr interleaved without a terminal). Text frames
/// carry one JSON object: `ClientMessage` (`resize`, `eof`) and `ServerMessage` (`exit` when
/// the process exited, then a normal close; `error` when the session ends otherwise:
/// `UNAUTHORIZED` within 2 s of a logout, revoke or expiry, `SHUTTING_DOWN`, `BAD_MESSAGE`,
/// `EXEC_FAILED`). Frames from the client are at most 64 KiB; the server pings every 30 s.
/// Errors before the upgrade (unknown bot, bot not running, bad command) are plain HTTP
/// answers. Browsers, which authenticate with the session cookie, must pass the CSRF token as
/// `csrf` and open it from this server's own pages (same `Origin` as `Host`); scripts send
/// `Authorization: Bearer`. Logged like `POST .../exec`.
#[utoipa::path(
    get,
    path = "/api/bots/{id}/exec/ws",
    tag = "exec",
    params(
        ("id" = crate::BotId, Path, description = "Bot id"),
        ("cmd" = Vec<String>, Query, style = Form, explode,
            description = "The program and its arguments: one `cmd` per argument, in order \
                           (`?cmd=sh&cmd=-l`)"),
        ("env" = Option<Vec<String>>, Query, style = Form, explode,
            description = "An extra environment variable `KEY=VALUE`; one `env` per variable"),
        ("tty" = Option<String>, Query, description = "Allocate a terminal: `1`/`true` (or \
                                                         `0`/`false`, the default)"),
        ("cols" = Option<u16>, Query, minimum = 1, maximum = 1000,
            description = "The terminal's first width (with `rows`)"),
        ("rows" = Option<u16>, Query, minimum = 1, maximum = 1000,
            description = "The terminal's first height (with `cols`)"),
        ("user" = Option<String>, Query, max_length = 64, description = "`user`, `uid` or \
                                                                            `user:group`"),
        ("workdir" = Option<String>, Query, max_length = 4096,
            description = "Absolute working directory"),
        ("csrf" = Option<String>, Query, description = "The session's CSRF token: required \
                                                          when the session cookie authenticates \
                                                          the request"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open and the \
                                      command started; text frames are ClientMessage and \
                                      ServerMessage"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 426, description = "Not a WebSocket handshake", body = crate::api::ErrorBody),
        (status = 503, response = ServiceUnavailable),
    )
)]
#[allow(clippy::too_many_arguments)]
pub async fn exec_socket(
    State(s): State<AppState>,
    Extension(actor): Extension<Principal>,
    Extension(credential): Extension<Credential>,
    Extension(carrier): Extension<Carrier>,
    ApiPath(id): ApiPath<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q = parse_socket_query(uri.query().unwrap_or_default())?;
    if carrier == Carrier::Cookie {
        if !same_origin(&headers) {
            return Err(socket_forbidden("cross-origin or missing Origin"));
        }
        let token = session_cookie(&headers).unwrap_or_default();
        if !csrf_matches(&token, q.csrf.as_deref().unwrap_or("")) {
            return Err(socket_forbidden("missing or wrong CSRF token"));
        }
    }
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            format!(
                "this route speaks WebSocket only ({}); for a command run to completion, POST \
                 /api/bots/{{id}}/exec",
                rejection.body_text()
            ),
        )
    })?;
    let spec = ExecSpec {
        cmd: q.cmd,
        env: q.env,
        workdir: q.workdir,
        user: q.user,
        tty: q.tty,
        stdin: true,
    };
    // Unknown bot, bad command, a bot not running: an HTTP error before any upgrade.
    let exec = s.bots.open_exec(&id, &spec).await?;
    audit(&id, &actor, &spec, true);
    let docker = s.bots.docker().clone();
    let auth = s.auth.clone();
    let tty = spec.tty;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            exec_socket::pump(socket, docker, exec, tty, q.size, auth, credential)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_socket_query_repeats_cmd_and_checks_the_rest() {
        let q =
            parse_socket_query("cmd=sh&cmd=-c&cmd=echo%20a%26b&tty=1&cols=120&rows=40").unwrap();
        assert_eq!(q.cmd, ["sh", "-c", "echo a&b"]);
        assert!(q.tty);
        assert_eq!(
            q.size,
            Some(TtySize {
                rows: 40,
                cols: 120
            })
        );
        let q = parse_socket_query("cmd=id&user=1000%3A1000&workdir=%2Ftmp&csrf=abc&env=A%3D1%3D2")
            .unwrap();
        assert_eq!(q.env, BTreeMap::from([("A".into(), "1=2".into())]));
        assert_eq!(
            (q.user.as_deref(), q.workdir.as_deref()),
            (Some("1000:1000"), Some("/tmp"))
        );
        assert_eq!(q.csrf.as_deref(), Some("abc"));
        assert!(!q.tty && q.size.is_none());

        let e = parse_socket_query("cmd=sh&cols=0&rows=99999&tty=yes").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_socket_query("cmd=sh&env=NOEQUALS").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_socket_query("cmd=sh&token=x").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_audit_line_names_bot_actor_and_program_never_the_arguments() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let spec = ExecSpec {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "curl -H 'Authorization: Bearer s3cret'".into(),
            ],
            env: BTreeMap::from([("TOKEN".into(), "s3cret-env".into())]),
            tty: true,
            ..ExecSpec::default()
        };
        let actor = Principal::ApiToken { id: "t1".into() };
        tracing::subscriber::with_default(subscriber, || audit("support", &actor, &spec, true));
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        for part in [
            "INFO",
            "exec",
            "bot=support",
            "actor=token:t1",
            "program=/bin/sh",
            "tty=true",
        ] {
            assert!(log.contains(part), "{part} missing: {log}");
        }
        assert!(!log.contains("s3cret") && !log.contains("-c"), "{log}");
    }

    #[test]
    fn only_the_servers_own_origin_passes() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            same_origin(&m)
        };
        assert!(h(Some("http://127.0.0.1:7100"), "127.0.0.1:7100"));
        assert!(h(Some("https://Bots.Example.com"), "bots.example.com"));
        assert!(!h(Some("http://127.0.0.1:7101"), "127.0.0.1:7100"));
        assert!(!h(Some("http://evil.example"), "127.0.0.1:7100"));
        assert!(!h(
            Some("http://127.0.0.1:7100.evil.example"),
            "127.0.0.1:7100"
        ));
        assert!(!h(Some("null"), "127.0.0.1:7100"));
        assert!(!h(Some("file://127.0.0.1:7100"), "127.0.0.1:7100"));
        assert!(!h(None, "127.0.0.1:7100"));
    }
}
