//! The Swarm backend (`serve --backend swarm`, issue 15) on a private single-node swarm the
//! test starts: the same API drives bots that are services, their secrets Swarm secrets.

use std::time::Duration;

use bollard::query_parameters::InspectServiceOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::swarm::{PrivateSwarm, secrets_labelled, without_digest};
use crate::support::variants::{Variant, variant};

const WAIT: Duration = Duration::from_secs(60);

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or_default()
}

/// Runs `testbot cat <path>` in the bot as its own user; (exit code, stdout).
async fn cat(s: &TestServer, id: &str, path: &str) -> (i64, String) {
    let (status, v) = s
        .post(
            &format!("/api/bots/{id}/exec"),
            json!({ "cmd": ["/testbot", "cat", path] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    (
        v["exit_code"].as_i64().unwrap_or(-1),
        v["stdout"].as_str().unwrap_or_default().to_string(),
    )
}

/// A fresh attachable overlay `<prefix>-<pid>` on the private swarm (it goes away with the
/// swarm's engine), by name.
async fn attachable_overlay(s: &TestServer, prefix: &str) -> String {
    let net = format!("{prefix}-{}", std::process::id());
    s.h.docker
        .client()
        .create_network(bollard::models::NetworkCreateRequest {
            name: net.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            ..Default::default()
        })
        .await
        .expect("an overlay network on the private swarm");
    net
}

/// The Swarm secrets of `id` (names), as the engine lists them.
async fn swarm_secrets(s: &TestServer, id: &str) -> Vec<String> {
    secrets_labelled(s, &[format!("botmaker.bot-id={id}")])
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

async fn replicas(s: &TestServer, id: &str) -> Option<i64> {
    let service =
        s.h.docker
            .client()
            .inspect_service(&format!("botmaker-{id}"), None::<InspectServiceOptions>)
            .await
            .ok()?;
    service.spec?.mode?.replicated?.replicas
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_runs_as_a_service_with_secrets_for_uid_1000_rotated_stopped_and_deleted() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let mut body = s.bot_body("sw");
    body["user"] = json!("1000:1000");
    body["secrets"] = json!({ "API_TOKEN": "first-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    assert_eq!(
        replicas(&s, &id).await,
        Some(1),
        "a running bot is one replica"
    );

    // The secret is a file owned by the bot's user, readable by it alone.
    let (code, out) = cat(&s, &id, "/run/secrets/API_TOKEN").await;
    assert_eq!((code, out.as_str()), (0, "first-value"), "read as uid 1000");
    // Logs are the service's: the bot's own lines, with the user it runs as.
    let logs = crate::support::eventually("the bot's start-up lines in its logs", WAIT, || async {
        let (status, v) = s.get(&format!("/api/bots/{id}/logs?tail=100")).await;
        let text = v.to_string();
        (status == StatusCode::OK && text.contains("uid: 1000")).then_some(text)
    })
    .await;
    assert!(logs.contains("secrets: API_TOKEN"), "{logs}");
    let first = swarm_secrets(&s, &id).await;
    assert_eq!(first.len(), 1, "{first:?}");

    // Rotation: a new Swarm secret, the task replaced, the old version gone.
    let put = s
        .client
        .put(s.url(&format!("/api/bots/{id}/secrets/API_TOKEN")))
        .bearer_auth(&s.token)
        .body("second-value")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let answer: Value = put.json().await.unwrap();
    assert_eq!(answer["restarted"], json!(true), "{answer}");
    s.wait_bot(&id, "running after rotation", WAIT, |v| {
        state(v) == "running"
    })
    .await;
    let (code, out) = cat(&s, &id, "/run/secrets/API_TOKEN").await;
    assert_eq!((code, out.as_str()), (0, "second-value"));
    let after = crate::support::eventually("the old secret version removed", WAIT, || async {
        let now = swarm_secrets(&s, &id).await;
        (now.len() == 1 && now != first).then_some(now)
    })
    .await;
    assert_ne!(after, first);

    // Stop is zero replicas, start one again.
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(replicas(&s, &id).await, Some(0));
    s.wait_bot(&id, "stopped", WAIT, |v| state(v) == "stopped")
        .await;
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{id}/start"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(replicas(&s, &id).await, Some(1));
    s.wait_bot(&id, "running again", WAIT, |v| state(v) == "running")
        .await;

    // Stats: the sampler reads the task's container on this node.
    crate::support::eventually("a stats sample of the bot", WAIT, || async {
        let (_, v) = s.get("/api/stats").await;
        v["stats"]
            .as_array()?
            .iter()
            .find(|r| r["id"] == id.as_str() && r["memory_bytes"].as_u64().unwrap_or(0) > 0)
            .cloned()
    })
    .await;

    // The nodes view: one manager, running this bot.
    let (status, nodes) = s.get("/api/nodes").await;
    assert_eq!(status, StatusCode::OK, "{nodes}");
    assert_eq!(nodes["backend"], "swarm");
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes["nodes"][0]["state"], "ready", "{nodes}");
    assert_eq!(nodes["nodes"][0]["bots"], 1, "{nodes}");

    // Delete removes the service, its secrets and its workspace.
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert!(status.is_success(), "{status} {v}");
    assert_eq!(replicas(&s, &id).await, None, "service gone");
    assert!(swarm_secrets(&s, &id).await.is_empty(), "secrets gone");
    let workspace = s.data.path().join("workspaces").join(&id);
    assert!(
        !workspace.exists(),
        "workspace gone: {}",
        workspace.display()
    );
    drop(s);
    drop(swarm);
}

/// A running fixture bot as uid 1000 with a secret, the fixture's probe, and a file in its
/// workspace; returns its id and view.
async fn upgradable_bot(s: &TestServer, name: &str) -> (String, Value) {
    let mut body = s.bot_body(name);
    body["user"] = json!("1000:1000");
    body["secrets"] = json!({ "API_TOKEN": "kept-across-upgrades" });
    body["health_check"] = json!({
        "port": 8080, "path": "/healthz", "interval_secs": 1, "start_period_secs": 1,
    });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    let note = s.data.path().join("workspaces").join(&id).join("note.txt");
    std::fs::write(&note, b"state kept across upgrades").unwrap();
    (id, v)
}

/// The secret and the workspace file [`upgradable_bot`] gave the bot, read inside it as its
/// own user.
async fn assert_secret_and_workspace_kept(s: &TestServer, id: &str) {
    let (code, out) = cat(s, id, "/run/secrets/API_TOKEN").await;
    assert_eq!((code, out.as_str()), (0, "kept-across-upgrades"));
    let (code, out) = cat(s, id, "/workspace/note.txt").await;
    assert_eq!((code, out.as_str()), (0, "state kept across upgrades"));
}

/// The image the bot's service makes its tasks from (without a digest), and its update order.
async fn service_image(s: &TestServer, id: &str) -> (String, Option<String>) {
    let service =
        s.h.docker
            .client()
            .inspect_service(&format!("botmaker-{id}"), None::<InspectServiceOptions>)
            .await
            .unwrap();
    let spec = service.spec.unwrap();
    let image = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .map(|i| without_digest(&i).to_string())
        .unwrap_or_default();
    let order = spec
        .update_config
        .and_then(|u| u.order)
        .map(|o| o.to_string());
    (image, order)
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_upgrade_is_a_rolling_update_that_keeps_secrets_and_workspace() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let (id, before) = upgradable_bot(&s, "swup").await;

    let t = std::time::Instant::now();
    let (status, out) = s
        .post(&format!("/api/bots/{id}/upgrade"), json!({ "image": v2 }))
        .await;
    println!(
        "swarm upgrade took {:?} (downtime_ms {})",
        t.elapsed(),
        out["downtime_ms"]
    );
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "upgraded", "{out}");
    assert_eq!(out["previous_image"], s.h.image.as_str());
    assert_eq!(out["image"], v2.as_str());
    assert!(out["downtime_ms"].as_u64().is_some(), "{out}");
    let bot = &out["bot"];
    assert_eq!(bot["state"], "running", "{bot}");
    assert_eq!(bot["image"], v2.as_str());
    assert_ne!(bot["container_id"], before["container_id"], "a new task");
    let v2_id = s.h.docker.image_id(&v2).await.unwrap().unwrap();
    assert_eq!(bot["image_id"], v2_id.as_str());
    // The service was updated in place, old task stopped first.
    let (image, order) = service_image(&s, &id).await;
    assert_eq!(image, v2);
    assert_eq!(order.as_deref(), Some("stop-first"));

    // Its secret and its workspace, as its own user.
    assert_secret_and_workspace_kept(&s, &id).await;
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["image"], v2.as_str(), "the stored config: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_upgrade_to_an_image_that_fails_its_probe_rolls_back_to_the_previous_image() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let sick = variant(s.h.docker.client(), &s.h.image, Variant::Sick).await;
    let (id, before) = upgradable_bot(&s, "swsick").await;

    let (status, out) = s
        .post(
            &format!("/api/bots/{id}/upgrade"),
            json!({ "image": sick, "timeout_secs": 5 }),
        )
        .await;
    // The answer and its reason are the Docker backend's.
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["result"], "rolled_back", "{out}");
    assert_eq!(out["code"], "UPGRADE_ROLLED_BACK", "{out}");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("not healthy within 5 s") && reason.contains("/healthz"),
        "{reason}"
    );
    assert_eq!(out["image"], s.h.image.as_str());
    let bot = s
        .wait_bot(&id, "running again", WAIT, |v| state(v) == "running")
        .await;
    assert_eq!(bot["image"], s.h.image.as_str(), "config unchanged: {bot}");
    assert_eq!(bot["image_id"], before["image_id"], "{bot}");
    let (image, _) = service_image(&s, &id).await;
    assert_eq!(image, s.h.image);
    assert_secret_and_workspace_kept(&s, &id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_upgrade_of_a_stopped_bot_changes_its_image_without_starting_it() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let (id, _) = upgradable_bot(&s, "swstop").await;
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{id}/stop"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let (status, out) = s
        .post(&format!("/api/bots/{id}/upgrade"), json!({ "image": v2 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "upgraded", "{out}");
    // As on the Docker backend (a new container, not started): not running, still stopped.
    assert_ne!(out["bot"]["state"], "running", "{out}");
    assert_eq!(out["bot"]["desired_state"], "stopped", "{out}");
    assert_eq!(replicas(&s, &id).await, Some(0), "still stopped");
    let (image, _) = service_image(&s, &id).await;
    assert_eq!(image, v2);
    // The next start runs the new image.
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{id}/start"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v2_id = s.h.docker.image_id(&v2).await.unwrap().unwrap();
    s.wait_bot(&id, "running the new image", WAIT, |v| {
        state(v) == "running" && v["image_id"] == v2_id.as_str()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_upgrade_to_a_crashing_image_rolls_back() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let crash = variant(s.h.docker.client(), &s.h.image, Variant::Crash).await;
    let (id, before) = upgradable_bot(&s, "swcr").await;

    let (status, out) = s
        .post(
            &format!("/api/bots/{id}/upgrade"),
            json!({ "image": crash, "timeout_secs": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("exit") || reason.contains("restarted") || reason.contains("replaced"),
        "{reason}"
    );
    let bot = s
        .wait_bot(&id, "running again", WAIT, |v| state(v) == "running")
        .await;
    assert_eq!(bot["image_id"], before["image_id"], "{bot}");
    let (image, _) = service_image(&s, &id).await;
    assert_eq!(image, s.h.image);
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_backend_on_an_engine_that_is_no_manager_says_how_to_fix_it() {
    // The shared engine is not a swarm (and is never made one): connecting is refused
    // with the state found and the fixes, before anything is created.
    let err = botmaker::docker::DockerService::connect(botmaker::docker::DockerSettings {
        host: crate::support::engine_host(),
        instance: crate::support::instance(),
        backend: botmaker::docker::Backend::Swarm,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), "NOT_SWARM_MANAGER", "{err}");
    let text = err.to_string();
    assert!(text.contains("not a Swarm manager"), "{text}");
    assert!(text.contains("docker swarm init"), "{text}");
    assert!(text.contains("--backend docker"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_replaces_a_crashed_task_and_counts_the_failed_runs() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let image = variant(s.h.docker.client(), &s.h.image, Variant::Crash).await;
    let mut body = s.bot_body("swcrash");
    body["image"] = json!(image);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Each run exits with 3 after 1.5 s; Swarm starts a new task for it, as Docker's
    // restart policy restarts the container.
    let v = s
        .wait_bot(&id, "two failed runs", WAIT, |v| {
            v["restart_count"].as_i64().unwrap_or(0) >= 2
        })
        .await;
    assert_eq!(v["desired_state"], "running", "{v}");
    let status =
        s.h.docker
            .container_status(&botmaker::BotId::new(id.clone()).unwrap())
            .await
            .unwrap()
            .expect("the service exists");
    assert!(status.restart_count >= 2, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_runs_again_after_the_manager_engine_restarts() {
    let mut swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let id = s.create_bot("swrs").await;
    let before = s
        .wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    swarm.engine.restart().await;
    // The daemon's stop ended the task; the swarm, back with it, runs the bot again, and
    // botmaker (reconnected) shows the new task.
    let after = s
        .wait_bot(&id, "running again after the restart", WAIT * 2, |v| {
            state(v) == "running" && v["container_id"] != before["container_id"]
        })
        .await;
    assert_eq!(after["desired_state"], "running", "{after}");
    assert_eq!(replicas(&s, &id).await, Some(1));
}

/// The openclaw template publishes no gateway port by default on Swarm (issue 15); a user's
/// gateway port on one address is refused with the fix, and nothing is left behind.
#[tokio::test(flavor = "multi_thread")]
async fn swarm_refuses_a_loopback_openclaw_gateway_port_with_the_fix_and_leaves_nothing_behind() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let id = s.h.bot("swoc").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({
                "id": id, "template": "openclaw", "image": s.h.image, "command": ["openclaw"],
                "env": { "TICK_MS": "0" },
                "ports": [{ "container": 18789, "host_ip": "127.0.0.1" }],
                "settings": {
                    "provider": "anthropic", "model": "claude-opus-4-5", "channels": ["telegram"],
                },
                "secrets": { "ANTHROPIC_API_KEY": "sk-ant-test", "TELEGRAM_BOT_TOKEN": "123:abc" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED", "{v}");
    let text = v.to_string();
    assert!(text.contains("0.0.0.0"), "names the fix: {v}");
    assert_eq!(
        s.get(&format!("/api/bots/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(replicas(&s, &id).await, None, "no service");
    assert!(swarm_secrets(&s, &id).await.is_empty(), "no Swarm secret");
    assert!(!s.data.path().join("secrets").join(&id).exists());
}

/// Median of `v` in milliseconds, with min and max.
fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "median {:.1} ms, min {:.1}, max {:.1} (n = {})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

/// Creates `n` running bots through the API of `s`, then times the one fleet-wide list the
/// reconciler's resync makes; prints both. Checks only that every bot ran.
async fn create_and_list(s: &TestServer, backend: &str, n: usize) {
    let mut creates = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut body = s.bot_body(&format!("m{i}"));
        body["env"] = json!({ "TICK_MS": "0" });
        body["limits"] = json!({ "memory_mb": 32 });
        let t = std::time::Instant::now();
        let (status, v) = s.post("/api/bots", body).await;
        creates.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let mut lists = Vec::new();
    let mut seen = 0;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let list = s.h.docker.list_managed_containers().await.unwrap();
        lists.push(t.elapsed().as_secs_f64() * 1000.0);
        seen = list
            .iter()
            .filter(|c| c.state == botmaker::docker::ContainerState::Running)
            .count();
    }
    assert_eq!(seen, n, "every bot runs");
    println!(
        "{backend}: create+start via the API at 0..{n} bots: {}",
        summary(creates)
    );
    println!("{backend}: list of {n} running bots: {}", summary(lists));
    for id in ids {
        let _ = s
            .call(Method::DELETE, &format!("/api/bots/{id}"), None)
            .await;
    }
}

/// Create and list cost at 100 bots, Swarm against plain Docker, each on a private engine
/// (`cargo test --test integration measure_swarm -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: starts 200 bots over a few minutes"]
async fn measure_swarm_vs_docker_create_and_list_at_100_bots() {
    {
        let engine = crate::support::private_engine::PrivateEngine::start().await;
        let docker = engine.service(&crate::support::instance()).await.unwrap();
        let s = TestServer::start_on(crate::support::Harness::on(docker).await).await;
        create_and_list(&s, "docker", 100).await;
    }
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    create_and_list(&s, "swarm", 100).await;
}

/// A free TCP port of this host.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_publishes_ports_in_host_mode_or_on_the_mesh_and_refuses_loopback_ones() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;

    // A port on 127.0.0.1 (the default) cannot be honoured by Swarm: refused, nothing made.
    let mut body = s.bot_body("swlo");
    body["ports"] = json!([{ "container": 8080 }]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "INVALID_CONFIG", "{v}");
    assert!(v.to_string().contains("0.0.0.0"), "the fix is named: {v}");
    let lo = s.h.bot("swlo").to_string();
    assert_eq!(replicas(&s, &lo).await, None, "no service");

    // Host mode on the bot's node, a port asked for; the mesh, a port Swarm picks.
    let host_port = free_port();
    let mut body = s.bot_body("swports");
    body["ports"] = json!([
        { "container": 8080, "host": host_port, "host_ip": "0.0.0.0" },
        { "container": 9090, "host_ip": "0.0.0.0", "publish": "mesh" },
    ]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running with its mesh port bound", WAIT, |v| {
            state(v) == "running" && v["ports"][1]["host"].as_u64().is_some()
        })
        .await;
    assert_eq!(v["ports"][0]["host"], host_port, "{v}");
    assert_eq!(v["ports"][1]["auto"], true, "{v}");
    assert_eq!(v["ports"][1]["publish"], "mesh", "{v}");
    let service =
        s.h.docker
            .client()
            .inspect_service(&format!("botmaker-{id}"), None::<InspectServiceOptions>)
            .await
            .unwrap();
    let ports = service.spec.unwrap().endpoint_spec.unwrap().ports.unwrap();
    let modes: Vec<String> = ports
        .iter()
        .map(|p| p.publish_mode.unwrap().to_string())
        .collect();
    assert_eq!(modes, ["host", "ingress"]);
    // The host-mode port answers on this node (the private engine runs without iptables, so
    // through Docker's userland proxy; the mesh needs iptables and is not probed).
    let url = format!("http://127.0.0.1:{host_port}/healthz");
    crate::support::eventually("the bot's port answers on the node", WAIT, || async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// Reads `GET /api/bots/{id}/logs?follow=true&tail=1` into `text` until `done(text)` holds;
/// panics after `limit` or if the stream ends.
async fn follow_until(
    body: &mut futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    text: &mut String,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    use futures_util::StreamExt;
    let deadline = std::time::Instant::now() + limit;
    while !done(text) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "stream so far: {text}");
        match tokio::time::timeout(left, body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(e))) => panic!("{e}; so far: {text}"),
            Ok(None) => panic!("the stream ended; so far: {text}"),
            Err(_) => panic!("stream so far: {text}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_logs_follow_streams_new_lines_and_follows_the_next_task() {
    use futures_util::StreamExt;
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let id = s.create_bot("swlog").await;
    s.wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    let res = s
        .client
        .get(s.url(&format!("/api/bots/{id}/logs?follow=true&tail=1")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream().boxed();
    let mut text = String::new();
    // tail=1 sends one old line; more ticks are lines written while following.
    follow_until(&mut body, &mut text, WAIT, |t| {
        t.matches("tick ").count() >= 4
    })
    .await;

    // A restart is a new task (a new container): the follower goes on with it, from its
    // first line (`ready`, printed once at start).
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{id}/restart"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    follow_until(&mut body, &mut text, WAIT, |t| {
        t.rsplit("event: attached")
            .next()
            .is_some_and(|after| t.contains("event: attached") && after.contains("ready"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_bot_joins_an_overlay_network_and_a_bridge_is_refused_with_the_fix() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;

    // A bridge of one engine: Swarm would accept the service and reject every task.
    let mut body = s.bot_body("swbr");
    body["network"] = json!("bridge");
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "INVALID_CONFIG", "{v}");
    assert!(v.to_string().contains("--driver overlay"), "{v}");
    let br = s.h.bot("swbr").to_string();
    assert_eq!(replicas(&s, &br).await, None, "no service");
    assert!(swarm_secrets(&s, &br).await.is_empty());

    // An attachable overlay (the private engine, and it, go away with the swarm).
    let net = attachable_overlay(&s, "bm-ov").await;
    let mut body = s.bot_body("swov");
    body["network"] = json!(net);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running", WAIT, |v| state(v) == "running")
        .await;
    let container =
        s.h.docker
            .client()
            .inspect_container(v["container_id"].as_str().unwrap(), None)
            .await
            .unwrap();
    let networks = container.network_settings.unwrap().networks.unwrap();
    assert!(networks.contains_key(&net), "{:?}", networks.keys());
}

/// Regression (issue 15): a probed bot on an overlay was probed at its overlay address, which
/// a botmaker on the host cannot reach (the address even answered 404 from elsewhere), so it
/// was `unhealthy` while it served; it is probed at its `docker_gwbridge` address.
#[tokio::test(flavor = "multi_thread")]
async fn swarm_probed_bot_on_an_overlay_was_unhealthy_probed_at_an_address_the_host_cannot_reach() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let net = attachable_overlay(&s, "bm-ovp").await;
    let mut body = s.bot_body("swovp");
    body["network"] = json!(net);
    body["health_check"] = json!({
        "port": 8080, "path": "/healthz", "interval_secs": 1, "start_period_secs": 1,
    });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "healthy on the overlay", WAIT, |v| {
            v["health"] == "healthy"
        })
        .await;
    assert_eq!(state(&v), "running", "{v}");
}
