//! Lifecycle policy the image or template decides, pinned with the fixture bot (fast): health
//! belongs to a run, per-bot stop grace, one init, secret rotation and required secrets,
//! botmaker-owned `openclaw.json`, ports on internal networks. The same points against a real
//! OpenClaw gateway are in `openclaw_real.rs`.

use std::time::{Duration, Instant};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::fixture::TEST_LABEL;
use crate::support::openclaw::TestNetwork;
use crate::support::server::TestServer;

fn health(v: &Value) -> &str {
    v["health"].as_str().unwrap_or_default()
}

/// A probed fixture bot whose `/healthz` answers only `ready_after_ms` after each start.
fn slow_starting_bot(s: &TestServer, name: &str, ready_after_ms: u64) -> Value {
    let mut body = s.bot_body(name);
    body["env"]["READY_AFTER_MS"] = json!(ready_after_ms.to_string());
    body["health_check"] = json!({
        "port": 8080, "path": "/healthz", "interval_secs": 1,
        "start_period_secs": 60, "failure_threshold": 3,
    });
    body
}

/// An openclaw bot run by the fixture's stand-in (`testbot openclaw`), with a Telegram channel.
fn stand_in_openclaw(s: &TestServer, name: &str) -> Value {
    json!({
        "id": s.h.bot(name).to_string(), "template": "openclaw", "image": s.h.image,
        "command": ["openclaw"],
        "secrets": { "TELEGRAM_BOT_TOKEN": "123:abc", "EXTRA_NOTE": "x" },
        "settings": { "provider": "ollama", "model": "llama3", "channels": ["telegram"] },
    })
}

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn container(s: &TestServer, id: &str) -> bollard::models::ContainerInspectResponse {
    s.h.docker
        .client()
        .inspect_container(&format!("botmaker-{id}"), None)
        .await
        .unwrap()
}

