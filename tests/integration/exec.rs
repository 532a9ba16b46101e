//! Exec into a bot, end to end: `POST /api/bots/{id}/exec` and the `exec/ws` WebSocket against
//! a real server and Docker Engine, the fixture bot's exec tools (`testbot streams|flood|sh`,
//! see fixtures/testbot/src/exec_tools.rs) on the other side; and `DockerService`'s own
//! refusals. The CLI's `bots exec` is in `exec_cli.rs`, the dashboard console in
//! `web/console.rs`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::CreateContainerOptionsBuilder;
use botmaker::access::csrf_token_for;
use botmaker::api::ServerMessage;
use botmaker::docker::{ExecSpec, container_name};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::Harness;
use crate::support::fixture::TEST_LABEL;
use crate::support::server::TestServer;

/// How long a terminal test waits for something to appear.
const SCREEN_WAIT: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running fixture bot on a fresh server.
pub async fn running_bot(s: &TestServer, name: &str) -> String {
    let id = s.create_bot(name).await;
    s.wait_bot(&id, "running", Duration::from_secs(30), |v| {
        v["state"] == "running"
    })
    .await;
    id
}

async fn exec(s: &TestServer, id: &str, body: Value) -> (StatusCode, Value) {
    s.post(&format!("/api/bots/{id}/exec"), body).await
}

#[tokio::test]
async fn exec_returns_the_exit_code_and_both_outputs() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "exec").await;

    let (status, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "streams", "to stdout", "to stderr", "3"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({
            "exit_code": 3, "stdout": "to stdout\n", "stderr": "to stderr\n",
            "stdout_truncated": false, "stderr_truncated": false, "timed_out": false,
        })
    );

    // Environment, working directory and user reach the process.
    let (_, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "env", "GREETING"], "env": { "GREETING": "hi there" } }),
    )
    .await;
    assert_eq!(
        (v["exit_code"].as_i64(), v["stdout"].as_str()),
        (Some(0), Some("hi there\n"))
    );
    let (_, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "pwd"], "workdir": "/run/secrets" }),
    )
    .await;
    assert_eq!(v["stdout"], "/run/secrets\n", "{v}");
    let (_, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "id"], "user": "1234:5678" }),
    )
    .await;
    assert_eq!(v["stdout"], "uid=1234 gid=5678\n", "{v}");

    // A program that is not in the image answers as docker does: 126/127 and the reason.
    let (status, v) = exec(&s, &id, json!({ "cmd": ["/no/such/program"] })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let code = v["exit_code"].as_i64().unwrap();
    assert!(code == 126 || code == 127, "{v}");
    assert!(
        format!("{}{}", v["stdout"], v["stderr"]).contains("/no/such/program"),
        "{v}"
    );
}

#[tokio::test]
async fn exec_output_is_capped_at_one_mib_each_and_the_command_still_finishes() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "cap").await;
    let three_mib = 3 * 1024 * 1024;
    let (status, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "flood", three_mib.to_string()], "timeout_secs": 120 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v["exit_code"], 0,
        "the rest was read and dropped, not left to block"
    );
    assert_eq!(v["stdout"].as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(v["stderr"].as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(v["stdout_truncated"], true);
    assert_eq!(v["stderr_truncated"], true);
    assert_eq!(v["timed_out"], false);

    // Just under the cap is whole.
    let (_, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "flood", (1024 * 1024).to_string()] }),
    )
    .await;
    assert_eq!(v["stdout_truncated"], false, "exactly the cap is not cut");
    assert_eq!(v["stdout"].as_str().unwrap().len(), 1024 * 1024);
}

