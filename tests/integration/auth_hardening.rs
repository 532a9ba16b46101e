//! Regression tests for the authentication findings of the hardening review (issue 10): the
//! login limit under a concurrent burst and the bounded argon2 queue, streams that outlived
//! their credential, sessions that survived a password change, and `Secure` cookies.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::Harness;
use crate::support::server::{PASSWORD, TestServer, config};

const BIN: &str = env!("CARGO_BIN_EXE_botmaker");

/// Reads an SSE response until the server ends it and returns everything it sent; panics if
/// it is still open after `limit`.
async fn ends_within(res: reqwest::Response, limit: Duration) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_)) | None) => return text,
            Err(_) => panic!("the stream was still open after {limit:?}; it sent: {text}"),
        }
    }
}

/// Opens `path` as an event stream with the bearer `token`.
async fn open_stream(s: &TestServer, path: &str, token: &str) -> reqwest::Response {
    let res = s
        .client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res
}

/// Sends `n` wrong-password logins at once, each from the client `client_for(i)` hands out,
/// and returns the answers (status, Retry-After, body).
async fn login_burst(
    s: &TestServer,
    n: usize,
    client_for: impl Fn(usize) -> reqwest::Client,
) -> Vec<(StatusCode, Option<String>, Value)> {
    let url = s.url("/api/login");
    let sends = (0..n).map(|i| {
        let req = client_for(i)
            .post(&url)
            .json(&json!({ "password": format!("wrong password {i}") }));
        async move {
            let res = req.send().await.expect("login answered");
            let status = res.status();
            let retry = res
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, res.json::<Value>().await.unwrap())
        }
    });
    futures_util::future::join_all(sends).await
}

