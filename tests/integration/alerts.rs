//! Alerts end to end: a real server and real bot containers, and a receiver the test runs on
//! 127.0.0.1 that botmaker (not the bots) calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server::{TestServer, config};
use crate::support::{Harness, unique};

const SECRET: &str = "s3cret-signing-key-for-tests";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When it arrived.
    at: chrono::DateTime<chrono::Utc>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
pub(crate) struct ReceiverState {
    got: std::sync::Mutex<Vec<Received>>,
    /// Answer this many more requests with 500.
    pub(crate) fail_next: AtomicU32,
}

/// An HTTP receiver on 127.0.0.1 recording every request; stops when dropped.
pub(crate) struct Receiver {
    base: String,
    pub(crate) state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(s): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    s.got.lock().unwrap().push(Received {
        at: chrono::Utc::now(),
        path: uri.path().to_string(),
        headers,
        body,
    });
    let failing = s
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::OK
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Alerts about `bot` that reached `path`, as JSON.
    fn alerts(&self, path: &str, bot: &str) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.json())
            .filter(|v| v["bot_id"] == bot)
            .collect()
    }

    /// Waits until an `event` alert about `bot` reached `path`.
    async fn wait_for(&self, path: &str, bot: &str, event: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = self
                .alerts(path, bot)
                .into_iter()
                .find(|v| v["event"] == event)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {event} alert for {bot} at {path} within {limit:?}; got {:?}",
                self.alerts(path, bot)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Received {
    /// Asserts the request carries the signature `secret` gives its body.
    pub(crate) fn assert_signed_with(&self, secret: &str) {
        assert_eq!(
            self.headers
                .get("x-botmaker-signature")
                .map(|v| v.to_str().unwrap()),
            Some(expected_signature(secret, &self.body).as_str()),
            "signed with {secret:?}: {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// `sha256=<hex>` as the README tells receivers to compute it.
pub(crate) fn expected_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn start_server(flag_webhooks: Vec<String>) -> TestServer {
    let h = Harness::new().await;
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    cfg.docker_host = Some(h.docker.host().to_string());
    cfg.public_url = Some("https://bots.example.com".into());
    cfg.alerts.webhooks = flag_webhooks;
    cfg.alerts.recovery_secs = 3;
    TestServer::start_with(h, data, cfg).await
}

async fn add_channel(s: &TestServer, body: Value) -> Value {
    let (status, v) = s.post("/api/notifications", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn deliveries(s: &TestServer, channel: i64) -> Vec<Value> {
    let (status, v) = s
        .get(&format!("/api/notifications/{channel}/deliveries"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["deliveries"].as_array().unwrap().clone()
}

/// A bot that exits at once, again and again: one `crash_loop` (whatever Docker's restarts),
/// signed and linking the bot's page; fixed by a PATCH, one `recovered`. The `--alert-webhook`
/// channel gets them too.
#[tokio::test]
async fn a_crashing_bot_alerts_crash_loop_once_and_recovered_once_when_fixed() {
    let rx = Receiver::start().await;
    let s = start_server(vec![rx.url("/flag")]).await;
    let (_, list) = s.get("/api/notifications").await;
    let flag = &list["channels"][0];
    assert_eq!(flag["name"], Value::Null, "{list}");
    assert_eq!(flag["url"], rx.url("/flag"));
    assert_eq!(flag["all_events"], true);
    add_channel(
        &s,
        json!({"name": "ops", "kind": "webhook", "url": rx.url("/hook"), "signing_secret": SECRET}),
    )
    .await;

    let id = s.h.bot("crash").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({"id": id, "name": "Crashy", "image": s.h.image, "command": ["exit", "3"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let alert = rx
        .wait_for("/hook", &id, "crash_loop", Duration::from_secs(60))
        .await;
    assert_eq!(alert["bot_name"], "Crashy");
    assert_eq!(alert["state"], "crash_loop");
    assert_eq!(alert["url"], format!("https://bots.example.com/bots/{id}"));
    assert!(alert["message"].as_str().unwrap().contains("Crashy"));
    // Docker keeps restarting it meanwhile: still one crash_loop.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({"command": ["serve"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    rx.wait_for("/hook", &id, "recovered", Duration::from_secs(60))
        .await;
    rx.wait_for("/flag", &id, "recovered", Duration::from_secs(30))
        .await;
    // Whatever follows the recovery (probes, resyncs) is no news.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let events: Vec<String> = rx
        .alerts("/hook", &id)
        .iter()
        .map(|v| v["event"].as_str().unwrap().to_string())
        .collect();
    let count = |e: &str| events.iter().filter(|x| *x == e).count();
    assert_eq!(count("crash_loop"), 1, "{events:?}");
    assert_eq!(count("recovered"), 1, "{events:?}");
    assert_eq!(
        events.last().map(String::as_str),
        Some("recovered"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| ["exited", "crash_loop", "recovered"].contains(&e.as_str())),
        "{events:?}"
    );

    // Every signed request verifies; the unsigned channel's carry no signature.
    for r in rx.got() {
        let sig = r.headers.get("x-botmaker-signature");
        match r.path.as_str() {
            "/hook" => assert_eq!(
                sig.unwrap().to_str().unwrap(),
                expected_signature(SECRET, &r.body),
                "{:?}",
                r.json()
            ),
            _ => assert!(sig.is_none()),
        }
        assert_eq!(
            r.headers.get("x-botmaker-event").unwrap(),
            r.json()["event"].as_str().unwrap()
        );
    }
}

/// A bot that allocates far more than its memory limit: the OOM killer ends it, and the alert
/// says so.
#[tokio::test]
async fn an_oom_killed_bot_alerts_oom_killed() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    add_channel(
        &s,
        json!({"name": "mem", "kind": "webhook", "url": rx.url("/hook"), "events": ["oom_killed"]}),
    )
    .await;
    let id = s.h.bot("oom").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({
                "id": id, "image": s.h.image, "command": ["alloc", "256"],
                "limits": {"memory_mb": 8},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let alert = rx
        .wait_for("/hook", &id, "oom_killed", Duration::from_secs(60))
        .await;
    assert_eq!(alert["oom_killed"], true, "{alert}");
    assert!(
        rx.alerts("/hook", &id)
            .iter()
            .all(|v| v["event"] == "oom_killed"),
        "the channel asked for oom_killed only"
    );
}

/// A receiver that fails gets the same alert again with back-off, each attempt in the
/// channel's deliveries; one that is down is retried too, and the error says why.
#[tokio::test]
async fn a_failing_or_dead_receiver_gets_retries_listed_in_deliveries() {
    let rx = Receiver::start().await;
    rx.state.fail_next.store(2, Ordering::SeqCst);
    // A port nobody listens on: bound, then closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    let s = start_server(Vec::new()).await;
    let flaky = add_channel(
        &s,
        json!({"name": "flaky", "kind": "webhook", "url": rx.url("/hook"), "events": ["crash_loop"]}),
    )
    .await;
    let down = add_channel(
        &s,
        json!({"name": "down", "kind": "webhook", "url": dead, "events": ["crash_loop"]}),
    )
    .await;
    let id = s.h.bot("retry").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({"id": id, "image": s.h.image, "command": ["exit", "1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let deadline = Instant::now() + Duration::from_secs(90);
    let flaky_id = flaky["id"].as_i64().unwrap();
    let attempts = loop {
        let d = deliveries(&s, flaky_id).await;
        if d.iter().any(|x| x["result"] == "ok") {
            break d;
        }
        assert!(Instant::now() < deadline, "no successful retry: {d:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Newest first: ok after two failures, all about the same alert.
    let summary: Vec<(u64, String, Value)> = attempts
        .iter()
        .map(|x| {
            (
                x["attempt"].as_u64().unwrap(),
                x["result"].as_str().unwrap().to_string(),
                x["http_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, "ok".to_string(), json!(200)),
            (2, "retrying".to_string(), json!(500)),
            (1, "retrying".to_string(), json!(500)),
        ]
    );
    assert!(
        attempts
            .iter()
            .all(|x| x["event"] == "crash_loop" && x["bot_id"] == id.as_str())
    );
    let bodies: Vec<Bytes> = rx.got().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the same alert each time"
    );

    let down_id = down["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = deliveries(&s, down_id).await;
        if d.len() >= 2 {
            assert!(d.iter().all(|x| x["result"] == "retrying"), "{d:?}");
            assert!(
                d.iter()
                    .all(|x| x["error"].as_str().unwrap().contains("could not connect")),
                "{d:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no retry of the dead receiver: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Channels as a resource: bad input is refused field by field and changes nothing; secrets
/// never come back; tests reach Slack, Discord and Telegram receivers in their formats; a
/// deleted channel is gone with its deliveries.
#[tokio::test]
async fn channels_are_validated_tested_in_each_format_and_deleted() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;

    for (body, field) in [
        (
            json!({"name": "", "kind": "webhook", "url": rx.url("/x")}),
            "name",
        ),
        (
            json!({"name": "a", "kind": "pager", "url": rx.url("/x")}),
            "kind",
        ),
        (
            json!({"name": "a", "kind": "webhook", "url": "ftp://x/y"}),
            "url",
        ),
        (json!({"name": "a", "kind": "webhook"}), "url"),
        (
            json!({"name": "a", "kind": "webhook", "url": rx.url("/x"), "events": ["nope"]}),
            "events[0]",
        ),
        (
            json!({"name": "a", "kind": "webhook", "url": rx.url("/x"), "signing_secret": "short"}),
            "signing_secret",
        ),
        (
            json!({"name": "a", "kind": "telegram", "chat_id": "42"}),
            "bot_token",
        ),
        (
            json!({"name": "a", "kind": "slack", "url": rx.url("/x"), "chat_id": "42"}),
            "chat_id",
        ),
    ] {
        let (status, v) = s.post("/api/notifications", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {v}");
        assert_eq!(v["code"], "VALIDATION_FAILED");
        assert!(v["fields"].get(field).is_some(), "{field} in {v}");
    }
    let (status, v) = s
        .post(
            "/api/notifications",
            json!({"name": "a", "kind": "webhook", "url": rx.url("/x"), "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field: {v}");
    let (_, list) = s.get("/api/notifications").await;
    assert_eq!(list["channels"], json!([]), "nothing was stored");

    let token = format!(
        "123456:{}",
        unique("tokentokentokentoken").replace('-', "_")
    );
    let tg = add_channel(
        &s,
        json!({"name": "tg", "kind": "telegram", "url": rx.url("/tg"), "chat_id": "-1001", "bot_token": token}),
    )
    .await;
    // Slack's and Discord's webhook URLs are the credential: sent to whole, never shown whole.
    const SLACK_PATH: &str = "/services/T01/B02/slackSECRETpath";
    const DISCORD_PATH: &str = "/api/webhooks/42/discordSECRETtoken";
    let slack = add_channel(
        &s,
        json!({"name": "sl", "kind": "slack", "url": rx.url(SLACK_PATH)}),
    )
    .await;
    let discord = add_channel(
        &s,
        json!({"name": "dc", "kind": "discord", "url": rx.url(DISCORD_PATH)}),
    )
    .await;
    assert_eq!(
        slack["url"],
        format!("{}/…", rx.url("/services")),
        "{slack}"
    );
    assert_eq!(discord["url"], format!("{}/…", rx.url("/api")), "{discord}");
    let (status, v) = s
        .post(
            "/api/notifications",
            json!({"name": "sl", "kind": "slack", "url": rx.url("/slack")}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    for channel in [&tg, &slack, &discord] {
        let (status, v) = s
            .post(
                &format!("/api/notifications/{}/test", channel["id"]),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["result"], "ok", "{v}");
        assert_eq!(v["event"], "test");
    }
    let got = rx.got();
    let at = |p: &str| got.iter().find(|r| r.path == p).unwrap().json();
    let tg_msg = at(&format!("/tg/bot{token}/sendMessage"));
    assert_eq!(tg_msg["chat_id"], "-1001");
    assert!(tg_msg["text"].as_str().unwrap().contains("Test message"));
    assert!(
        at(SLACK_PATH)["text"]
            .as_str()
            .unwrap()
            .contains("Test message")
    );
    assert!(
        at(DISCORD_PATH)["content"]
            .as_str()
            .unwrap()
            .contains("Test message")
    );

    // The token is never shown.
    let (_, list) = s.get("/api/notifications").await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 3);
    assert!(!list.to_string().contains(&token), "{list}");
    assert!(!list.to_string().contains("SECRET"), "{list}");
    let tg_id = tg["id"].as_i64().unwrap();
    let d = deliveries(&s, tg_id).await;
    assert_eq!(d.len(), 1);
    assert!(!serde_json::to_string(&d).unwrap().contains(&token));

    // A failing test says why.
    rx.state.fail_next.store(1, Ordering::SeqCst);
    let (_, v) = s
        .post(
            &format!("/api/notifications/{}/test", slack["id"]),
            json!({}),
        )
        .await;
    assert_eq!(v["result"], "failed", "{v}");
    assert_eq!(v["http_status"], 500);

    let (status, _) = s
        .call(Method::DELETE, &format!("/api/notifications/{tg_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        format!("/api/notifications/{tg_id}/deliveries"),
        "/api/notifications/nope/deliveries".to_string(),
    ] {
        let (status, v) = s.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (status, _) = s
        .call(Method::DELETE, &format!("/api/notifications/{tg_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !s.data
            .path()
            .join(format!("notification-secrets/channel-{tg_id}"))
            .exists(),
        "the token file went with the channel"
    );
}

/// Runs the `botmaker` binary against `s` with its session token; stdin is `input`.
async fn cli(s: &TestServer, args: &[&str], input: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_botmaker"))
        .args(args)
        .env("BOTMAKER_CONFIG", dir.path().join("cli.json"))
        .env("BOTMAKER_URL", &s.base)
        .env("BOTMAKER_TOKEN", &s.token)
        .env_remove("BOTMAKER_LISTEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input.as_bytes()).await;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `botmaker notifications add|list|test|deliveries|rm`: secrets from stdin or a file only,
/// never printed; a failed test exits 1 with the reason.
#[tokio::test]
async fn notifications_from_the_command_line_never_show_secrets() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    let token = "987654:cli_token_cli_token_cli_token";
    let (code, out, err) = cli(
        &s,
        &[
            "notifications",
            "add",
            "tg",
            "--kind",
            "telegram",
            "--url",
            &rx.url("/tg"),
            "--chat-id",
            "@alerts_room",
            "--events",
            "crash_loop,recovered",
        ],
        &format!("{token}\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added channel 1 (telegram"), "{out}");
    assert!(out.contains("crash_loop,recovered"), "{out}");
    let secret_file = s.data.path().join("cli-signing-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let (code, out, err) = cli(
        &s,
        &[
            "notifications",
            "add",
            "hook",
            "--kind",
            "webhook",
            "--url",
            &rx.url("/hook"),
            "--signing-secret-file",
            secret_file.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, list, _) = cli(&s, &["notifications", "list"], "").await;
    assert_eq!(code, 0);
    assert!(
        list.contains("tg") && list.contains("telegram") && list.contains("hook"),
        "{list}"
    );
    let (code, out, err) = cli(&s, &["notifications", "test", "2"], "").await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("delivered"), "{out}");
    let signed = rx.got().into_iter().find(|r| r.path == "/hook").unwrap();
    signed.assert_signed_with(SECRET);
    let (code, out, _) = cli(&s, &["notifications", "test", "1"], "").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        rx.got()
            .iter()
            .any(|r| r.path == format!("/tg/bot{token}/sendMessage")),
        "the token from stdin reached the Bot API URL"
    );

    rx.state.fail_next.store(1, Ordering::SeqCst);
    let (code, _, err) = cli(&s, &["notifications", "test", "2"], "").await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
    let (code, table, _) = cli(&s, &["notifications", "deliveries", "2"], "").await;
    assert_eq!(code, 0);
    assert!(table.contains("failed") && table.contains("ok"), "{table}");

    let mut everything = list.clone();
    for args in [
        &["notifications", "list", "--json"][..],
        &["notifications", "deliveries", "1", "--json"][..],
    ] {
        everything.push_str(&cli(&s, args, "").await.1);
    }
    assert!(
        !everything.contains(token) && !everything.contains(SECRET),
        "{everything}"
    );

    // `edit` changes what it is told and keeps the rest: a new secret from stdin signs.
    const NEW_SECRET: &str = "a-second-signing-secret";
    let (code, out, err) = cli(
        &s,
        &[
            "notifications",
            "edit",
            "2",
            "--events",
            "crash_loop",
            "--signing-secret-stdin",
        ],
        &format!("{NEW_SECRET}\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("changed channel 2") && out.contains("signed") && out.contains("crash_loop"),
        "{out}"
    );
    assert!(!out.contains(NEW_SECRET), "{out}");
    let before = rx.got().len();
    let (code, out, err) = cli(&s, &["notifications", "test", "2"], "").await;
    assert_eq!(code, 0, "{out}{err}");
    let resigned = rx.got().into_iter().nth(before).unwrap();
    resigned.assert_signed_with(NEW_SECRET);

    let (code, out, _) = cli(&s, &["notifications", "rm", "1"], "").await;
    assert_eq!(code, 0);
    assert!(out.contains("removed channel 1"));
    let (code, _, err) = cli(&s, &["notifications", "rm", "1"], "").await;
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = cli(
        &s,
        &[
            "notifications",
            "add",
            "x",
            "--kind",
            "telegram",
            "--chat-id",
            "1",
        ],
        "",
    )
    .await;
    assert_eq!(code, 2, "an empty token is refused before sending: {err}");
}

/// An upgrade to an image that crashes is rolled back, and a channel that asked for it hears
/// `upgrade_failed`.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_upgrade_alerts_upgrade_failed() {
    use crate::support::variants::{Variant, variant};
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    add_channel(
        &s,
        json!({"name": "up", "kind": "webhook", "url": rx.url("/hook"), "events": ["upgrade_failed"]}),
    )
    .await;
    let crash = variant(s.h.docker.client(), &s.h.image, Variant::Crash).await;
    let id = s.create_bot("upfail").await;
    s.wait_bot(&id, "running", Duration::from_secs(30), |v| {
        v["state"] == "running"
    })
    .await;
    let (status, out) = s
        .post(
            &format!("/api/bots/{id}/upgrade"),
            json!({"image": crash, "timeout_secs": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    let alert = rx
        .wait_for("/hook", &id, "upgrade_failed", Duration::from_secs(30))
        .await;
    assert!(
        alert["message"].as_str().unwrap().contains("rolled back"),
        "{alert}"
    );
    assert!(
        rx.alerts("/hook", &id)
            .iter()
            .all(|v| v["event"] == "upgrade_failed"),
        "the channel asked for upgrade_failed only"
    );
}

/// A bot alive but never ready (its readiness path answers 404) is `degraded`: alerted once,
/// after the grace, with what is wrong; fixed by a PATCH of its health check, `recovered`.
#[tokio::test]
async fn a_bot_that_stays_degraded_alerts_degraded_once_and_recovered_when_fixed() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    add_channel(
        &s,
        json!({"name": "deg", "kind": "webhook", "url": rx.url("/hook"),
               "events": ["degraded", "recovered"]}),
    )
    .await;
    let mut body = s.bot_body("degraded");
    body["health_check"] = json!({
        "port": 8080, "path": "/healthz", "ready_path": "/never-ready",
        "interval_secs": 1, "start_period_secs": 0, "failure_threshold": 3,
    });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.wait_bot(&id, "degraded", Duration::from_secs(60), |v| {
        v["health"] == "degraded"
    })
    .await;
    let alert = rx
        .wait_for("/hook", &id, "degraded", Duration::from_secs(90))
        .await;
    assert_eq!(alert["health"], "degraded", "{alert}");
    assert!(
        alert["message"].as_str().unwrap().contains("not ready"),
        "{alert}"
    );

    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({"health_check": {
                "port": 8080, "path": "/healthz", "ready_path": "/readyz",
                "interval_secs": 1, "start_period_secs": 0, "failure_threshold": 3,
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    rx.wait_for("/hook", &id, "recovered", Duration::from_secs(60))
        .await;
    let events: Vec<String> = rx
        .alerts("/hook", &id)
        .iter()
        .map(|v| v["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["degraded", "recovered"], "once each");
}

/// PATCH changes the fields given, checked as a whole channel: write-only secrets are kept
/// unless replaced, `null` stops signing, a taken name or a bad field changes nothing, the
/// `--alert-webhook` channels and unknown fields are refused.
#[tokio::test]
async fn a_channel_is_edited_field_by_field_and_a_bad_edit_changes_nothing() {
    let rx = Receiver::start().await;
    let s = start_server(vec![rx.url("/flag")]).await;
    const FIRST: &str = "first-signing-secret-0123";
    const SECOND: &str = "second-signing-secret-4567";
    let token = format!(
        "123456:{}",
        unique("tokentokentokentoken").replace('-', "_")
    );
    let hook = add_channel(
        &s,
        json!({"name": "hook", "kind": "webhook", "url": rx.url("/one"), "signing_secret": FIRST}),
    )
    .await;
    let tg = add_channel(
        &s,
        json!({"name": "tg", "kind": "telegram", "url": rx.url("/tg"), "chat_id": "-1001",
               "bot_token": token}),
    )
    .await;
    let patch = |id: &Value, body: Value| {
        let path = format!("/api/notifications/{id}");
        let s = &s;
        async move { s.call(Method::PATCH, &path, Some(body)).await }
    };
    let test = |id: &Value| {
        let path = format!("/api/notifications/{id}/test");
        let s = &s;
        async move {
            let (status, v) = s.post(&path, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            assert_eq!(v["result"], "ok", "{v}");
        }
    };
    let last = || rx.got().pop().unwrap();

    // URL, events and the signing secret.
    let (status, v) = patch(
        &hook["id"],
        json!({"url": rx.url("/two"), "events": ["crash_loop"], "signing_secret": SECOND}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["url"], rx.url("/two"));
    assert_eq!(v["events"], json!(["crash_loop"]));
    assert_eq!(
        (v["all_events"].clone(), v["signed"].clone()),
        (json!(false), json!(true))
    );
    assert!(!v.to_string().contains(SECOND), "{v}");
    test(&hook["id"]).await;
    let got = last();
    assert_eq!(got.path, "/two");
    got.assert_signed_with(SECOND);
    // Only the name: the secret stays.
    let (status, v) = patch(&hook["id"], json!({"name": "hook2"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].clone(), v["signed"].clone()),
        (json!("hook2"), json!(true))
    );
    test(&hook["id"]).await;
    let got = last();
    got.assert_signed_with(SECOND);
    // `null`: unsigned from now on, and every event again.
    let (status, v) = patch(&hook["id"], json!({"signing_secret": null, "events": null})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["signed"].clone(), v["all_events"].clone()),
        (json!(false), json!(true))
    );
    test(&hook["id"]).await;
    assert!(last().headers.get("x-botmaker-signature").is_none());
    assert!(
        !s.data
            .path()
            .join(format!(
                "notification-secrets/channel-{}/SIGNING_SECRET",
                hook["id"]
            ))
            .exists(),
        "the secret file went"
    );
    // Telegram: a new chat, the token kept.
    let (status, v) = patch(&tg["id"], json!({"chat_id": "@alerts_room"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    test(&tg["id"]).await;
    let got = last();
    assert_eq!(got.path, format!("/tg/bot{token}/sendMessage"));
    assert_eq!(got.json()["chat_id"], "@alerts_room");

    // Bad edits change nothing.
    let (_, before) = s.get("/api/notifications").await;
    for (id, body, status, field) in [
        (
            &tg["id"],
            json!({"name": "hook2"}),
            StatusCode::CONFLICT,
            None,
        ),
        (
            &hook["id"],
            json!({"url": "ftp://x", "events": ["nope"]}),
            StatusCode::BAD_REQUEST,
            Some("events[0]"),
        ),
        (
            &hook["id"],
            json!({"bot_token": token}),
            StatusCode::BAD_REQUEST,
            Some("bot_token"),
        ),
        (
            &hook["id"],
            json!({"kind": "slack"}),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            &json!(999),
            json!({"name": "x"}),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let (got, v) = patch(id, body.clone()).await;
        assert_eq!(got, status, "{body}: {v}");
        if let Some(field) = field {
            assert!(v["fields"][field].is_array(), "{body}: {v}");
        }
    }
    let (_, after) = s.get("/api/notifications").await;
    assert_eq!(before, after, "nothing changed");
    // The flag's channel is the flag's.
    let flag = before["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].is_null())
        .unwrap()
        .clone();
    let (status, v) = patch(&flag["id"], json!({"events": ["crash_loop"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("--alert-webhook"), "{v}");

    // The audit log names the changes.
    let (_, audit) = s.get("/api/audit?action=notification_change").await;
    assert!(audit["entries"].as_array().unwrap().len() >= 4, "{audit}");
}

/// Twenty changes at once to one channel, half setting a signing secret and half removing
/// it: they land one after another, so the row and the secret file agree at the end and a test
/// delivery is signed with the last secret set (or not at all when the last change removed it).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_edits_of_one_channel_leave_its_row_and_secret_file_in_step() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    let hook = add_channel(
        &s,
        json!({"name": "race", "kind": "webhook", "url": rx.url("/race"),
               "signing_secret": "the-first-secret-0000"}),
    )
    .await;
    let id = hook["id"].clone();
    let secrets: Vec<String> = (0..20)
        .map(|i| format!("racing-secret-{i:04}-abcdef"))
        .collect();
    let edits = secrets.iter().enumerate().map(|(i, secret)| {
        let body = if i % 2 == 0 {
            json!({ "signing_secret": secret })
        } else {
            json!({ "signing_secret": null })
        };
        let (s, path) = (&s, format!("/api/notifications/{id}"));
        async move { s.call(Method::PATCH, &path, Some(body)).await }
    });
    for (status, v) in futures_util::future::join_all(edits).await {
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (_, list) = s.get("/api/notifications").await;
    let c = list["channels"][0].clone();
    assert_eq!(c["id"], id);
    let file = s
        .data
        .path()
        .join(format!("notification-secrets/channel-{id}/SIGNING_SECRET"));
    assert_eq!(
        c["signed"].as_bool().unwrap(),
        file.exists(),
        "row and file agree: {c}"
    );
    let (status, v) = s
        .post(&format!("/api/notifications/{id}/test"), json!({}))
        .await;
    assert_eq!(
        (status, v["result"].clone()),
        (StatusCode::OK, json!("ok")),
        "{v}"
    );
    let got = rx.got().pop().unwrap();
    if file.exists() {
        let on_file = std::fs::read_to_string(&file).unwrap();
        assert!(secrets.contains(&on_file), "{on_file}");
        got.assert_signed_with(&on_file);
    } else {
        assert!(got.headers.get("x-botmaker-signature").is_none());
    }
}

/// `--alert-webhook` owns the unnamed channels: a bad URL stops start-up naming the flag; a
/// URL no longer given is removed at the next start, and named channels are left alone.
#[tokio::test]
async fn alert_webhook_flags_are_checked_at_start_and_kept_in_step() {
    let h = Harness::new().await;
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    cfg.docker_host = Some(h.docker.host().to_string());
    cfg.alerts.webhooks = vec!["not a url".into()];
    let err = match botmaker::serve::Server::prepare(cfg).await {
        Ok(_) => panic!("a bad --alert-webhook was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("--alert-webhook") && err.contains("url"),
        "{err}"
    );
    drop(h);

    let rx = Receiver::start().await;
    let s = start_server(vec![rx.url("/a"), rx.url("/a"), rx.url("/b")]).await;
    let (_, list) = s.get("/api/notifications").await;
    assert_eq!(
        list["channels"].as_array().unwrap().len(),
        2,
        "one per URL: {list}"
    );
    add_channel(
        &s,
        json!({"name": "named", "kind": "webhook", "url": rx.url("/n")}),
    )
    .await;
    // `restart` starts again without the flags.
    let s = s.restart().await;
    let (_, list) = s.get("/api/notifications").await;
    let names: Vec<&Value> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("named")], "{list}");
}

/// Alert latency: from a bot's crash (its container's `FinishedAt`) to the `exited` webhook
/// arriving at the receiver. A measurement, printed, not asserted:
/// `cargo test --test integration measure_alert_latency -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement: prints the crash-to-webhook latency"]
async fn measure_alert_latency() {
    let rx = Receiver::start().await;
    let s = start_server(Vec::new()).await;
    add_channel(
        &s,
        json!({"name": "lat", "kind": "webhook", "url": rx.url("/hook"), "events": ["exited"]}),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = s.h.bot(&format!("lat{n}")).to_string();
        let (status, v) = s
            .post(
                "/api/bots",
                json!({"id": id, "image": s.h.image,
                       "env": {"EXIT_AFTER_MS": "3000", "EXIT_CODE": "3", "TICK_MS": "0"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(id);
    }
    let mut latencies = Vec::new();
    for id in &ids {
        rx.wait_for("/hook", id, "exited", Duration::from_secs(60))
            .await;
        let got = rx
            .got()
            .into_iter()
            .find(|r| r.json()["bot_id"] == id.as_str())
            .unwrap();
        let bot = botmaker::BotId::new(id.as_str()).unwrap();
        let finished =
            s.h.docker
                .container_status(&bot)
                .await
                .unwrap()
                .and_then(|st| st.finished_at)
                .expect("the container exited once");
        latencies.push((got.at - finished).num_milliseconds());
    }
    latencies.sort();
    eprintln!("alert latency, crash to webhook received (ms), 5 bots: {latencies:?}");
}
