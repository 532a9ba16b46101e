//! `botmaker serve` over HTTP, with a real engine behind it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::{CreateContainerOptionsBuilder, KillContainerOptionsBuilder};
use botmaker::docker::container_name;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::fixture::TEST_LABEL;
use crate::support::private_engine::PrivateEngine;
use crate::support::server::TestServer;
use crate::support::{Harness, eventually};

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_over_http() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("life");
    body["secrets"] = json!({ "API_KEY": "value-one-9f3a" });
    body["name"] = json!("Life Bot");
    let (status, created) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "Life Bot");
    assert_eq!(created["template"], "generic");
    assert_eq!(created["desired_state"], "running");
    assert_eq!(created["secrets"], json!(["API_KEY"]));
    assert_eq!(state(&created), "running", "{created}");
    assert!(
        !created.to_string().contains("value-one-9f3a"),
        "secret value in a response"
    );

    // Listed, from one list call.
    let (_, list) = s.get("/api/bots").await;
    let listed = list["bots"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(state(&listed[0]), "running");

    // Logs.
    let lines = eventually("ready in logs", Duration::from_secs(10), || async {
        let (_, v) = s.get(&format!("/api/bots/{id}/logs?tail=50")).await;
        let text = v.to_string();
        text.contains("\"ready\"").then_some(v)
    })
    .await;
    assert!(lines["lines"].to_string().contains("secrets: API_KEY"));

    // Stop, start, restart.
    let (status, v) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(state(&v), "stopped");
    assert_eq!(v["desired_state"], "stopped");
    let (status, v) = s.post(&format!("/api/bots/{id}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(state(&v), "running");
    let started = v["started_at"].clone();
    let (status, v) = s.post(&format!("/api/bots/{id}/restart"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(v["started_at"], started);

    // Secrets: set (raw body), list names, delete; values never come back.
    let res = s
        .client
        .put(s.url(&format!("/api/bots/{id}/secrets/OTHER_KEY")))
        .bearer_auth(&s.token)
        .body("value-two-77c1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, v) = s.get(&format!("/api/bots/{id}/secrets")).await;
    assert_eq!(v["secrets"], json!(["API_KEY", "OTHER_KEY"]));
    let on_disk = s.data.path().join("secrets").join(&id).join("OTHER_KEY");
    assert_eq!(std::fs::read_to_string(on_disk).unwrap(), "value-two-77c1");
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/bots/{id}/secrets/OTHER_KEY"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/bots/{id}/secrets/OTHER_KEY"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Update recreates the container from the stored config; secrets and workspace stay.
    let old_container = s.get(&format!("/api/bots/{id}")).await.1["container_id"].clone();
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "TICK_MS": "300", "MODE": "patched" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(v["container_id"], old_container);
    assert_eq!(v["env"]["MODE"], "patched");
    assert_eq!(state(&v), "running");
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&format!("botmaker-{id}"), None)
            .await
            .unwrap();
    assert!(
        inspect
            .config
            .unwrap()
            .env
            .unwrap()
            .contains(&"MODE=patched".to_string())
    );
    assert_eq!(v["secrets"], json!(["API_KEY"]));

    // Stats come from the sampler's cache.
    eventually("stats sample", Duration::from_secs(15), || async {
        let (_, v) = s.get("/api/stats").await;
        v["stats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str() && x["memory_bytes"].as_u64() > Some(0))
            .then_some(())
    })
    .await;
    let (status, v) = s.get(&format!("/api/bots/{id}/stats")).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Delete removes container, secrets, workspace and record.
    let (status, _) = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        s.h.docker
            .list_managed_containers()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!s.data.path().join("secrets").join(&id).exists());
    assert!(!s.data.path().join("workspaces").join(&id).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_restart_keeps_bots_sessions_and_tokens() {
    let s = TestServer::start().await;
    let id = s.create_bot("persist").await;
    let (status, tok) = s.post("/api/tokens", json!({ "name": "ci" })).await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let api_token = tok["token"].as_str().unwrap().to_string();

    let s = s.restart().await;
    // The old session still works, and so does the API token.
    let (status, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        state(&v),
        "running",
        "the container kept running across the restart"
    );
    let (status, _) = s
        .call_as(Some(&api_token), Method::GET, "/api/bots", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, tokens) = s.get("/api/tokens").await;
    assert_eq!(tokens["tokens"][0]["name"], "ci");
    assert!(
        !tokens.to_string().contains(&api_token),
        "token shown only once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_a_valid_token() {
    let s = TestServer::start().await;
    let id = s.create_bot("auth").await;
    let routes: Vec<(Method, String)> = [
        ("POST", "/api/logout"),
        ("GET", "/api/tokens"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/abc"),
        ("GET", "/api/bots"),
        ("POST", "/api/bots"),
        ("GET", "/api/bots/{id}"),
        ("PATCH", "/api/bots/{id}"),
        ("DELETE", "/api/bots/{id}"),
        ("POST", "/api/bots/{id}/start"),
        ("POST", "/api/bots/{id}/stop"),
        ("POST", "/api/bots/{id}/restart"),
        ("POST", "/api/bots/{id}/apply"),
        ("POST", "/api/bots/{id}/upgrade"),
        ("GET", "/api/bots/{id}/backup"),
        ("POST", "/api/bots/import"),
        ("GET", "/api/admin/backup"),
        ("GET", "/api/bots/{id}/logs"),
        ("GET", "/api/bots/{id}/stats"),
        ("GET", "/api/bots/{id}/secrets"),
        ("PUT", "/api/bots/{id}/secrets/KEY"),
        ("DELETE", "/api/bots/{id}/secrets/KEY"),
        ("GET", "/api/stats"),
        ("GET", "/api/events"),
        ("GET", "/api/admin/orphans"),
        ("POST", "/api/admin/cleanup"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/no-such-route"),
    ]
    .into_iter()
    .map(|(m, p)| (m.parse().unwrap(), p.replace("{id}", &id)))
    .collect();

    // A revoked API token and an expired session.
    let (_, tok) = s.post("/api/tokens", json!({ "name": "gone" })).await;
    let revoked = tok["token"].as_str().unwrap().to_string();
    let tid = tok["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.call(Method::DELETE, &format!("/api/tokens/{tid}"), None)
            .await
            .0,
        StatusCode::OK
    );
    let expired = "bms_".to_string() + &"ab".repeat(32);
    let store = botmaker::store::Store::open(&s.data.path().join("botmaker.db"))
        .await
        .unwrap();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    store
        .insert_session(
            &botmaker::auth::hash_token(&expired),
            past - chrono::Duration::hours(24),
            past,
        )
        .await
        .unwrap();
    // A session that logged out.
    let logged_out = s.login().await;
    assert_eq!(
        s.call_as(Some(&logged_out), Method::POST, "/api/logout", None)
            .await
            .0,
        StatusCode::OK
    );

    for (method, path) in &routes {
        for (label, token) in [
            ("no token", None),
            ("garbage", Some("nonsense")),
            ("revoked API token", Some(revoked.as_str())),
            ("expired session", Some(expired.as_str())),
            ("logged-out session", Some(logged_out.as_str())),
        ] {
            let (status, body) = s.call_as(token, method.clone(), path, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {label}: {body}"
            );
            assert_eq!(body["code"], "UNAUTHORIZED");
        }
    }
    // Nothing happened to the bot.
    assert_eq!(state(&s.get(&format!("/api/bots/{id}")).await.1), "running");
    // And public routes stay public.
    assert_eq!(
        s.call_as(None, Method::GET, "/health", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_rate_limited_per_client() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        let (status, body) = s
            .call_as(
                None,
                Method::POST,
                "/api/login",
                Some(json!({ "password": "wrong password!" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let res = s
        .client
        .post(s.url("/api/login"))
        .json(&json!({ "password": crate::support::server::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let (status, body) = s
        .call_as(
            None,
            Method::POST,
            "/api/login",
            Some(json!({ "password": "wrong again!!" })),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// Everything a request could have changed: files under the data dir, bot records,
/// containers of the instance.
async fn world(s: &TestServer) -> (BTreeSet<String>, Value, usize) {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with("botmaker.db") {
                continue;
            }
            out.insert(rel);
            if p.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(s.data.path(), s.data.path(), &mut files);
    let (_, bots) = s.get("/api/bots").await;
    let ids: Vec<Value> = bots["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    (
        files,
        json!(ids),
        s.h.docker.list_managed_containers().await.unwrap().len(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_and_changes_nothing() {
    let s = TestServer::start().await;
    let id = s.create_bot("steady").await;
    let before = world(&s).await;
    let image = s.h.image.clone();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "traversal id",
            json!({ "id": "../../etc", "image": image }),
            "id",
        ),
        ("slash id", json!({ "id": "a/b", "image": image }), "id"),
        ("uppercase id", json!({ "id": "Bot", "image": image }), "id"),
        (
            "traversal secret",
            json!({ "id": "okid", "image": image, "secrets": { "../../x": "v" } }),
            "secrets.../../x",
        ),
        (
            "slash secret",
            json!({ "id": "okid", "image": image, "secrets": { "A/B": "v" } }),
            "secrets.A/B",
        ),
        (
            "bad env",
            json!({ "id": "okid", "image": image, "env": { "1X": "v" } }),
            "env.1X",
        ),
        (
            "bad port",
            json!({ "id": "okid", "image": image, "ports": [{ "container": 0 }] }),
            "ports[0].container",
        ),
        (
            "unknown template",
            json!({ "id": "okid", "image": image, "template": "nope" }),
            "template",
        ),
        ("duplicate id", json!({ "id": id, "image": image }), ""),
    ];
    for (label, body, field) in cases {
        let (status, v) = s.post("/api/bots", body).await;
        if field.is_empty() {
            assert_eq!(status, StatusCode::CONFLICT, "{label}: {v}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{label}: {v}");
            assert_eq!(v["code"], "VALIDATION_FAILED", "{label}");
            assert!(
                v["fields"][field].is_array(),
                "{label}: no message for {field}: {v}"
            );
        }
    }
    // Wrong types, unknown fields, malformed JSON, oversized bodies.
    let raw = |body: String, ct: &'static str| {
        let s = &s;
        async move {
            let res = s
                .client
                .post(s.url("/api/bots"))
                .bearer_auth(&s.token)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = raw(
        json!({ "id": "okid", "image": image, "env": 5 }).to_string(),
        "application/json",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = raw(
        json!({ "id": "okid", "image": image, "colour": "red" }).to_string(),
        "application/json",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("colour"));
    let (st, v) = raw("{\"id\": \"okid\", ".into(), "application/json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let big =
        json!({ "id": "okid", "image": image, "env": { "BIG": "x".repeat(2 * 1024 * 1024) } });
    let res = s
        .client
        .post(s.url("/api/bots"))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The refused body is never read: the answer closes the connection, so the client does
    // not send its next request into it (which broke the next request here, now and then).
    assert_eq!(res.headers()["connection"], "close");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], "PAYLOAD_TOO_LARGE");

    // Secret routes: traversal in the name, unknown bot, oversized value.
    for path in [
        format!("/api/bots/{id}/secrets/..%2F..%2Fetc"),
        format!("/api/bots/{id}/secrets/lower"),
    ] {
        let res = s
            .client
            .put(s.url(&path))
            .bearer_auth(&s.token)
            .body("v")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let res = s
        .client
        .put(s.url("/api/bots/nobody-here/secrets/KEY"))
        .bearer_auth(&s.token)
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (st, _) = s.get("/api/bots/..%2F..%2Fetc").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    assert_eq!(
        world(&s).await,
        before,
        "a rejected request changed something"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_rolls_back_when_the_image_is_missing() {
    let s = TestServer::start().await;
    let before = world(&s).await;
    let mut body = s.bot_body("noimage");
    body["image"] = json!("botmaker-never-built:1");
    body["secrets"] = json!({ "KEY": "v" });
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "IMAGE_NOT_FOUND");
    assert_eq!(world(&s).await, before);
    // The same id is free afterwards: nothing half-made blocks it.
    body["image"] = json!(s.h.image);
    assert_eq!(s.post("/api/bots", body).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_never_touches_a_container_it_does_not_own() {
    let s = TestServer::start().await;
    let body = s.bot_body("taken");
    let id = body["id"].as_str().unwrap().to_string();
    let name = format!("botmaker-{id}");
    s.h.track_foreign(&name);
    s.h.docker
        .client()
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            bollard::models::ContainerCreateBody {
                image: Some(s.h.image.clone()),
                labels: Some([(TEST_LABEL.to_string(), "1".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let before = world(&s).await;
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "CONTAINER_NAME_TAKEN");
    assert_eq!(world(&s).await, before);
    // The foreign container is still there, untouched.
    let c =
        s.h.docker
            .client()
            .inspect_container(&name, None)
            .await
            .unwrap();
    assert!(
        !c.config
            .unwrap()
            .labels
            .unwrap()
            .contains_key("botmaker.managed")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_rolls_back_when_secrets_cannot_be_written() {
    let s = TestServer::start().await;
    // The secrets root becomes a file: every write under it fails (root ignores modes, so
    // making it read-only would not do).
    let root = s.data.path().join("secrets");
    std::fs::remove_dir(&root).unwrap();
    std::fs::write(&root, "not a directory").unwrap();
    let before = world(&s).await;
    let mut body = s.bot_body("nosecrets");
    body["secrets"] = json!({ "KEY": "v" });
    let id = body["id"].as_str().unwrap().to_string();
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(v["code"], "INTERNAL");
    assert!(
        !v["error"].as_str().unwrap().contains("secrets"),
        "5xx bodies stay generic: {v}"
    );
    assert_eq!(world(&s).await, before);
    assert_eq!(
        s.get(&format!("/api/bots/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_lifecycle_requests_end_consistent() {
    let s = TestServer::start().await;
    let id = s.create_bot("race").await;
    let actions = ["start", "stop", "restart"];
    let results = futures_util::stream::iter(0..20)
        .map(|i| {
            let (s, id) = (&s, &id);
            async move {
                s.post(&format!("/api/bots/{id}/{}", actions[i % 3]), json!({}))
                    .await
            }
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    for (status, body) in &results {
        assert!(!status.is_server_error(), "{status}: {body}");
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    // Settled: observed state matches the desired state of the last request served.
    let v = s
        .wait_bot(&id, "a settled state", Duration::from_secs(20), |v| {
            matches!(
                (v["desired_state"].as_str(), state(v)),
                (Some("running"), "running") | (Some("stopped"), "stopped")
            )
        })
        .await;
    let status =
        s.h.docker
            .container_status(&botmaker::BotId::new(id.clone()).unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(status.running, v["desired_state"] == "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciler_notices_kill_removal_and_crash_loop() {
    let s = TestServer::start().await;
    let killed = s.create_bot("killed").await;
    let removed = s.create_bot("removed").await;
    let mut body = s.bot_body("looping");
    body["env"] = json!({ "EXIT_AFTER_MS": "100", "EXIT_CODE": "1", "TICK_MS": "0" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let looping = v["id"].as_str().unwrap().to_string();

    let docker = s.h.docker.client();
    docker
        .kill_container(
            &format!("botmaker-{killed}"),
            Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build()),
        )
        .await
        .unwrap();
    docker
        .remove_container(
            &format!("botmaker-{removed}"),
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();

    let list_state = |id: String| {
        let s = &s;
        async move {
            let (_, v) = s.get("/api/bots").await;
            v["bots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["id"] == id.as_str())
                .map(|b| b["state"].as_str().unwrap().to_string())
        }
    };
    eventually(
        "killed bot leaves running",
        Duration::from_secs(20),
        || async {
            let st = list_state(killed.clone()).await?;
            // SIGKILL: exit 137 and Docker treats `kill` as a manual stop, or it restarts it.
            (st == "error" || st == "stopped" || st == "crash_loop").then_some(())
        },
    )
    .await;
    eventually(
        "removed bot is missing",
        Duration::from_secs(20),
        || async { (list_state(removed.clone()).await? == "missing").then_some(()) },
    )
    .await;
    let v = s
        .wait_bot(&looping, "crash loop", Duration::from_secs(60), |v| {
            state(v) == "crash_loop"
        })
        .await;
    assert!(v["restart_count"].as_i64().unwrap() >= 1, "{v}");

    // Starting the removed bot recreates its container from the stored config.
    let (status, v) = s
        .post(&format!("/api/bots/{removed}/start"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(state(&v), "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_reports_state_changes() {
    let s = TestServer::start().await;
    let res = s
        .client
        .get(s.url("/api/events"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = res.bytes_stream();
    let id = s.create_bot("events").await;
    s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(text.contains("\"created\"") && text.contains("\"stopped\"")) {
        assert!(
            std::time::Instant::now() < deadline,
            "events so far: {text}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_reattaches_after_a_restart() {
    let s = TestServer::start().await;
    let id = s.create_bot("follow").await;
    let res = s
        .client
        .get(s.url(&format!("/api/bots/{id}/logs?follow=true&tail=1")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let mut restarted = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    // Lines before the restart, the detach/attach notices, and lines after it.
    while !(text.contains("event: attached")
        && text
            .rsplit("event: attached")
            .next()
            .unwrap()
            .contains("tick"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "stream so far: {text}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("more log events")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !restarted && text.contains("tick") {
            restarted = true;
            let (status, v) = s.post(&format!("/api/bots/{id}/restart"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{v}");
        }
    }
    assert!(text.contains("event: detached"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_listed_without_side_effects_and_cleaned_up() {
    let s = TestServer::start().await;
    let kept = s.create_bot("kept").await;
    // An orphan container of this instance (no bot record), and orphan directories.
    let orphan = s.h.bot("orphan");
    let mut cfg = s.h.config(&orphan);
    cfg.secrets_dir = s.data.path().join("secrets").join(orphan.as_str());
    std::fs::create_dir_all(&cfg.secrets_dir).unwrap();
    s.h.docker.create_container(&orphan, &cfg).await.unwrap();
    let ghost = s.h.bot("ghost");
    std::fs::create_dir_all(s.data.path().join("workspaces").join(ghost.as_str())).unwrap();

    let before = world(&s).await;
    let (status, o) = s.get("/api/admin/orphans").await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["containers"], json!([orphan.as_str()]));
    assert_eq!(o["secrets"], json!([orphan.as_str()]));
    assert_eq!(o["workspaces"], json!([ghost.as_str()]));
    assert_eq!(o["total"], 3);
    let (_, again) = s.get("/api/admin/orphans").await;
    assert_eq!(again, o, "listing is repeatable");
    assert_eq!(world(&s).await, before, "listing orphans changed something");

    let (status, r) = s.post("/api/admin/cleanup", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["total"], 3, "{r}");
    let (_, o) = s.get("/api/admin/orphans").await;
    assert_eq!(o["total"], 0, "{o}");
    assert_eq!(s.h.docker.container_status(&orphan).await.unwrap(), None);
    assert_eq!(
        state(&s.get(&format!("/api/bots/{kept}")).await.1),
        "running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_restart_and_docker_down_mid_create() {
    let mut engine = PrivateEngine::start().await;
    let docker = engine.service(&crate::support::instance()).await.unwrap();
    let h = Harness::on(docker).await;
    let s = TestServer::start_on(h).await;
    let mut body = s.bot_body("survivor");
    body["network"] = json!("none");
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let before = world(&s).await;

    engine.stop().await;
    // Docker gone: reads say so (503), and a create undoes everything it did before Docker.
    // A list may still come from the watch cache until the reconciler has seen its event
    // stream end (milliseconds, more on a loaded machine); then it is a live list, refused.
    let v = eventually(
        "lists refused once Docker is gone",
        Duration::from_secs(15),
        || async {
            let (status, v) = s.get("/api/bots").await;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(v)
        },
    )
    .await;
    assert_eq!(v["code"], "DOCKER_UNAVAILABLE");
    let (status, _) = s.call_as(None, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let mut body = s.bot_body("doomed");
    body["network"] = json!("none");
    body["secrets"] = json!({ "KEY": "v" });
    let doomed = body["id"].as_str().unwrap().to_string();
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        s.get(&format!("/api/bots/{doomed}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(!s.data.path().join("secrets").join(&doomed).exists());
    assert!(!s.data.path().join("workspaces").join(&doomed).exists());

    engine.restart().await;
    // The reconciler reconnects and the bot is running again.
    let v = s
        .wait_bot(
            &id,
            "running after daemon restart",
            Duration::from_secs(60),
            |v| state(v) == "running",
        )
        .await;
    assert_eq!(v["desired_state"], "running");
    assert_eq!(world(&s).await, before);
    assert_eq!(
        s.call_as(None, Method::GET, "/health", None).await.0,
        StatusCode::OK
    );
    let _ = container_name;
}

/// The network a bot's container is attached to, as Docker reports it.
async fn network_mode(s: &TestServer, id: &str) -> String {
    s.h.docker
        .client()
        .inspect_container(&format!("botmaker-{id}"), None)
        .await
        .unwrap()
        .host_config
        .unwrap()
        .network_mode
        .unwrap_or_default()
}

/// Regression: `health_check` and `network` were taken at create but refused by PATCH
/// (`unknown field health_check`), so neither could change after creation.
#[tokio::test(flavor = "multi_thread")]
async fn patch_changes_health_check_and_network() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("editable");
    // A probe of a path the fixture does not serve: the bot turns unhealthy.
    let failing = json!({
        "port": 8080, "path": "/nope", "interval_secs": 1, "start_period_secs": 0,
        "failure_threshold": 1,
    });
    body["health_check"] = failing.clone();
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let path = format!("/api/bots/{id}");
    s.wait_bot(&id, "unhealthy", Duration::from_secs(30), |v| {
        v["health"] == "unhealthy"
    })
    .await;

    // A new probe: stored, shown, and the one botmaker runs from then on.
    let passing = json!({
        "port": 8080, "path": "/healthz", "interval_secs": 1, "start_period_secs": 0,
        "failure_threshold": 1,
    });
    let (status, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "health_check": passing })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["health_check"]["path"], "/healthz", "{v}");
    s.wait_bot(&id, "healthy", Duration::from_secs(30), |v| {
        v["health"] == "healthy"
    })
    .await;

    // Another network (and no probe, which could not reach it): the container is recreated
    // on it.
    assert_ne!(network_mode(&s, &id).await, "none");
    let (status, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "network": "none", "health_check": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["network"], "none", "{v}");
    assert_eq!(v["health_check"], Value::Null, "{v}");
    assert_eq!(network_mode(&s, &id).await, "none");
    s.wait_bot(
        &id,
        "running without a probe",
        Duration::from_secs(30),
        |v| state(v) == "running" && v["health"] == "none",
    )
    .await;

    // `null` goes back to the default network; a bad one is refused and changes nothing.
    let (status, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "network": "no such/net" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["network"].is_array(), "{v}");
    assert_eq!(s.get(&path).await.1["network"], "none");
    let (status, v) = s
        .call(Method::PATCH, &path, Some(json!({ "network": null })))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["network"], Value::Null, "{v}");
    assert_ne!(network_mode(&s, &id).await, "none");
}
