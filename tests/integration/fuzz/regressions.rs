//! The bugs the schema-driven fuzz run found, one test each, named after the bug.

use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::server::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_on_an_api_route_answered_405_with_an_empty_body() {
    let s = TestServer::start().await;
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/stats"),
        (reqwest::Method::PUT, "/api/bots"),
        (reqwest::Method::POST, "/api/bots/some-bot"),
    ] {
        let res = s
            .client
            .request(method.clone(), s.url(path))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            res.headers().contains_key(ALLOW),
            "{method} {path}: no Allow"
        );
        assert_eq!(
            res.headers()[CONTENT_TYPE],
            "application/json",
            "{method} {path}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_on_a_network_that_does_not_exist_answered_500_instead_of_start_failed() {
    let s = TestServer::start().await;
    let network = crate::support::unique("botmaker-no-such-net");

    // Created and started at once: Docker creates the container, then its start answers 404
    // for the network, which is not "the container is missing".
    let mut body = s.bot_body("nonet");
    body["network"] = json!(network);
    let (status, v) = s.post("/api/bots", body.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "START_FAILED", "{v}");
    let (status, v) = s
        .get(&format!("/api/bots/{}", body["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a failed create left a bot: {v}"
    );

    // Created stopped, then started and restarted.
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    for action in ["start", "restart"] {
        let (status, v) = s.post(&format!("/api/bots/{id}/{action}"), json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{action}: {v}");
        assert_eq!(v["code"], "START_FAILED", "{action}: {v}");
    }
    let (status, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["desired_state"], "stopped",
        "a failed start was recorded: {v}"
    );
    let (status, v) = s
        .call(reqwest::Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_body_over_the_size_limit_answered_413_in_plain_text() {
    let s = TestServer::start().await;
    let id = s.create_bot("bigsecret").await;
    for content_type in ["text/plain", "application/json", "application/octet-stream"] {
        let res = s
            .client
            .put(s.url(&format!("/api/bots/{id}/secrets/BIG")))
            .bearer_auth(&s.token)
            .header(CONTENT_TYPE, content_type)
            .body(vec![b' '; 1024 * 1024 + 10])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{content_type}"
        );
        assert_eq!(
            res.headers()[CONTENT_TYPE],
            "application/json",
            "{content_type}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn patching_a_bot_to_a_malformed_image_reference_answered_500() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("badref");
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "image": "Not:A:Valid:Reference" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Refused by validation now, with the field named (before, Docker's own 400 was mapped
    // to INVALID_CONFIG; first it was a 500).
    assert_eq!(v["code"], "VALIDATION_FAILED", "{v}");
    assert!(v["fields"]["image"].is_array(), "{v}");
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(
        v["image"],
        s.h.image.as_str(),
        "the refused image was stored: {v}"
    );
}

/// Fuzz seed 185069602 (after `GET /api/nodes` joined the document): an upgrade with
/// `timeout_secs` near `u64::MAX` overflowed the handler's deadline sum and panicked it (the
/// client saw the connection drop). Now the service refuses it with the field named.
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_with_a_huge_timeout_panicked_the_handler() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("hugeto");
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    for t in [u64::MAX, 3601] {
        let (status, v) = s
            .post(
                &format!("/api/bots/{id}/upgrade"),
                json!({ "timeout_secs": t }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{t}: {v}");
        assert!(v["fields"]["timeout_secs"].is_array(), "{t}: {v}");
    }
}
