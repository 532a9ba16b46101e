//! The `openclaw` template against the real gateway: the image `scripts/openclaw-image` builds
//! (built here when its tag is missing), driven through botmaker's HTTP API, talking to a mock
//! OpenAI-compatible provider on an internal Docker network the test owns.
//!
//! Bounds (generous: two cores shared with the rest of the suite; measured figures go to stderr
//! as `MEASURE ...` lines):
//! - healthy within [`HEALTHY_BOUND`] of create, restart or apply;
//! - a rotated gateway token in effect within [`ROTATION_BOUND`] of the `PUT` answering.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::claw::{Claw, health};
use crate::support::openclaw::{self, HEALTHY_BOUND, MOCK_REPLY, MockLlm, exec, log_tail};
use crate::support::server::TestServer;
use crate::support::unique;

/// From a gateway token rotation's answer to the new token working and the old one refused.
const ROTATION_BOUND: Duration = Duration::from_secs(120);

/// A bot of the real image on the mock's network, using the provider `deepseek` (whose
/// official plugin is external: the template must not let OpenClaw install it) pointed at the
/// mock.
fn claw_body(s: &TestServer, mock: &MockLlm, image: &str, name: &str, key: &str) -> Value {
    json!({
        "id": s.h.bot(name).to_string(),
        "template": "openclaw",
        "image": image,
        "network": mock.network.name,
        "secrets": { "DEEPSEEK_API_KEY": key },
        "settings": {
            "provider": "deepseek", "model": "mock-model", "base_url": mock.base_url(),
        },
    })
}

/// The bot's `openclaw.json` in its workspace on the host.
fn config_file(claw: &Claw<'_>) -> std::path::PathBuf {
    claw.s
        .data
        .path()
        .join("workspaces")
        .join(&claw.id)
        .join("openclaw.json")
}

