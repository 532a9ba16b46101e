//! Health-gated upgrades against the real engine, with tags of the fixture image that are
//! healthy, crash, or never pass their probe: an upgrade keeps the new container only when it
//! proves itself, rolls back to the very same old container otherwise, never leaves two
//! containers of one bot, and never touches the workspace. Also image drift.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::variants::{Tags, Variant, variant};

/// The containers of bot `id` in the test's namespace (parked ones included).
async fn containers_of(s: &TestServer, id: &str) -> Vec<botmaker::docker::ContainerInfo> {
    s.h.docker
        .list_managed_containers()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.bot_id == id)
        .collect()
}

/// Creates a fixture bot running `image` (with the fixture's probe when `probe`) and drops a
/// file into its workspace; returns its id and its view.
async fn bot_with_workspace(
    s: &TestServer,
    name: &str,
    image: &str,
    probe: bool,
) -> (String, Value) {
    let mut body = s.bot_body(name);
    body["image"] = json!(image);
    if probe {
        body["health_check"] = json!({
            "port": 8080, "path": "/healthz", "interval_secs": 1, "start_period_secs": 1,
        });
    }
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    std::fs::write(workspace_file(s, &id), b"state kept across upgrades").unwrap();
    (id, v)
}

fn workspace_file(s: &TestServer, id: &str) -> std::path::PathBuf {
    s.data.path().join("workspaces").join(id).join("note.txt")
}

