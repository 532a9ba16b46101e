//! Regression tests for the lifecycle, validation, defaults and fault findings of the hardening
//! review (issue 10): each test is named after the defect it pins.

use std::time::{Duration, Instant};

use botmaker::BotId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::private_engine::PrivateEngine;
use crate::support::server::TestServer;
use crate::support::{Harness, eventually};

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or_default()
}

/// A server driving a private engine of its own (bots there run with network `none`).
async fn private_server() -> (PrivateEngine, TestServer) {
    let engine = PrivateEngine::start().await;
    let docker = engine.service(&crate::support::instance()).await.unwrap();
    let h = Harness::on(docker).await;
    let s = TestServer::start_on(h).await;
    (engine, s)
}

/// Creates a bot on a private engine (network `none`) and returns its id.
async fn create_private_bot(s: &TestServer, name: &str, extra: Value) -> String {
    let mut body = s.bot_body(name);
    body["network"] = json!("none");
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn put_secret(s: &TestServer, id: &str, name: &str, value: &str) -> StatusCode {
    s.client
        .put(s.url(&format!("/api/bots/{id}/secrets/{name}")))
        .bearer_auth(&s.token)
        .body(value.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

/// Runs `first` (which holds the bot's lock for a while: a restart), then each of `queued`
/// 40 ms after the previous one, so they queue for the lock in that order.
async fn queued_behind(
    s: &TestServer,
    first: (Method, String, Option<Value>),
    queued: Vec<(Method, String, Option<Value>)>,
) -> Vec<(StatusCode, Value)> {
    let mut calls = vec![first];
    calls.extend(queued);
    let futures = calls.into_iter().enumerate().map(|(i, (m, path, body))| {
        let s = &s;
        async move {
            tokio::time::sleep(Duration::from_millis(40 * i as u64)).await;
            s.call(m, &path, body).await
        }
    });
    futures_util::future::join_all(futures).await
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_queued_behind_a_stop_keeps_the_bot_stopped() {
    let s = TestServer::start().await;
    let id = s.create_bot("queued").await;
    let results = queued_behind(
        &s,
        (Method::POST, format!("/api/bots/{id}/restart"), None),
        vec![
            (Method::POST, format!("/api/bots/{id}/stop"), None),
            (
                Method::PATCH,
                format!("/api/bots/{id}"),
                Some(json!({ "env": { "TICK_MS": "250" } })),
            ),
        ],
    )
    .await;
    for (status, v) in &results {
        assert_eq!(*status, StatusCode::OK, "{v}");
    }
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["desired_state"], "stopped", "{v}");
    assert_eq!(v["env"]["TICK_MS"], "250", "{v}");
    let status =
        s.h.docker
            .container_status(&BotId::new(id.clone()).unwrap())
            .await
            .unwrap()
            .expect("the PATCH recreated the container");
    assert!(!status.running, "the PATCH restarted a stopped bot");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_queued_patches_both_land() {
    let s = TestServer::start().await;
    let id = s.create_bot("twopatch").await;
    let results = queued_behind(
        &s,
        (Method::POST, format!("/api/bots/{id}/restart"), None),
        vec![
            (
                Method::PATCH,
                format!("/api/bots/{id}"),
                Some(json!({ "env": { "TICK_MS": "200", "FIRST": "1" } })),
            ),
            (
                Method::PATCH,
                format!("/api/bots/{id}"),
                Some(json!({ "name": "Second patch" })),
            ),
        ],
    )
    .await;
    for (status, v) in &results {
        assert_eq!(*status, StatusCode::OK, "{v}");
    }
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["name"], "Second patch", "{v}");
    assert_eq!(v["env"]["FIRST"], "1", "the first PATCH was lost: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_and_secret_queued_behind_a_delete_recreate_nothing() {
    let s = TestServer::start().await;
    let id = s.create_bot("ghost").await;
    let path = format!("/api/bots/{id}");
    let delete = s.call(Method::DELETE, &path, None);
    let start = async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        s.post(&format!("/api/bots/{id}/start"), json!({})).await
    };
    let secret = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        put_secret(&s, &id, "LATE_KEY", "late-value").await
    };
    let ((deleted, v), (started, w), secret) = tokio::join!(delete, start, secret);
    assert_eq!(deleted, StatusCode::OK, "{v}");
    assert_eq!(started, StatusCode::NOT_FOUND, "{w}");
    assert_eq!(secret, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/api/bots/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        s.h.docker
            .list_managed_containers()
            .await
            .unwrap()
            .is_empty(),
        "a container was made for a deleted bot"
    );
    assert!(!s.data.path().join("secrets").join(&id).exists());
    assert!(!s.data.path().join("workspaces").join(&id).exists());
    let (_, o) = s.get("/api/admin/orphans").await;
    assert_eq!(o["total"], 0, "{o}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_call_failing_with_503_keeps_the_desired_state() {
    let (mut engine, s) = private_server().await;
    let runs = create_private_bot(&s, "runs", json!({})).await;
    let rests = create_private_bot(&s, "rests", json!({})).await;
    let (status, v) = s.post(&format!("/api/bots/{rests}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    engine.stop().await;
    let (status, v) = s.post(&format!("/api/bots/{runs}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (status, v) = s.post(&format!("/api/bots/{rests}/start"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    engine.restart().await;

    let v = s
        .wait_bot(&runs, "running again", Duration::from_secs(60), |v| {
            state(v) == "running"
        })
        .await;
    assert_eq!(v["desired_state"], "running", "a failed stop was recorded");
    let v = s
        .wait_bot(&rests, "observed again", Duration::from_secs(60), |v| {
            state(v) != "missing"
        })
        .await;
    assert_eq!(v["desired_state"], "stopped", "a failed start was recorded");
    assert_eq!(state(&v), "stopped", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bot_desired_stopped_that_runs_is_stopped_at_startup() {
    let s = TestServer::start().await;
    let id = s.create_bot("unruly").await;
    let (status, v) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Started behind botmaker's back while it is down.
    let mut s = s;
    s.shutdown().await;
    s.h.docker
        .client()
        .start_container(&format!("botmaker-{id}"), None)
        .await
        .unwrap();
    let s = s.restart().await;
    let v = s
        .wait_bot(&id, "stopped again", Duration::from_secs(30), |v| {
            state(v) == "stopped"
        })
        .await;
    assert_eq!(v["desired_state"], "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_patch_restores_the_previous_secret_files() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("rollback");
    body["secrets"] = json!({ "API_KEY": "old-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let container = v["container_id"].clone();
    // A host port someone else holds: the new container is created but cannot start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({
                "secrets": { "API_KEY": "new-value", "EXTRA_KEY": "extra" },
                "ports": [{ "container": 8080, "host": port }],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let dir = s.data.path().join("secrets").join(&id);
    assert_eq!(
        std::fs::read_to_string(dir.join("API_KEY")).unwrap(),
        "old-value",
        "the failed PATCH kept its new secret value"
    );
    assert!(
        !dir.join("EXTRA_KEY").exists(),
        "the failed PATCH left its new secret in /run/secrets"
    );
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["secrets"], json!(["API_KEY"]), "{v}");
    assert_eq!(v["ports"], json!([]), "{v}");
    assert_eq!(state(&v), "running", "{v}");
    assert_ne!(v["container_id"], container, "the old config was recreated");
    let lines = s.h.wait_for_log(&BotId::new(id).unwrap(), "ready").await;
    assert!(lines.iter().any(|l| l == "secrets: API_KEY"), "{lines:?}");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_get_memory_and_pids_limits_by_default() {
    let s = TestServer::start().await;
    let id = s.create_bot("bounded").await;
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["limits"]["memory_mb"], 512, "{v}");
    assert_eq!(v["limits"]["pids"], 512, "{v}");
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&format!("botmaker-{id}"), None)
            .await
            .unwrap();
    let hc = inspect.host_config.unwrap();
    assert_eq!(hc.memory, Some(512 << 20));
    assert_eq!(hc.pids_limit, Some(512));

    // Overridable, and a PATCH that clears the limits gets the defaults back.
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "limits": { "memory_mb": 64, "pids": 32 } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["limits"],
        json!({ "memory_mb": 64, "pids": 32, "cpus": null })
    );
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "limits": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["limits"]["memory_mb"], 512, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_limits_are_refused_not_wrapped() {
    let s = TestServer::start().await;
    let id = s.create_bot("huge").await;
    let cases = [
        (
            json!({ "memory_mb": 17592186044516_u64 }),
            "limits.memory_mb",
        ),
        (json!({ "memory_mb": u64::MAX }), "limits.memory_mb"),
        (json!({ "pids": 1_000_000_000_000_i64 }), "limits.pids"),
        (json!({ "cpus": 1e300 }), "limits.cpus"),
    ];
    for (limits, field) in cases {
        let mut body = s.bot_body("huge");
        body["limits"] = limits.clone();
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limits}: {v}");
        assert!(v["fields"][field].is_array(), "{limits}: {v}");
        let (status, v) = s
            .call(
                Method::PATCH,
                &format!("/api/bots/{id}"),
                Some(json!({ "limits": limits })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["fields"][field].is_array(), "{v}");
    }
    let mut body = s.bot_body("probe");
    body["health_check"] = json!({ "port": 8080, "interval_secs": u64::MAX });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["health_check.interval_secs"].is_array(), "{v}");
    let (_, v) = s.get("/api/bots").await;
    assert_eq!(v["bots"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network_needs_the_server_opt_in() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("hostnet");
    body["network"] = json!("host");
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["fields"]["network"][0]
            .as_str()
            .unwrap()
            .contains("--allow-host-network"),
        "{v}"
    );
    assert!(
        s.h.docker
            .list_managed_containers()
            .await
            .unwrap()
            .is_empty()
    );

    let h = Harness::new().await;
    let data = tempfile::tempdir().unwrap();
    let mut cfg = crate::support::server::config(data.path().to_path_buf(), h.docker.instance());
    cfg.allow_host_network = true;
    let s = TestServer::start_with(h, data, cfg).await;
    body["id"] = json!(s.h.bot("hostnet").to_string());
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&format!("botmaker-{}", body["id"].as_str().unwrap()), None)
            .await
            .unwrap();
    assert_eq!(
        inspect.host_config.unwrap().network_mode.as_deref(),
        Some("host")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_answer_503_when_docker_is_down_or_frozen() {
    let (mut engine, s) = private_server().await;
    let id = create_private_bot(&s, "logs", json!({})).await;
    eventually("a log line", Duration::from_secs(20), || async {
        let (_, v) = s.get(&format!("/api/bots/{id}/logs")).await;
        (!v["lines"].as_array()?.is_empty()).then_some(())
    })
    .await;

    engine.freeze();
    let started = Instant::now();
    let (status, v) = s.get(&format!("/api/bots/{id}/logs")).await;
    engine.thaw();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "frozen daemon: {v}"
    );
    assert_eq!(v["code"], "DOCKER_UNAVAILABLE", "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(59),
        "answered by a timeout of its own"
    );

    engine.stop().await;
    let (status, v) = s.get(&format!("/api/bots/{id}/logs")).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "stopped daemon: {v}"
    );
    assert_eq!(v["code"], "DOCKER_UNAVAILABLE", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_secret_is_refused() {
    let s = TestServer::start().await;
    let id = s.create_bot("empty").await;
    assert_eq!(
        put_secret(&s, &id, "EMPTY", "").await,
        StatusCode::BAD_REQUEST
    );
    let res = s
        .client
        .put(s.url(&format!("/api/bots/{id}/secrets/EMPTY")))
        .bearer_auth(&s.token)
        .json(&json!({ "value": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert!(v["fields"]["value"].is_array(), "{v}");
    let mut body = s.bot_body("empty");
    body["secrets"] = json!({ "EMPTY": "" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["secrets.EMPTY"].is_array(), "{v}");
    let (_, v) = s.get(&format!("/api/bots/{id}/secrets")).await;
    assert_eq!(v["secrets"], json!([]));
    assert!(
        !s.data
            .path()
            .join("secrets")
            .join(&id)
            .join("EMPTY")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_string_errors_are_json() {
    let s = TestServer::start().await;
    let id = s.create_bot("query").await;
    for query in ["tail=many", "tail=-1", "follow=perhaps", "colour=red"] {
        let res = s
            .client
            .get(s.url(&format!("/api/bots/{id}/logs?{query}")))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{query}"
        );
        let v: Value = res.json().await.unwrap();
        assert!(
            v["code"].is_string() && v["error"].is_string(),
            "{query}: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn float_port_is_a_field_error() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("float");
    body["ports"] = json!([{ "container": 80.5 }]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED", "{v}");
    assert!(v["fields"]["ports[0].container"].is_array(), "{v}");
    let mut body = s.bot_body("float");
    body["health_check"] = json!({ "port": 70000 });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["health_check.port"].is_array(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciler_follows_again_promptly_after_a_long_outage() {
    let (mut engine, s) = private_server().await;
    let id = create_private_bot(&s, "prompt", json!({})).await;
    // Stopped behind botmaker's back: Docker will not bring it back with the daemon, so only
    // the reconciler's enforcement after the outage does.
    s.h.docker
        .client()
        .stop_container(&format!("botmaker-{id}"), None)
        .await
        .unwrap();
    s.wait_bot(&id, "seen stopped", Duration::from_secs(20), |v| {
        state(v) == "stopped"
    })
    .await;
    engine.stop().await;
    // Long enough for a doubling back-off to reach a long sleep.
    tokio::time::sleep(Duration::from_secs(33)).await;
    engine.restart().await;
    let back = Instant::now();
    s.wait_bot(&id, "running again", Duration::from_secs(60), |v| {
        state(v) == "running"
    })
    .await;
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the reconciler took {took:?} to follow the daemon again"
    );
}
