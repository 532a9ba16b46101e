//! The negotiated Engine API version is on the wire. A real daemon answers a request with or
//! without the `/v1.xx` prefix alike, so these tests use the simulated engine
//! (fixtures/fake-engine), which records every request path and can speak other versions; the
//! rest of the `docker_` suite proves the pinned paths work against the real engine.

use std::time::Duration;

use botmaker::BotId;
use botmaker::docker::{ContainerConfig, DockerService, DockerSettings, LogOptions};
use botmaker_fake_engine::{FakeConfig, FakeEngine};
use futures_util::StreamExt;

const IMAGE: &str = "botmaker-testbot:sim";

async fn fake(api: (u16, u16), min: (u16, u16)) -> FakeEngine {
    let f = FakeEngine::start(FakeConfig {
        api_version: api,
        min_api_version: min,
        record: true,
        stats_tick: None,
        ..FakeConfig::default()
    })
    .await
    .expect("fake engine listens");
    f.add_image(IMAGE);
    f
}

async fn connect(f: &FakeEngine) -> Result<DockerService, botmaker::docker::ContainerError> {
    DockerService::connect(DockerSettings {
        host: Some(f.host().to_string()),
        instance: "pinned".into(),
        ..DockerSettings::default()
    })
    .await
}

/// Every kind of call botmaker makes, once.
async fn every_call(docker: &DockerService, secrets: &std::path::Path) {
    let bot = BotId::new("pinned-bot").unwrap();
    let mut events = docker.events(Some(0));
    docker.ping().await.unwrap();
    assert!(docker.image_exists(IMAGE).await.unwrap());
    assert!(!docker.image_exists("nope:1").await.unwrap());
    docker
        .create_container(&bot, &ContainerConfig::new(IMAGE, secrets))
        .await
        .unwrap();
    docker.start_container(&bot).await.unwrap();
    assert!(docker.container_status(&bot).await.unwrap().is_some());
    assert_eq!(docker.list_managed_containers().await.unwrap().len(), 1);
    let running = docker.running_managed_containers().await.unwrap();
    assert_eq!(running.len(), 1);
    assert!(docker.stats_snapshot(&bot).await.unwrap().is_some());
    assert!(docker.stats(&bot).await.unwrap().is_some());
    let _: Vec<_> = docker.logs(&bot, &LogOptions::default()).collect().await;
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    assert_eq!(first.bot_id, "pinned-bot");
    // The cgroup reader's questions (it gives up: this engine is no process of this host).
    let _ = docker.cgroup_stats().await;
    assert!(docker.cgroup_hint(&running[0].id).await.unwrap().is_some());
    docker.restart_container(&bot, None).await.unwrap();
    docker.stop_container(&bot, None).await.unwrap();
    assert!(docker.remove_container(&bot, None).await.unwrap());
}

#[tokio::test]
async fn docker_requests_carry_the_negotiated_api_version() {
    let f = fake((1, 41), (1, 12)).await;
    let secrets = tempfile::tempdir().unwrap();
    let docker = connect(&f).await.unwrap();
    assert_eq!(docker.api_version(), "1.41");
    // Negotiation itself cannot know the version yet: it asks unversioned, as the docker CLI.
    assert_eq!(f.requests(), ["GET /_ping", "GET /version"]);
    f.clear_requests();

    every_call(&docker, secrets.path()).await;
    let requests = f.requests();
    let unpinned: Vec<&String> = requests
        .iter()
        .filter(|r| !r.split(' ').nth(1).unwrap_or("").starts_with("/v1.41/"))
        .collect();
    assert!(unpinned.is_empty(), "sent without /v1.41: {unpinned:#?}");
    // Every route botmaker uses was exercised.
    let routes = f.counts();
    for route in [
        "GET /_ping",
        "GET /info",
        "GET /images/{name}/json",
        "POST /containers/create",
        "POST /containers/{id}/start",
        "POST /containers/{id}/stop",
        "POST /containers/{id}/restart",
        "DELETE /containers/{id}",
        "GET /containers/{id}/json",
        "GET /containers/json",
        "GET /containers/{id}/stats",
        "GET /containers/{id}/logs",
        "GET /events",
    ] {
        assert!(routes.contains_key(route), "{route} not called: {routes:?}");
    }
}

#[tokio::test]
async fn docker_newer_engine_gets_its_own_version_within_what_botmaker_knows() {
    let f = fake((1, 45), (1, 24)).await;
    let docker = connect(&f).await.unwrap();
    assert_eq!(docker.api_version(), "1.45");
    f.clear_requests();
    docker.list_managed_containers().await.unwrap();
    assert_eq!(
        f.requests()[0].split('?').next().unwrap(),
        "GET /v1.45/containers/json"
    );

    // A daemon newer than bollard's models is held to the newest botmaker knows.
    let newest = botmaker::docker::ApiVersion::MAX;
    let f = fake((1, 99), (1, 44)).await;
    let docker = connect(&f).await.unwrap();
    assert_eq!(docker.api_version(), newest.to_string());
    f.clear_requests();
    docker.ping().await.unwrap();
    assert_eq!(f.requests(), [format!("GET /v{newest}/_ping")]);
}

#[tokio::test]
async fn docker_engine_without_a_common_api_version_is_refused_at_connect() {
    let old = fake((1, 40), (1, 12)).await;
    let e = connect(&old).await.unwrap_err();
    assert_eq!(e.code(), "UNSUPPORTED_API_VERSION");
    assert!(e.to_string().contains("1.40"), "{e}");

    // A future daemon that no longer accepts anything botmaker speaks.
    let future = fake((1, 99), (1, 98)).await;
    let e = connect(&future).await.unwrap_err();
    assert_eq!(e.code(), "UNSUPPORTED_API_VERSION");
}