/// Everything issue 9 lists for a working bot, in the order an operator meets it.
#[tokio::test(flavor = "multi_thread")]
async fn real_openclaw_end_to_end() {
    let _turn = openclaw::gateway_turn().await;
    let s = TestServer::start().await;
    let image = tokio::task::spawn_blocking(openclaw::image).await.unwrap();
    let mock = MockLlm::start(&s.h).await;
    let key = unique("sk-e2e");
    let mut body = claw_body(&s, &mock, &image, "claw", &key);
    body["settings"]["agent_id"] = json!("support");
    let suite_started = Instant::now();
    let (status, created) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let claw = Claw {
        s: &s,
        id: created["id"].as_str().unwrap().to_string(),
    };
    // Internal network: nothing published, and the bot says so.
    assert_eq!(created["ports"], json!([]), "{created}");
    assert_eq!(created["stop_timeout_secs"], 90);

    // Healthy within the bound, judged by /readyz of this run.
    let took = claw.until_healthy("first start").await;
    eprintln!("MEASURE time_to_healthy_create_s={:.1}", took.as_secs_f64());

    // One init: the image's tini is PID 1, Docker adds none, nothing complains.
    let c =
        s.h.docker
            .client()
            .inspect_container(&claw.container(), None)
            .await
            .unwrap();
    assert_ne!(
        c.host_config.unwrap().init,
        Some(true),
        "Docker's init on top of tini"
    );
    let (rc, cmdline, _) = exec(&claw.container(), &["cat", "/proc/1/cmdline"]).await;
    assert_eq!(rc, 0);
    assert!(cmdline.starts_with("/usr/bin/tini"), "PID 1: {cmdline:?}");
    let logs =
        s.h.log_lines(&botmaker::BotId::new(claw.id.clone()).unwrap())
            .await;
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("Tini is not running as PID 1")),
        "two inits"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("npm install") || l.contains("Installing")),
        "the bot installed something at boot"
    );

    // OpenClaw accepts the generated config as is.
    let (rc, out, err) = exec(
        &claw.container(),
        &["openclaw", "config", "validate", "--json"],
    )
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    let verdict: Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["warnings"], json!([]), "{verdict}");

    // A message round trip through the gateway (`openclaw agent`), answered by the mock with
    // the key from /run/secrets.
    let sent = Instant::now();
    let (rc, out, err) = exec(
        &claw.container(),
        &[
            "openclaw",
            "agent",
            "--agent",
            "support",
            "--message",
            "ping",
            "--json",
        ],
    )
    .await;
    eprintln!(
        "MEASURE agent_round_trip_s={:.1}",
        sent.elapsed().as_secs_f64()
    );
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains(MOCK_REPLY), "{out}");
    let seen = mock.requests().await;
    let completion = seen
        .iter()
        .rev()
        .find(|r| r["path"] == "/v1/chat/completions")
        .expect("the gateway called the mock");
    assert_eq!(completion["authorization"], format!("Bearer {key}"));

    // The HTTP chat endpoint is off until enabled through botmaker.
    let token = claw.stored_secret("OPENCLAW_GATEWAY_TOKEN");
    assert_ne!(
        claw.chat(&token, "ping over HTTP").await.status(),
        StatusCode::OK
    );

    // botmaker owns openclaw.json: OpenClaw's own editor refuses, by design.
    let before = std::fs::read(config_file(&claw)).unwrap();
    let (rc, out, err) = exec(
        &claw.container(),
        &[
            "openclaw",
            "config",
            "set",
            "agents.defaults.timeoutSeconds",
            "123",
        ],
    )
    .await;
    assert_ne!(rc, 0, "config set went through: {out}{err}");
    assert!(
        format!("{out}{err}").contains("externally managed"),
        "{out}{err}"
    );
    assert_eq!(std::fs::read(config_file(&claw)).unwrap(), before);

    // ...and the same setting, plus the HTTP endpoint, goes through botmaker (an apply).
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{}", claw.id),
            Some(json!({ "settings": {
                "provider": "deepseek", "model": "mock-model", "base_url": mock.base_url(),
                "agent_id": "support", "http_chat": true,
                "config": { "agents": { "defaults": { "timeoutSeconds": 123 } } },
            } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(health(&v), "healthy", "a new container's run: {v}");
    let took = claw.until_healthy("after apply").await;
    eprintln!("MEASURE time_to_healthy_apply_s={:.1}", took.as_secs_f64());
    let (rc, out, _) = exec(
        &claw.container(),
        &[
            "openclaw",
            "config",
            "get",
            "agents.defaults.timeoutSeconds",
        ],
    )
    .await;
    assert_eq!((rc, out.trim()), (0, "123"));
    let sent = Instant::now();
    let res = claw.chat(&token, "ping over HTTP").await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    eprintln!(
        "MEASURE http_chat_round_trip_s={:.1}",
        sent.elapsed().as_secs_f64()
    );
    assert_eq!(answer["choices"][0]["message"]["content"], MOCK_REPLY);

    // A restart shows `starting` until this run's gateway answers.
    let (status, v) = s
        .post(&format!("/api/bots/{}/restart", claw.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(health(&v), "starting", "{v}");
    let took = claw.until_healthy("after restart").await;
    eprintln!(
        "MEASURE time_to_healthy_restart_s={:.1}",
        took.as_secs_f64()
    );

    // Steady memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, stats) = s.get(&format!("/api/bots/{}/stats", claw.id)).await;
    eprintln!(
        "MEASURE steady_memory_mib={}",
        stats["latest"]["memory_bytes"].as_u64().unwrap_or_default() >> 20
    );

    // Rotating the gateway token restarts the bot; the new token works, the old does not.
    let new_token = unique("rotated-gateway-token");
    let res = s
        .client
        .put(s.url(&format!(
            "/api/bots/{}/secrets/OPENCLAW_GATEWAY_TOKEN",
            claw.id
        )))
        .bearer_auth(&s.token)
        .body(new_token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let change: Value = res.json().await.unwrap();
    assert_eq!(change["rotation"], "restart", "{change}");
    assert_eq!(change["restarted"], true, "{change}");
    let rotated = Instant::now();
    loop {
        let new = claw.models_status(&new_token).await;
        let old = claw.models_status(&token).await;
        if new == Some(StatusCode::OK) && old == Some(StatusCode::UNAUTHORIZED) {
            break;
        }
        assert!(
            rotated.elapsed() < ROTATION_BOUND,
            "rotation not in effect: new {new:?}, old {old:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "MEASURE rotation_in_effect_s={:.1}",
        rotated.elapsed().as_secs_f64()
    );

    // The secrets the config refers to cannot be deleted.
    for name in ["OPENCLAW_GATEWAY_TOKEN", "DEEPSEEK_API_KEY"] {
        let (status, v) = s
            .call(
                Method::DELETE,
                &format!("/api/bots/{}/secrets/{name}", claw.id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "SECRET_REQUIRED");
    }

    // A stop lets the gateway drain: SIGTERM's 143 or a clean 0, never SIGKILL's 137.
    claw.until_healthy("before stop").await;
    let stopping = Instant::now();
    let (status, v) = s
        .post(&format!("/api/bots/{}/stop", claw.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    eprintln!("MEASURE stop_s={:.1}", stopping.elapsed().as_secs_f64());
    let c =
        s.h.docker
            .client()
            .inspect_container(&claw.container(), None)
            .await
            .unwrap();
    let code = c.state.unwrap().exit_code.unwrap();
    assert!(code == 0 || code == 143, "exit code {code}");
    assert_eq!(v["state"], "stopped");
    assert_eq!(health(&v), "none");
    eprintln!(
        "MEASURE real_openclaw_end_to_end_s={:.0}",
        suite_started.elapsed().as_secs_f64()
    );
}

/// A configured channel OpenClaw cannot load shows as `degraded` (its `/readyz` says ready),
/// and a bot whose runs crash is never `healthy`, whatever an earlier run said.
#[tokio::test(flavor = "multi_thread")]
async fn real_openclaw_degraded_channel_then_crash_loop() {
    let _turn = openclaw::gateway_turn().await;
    let s = TestServer::start().await;
    let image = tokio::task::spawn_blocking(openclaw::image).await.unwrap();
    let mock = MockLlm::start(&s.h).await;
    let mut body = claw_body(&s, &mock, &image, "claw-dc", "sk-dc");
    body["secrets"]["DISCORD_BOT_TOKEN"] = json!("not-a-real-token");
    body["secrets"]["SLACK_BOT_TOKEN"] = json!("xoxb-not-real");
    body["secrets"]["SLACK_APP_TOKEN"] = json!("xapp-not-real");
    body["settings"]["channels"] = json!(["discord", "slack"]);
    // The Discord plugin is switched off: the channel is configured but nothing can run it,
    // as when its plugin is not installed. Slack's comes with the image.
    body["settings"]["config"] =
        json!({ "plugins": { "entries": { "discord": { "enabled": false } } } });
    let (status, created) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let claw = Claw {
        s: &s,
        id: created["id"].as_str().unwrap().to_string(),
    };

    let started = Instant::now();
    let v = loop {
        let v = claw.view().await;
        assert_ne!(health(&v), "healthy", "a channel that cannot run: {v}");
        if health(&v) == "degraded" {
            break v;
        }
        if started.elapsed() >= HEALTHY_BOUND {
            panic!("never degraded: {v}\n{}", log_tail(&claw.container()).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(v["channels"][0]["id"], "discord", "{v}");
    assert_eq!(v["channels"][0]["state"], "not_loaded", "{v}");
    assert_eq!(v["channels"][1]["id"], "slack", "{v}");
    assert_ne!(
        v["channels"][1]["state"], "not_loaded",
        "the image's Slack plugin: {v}"
    );
    assert!(claw.gateway_ready().await, "OpenClaw itself says ready");

    // Break the config from inside and end the run: every run after this one crashes.
    // (The exec's own exit status is moot: its container goes down under it.)
    exec(
        &claw.container(),
        &[
            "sh",
            "-c",
            "printf '{ not json' > /home/node/.openclaw/openclaw.json && kill -TERM 1",
        ],
    )
    .await;
    let started = Instant::now();
    let mut looped = 0;
    while looped < 20 {
        let v = claw.view().await;
        assert_ne!(health(&v), "healthy", "crashing runs: {v}");
        if v["state"] == "crash_loop" {
            looped += 1;
            assert_eq!(health(&v), "unhealthy", "{v}");
        }
        if started.elapsed() >= HEALTHY_BOUND {
            panic!(
                "never in crash_loop: {v}\n{}",
                log_tail(&claw.container()).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "MEASURE crash_loop_detected_after_s={:.0}",
        started.elapsed().as_secs_f64()
    );
}
