//! The watch cache (issue #16): reads answer from memory the event stream keeps current,
//! a resync corrects what the stream missed, and while Docker is down reads say so.

use std::time::Duration;

use bollard::query_parameters::{RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};
use botmaker::BotId;
use botmaker::docker::{ContainerState, ContainerStatus, Health};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::private_engine::PrivateEngine;
use crate::support::server::{TestServer, config};
use crate::support::{Harness, eventually};

/// A server whose periodic resync never comes during the test: only events (and the resync
/// after a reconnect) can update the cache.
async fn server_without_periodic_resync(h: Harness) -> TestServer {
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    cfg.docker_host = Some(h.docker.host().to_string());
    cfg.resync_interval = 3600;
    TestServer::start_with(h, data, cfg).await
}

/// The bot's entry in `GET /api/bots`.
async fn listed(s: &TestServer, id: &str) -> Value {
    let (status, v) = s.get("/api/bots").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {v}"))
}

/// A stale status, as if the event that changed the container had been lost.
fn exited(running: &ContainerStatus) -> ContainerStatus {
    ContainerStatus {
        state: ContainerState::Exited,
        running: false,
        exit_code: Some(0),
        health: Health::None,
        ..running.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_stopped_and_removed_behind_botmakers_back_shows_through_events() {
    let s = server_without_periodic_resync(Harness::new().await).await;
    let id = s.create_bot("watched").await;
    s.wait_cache_fresh().await;
    assert_eq!(listed(&s, &id).await["state"], "running");

    let name = format!("botmaker-{id}");
    let docker = s.h.docker.client();
    docker
        .stop_container(&name, Some(StopContainerOptionsBuilder::new().t(1).build()))
        .await
        .unwrap();
    let v = s
        .wait_bot(&id, "stopped", Duration::from_secs(20), |v| {
            v["state"] == "stopped" || v["state"] == "error"
        })
        .await;
    assert_eq!(v["desired_state"], "running", "{v}");
    assert_eq!(listed(&s, &id).await["state"], v["state"]);
    assert!(
        s.bots.cache().is_fresh(),
        "answered from the cache, not a live read"
    );

    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
    let v = s
        .wait_bot(&id, "missing", Duration::from_secs(20), |v| {
            v["state"] == "missing"
        })
        .await;
    assert!(v["container_id"].is_null(), "{v}");
    assert_eq!(listed(&s, &id).await["state"], "missing");
    assert!(s.bots.cache().is_fresh());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_periodic_resync_corrects_a_change_the_event_stream_missed() {
    // The test config resyncs every 2 s. A restarted server has every bot inspected once
    // and no event pending about it, so what comes next can only come from the resync.
    let s = TestServer::start().await;
    let id = s.create_bot("corrected").await;
    let s = s.restart().await;
    s.wait_cache_fresh().await;
    let bot = BotId::new(id.clone()).unwrap();
    let running = s.bots.fleet().status(&bot).expect("inspected on create");
    assert_eq!(running.state, ContainerState::Running);

    // A lost event: the cache believes the container exited; Docker says nothing more, so
    // only the resync's comparison with a full list can put it right.
    s.bots.fleet().record_status(&bot, Some(exited(&running)));

    // The next resync lists the containers, sees the disagreement and inspects the bot.
    let v = s
        .wait_bot(&id, "running again", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    assert_eq!(v["container_id"], running.id.as_str());
    assert_eq!(listed(&s, &id).await["state"], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_fail_while_the_engine_is_down_and_the_resync_after_reconnecting_corrects_the_cache()
{
    let mut engine = PrivateEngine::start().await;
    let docker = engine.service(&crate::support::instance()).await.unwrap();
    let s = server_without_periodic_resync(Harness::on(docker).await).await;
    let mut body = s.bot_body("outlived");
    body["network"] = json!("none");
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let container = v["container_id"].as_str().unwrap().to_string();
    s.wait_cache_fresh().await;
    assert_eq!(listed(&s, &id).await["state"], "created");

    engine.stop().await;
    // On a busy machine a request once came before the server had seen its event stream end,
    // and was answered from the cache, as it would have been a moment earlier.
    s.wait_cache_stale().await;
    // From then on no stale answer while Docker is down: the same clear error as before the
    // cache.
    for path in ["/api/bots".to_string(), format!("/api/bots/{id}")] {
        let (status, v) = s.get(&path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {v}");
        assert_eq!(v["code"], "DOCKER_UNAVAILABLE", "{path}: {v}");
    }
    // Whatever was lost meanwhile (here: the cache forgot the container; a daemon restart
    // leaves a never-started container as it was, so no event will tell).
    let bot = BotId::new(id.clone()).unwrap();
    s.bots.fleet().record_status(&bot, None);

    engine.restart().await;
    s.wait_cache_fresh().await;
    // Trusted again only after the resync that followed the reconnect: right at once.
    let v = listed(&s, &id).await;
    assert_eq!(v["state"], "created", "{v}");
    assert_eq!(v["container_id"], container.as_str(), "{v}");
    let (status, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "created", "{v}");
}

/// The bug: with a fleet large enough that a sampler round or a resync takes longer than the
/// shutdown grace, the server stopped answering on SIGTERM but a background task kept going
/// to the end of its round ("background tasks did not stop in time; still_running=1"), and
/// the process took 30 s to exit. Every task must observe the cancellation in whatever it
/// is awaiting, so none is left once `run` returns.
#[tokio::test(flavor = "multi_thread")]
async fn background_tasks_outlived_shutdown_over_a_large_simulated_fleet() {
    use botmaker::serve::Server;
    use botmaker_fake_engine::{FakeConfig, FakeEngine, Seed};

    let instance = crate::support::instance();
    // Stats on the engine's 1 s tick: a sampler round over 400 running bots takes minutes.
    let fake = FakeEngine::start(FakeConfig::default()).await.unwrap();
    fake.add_image("img:sim");
    let mut seed = Seed::new(&instance, "img:sim", 400);
    seed.prefix = crate::support::unique("big");
    fake.seed(&seed);
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let mut cfg = config(data.path().to_path_buf(), &instance);
    cfg.docker_host = Some(fake.host().to_string());
    let server = Server::prepare(cfg).await.expect("server starts");
    let tasks = server.tasks();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    eventually("/health", Duration::from_secs(30), || async {
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
            .then_some(())
    })
    .await;
    // Let every task get into its work: the sampler's round, the reconciler's resync.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(tasks.running() >= 4, "{} tasks", tasks.running());

    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(
        tasks.running(),
        0,
        "a background task did not observe the shutdown within the grace"
    );
}

/// A create's own `create` and `start` events arrived before botmaker's inspect after its
/// calls, so the reconciler inspected again (3.1 container inspects and 2 image inspects per
/// create against the simulated engine, which counts every request). The events now wait for
/// the operation and its inspect; the image is inspected once per container made. What is
/// left: botmaker's own inspect and the stats sampler's placement of the new container (which
/// the simulated engine, having no cgroups on this host, always costs).
#[tokio::test(flavor = "multi_thread")]
async fn a_create_was_inspected_again_for_its_own_events() {
    const CREATES: u64 = 20;
    let (s, fake) = TestServer::start_simulated().await;
    let before = fake.counts();
    for i in 0..CREATES {
        let mut body = s.bot_body(&format!("own{i}"));
        body["image"] = json!("img:sim");
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "running", "{v}");
    }
    // Every event of the creates is in: the last bot's start is, and the stream is in order.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = fake.counts();
    let made = |route: &str| {
        after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
    };
    assert_eq!(made("POST /containers/{id}/start"), CREATES, "{after:?}");
    assert_eq!(made("GET /images/{name}/json"), CREATES, "{after:?}");
    let inspects = made("GET /containers/{id}/json");
    assert!(
        (CREATES..=2 * CREATES).contains(&inspects),
        "{inspects} container inspects for {CREATES} creates: {after:?}"
    );
}
