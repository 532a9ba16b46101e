//! Bots whose container does not run as root: their secrets are handed to the user the
//! container runs as (issue 11, bug 1), whether the image names it (`USER bot`, looked up in
//! the image's `/etc/passwd`) or the bot's `user` field sets it.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fixture::{NONROOT_IDS, nonroot_image};
use crate::support::server::TestServer;

async fn exec(s: &TestServer, id: &str, cmd: &[&str]) -> Value {
    let (status, v) = s
        .post(&format!("/api/bots/{id}/exec"), json!({ "cmd": cmd }))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn running(s: &TestServer, id: &str) {
    s.wait_bot(id, "running", Duration::from_secs(30), |v| {
        v["state"] == "running"
    })
    .await;
}

/// Owner and mode of `path` on the host.
fn owner_mode(path: &std::path::Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[tokio::test]
async fn a_non_root_image_can_read_its_own_secrets() {
    let s = TestServer::start().await;
    let image = nonroot_image(s.h.docker.client());
    let id = s.h.bot("nonroot").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({ "id": id, "image": image, "secrets": { "API_KEY": "sk-nonroot" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    running(&s, &id).await;

    let v = exec(&s, &id, &["/testbot", "id"]).await;
    let (uid, gid) = NONROOT_IDS;
    assert_eq!(v["stdout"], format!("uid={uid} gid={gid}\n"), "{v}");
    let v = exec(&s, &id, &["/testbot", "cat", "/run/secrets/API_KEY"]).await;
    assert_eq!(
        (v["exit_code"].as_i64(), v["stdout"].as_str()),
        (Some(0), Some("sk-nonroot")),
        "the bot cannot read its secret: {v}"
    );

    // Owned by the bot's user, readable by nobody else.
    let dir = s.data.path().join("secrets").join(&id);
    assert_eq!(owner_mode(&dir), (uid, gid, 0o700));
    assert_eq!(owner_mode(&dir.join("API_KEY")), (uid, gid, 0o600));

    // A secret set later (a rotation, no restart) is readable too.
    let put = s
        .client
        .put(s.url(&format!("/api/bots/{id}/secrets/OTHER")))
        .bearer_auth(&s.token)
        .body("rotated")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let v = exec(&s, &id, &["/testbot", "cat", "/run/secrets/OTHER"]).await;
    assert_eq!(v["stdout"], "rotated", "{v}");
}

#[tokio::test]
async fn the_user_field_runs_the_bot_as_that_user_and_hands_it_the_secrets() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("asuser");
    body["secrets"] = json!({ "API_KEY": "sk-user" });
    body["user"] = json!("2000:3000");
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["user"], "2000:3000");
    running(&s, &id).await;
    let v = exec(&s, &id, &["/testbot", "id"]).await;
    assert_eq!(v["stdout"], "uid=2000 gid=3000\n", "{v}");
    let v = exec(&s, &id, &["/testbot", "cat", "/run/secrets/API_KEY"]).await;
    assert_eq!(v["stdout"], "sk-user", "{v}");

    // Editable like every field: another user, then back to the image's own (root).
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "user": "2001" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    running(&s, &id).await;
    let v = exec(&s, &id, &["/testbot", "cat", "/run/secrets/API_KEY"]).await;
    assert_eq!(v["stdout"], "sk-user", "{v}");
    let dir = s.data.path().join("secrets").join(&id);
    assert_eq!(owner_mode(&dir.join("API_KEY")), (2001, 2001, 0o600));

    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "user": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["user"], Value::Null);
    let me = std::fs::symlink_metadata(s.data.path().join("secrets")).unwrap();
    assert_eq!(
        owner_mode(&dir.join("API_KEY")),
        (me.uid(), me.gid(), 0o600)
    );

    // A name cannot be checked against the image before it runs: numbers only.
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "user": "bot" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["user"].is_array(), "{v}");
}
