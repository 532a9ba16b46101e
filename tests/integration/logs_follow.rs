//! `GET /api/bots/{id}/logs?follow=true` between runs: the follower waits on the reconciler's
//! observations (issue #16: it polled Docker every 500 ms per follower), and follows the bot
//! into its next run, whether a restart or a new container.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::server::TestServer;

type Body = futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>;

async fn follow(s: &TestServer, id: &str) -> Body {
    let res = s
        .client
        .get(s.url(&format!("/api/bots/{id}/logs?follow=true&tail=1")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes_stream().boxed()
}

/// Reads the stream into `text` until `done(text)` holds; panics after `limit`.
async fn read_until(
    body: &mut Body,
    text: &mut String,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "stream so far: {text}");
        match tokio::time::timeout(left, body.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            Ok(None) => panic!("the stream ended; so far: {text}"),
            Err(_) => panic!("stream so far: {text}"),
        }
    }
}

/// Reads whatever the stream sends within `window`.
async fn read_for(body: &mut Body, window: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    text
}

fn count(s: &str, what: &str) -> usize {
    s.matches(what).count()
}

/// Against the simulated engine, which counts every request and whose log streams end at once
/// (as a real one's does for a stopped container): a detached follower makes no Docker call
/// while it waits, attaches exactly once per new run, and ends when the bot is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_polled_docker_while_the_bot_was_stopped() {
    const LOGS: &str = "GET /containers/{id}/logs";
    const INSPECT: &str = "GET /containers/{id}/json";

    let (s, fake) = TestServer::start_simulated().await;
    let mut body = s.bot_body("idle-follow");
    body["image"] = json!("img:sim");
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    let mut stream = follow(&s, &id).await;
    let mut text = String::new();
    read_until(&mut stream, &mut text, Duration::from_secs(20), |t| {
        t.contains("event: detached")
    })
    .await;
    let logs = |c: &botmaker_fake_engine::RouteCounts, r: &str| c.get(r).copied().unwrap_or(0);
    let before = fake.counts();
    assert_eq!(logs(&before, LOGS), 1, "one log stream for the first run");

    // Idle: the old follower asked Docker for the container's state every 500 ms and, as it
    // looked running, opened another log stream each time.
    let idle = read_for(&mut stream, Duration::from_secs(3)).await;
    let after = fake.counts();
    assert_eq!(
        logs(&after, LOGS),
        logs(&before, LOGS),
        "log streams opened while idle; stream: {idle}"
    );
    // The sampler's one placement inspect of the new container may fall in the window; the
    // old follower made six in it.
    assert!(
        logs(&after, INSPECT) <= logs(&before, INSPECT) + 1,
        "inspects while idle: {} then {}; stream: {idle}",
        logs(&before, INSPECT),
        logs(&after, INSPECT)
    );
    assert!(!idle.contains("event: attached"), "{idle}");

    // A restart is a new run: the follower attaches to it once.
    let (status, v) = s.post(&format!("/api/bots/{id}/restart"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    read_until(&mut stream, &mut text, Duration::from_secs(20), |t| {
        count(t, "event: detached") >= 2
    })
    .await;
    assert_eq!(count(&text, "event: attached"), 1, "{text}");
    assert_eq!(logs(&fake.counts(), LOGS), 2, "one log stream per run");

    // Deleted: the stream says so and ends.
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    read_until(&mut stream, &mut text, Duration::from_secs(20), |t| {
        t.contains("event: gone")
    })
    .await;
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends after gone");
    assert!(rest.is_none(), "more after gone: {rest:?}");
}

/// An update that recreates the container: the follower detaches from the old container and
/// follows the new one (a new container id), from its first lines.
#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_reattaches_to_the_new_container_after_an_update() {
    let s = TestServer::start().await;
    let id = s.create_bot("follow-new").await;
    s.wait_bot(&id, "running", Duration::from_secs(20), |v| {
        v["state"] == "running"
    })
    .await;
    let mut stream = follow(&s, &id).await;
    let mut text = String::new();
    read_until(&mut stream, &mut text, Duration::from_secs(20), |t| {
        t.contains("tick")
    })
    .await;
    let old = s.get(&format!("/api/bots/{id}")).await.1["container_id"].clone();
    let (status, v) = s
        .call(
            Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "TICK_MS": "150", "MODE": "recreated" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(v["container_id"], old, "the update recreated the container");
    // The new container prints `ready` once, at its start: only it can have written it after
    // the follower re-attached.
    read_until(&mut stream, &mut text, Duration::from_secs(40), |t| {
        t.rsplit("event: attached")
            .next()
            .is_some_and(|after| t.contains("event: attached") && after.contains("ready"))
    })
    .await;
    assert!(text.contains("event: detached"), "{text}");
}