/// Regression (issue 9.1): the previous run's `healthy` survived a restart until the next
/// probe verdict, while the restarted bot did not answer yet.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_bot_is_starting_until_it_answers_again() {
    let s = TestServer::start().await;
    let v = create(&s, slow_starting_bot(&s, "rerun", 3000)).await;
    let id = v["id"].as_str().unwrap().to_string();
    s.wait_bot(&id, "healthy", Duration::from_secs(30), |v| {
        health(v) == "healthy"
    })
    .await;

    let (status, v) = s.post(&format!("/api/bots/{id}/restart"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let restarted = Instant::now();
    assert_eq!(health(&v), "starting", "right after the restart: {v}");
    // Until the new run answers (3 s after its start), it is never healthy.
    loop {
        let (_, v) = s.get(&format!("/api/bots/{id}")).await;
        if restarted.elapsed() > Duration::from_millis(2500) {
            break;
        }
        assert_ne!(health(&v), "healthy", "before the new run answered: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then it is, within a couple of probe intervals.
    s.wait_bot(&id, "healthy again", Duration::from_secs(20), |v| {
        health(v) == "healthy"
    })
    .await;
}

/// Regression (issue 9.1): a bot in `crash_loop` showed the `healthy` of one brief run.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_bot_is_never_healthy() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("crashy");
    body["env"]["EXIT_AFTER_MS"] = json!("2500");
    body["env"]["EXIT_CODE"] = json!("3");
    body["health_check"] = json!({
        "port": 8080, "path": "/healthz", "interval_secs": 1,
        "start_period_secs": 0, "failure_threshold": 3,
    });
    let id = create(&s, body).await["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut looped = 0;
    let mut healthy_once = false;
    while Instant::now() < deadline && looped < 30 {
        let (_, v) = s.get(&format!("/api/bots/{id}")).await;
        healthy_once |= health(&v) == "healthy";
        if v["state"] == "crash_loop" {
            looped += 1;
            assert_ne!(health(&v), "healthy", "crash-looping yet healthy: {v}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(looped >= 30, "the bot never stayed in crash_loop");
    assert!(
        healthy_once,
        "its runs were healthy before the loop was known"
    );
}

/// Regression (issue 9.2): every stop waited the server's fixed grace, then SIGKILL; a bot now
/// has its own, which the container carries too.
#[tokio::test(flavor = "multi_thread")]
async fn stop_grace_is_the_bots_own() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("grace");
    body["stop_timeout_secs"] = json!(42);
    let v = create(&s, body).await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["stop_timeout_secs"], 42);
    let c = container(&s, &id).await;
    assert_eq!(c.config.unwrap().stop_timeout, Some(42));

    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "stop_timeout_secs": 7 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        container(&s, &id).await.config.unwrap().stop_timeout,
        Some(7)
    );
    for bad in [0, 601] {
        let (status, v) = s
            .call(
                Method::PATCH,
                &format!("/api/bots/{id}"),
                Some(json!({ "stop_timeout_secs": bad })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["fields"]["stop_timeout_secs"].is_array(), "{v}");
    }
    // `null` gives the bot back to the server's default.
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "stop_timeout_secs": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["stop_timeout_secs"].is_null(), "{v}");
    assert_eq!(container(&s, &id).await.config.unwrap().stop_timeout, None);

    // The openclaw template gives its gateway time to drain.
    let v = create(&s, stand_in_openclaw(&s, "claw-grace")).await;
    assert_eq!(v["stop_timeout_secs"], 90);
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        container(&s, id).await.config.unwrap().stop_timeout,
        Some(90)
    );
}

/// Regression (issue 9.3): Docker's init was added on top of an image's own tini.
#[tokio::test(flavor = "multi_thread")]
async fn docker_init_only_for_images_without_one() {
    let s = TestServer::start().await;
    let tini_image = fixture_with_tini_entrypoint(&s).await;
    let mut body = s.bot_body("own-init");
    body["image"] = json!(tini_image);
    body["start"] = json!(false);
    let id = create(&s, body).await["id"].as_str().unwrap().to_string();
    let c = container(&s, &id).await;
    assert_eq!(
        c.host_config.unwrap().init,
        None,
        "the image runs tini already"
    );

    let id = s.create_bot("no-init").await;
    let c = container(&s, &id).await;
    assert_eq!(c.host_config.unwrap().init, Some(true));
}

/// The fixture image with an entrypoint named like tini (it is never started).
async fn fixture_with_tini_entrypoint(s: &TestServer) -> String {
    let tag = format!("{}-tini", s.h.image);
    let docker = s.h.docker.client();
    if docker.inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let dockerfile = format!(
        "FROM {}\nLABEL {TEST_LABEL}=1\nENTRYPOINT [\"/sbin/tini\", \"--\", \"/testbot\"]\n",
        s.h.image
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let options = BuildImageOptionsBuilder::new().t(&tag).rm(true).build();
    let mut build = docker.build_image(
        options,
        None,
        Some(bollard::body_full(tar.into_inner().unwrap().into())),
    );
    while let Some(step) = build.next().await {
        let info = step.unwrap();
        assert!(info.error_detail.is_none(), "{info:?}");
    }
    tag
}

/// Regression (issue 9.8): the gateway token could be deleted (200), and the bot crash-looped.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_the_template_needs_cannot_be_deleted() {
    let s = TestServer::start().await;
    let v = create(&s, stand_in_openclaw(&s, "needs")).await;
    let id = v["id"].as_str().unwrap();
    for (name, need) in [
        ("OPENCLAW_GATEWAY_TOKEN", "gateway auth"),
        ("TELEGRAM_BOT_TOKEN", "telegram"),
    ] {
        let (status, v) = s
            .call(
                Method::DELETE,
                &format!("/api/bots/{id}/secrets/{name}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {v}");
        assert_eq!(v["code"], "SECRET_REQUIRED");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(name) && msg.contains(need), "{msg}");
    }
    let (_, v) = s.get(&format!("/api/bots/{id}/secrets")).await;
    assert!(v["secrets"].to_string().contains("OPENCLAW_GATEWAY_TOKEN"));
    // A secret nothing needs goes.
    let (status, v) = s
        .call(
            Method::DELETE,
            &format!("/api/bots/{id}/secrets/EXTRA_NOTE"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Regression (issue 9.7): a rotated secret changed nothing in an OpenClaw bot (it reads them
/// at start), and the API claimed it had. Generic bots keep the in-place rotation.
#[tokio::test(flavor = "multi_thread")]
async fn secret_rotation_follows_the_template() {
    let s = TestServer::start().await;
    let put = |id: String, name: &'static str| {
        let s = &s;
        async move {
            let res = s
                .client
                .put(s.url(&format!("/api/bots/{id}/secrets/{name}")))
                .bearer_auth(&s.token)
                .body("rotated-value")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };

    let claw = create(&s, stand_in_openclaw(&s, "rotate")).await;
    let id = claw["id"].as_str().unwrap().to_string();
    let before = claw["started_at"].clone();
    let v = put(id.clone(), "OPENCLAW_GATEWAY_TOKEN").await;
    assert_eq!(v["rotation"], "restart", "{v}");
    assert_eq!(v["restarted"], true, "{v}");
    let (_, now) = s.get(&format!("/api/bots/{id}")).await;
    assert_ne!(now["started_at"], before, "restarted");

    let id = s.create_bot("rotate-generic").await;
    let (_, before) = s.get(&format!("/api/bots/{id}")).await;
    let v = put(id.clone(), "API_KEY").await;
    assert_eq!(v["rotation"], "in_place", "{v}");
    assert_eq!(v["restarted"], false, "{v}");
    let (_, now) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(now["started_at"], before["started_at"], "not restarted");
}

/// Regression (issue 9.4/9.5): OpenClaw edited and "restored" a config botmaker rewrote; now
/// the config is botmaker's (read-only to OpenClaw), and everything else a user needs goes
/// through `settings` (first-class keys and a validated `config` pass-through).
#[tokio::test(flavor = "multi_thread")]
async fn openclaw_json_is_botmakers_and_takes_the_pass_through() {
    let s = TestServer::start().await;
    let mut body = stand_in_openclaw(&s, "owned");
    body["settings"]["http_chat"] = json!(true);
    body["settings"]["agent_id"] = json!("support");
    body["settings"]["config"] = json!({ "agents": { "defaults": { "timeoutSeconds": 321 } } });
    let v = create(&s, body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let env = container(&s, &id).await.config.unwrap().env.unwrap();
    assert!(
        env.contains(&"OPENCLAW_CONFIG_READONLY=1".to_string()),
        "{env:?}"
    );

    let file = s
        .data
        .path()
        .join("workspaces")
        .join(&id)
        .join("openclaw.json");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(config["agents"]["defaults"]["timeoutSeconds"], 321);
    assert_eq!(
        config["agents"]["defaults"]["systemAgent"]["agentId"],
        "support"
    );
    assert_eq!(
        config["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"],
        true
    );

    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "settings": {
                "provider": "ollama", "model": "llama3", "channels": ["telegram"],
                "config": { "gateway": { "auth": { "mode": "none" } } },
            } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["fields"]["settings.config.gateway.auth"].is_array(),
        "{v}"
    );
}

/// Regression (issue 9.9): on an `--internal` network Docker publishes nothing, yet the bot
/// claimed a published gateway port.
#[tokio::test(flavor = "multi_thread")]
async fn an_internal_network_publishes_no_port() {
    let s = TestServer::start().await;
    let net = TestNetwork::create(&s.h, true).await;
    let mut body = s.bot_body("inner-ports");
    body["network"] = json!(net.name);
    body["ports"] = json!([{ "container": 8080 }]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["fields"]["ports"][0]
            .as_str()
            .unwrap()
            .contains("internal")
    );

    // The openclaw template's default port is simply not published there.
    let mut body = stand_in_openclaw(&s, "inner-claw");
    body["network"] = json!(net.name);
    let v = create(&s, body).await;
    assert_eq!(v["ports"], json!([]), "{v}");
    let id = v["id"].as_str().unwrap();
    let c = container(&s, id).await;
    let bindings = c.host_config.unwrap().port_bindings.unwrap_or_default();
    assert!(bindings.is_empty(), "{bindings:?}");
    // On a normal network the default port is there.
    let v = create(&s, stand_in_openclaw(&s, "outer-claw")).await;
    assert_eq!(v["ports"][0]["container"], 18789);
    drop(s);
}