#[tokio::test]
async fn exec_that_outlives_its_time_limit_says_so() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "slow").await;
    let (status, v) = exec(
        &s,
        &id,
        json!({ "cmd": ["/testbot", "sleep", "30"], "timeout_secs": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["exit_code"], Value::Null);
}

#[tokio::test]
async fn exec_refuses_a_stopped_bot_an_unknown_bot_and_bad_requests() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "stopped").await;
    let (status, _) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, v) = exec(&s, &id, json!({ "cmd": ["/testbot", "id"] })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "NOT_RUNNING");
    assert!(v["error"].as_str().unwrap().contains("start it"), "{v}");

    let (status, v) = exec(&s, "no-such-bot", json!({ "cmd": ["/testbot", "id"] })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["code"], "NOT_FOUND");

    // Every problem at once, as fields.
    let (status, v) = exec(
        &s,
        &id,
        json!({ "cmd": [], "user": "a b", "workdir": "tmp", "timeout_secs": 0 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED");
    let fields: Vec<&String> = v["fields"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["cmd", "timeout_secs", "user", "workdir"], "{v}");
    let (status, v) = exec(&s, &id, json!({ "cmd": ["id"], "shell": true })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn docker_service_execs_only_in_running_containers_it_owns() {
    let h = Harness::new().await;
    let spec = ExecSpec {
        cmd: vec!["/testbot".into(), "id".into()],
        ..ExecSpec::default()
    };

    // No container at all.
    let none = h.bot("exec-none");
    let e = h.docker.create_exec(&none, &spec).await.unwrap_err();
    assert_eq!(e.code(), "NOT_RUNNING", "{e}");

    // Created, never started.
    let created = h.bot("exec-created");
    h.docker
        .create_container(&created, &h.config(&created))
        .await
        .unwrap();
    let e = h.docker.create_exec(&created, &spec).await.unwrap_err();
    assert_eq!(e.code(), "NOT_RUNNING", "{e}");
    assert!(e.to_string().contains("created"), "{e}");

    // Running, but not ours: a container with botmaker's name and no ownership labels.
    let foreign = h.bot("exec-foreign");
    let name = container_name(&foreign);
    h.track_foreign(&name);
    h.docker
        .client()
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            bollard::models::ContainerCreateBody {
                image: Some(h.image.clone()),
                env: Some(vec!["TICK_MS=0".into()]),
                labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.docker
        .client()
        .start_container(&name, None)
        .await
        .unwrap();
    let e = h.docker.create_exec(&foreign, &spec).await.unwrap_err();
    assert_eq!(e.code(), "NOT_OWNED", "{e}");

    // Ours and running: it runs, and its exit code is read back.
    h.docker.start_container(&created).await.unwrap();
    let exec = h.docker.create_exec(&created, &spec).await.unwrap();
    let mut session = h.docker.start_exec(&exec, false).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = session.output.next().await {
        if let botmaker::docker::ExecOutput::Stdout(b) = chunk.unwrap() {
            out.extend_from_slice(&b);
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "uid=0 gid=0\n");
    assert_eq!(h.docker.exec_exit_code(&exec).await.unwrap(), Some(0));
}

// ==================================================================== the WebSocket

/// The WebSocket URL of a bot's exec with this query.
fn socket_url(s: &TestServer, id: &str, query: &str) -> String {
    format!(
        "ws{}/api/bots/{id}/exec/ws?{query}",
        s.base.strip_prefix("http").unwrap()
    )
}

/// Opens the WebSocket with these headers; `Err((status, body))` when the server refuses.
pub async fn open_socket(url: &str, headers: &[(&str, String)]) -> Result<Socket, (u16, String)> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name: tungstenite::http::HeaderName = k.parse().expect("a header name");
        req.headers_mut()
            .insert(name, v.parse().expect("a header value"));
    }
    match connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((res.status().as_u16(), body))
        }
        Err(e) => panic!("WebSocket to {url}: {e}"),
    }
}

/// What a terminal session showed, and how it ended.
#[derive(Default)]
pub struct Screen {
    /// Every output byte so far, as text.
    pub text: String,
    /// Control messages from the server.
    pub messages: Vec<ServerMessage>,
    /// Whether the server closed the connection.
    pub closed: bool,
}

impl Screen {
    /// Reads frames until `done` holds (panics after [`SCREEN_WAIT`]).
    pub async fn until(&mut self, ws: &mut Socket, what: &str, done: impl Fn(&Screen) -> bool) {
        let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
        while !done(self) {
            assert!(
                !self.closed,
                "closed before {what}; screen: {:?}",
                self.text
            );
            let frame = tokio::time::timeout_at(deadline, ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; screen: {:?}", self.text)
                });
            match frame {
                Some(Ok(Message::Binary(b))) => self.text.push_str(&String::from_utf8_lossy(&b)),
                Some(Ok(Message::Text(t))) => self
                    .messages
                    .push(serde_json::from_str(&t).expect("a control message")),
                Some(Ok(Message::Close(_))) | None => self.closed = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("WebSocket error while waiting for {what}: {e}"),
            }
        }
    }

    /// Reads until `needle` is on the screen.
    pub async fn see(&mut self, ws: &mut Socket, needle: &str) {
        self.until(ws, needle, |s| s.text.contains(needle)).await;
    }

    /// Reads until the server's last control message and close.
    pub async fn end(&mut self, ws: &mut Socket) -> ServerMessage {
        self.until(ws, "the end of the session", |s| {
            s.closed && !s.messages.is_empty()
        })
        .await;
        self.messages.last().unwrap().clone()
    }
}

async fn send_text(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn send_bytes(ws: &mut Socket, b: &str) {
    ws.send(Message::Binary(b.as_bytes().to_vec().into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn terminal_round_trip_resize_and_exit_code() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "tty").await;
    let url = socket_url(&s, &id, "cmd=/testbot&cmd=sh&tty=1&cols=100&rows=30");
    let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .expect("the WebSocket opens with a bearer token");
    let mut screen = Screen::default();
    screen.see(&mut ws, "$ ").await;

    // Typed keys come back through the terminal's echo, then the command's answer.
    send_bytes(&mut ws, "tty\r").await;
    screen.see(&mut ws, "tty yes").await;
    send_bytes(&mut ws, "echo hello through a pty\r").await;
    screen.see(&mut ws, "echo hello through a pty\r\n").await;
    screen.see(&mut ws, "\r\nhello through a pty\r\n").await;

    // The size from the query, then a resize.
    send_bytes(&mut ws, "size\r").await;
    screen.see(&mut ws, "size 30x100").await;
    send_text(
        &mut ws,
        json!({ "type": "resize", "cols": 132, "rows": 43 }),
    )
    .await;
    send_bytes(&mut ws, "size\r").await;
    screen.see(&mut ws, "size 43x132").await;

    send_bytes(&mut ws, "exit 7\r").await;
    assert_eq!(
        screen.end(&mut ws).await,
        ServerMessage::Exit { code: Some(7) }
    );
}

#[tokio::test]
async fn socket_without_a_terminal_pipes_stdin_until_eof() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "pipe").await;
    let url = socket_url(&s, &id, "cmd=/testbot&cmd=sh&env=WHO%3Dpiped");
    let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .unwrap();
    let mut screen = Screen::default();
    send_bytes(&mut ws, "tty\necho one\nenv WHO\n").await;
    screen.see(&mut ws, "tty no\n").await;
    screen.see(&mut ws, "one\n").await;
    screen.see(&mut ws, "piped\n").await;
    send_text(&mut ws, json!({ "type": "eof" })).await;
    assert_eq!(
        screen.end(&mut ws).await,
        ServerMessage::Exit { code: Some(0) },
        "end of input ends the shell"
    );
    // No echo without a terminal.
    assert!(!screen.text.contains("echo one"), "{:?}", screen.text);

    // A text frame the protocol does not know ends the session, saying why.
    let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .unwrap();
    send_text(&mut ws, json!({ "type": "stdin", "data": "x" })).await;
    let mut screen = Screen::default();
    match screen.end(&mut ws).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "BAD_MESSAGE"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn socket_auth_cookie_needs_csrf_and_same_origin_bearer_does_not() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "wsauth").await;
    let url = socket_url(&s, &id, "cmd=/testbot&cmd=sh&tty=1");
    let host = s.base.strip_prefix("http://").unwrap().to_string();
    let cookie = ("cookie", format!("botmaker_session={}", s.token));
    let origin = ("origin", s.base.clone());
    let csrf = csrf_token_for(&s.token);
    let with_csrf = format!("{url}&csrf={csrf}");

    // No credential at all.
    let (status, body) = open_socket(&url, &[]).await.err().unwrap();
    assert_eq!(status, 401, "{body}");
    // The cookie without the CSRF token, even from the right origin.
    let (status, body) = open_socket(&url, &[cookie.clone(), origin.clone()])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    // A wrong token.
    let wrong = format!("{url}&csrf={}", csrf_token_for("bms_other"));
    let (status, _) = open_socket(&wrong, &[cookie.clone(), origin.clone()])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403);
    // The right token from another origin, or from none.
    for bad_origin in [
        "http://evil.example",
        "null",
        &format!("http://{host}.evil.example"),
    ] {
        let (status, body) = open_socket(
            &with_csrf,
            &[cookie.clone(), ("origin", bad_origin.to_string())],
        )
        .await
        .err()
        .unwrap();
        assert_eq!(status, 403, "{bad_origin}: {body}");
        assert!(body.contains("Origin"), "{body}");
    }
    let (status, _) = open_socket(&with_csrf, std::slice::from_ref(&cookie))
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403, "no Origin");
    // Token, cookie and own origin: the browser's way in.
    let mut ws = open_socket(&with_csrf, &[cookie.clone(), origin.clone()])
        .await
        .expect("cookie + csrf + same origin");
    Screen::default().see(&mut ws, "$ ").await;
    drop(ws);
    // A bearer token needs neither (a script has no origin to check).
    let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .unwrap();
    Screen::default().see(&mut ws, "$ ").await;

    // Refusals before the upgrade are HTTP answers in the API's shape.
    let (status, body) = open_socket(
        &socket_url(&s, "no-such-bot", "cmd=/testbot&cmd=sh"),
        &[("authorization", format!("Bearer {}", s.token))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = open_socket(
        &socket_url(&s, &id, "tty=1"),
        &[("authorization", format!("Bearer {}", s.token))],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(status, 400, "no cmd: {body}");
    assert!(body.contains("VALIDATION_FAILED"), "{body}");
    // A plain GET is told to upgrade.
    let res = s
        .client
        .get(s.url(&format!("/api/bots/{id}/exec/ws?cmd=x")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);

    s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    let (status, body) = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("NOT_RUNNING"), "{body}");
}

#[tokio::test]
async fn socket_ends_when_its_session_logs_out_or_its_token_is_revoked() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "wsend").await;
    let url = socket_url(&s, &id, "cmd=/testbot&cmd=sh&tty=1");

    // A browser session, logged out through the API.
    let session = s.login().await;
    let mut ws = open_socket(
        &format!("{url}&csrf={}", csrf_token_for(&session)),
        &[
            ("cookie", format!("botmaker_session={session}")),
            ("origin", s.base.clone()),
        ],
    )
    .await
    .unwrap();
    let mut screen = Screen::default();
    screen.see(&mut ws, "$ ").await;
    let (status, _) = s
        .call_as(Some(&session), reqwest::Method::POST, "/api/logout", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    match screen.end(&mut ws).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "UNAUTHORIZED"),
        other => panic!("{other:?}"),
    }

    // An API token, revoked.
    let (_, t) = s.post("/api/tokens", json!({ "name": "exec" })).await;
    let mut ws = open_socket(
        &url,
        &[(
            "authorization",
            format!("Bearer {}", t["token"].as_str().unwrap()),
        )],
    )
    .await
    .unwrap();
    let mut screen = Screen::default();
    screen.see(&mut ws, "$ ").await;
    let (status, _) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/api/tokens/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    match screen.end(&mut ws).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "UNAUTHORIZED"),
        other => panic!("{other:?}"),
    }
}

