//! Published ports as Docker bound them (issue 11, bug 3): a port without a host port shows
//! the one Docker picked, in `GET /api/bots/{id}` and the list alike; the same host port
//! twice in one bot is a field error before anything is made.

use std::time::Duration;

use botmaker::BotId;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::server::TestServer;

#[tokio::test]
async fn the_host_port_docker_picked_is_reported_not_null() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("ports");
    body["ports"] = json!([{ "container": 8080 }]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let v = s
        .wait_bot(&id, "running", Duration::from_secs(30), |v| {
            v["state"] == "running"
        })
        .await;

    // What Docker says it bound.
    let name = botmaker::docker::container_name(&BotId::new(id.clone()).unwrap());
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&name, None)
            .await
            .unwrap();
    let bound = inspect.network_settings.unwrap().ports.unwrap()["8080/tcp"]
        .clone()
        .unwrap()[0]
        .clone();
    let host: u16 = bound.host_port.unwrap().parse().unwrap();
    assert_eq!(bound.host_ip.as_deref(), Some("127.0.0.1"));

    assert_eq!(v["ports"][0]["host"], host, "{v}");
    assert_eq!(v["ports"][0]["auto"], true, "{v}");
    let (_, list) = s.get("/api/bots").await;
    let listed = list["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["ports"][0]["host"], host, "{listed}");

    // The picked port is not configuration: a PATCH of something else keeps it unset.
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "TICK_MS": "300" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, export) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(export["ports"][0]["container"], 8080);
}

#[tokio::test]
async fn the_same_host_port_twice_in_one_bot_is_refused_at_validation() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("dupport");
    let id = body["id"].as_str().unwrap().to_string();
    body["ports"] = json!([
        { "container": 80, "host": 18099 },
        { "container": 81, "host": 18099 },
    ]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["ports[1].host"].is_array(), "{v}");
    let (status, _) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was made");
}