fn count(answers: &[(StatusCode, Option<String>, Value)], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.0 == status).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_wrong_passwords_bypassed_the_login_limit() {
    let s = TestServer::start().await;
    let verified_before = s.auth.password_verifications();
    let answers = login_burst(&s, 200, |_| s.client.clone()).await;
    let (denied, limited) = (
        count(&answers, StatusCode::UNAUTHORIZED),
        count(&answers, StatusCode::TOO_MANY_REQUESTS),
    );
    assert_eq!(
        (denied, limited),
        (5, 195),
        "one client gets the limit's 5 guesses, then 429"
    );
    assert_eq!(
        s.auth.password_verifications() - verified_before,
        5,
        "a refused guess costs no argon2 run"
    );
    for (status, retry, body) in &answers {
        if *status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["code"], "RATE_LIMITED", "{body}");
            let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
            assert!((1..=60).contains(&secs), "{secs}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_burst_from_many_clients_queued_argon2_without_bound() {
    let s = TestServer::start().await;
    // 40 distinct client addresses (all of 127.0.0.0/8 is loopback), 5 guesses each: within
    // every client's limit, so only the argon2 queue can turn requests away.
    let clients: Vec<reqwest::Client> = (0..40u8)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i)))
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap()
        })
        .collect();
    let verified_before = s.auth.password_verifications();
    let answers = login_burst(&s, 200, |i| clients[i % clients.len()].clone()).await;
    let denied = count(&answers, StatusCode::UNAUTHORIZED);
    let busy = count(&answers, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(denied + busy, 200, "only 401 and 503: {answers:?}");
    assert!(busy > 0, "a full queue answers 503; got {denied} x 401");
    assert_eq!(
        s.auth.password_verifications() - verified_before,
        denied as u64,
        "a turned-away login costs no argon2 run"
    );
    for (status, retry, body) in &answers {
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "LOGIN_BUSY", "{body}");
            assert!(body["error"].is_string(), "{body}");
            assert_eq!(retry.as_deref(), Some("1"));
        }
    }
    // The admin, from an address of its own, still gets in once the burst is over.
    let admin = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99)))
        .build()
        .unwrap();
    let res = admin
        .post(s.url("/api/login"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_outlived_a_revoked_api_token() {
    let s = TestServer::start().await;
    let id = s.create_bot("revoked-stream").await;
    let (status, t) = s.post("/api/tokens", json!({ "name": "stream" })).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap();
    let events = open_stream(&s, "/api/events", token).await;
    let logs = open_stream(
        &s,
        &format!("/api/bots/{id}/logs?follow=true&tail=1"),
        token,
    )
    .await;

    let tid = t["id"].as_str().unwrap();
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/tokens/{tid}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Something to deliver, were the streams still open.
    s.post(&format!("/api/bots/{id}/restart"), json!({})).await;

    let limit = Duration::from_secs(10);
    let (events, logs) = tokio::join!(ends_within(events, limit), ends_within(logs, limit));
    assert!(events.contains("event: unauthorized"), "{events}");
    assert!(logs.contains("event: unauthorized"), "{logs}");
    assert!(logs.contains("tick"), "the stream was live before: {logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_outlived_a_logged_out_session() {
    let s = TestServer::start().await;
    let id = s.create_bot("logout-stream").await;
    let session = s.login().await;
    let cookie = format!("botmaker_session={session}");
    let events = s
        .client
        .get(s.url("/api/events"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let stats = s
        .client
        .get(s.url("/stream/stats"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let logs = open_stream(
        &s,
        &format!("/api/bots/{id}/logs?follow=true&tail=1"),
        &session,
    )
    .await;

    let (status, v) = s
        .call_as(Some(&session), Method::POST, "/api/logout", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let limit = Duration::from_secs(10);
    let (events, stats, logs) = tokio::join!(
        ends_within(events, limit),
        ends_within(stats, limit),
        ends_within(logs, limit)
    );
    for (what, text) in [("events", events), ("stats", stats), ("logs", logs)] {
        assert!(text.contains("event: unauthorized"), "{what}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_log_follow_outlived_its_revoked_token() {
    let s = TestServer::start().await;
    let id = s.create_bot("cli-revoked").await;
    let (status, t) = s.post("/api/tokens", json!({ "name": "cli" })).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let cli_dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["bots", "logs", "-f", &id])
        .env("BOTMAKER_CONFIG", cli_dir.path().join("cli.json"))
        .env("BOTMAKER_URL", &s.base)
        .env("BOTMAKER_TOKEN", t["token"].as_str().unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Let it follow for a moment (the fixture bot ticks every 200 ms), then revoke.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tid = t["id"].as_str().unwrap();
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/tokens/{tid}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("`bots logs -f` ends once its token is revoked")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("tick"), "it was following: {stdout}");
    assert_eq!(out.status.code(), Some(4), "exit code of a 401: {stderr}");
    assert!(stderr.contains("log in again"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_outlived_an_expired_session() {
    let h = Harness::new().await;
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    cfg.session_seconds = Some(4);
    let s = TestServer::start_with(h, data, cfg).await;
    let session = s.login().await;
    let opened = Instant::now();
    let events = open_stream(&s, "/api/events", &session).await;
    let stats = s
        .client
        .get(s.url("/stream/stats"))
        .header(header::COOKIE, format!("botmaker_session={session}"))
        .send()
        .await
        .unwrap();
    let limit = Duration::from_secs(15);
    let (events, stats) = tokio::join!(ends_within(events, limit), ends_within(stats, limit));
    assert!(events.contains("event: unauthorized"), "{events}");
    assert!(stats.contains("event: unauthorized"), "{stats}");
    assert!(
        opened.elapsed() >= Duration::from_secs(3),
        "a stream ends when its session does, not before"
    );
    assert_eq!(
        s.call_as(Some(&session), Method::GET, "/api/bots", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

// ================================================================================ cookies

/// A client that does not follow redirects, so `Set-Cookie` of a login can be read.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in through the dashboard's form (with `extra` headers on both requests) and returns
/// every `Set-Cookie` it got: the form cookie's, then the login's.
async fn form_login_cookies(s: &TestServer, extra: &[(&str, &str)]) -> Vec<String> {
    let http = no_redirects();
    let mut get = http.get(s.url("/login"));
    for (k, v) in extra {
        get = get.header(*k, *v);
    }
    let res = get.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let form_cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    let form_token = form_cookie
        .strip_prefix("botmaker_login=")
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let mut post = http
        .post(s.url("/login"))
        .header(header::COOKIE, format!("botmaker_login={form_token}"))
        .form(&[("password", PASSWORD), ("csrf", &form_token), ("next", "/")]);
    for (k, v) in extra {
        post = post.header(*k, *v);
    }
    let res = post.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mut cookies = vec![form_cookie];
    cookies.extend(
        res.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string()),
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("botmaker_session=")),
        "{cookies:?}"
    );
    cookies
}

fn all_secure(cookies: &[String]) -> bool {
    cookies.iter().all(|c| c.split("; ").any(|a| a == "Secure"))
}

fn none_secure(cookies: &[String]) -> bool {
    !cookies.iter().any(|c| c.split("; ").any(|a| a == "Secure"))
}

/// A server started with `tweak` applied to the test configuration.
async fn server_with(tweak: impl FnOnce(&mut botmaker::config::ServeConfig)) -> TestServer {
    let h = Harness::new().await;
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    tweak(&mut cfg);
    TestServer::start_with(h, data, cfg).await
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookie_lacked_secure_behind_an_https_public_url() {
    let s = server_with(|c| c.public_url = Some("https://bots.example.com".into())).await;
    let cookies = form_login_cookies(&s, &[]).await;
    assert!(all_secure(&cookies), "{cookies:?}");

    let plain = server_with(|c| c.public_url = Some("http://bots.example.com".into())).await;
    let cookies = form_login_cookies(&plain, &[]).await;
    assert!(none_secure(&cookies), "an http public URL: {cookies:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_proto_is_believed_only_with_trust_proxy() {
    let https = [("x-forwarded-proto", "https")];
    let untrusting = TestServer::start().await;
    let cookies = form_login_cookies(&untrusting, &https).await;
    assert!(
        none_secure(&cookies),
        "anyone can send the header: {cookies:?}"
    );

    let behind_proxy = server_with(|c| c.trust_proxy = true).await;
    let cookies = form_login_cookies(&behind_proxy, &https).await;
    assert!(all_secure(&cookies), "{cookies:?}");
    let cookies = form_login_cookies(&behind_proxy, &[("x-forwarded-proto", "http")]).await;
    assert!(none_secure(&cookies), "{cookies:?}");
}

/// Five wrong logins claiming to come from `from` (an `X-Forwarded-For` value), then the
/// status of a sixth from `then`.
async fn sixth_login_status(s: &TestServer, from: &str, then: &str) -> StatusCode {
    for i in 0..5 {
        let res = s
            .client
            .post(s.url("/api/login"))
            .header("x-forwarded-for", from)
            .json(&json!({ "password": format!("wrong password {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    s.client
        .post(s.url("/api/login"))
        .header("x-forwarded-for", then)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_believed_only_with_trust_proxy() {
    // Without --trust-proxy a forged header does not buy a fresh allowance.
    let s = TestServer::start().await;
    assert_eq!(
        sixth_login_status(&s, "192.0.2.1", "192.0.2.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind a trusted proxy every client has its own allowance: the last entry is the one
    // the proxy appended, whatever the client put before it.
    let s = server_with(|c| c.trust_proxy = true).await;
    assert_eq!(
        sixth_login_status(&s, "192.0.2.1", "192.0.2.1, 192.0.2.2").await,
        StatusCode::OK
    );
    let res = s
        .client
        .post(s.url("/api/login"))
        .header("x-forwarded-for", "192.0.2.2, 192.0.2.1")
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

// ============================================================== the real binary, restarted

/// A `botmaker serve` child process on a free port; killed on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(h: &Harness, data: &std::path::Path, password_file: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(BIN)
            .arg("serve")
            .env("BOTMAKER_DATA_DIR", data)
            .env("BOTMAKER_LISTEN", format!("127.0.0.1:{port}"))
            .env("BOTMAKER_INSTANCE", h.docker.instance())
            .env("BOTMAKER_ADMIN_PASSWORD_FILE", password_file)
            .env_remove("BOTMAKER_ADMIN_PASSWORD")
            .env("BOTMAKER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/health")).send().await.is_err() {
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, base }
    }

    /// SIGTERM, then the exit, which must come within 15 s.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exit within 15 s of SIGTERM, open streams or not")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }

    async fn login(&self, password: &str) -> (StatusCode, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/login", self.base))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    async fn get(&self, path: &str, token: &str) -> StatusCode {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn old_sessions_stayed_valid_after_a_restart_with_a_new_password() {
    let h = Harness::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pw_file = tmp.path().join("admin-password");
    let (old_pw, new_pw) = ("the first admin password", "the second admin password");

    std::fs::write(&pw_file, old_pw).unwrap();
    let serve = Serve::start(&h, &data, &pw_file).await;
    let (status, v) = serve.login(old_pw).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let old_session = v["token"].as_str().unwrap().to_string();
    let res = reqwest::Client::new()
        .post(format!("{}/api/tokens", serve.base))
        .bearer_auth(&old_session)
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let api_token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let events = reqwest::Client::new()
        .get(format!("{}/api/events", serve.base))
        .bearer_auth(&old_session)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);

    // The stream ends with the server, which does not wait for it.
    let (_, text) = tokio::join!(serve.stop(), ends_within(events, Duration::from_secs(15)));
    assert!(text.contains("event: shutdown"), "{text}");

    std::fs::write(&pw_file, new_pw).unwrap();
    let serve = Serve::start(&h, &data, &pw_file).await;
    assert_eq!(
        serve.get("/api/bots", &old_session).await,
        StatusCode::UNAUTHORIZED,
        "a session of the old password"
    );
    assert_eq!(
        serve.get("/api/bots", &api_token).await,
        StatusCode::OK,
        "API tokens are separate credentials and survive (README: Login and limits)"
    );
    assert_eq!(serve.login(old_pw).await.0, StatusCode::UNAUTHORIZED);
    let (status, v) = serve.login(new_pw).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let new_session = v["token"].as_str().unwrap().to_string();
    serve.stop().await;

    // A restart with the same password ends nobody's session.
    let serve = Serve::start(&h, &data, &pw_file).await;
    assert_eq!(serve.get("/api/bots", &new_session).await, StatusCode::OK);
    serve.stop().await;
}