/// Whether `needle` is in the process list of the bot's container.
pub async fn runs_in(s: &TestServer, id: &str, needle: &str) -> bool {
    let top =
        s.h.docker
            .client()
            .top_processes(
                &format!("botmaker-{id}"),
                None::<bollard::query_parameters::TopOptions>,
            )
            .await
            .unwrap();
    top.processes
        .unwrap_or_default()
        .iter()
        .any(|p| p.join(" ").contains(needle))
}

#[tokio::test]
async fn a_terminal_left_by_its_client_hangs_up_its_shell() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "hangup").await;
    for query in ["cmd=/testbot&cmd=sh&tty=1", "cmd=/testbot&cmd=sh"] {
        let url = socket_url(&s, &id, query);
        let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
            .await
            .unwrap();
        Screen::default().see(&mut ws, "$ ").await;
        assert!(runs_in(&s, &id, "/testbot sh").await, "{query}: it runs");
        drop(ws);
        crate::support::eventually(
            &format!("the shell of {query} to end"),
            Duration::from_secs(60),
            || async { (!runs_in(&s, &id, "/testbot sh").await).then_some(()) },
        )
        .await;
    }
}

#[tokio::test]
async fn socket_ends_with_shutting_down_when_the_server_stops() {
    let mut s = TestServer::start().await;
    let id = running_bot(&s, "wsstop").await;
    let url = socket_url(&s, &id, "cmd=/testbot&cmd=sh&tty=1");
    let mut ws = open_socket(&url, &[("authorization", format!("Bearer {}", s.token))])
        .await
        .unwrap();
    let mut screen = Screen::default();
    screen.see(&mut ws, "$ ").await;
    let end = tokio::spawn(async move { screen.end(&mut ws).await });
    s.shutdown().await;
    match end.await.unwrap() {
        ServerMessage::Error { code, .. } => assert_eq!(code, "SHUTTING_DOWN"),
        other => panic!("{other:?}"),
    }
    // The bot itself keeps running: only the session ended.
    let status =
        s.h.docker
            .container_status(&botmaker::BotId::new(id).unwrap())
            .await;
    assert!(status.unwrap().unwrap().running);
}