async fn upgrade(s: &TestServer, id: &str, body: Value) -> (StatusCode, Value) {
    s.post(&format!("/api/bots/{id}/upgrade"), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_to_a_healthy_image_replaces_the_container_and_records_the_image() {
    let s = TestServer::start().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let (id, before) = bot_with_workspace(&s, "up-ok", &s.h.image, true).await;

    let (status, out) = upgrade(&s, &id, json!({ "image": v2 })).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "upgraded");
    assert_eq!(out["previous_image"], s.h.image.as_str());
    assert_eq!(out["image"], v2.as_str());
    assert!(out["downtime_ms"].as_u64().is_some(), "{out}");
    let bot = &out["bot"];
    assert_eq!(bot["image"], v2.as_str());
    assert_eq!(bot["state"], "running");
    assert_ne!(bot["container_id"], before["container_id"]);
    let v2_id = s.h.docker.image_id(&v2).await.unwrap().unwrap();
    assert_eq!(bot["image_id"], v2_id.as_str());
    assert_eq!(bot["image_drift"], false);

    let all = containers_of(&s, &id).await;
    assert_eq!(all.len(), 1, "the old container is gone: {all:?}");
    assert_eq!(
        std::fs::read(workspace_file(&s, &id)).unwrap(),
        b"state kept across upgrades"
    );
    // The stored config says so too: a recreate keeps the new image.
    let (status, applied) = s.post(&format!("/api/bots/{id}/apply"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["image_id"], v2_id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_image_is_rolled_back_to_the_same_old_container() {
    let s = TestServer::start().await;
    let crash = variant(s.h.docker.client(), &s.h.image, Variant::Crash).await;
    let (id, before) = bot_with_workspace(&s, "up-crash", &s.h.image, false).await;

    let (status, out) = upgrade(&s, &id, json!({ "image": crash, "timeout_secs": 30 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["result"], "rolled_back");
    assert_eq!(out["code"], "UPGRADE_ROLLED_BACK");
    let reason = out["reason"].as_str().unwrap();
    // Seen exited (with its code) or already restarted by Docker's restart policy.
    assert!(
        reason.contains("exit code 3") || reason.contains("restarted"),
        "{reason}"
    );
    assert_eq!(out["image"], s.h.image.as_str());

    let bot = s
        .wait_bot(&id, "running again", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    assert_eq!(
        bot["container_id"], before["container_id"],
        "the old container itself"
    );
    assert_eq!(bot["image"], s.h.image.as_str(), "config unchanged");
    assert_eq!(bot["image_id"], before["image_id"]);
    let all = containers_of(&s, &id).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].name, format!("botmaker-{id}"));
    assert_eq!(
        std::fs::read(workspace_file(&s, &id)).unwrap(),
        b"state kept across upgrades"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_never_passes_its_probe_is_rolled_back_at_the_deadline() {
    let s = TestServer::start().await;
    let sick = variant(s.h.docker.client(), &s.h.image, Variant::Sick).await;
    let (id, before) = bot_with_workspace(&s, "up-sick", &s.h.image, true).await;

    let (status, out) = upgrade(&s, &id, json!({ "image": sick, "timeout_secs": 3 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("not healthy within 3 s") && reason.contains("/healthz"),
        "{reason}"
    );
    let bot = s
        .wait_bot(&id, "healthy again", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    assert_eq!(bot["container_id"], before["container_id"]);
    assert_eq!(containers_of(&s, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_to_a_missing_image_or_with_a_bad_timeout_changes_nothing() {
    let s = TestServer::start().await;
    let (id, before) = bot_with_workspace(&s, "up-bad", &s.h.image, false).await;
    let (status, out) = upgrade(&s, &id, json!({ "image": "botmaker-no-such-image:1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["code"], "IMAGE_NOT_FOUND");
    let (status, out) = upgrade(&s, &id, json!({ "timeout_secs": 0 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert!(out["fields"]["timeout_secs"].is_array(), "{out}");
    let (status, out) = upgrade(&s, "no-such-bot", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{out}");
    // A body that is not JSON is refused like everywhere else in the API.
    let (status, out) = raw_upgrade(&s, &id, Some("text/plain"), "image=x").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{out}");
    assert_eq!(out["code"], "UNSUPPORTED_MEDIA_TYPE");
    let (_, bot) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(bot["container_id"], before["container_id"]);
    assert_eq!(bot["updated_at"], before["updated_at"]);

    // No body, or `null`, is `{}`: the configured reference again, which the bot runs.
    for (content_type, body) in [(None, ""), (Some("application/json"), "null")] {
        let (status, out) = raw_upgrade(&s, &id, content_type, body).await;
        assert_eq!(status, StatusCode::OK, "{body:?}: {out}");
        assert_eq!(out["result"], "unchanged", "{out}");
    }
}

/// `POST /api/bots/{id}/upgrade` with a body exactly as given.
async fn raw_upgrade(
    s: &TestServer,
    id: &str,
    content_type: Option<&str>,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(s.url(&format!("/api/bots/{id}/upgrade")))
        .bearer_auth(&s.token)
        .body(body);
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// A tag moved to another image shows as drift (through the image event, not a resync); an
/// upgrade without an image re-resolves the tag: to a crashing image it is rolled back and
/// the drift stays, to a healthy one it goes through and the drift is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_moved_tag_is_drift_until_an_upgrade_resolves_it() {
    let s = TestServer::start().await;
    let docker = s.h.docker.client();
    let crash = variant(docker, &s.h.image, Variant::Crash).await;
    let v2 = variant(docker, &s.h.image, Variant::V2).await;
    let mut tags = Tags::new(docker);
    let repo = format!("botmaker-drift-{}", s.h.docker.instance());
    let moving = tags.point(&repo, "stable", &s.h.image).await;
    let (id, _) = bot_with_workspace(&s, "drift", &moving, false).await;
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["image_drift"], false, "{v}");

    tags.point(&repo, "stable", &crash).await;
    let v = s
        .wait_bot(&id, "drift to show", Duration::from_secs(10), |v| {
            v["image_drift"] == true
        })
        .await;
    assert_eq!(v["image"], moving.as_str());
    let (_, list) = s.get("/api/bots").await;
    let listed = list["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id.as_str());
    assert_eq!(listed.unwrap()["image_drift"], true);

    let (status, out) = upgrade(&s, &id, json!({ "timeout_secs": 20 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["bot"]["image_drift"], true, "{out}");

    tags.point(&repo, "stable", &v2).await;
    let (status, out) = upgrade(&s, &id, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "upgraded");
    assert_eq!(out["bot"]["image_drift"], false);
    assert_eq!(
        out["bot"]["image"],
        moving.as_str(),
        "still pinned to the tag"
    );

    // Once more: the tag names what runs, so nothing is replaced.
    let (status, out) = upgrade(&s, &id, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "unchanged");

    // A digest pin (`sha256:` id here: locally built images have no registry digest) is an
    // image reference like any other, and never drifts.
    let v2_id = s.h.docker.image_id(&v2).await.unwrap().unwrap();
    let (status, out) = upgrade(&s, &id, json!({ "image": v2_id })).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "unchanged");
    assert_eq!(out["bot"]["image"], v2_id.as_str());
    assert_eq!(out["bot"]["image_drift"], false);
}

/// A stopped bot is upgraded without being started: its new container is made, stays
/// stopped, and runs the new image at the next start.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_bot_is_upgraded_without_starting_it() {
    let s = TestServer::start().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let (id, _) = bot_with_workspace(&s, "up-stopped", &s.h.image, false).await;
    let (status, _) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, out) = upgrade(&s, &id, json!({ "image": v2 })).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["result"], "upgraded");
    assert_ne!(out["bot"]["state"], "running", "{out}");
    assert_eq!(out["bot"]["desired_state"], "stopped");
    let (status, v) = s.post(&format!("/api/bots/{id}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v2_id = s.h.docker.image_id(&v2).await.unwrap().unwrap();
    assert_eq!(v["image_id"], v2_id.as_str());
    assert_eq!(containers_of(&s, &id).await.len(), 1);
}

/// What a watcher of one bot's containers saw during upgrades.
#[derive(Debug, Default)]
struct Watched {
    /// Most containers of the bot alive (running, restarting or paused) at one moment.
    most_alive: usize,
    /// Whether a parked old container was seen: the watch covered an upgrade's middle.
    saw_parked: bool,
    /// Lists taken.
    looks: usize,
}

/// Lists the bot's containers every few milliseconds until `stop` turns true.
async fn watch_containers(
    docker: botmaker::docker::DockerService,
    id: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Watched {
    use botmaker::docker::ContainerState;
    let mut seen = Watched::default();
    while !*stop.borrow() {
        let all = docker.list_managed_containers().await.unwrap();
        let mine: Vec<_> = all.iter().filter(|c| c.bot_id == id).collect();
        let alive = mine
            .iter()
            .filter(|c| {
                matches!(
                    c.state,
                    ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
                )
            })
            .count();
        seen.most_alive = seen.most_alive.max(alive);
        seen.saw_parked |= mine.iter().any(|c| c.name.ends_with(".previous"));
        seen.looks += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// The old and the new container share the workspace and the ports: at no moment of an
/// upgrade, kept or rolled back, do two containers of the bot run. A watcher lists the bot's
/// containers all through both.
#[tokio::test(flavor = "multi_thread")]
async fn two_containers_of_a_bot_never_run_at_once_during_an_upgrade() {
    let s = TestServer::start().await;
    let docker = s.h.docker.client();
    let v2 = variant(docker, &s.h.image, Variant::V2).await;
    let crash = variant(docker, &s.h.image, Variant::Crash).await;
    let (id, _) = bot_with_workspace(&s, "up-once", &s.h.image, true).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watch_containers(s.h.docker.clone(), id.clone(), stop_rx));
    let (status, out) = upgrade(&s, &id, json!({ "image": v2 })).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, out) = upgrade(&s, &id, json!({ "image": crash, "timeout_secs": 20 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    s.wait_bot(&id, "running again", Duration::from_secs(20), |v| {
        v["state"] == "running"
    })
    .await;
    stop_tx.send(true).unwrap();
    let seen = watcher.await.unwrap();

    assert!(
        seen.saw_parked,
        "the watch never saw an upgrade under way: {seen:?}"
    );
    assert_eq!(seen.most_alive, 1, "{seen:?}");
    assert_eq!(containers_of(&s, &id).await.len(), 1);
}
