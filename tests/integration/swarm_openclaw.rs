//! The `openclaw` template against the real gateway on Swarm (issue 15): the image
//! `scripts/openclaw-image` builds, copied into a private single-node swarm, run as a service
//! by `serve --backend swarm`, its credentials Swarm secrets, talking to a mock
//! OpenAI-compatible provider.
//!
//! The bot and the mock join an attachable overlay, as bots on Swarm do. The host (botmaker's
//! probes, this test) reaches neither at its overlay address: botmaker probes the bot's task
//! at its `docker_gwbridge` address (the Swarm backend's `probe_address`), and this test talks
//! to both there too.
//!
//! Bounds are liveness bounds (`support::openclaw::HEALTHY_BOUND`); the figures go to stderr as `MEASURE` lines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::Service;
use bollard::query_parameters::{
    InspectServiceOptions, ListContainersOptionsBuilder, ListServicesOptionsBuilder,
    ListVolumesOptionsBuilder,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::claw::{Claw, health};
use crate::support::image_copy::copy_image;
use crate::support::openclaw::{self, MOCK_REPLY, MockLlm};
use crate::support::server::TestServer;
use crate::support::swarm::{PrivateSwarm, secrets_labelled};
use crate::support::{eventually, unique};

/// A Swarm operation (a service update, a secret removed) showing in what the engine lists.
const WAIT: Duration = Duration::from_secs(120);
/// The gateway's token, as the template names its secret.
const TOKEN: &str = "OPENCLAW_GATEWAY_TOKEN";
/// The provider key the mock must see.
const KEY: &str = "DEEPSEEK_API_KEY";

async fn service(s: &TestServer, id: &str) -> Option<Service> {
    s.h.docker
        .client()
        .inspect_service(&format!("botmaker-{id}"), None::<InspectServiceOptions>)
        .await
        .ok()
}

fn replicas(service: &Service) -> Option<i64> {
    service
        .spec
        .as_ref()?
        .mode
        .as_ref()?
        .replicated
        .as_ref()?
        .replicas
}

/// The versions of the bot's secret `name` in the swarm, as (Swarm name, id).
async fn secret_versions(s: &TestServer, id: &str, name: &str) -> Vec<(String, String)> {
    let labels = [
        format!("botmaker.bot-id={id}"),
        format!("botmaker.secret={name}"),
    ];
    secrets_labelled(s, &labels).await
}

/// The Swarm secret ids the bot's service hands its tasks.
fn referenced_secrets(service: &Service) -> Vec<String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.secrets.as_ref())
        .map(|refs| refs.iter().filter_map(|r| r.secret_id.clone()).collect())
        .unwrap_or_default()
}

/// What the engine still holds with the test's instance label: services, secrets, volumes and
/// containers, by name.
async fn left_with_label(s: &TestServer) -> Vec<String> {
    let label = format!("botmaker.instance={}", s.h.docker.instance());
    let filters = HashMap::from([("label".to_string(), vec![label.clone()])]);
    let docker = s.h.docker.client();
    let mut left = Vec::new();
    let services = docker
        .list_services(Some(
            ListServicesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap();
    left.extend(
        services
            .into_iter()
            .map(|x| format!("service {:?}", x.spec.and_then(|s| s.name))),
    );
    left.extend(
        secrets_labelled(s, &[label])
            .await
            .into_iter()
            .map(|(name, _)| format!("secret {name}")),
    );
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap();
    left.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| format!("volume {}", v.name)),
    );
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap();
    left.extend(
        containers
            .into_iter()
            .map(|c| format!("container {:?}", c.names)),
    );
    left
}

/// Everything issue 15 asks of the openclaw template on Swarm, with the real gateway: create
/// and healthy, its secrets read by uid 1000, a chat turn, stop and start, a rotation, delete.
#[tokio::test(flavor = "multi_thread")]
async fn swarm_openclaw_real_gateway_end_to_end() {
    // Alone among real gateways until its own is deleted (see `gateway_turn`).
    let turn = openclaw::gateway_turn().await;
    let suite_started = Instant::now();
    let image = tokio::task::spawn_blocking(openclaw::image).await.unwrap();
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let shared = crate::support::connect("image-source").await;
    match copy_image(shared.client(), s.h.docker.client(), &image).await {
        Some(took) => eprintln!(
            "MEASURE swarm_openclaw_image_copy_s={:.1}",
            took.as_secs_f64()
        ),
        None => eprintln!("MEASURE swarm_openclaw_image_copy_s=0 (already there)"),
    }
    let mock = MockLlm::start_on_overlay(&s.h).await;

    // 1. Create: on the mock's overlay, no port published.
    let key = unique("sk-swarm");
    let (status, created) = s
        .post(
            "/api/bots",
            json!({
                "id": s.h.bot("swclaw").to_string(),
                "template": "openclaw",
                "image": image,
                "network": mock.network.name,
                "secrets": { KEY: key },
                "settings": {
                    "provider": "deepseek", "model": "mock-model", "base_url": mock.base_url(),
                    "agent_id": "support", "http_chat": true,
                },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let claw = Claw {
        s: &s,
        id: created["id"].as_str().unwrap().to_string(),
    };
    assert_eq!(created["ports"], json!([]), "{created}");
    let svc = service(&s, &claw.id).await.expect("the bot's service");
    assert_eq!(replicas(&svc), Some(1), "running: one replica");
    let took = claw.until_healthy("first start").await;
    eprintln!(
        "MEASURE swarm_openclaw_time_to_healthy_create_s={:.1}",
        took.as_secs_f64()
    );

    // 2. The secrets are Swarm secrets the gateway's user (uid 1000) reads: exec-free, the
    // gateway authenticates with the token it read from /run/secrets...
    let token = claw.stored_secret(TOKEN);
    assert_eq!(claw.models_status(&token).await, Some(StatusCode::OK));
    assert_eq!(
        claw.models_status("not-the-token").await,
        Some(StatusCode::UNAUTHORIZED)
    );
    // ...and inside, as the bot's own user: owned by it, mode 0400, the stored values.
    let (rc, out, err) = claw.exec(&["id", "-u"]).await;
    assert_eq!((rc, out.trim()), (0, "1000"), "{err}");
    let token_path = format!("/run/secrets/{TOKEN}");
    let key_path = format!("/run/secrets/{KEY}");
    let (rc, out, err) = claw
        .exec(&["stat", "-L", "-c", "%u:%g %a", &token_path, &key_path])
        .await;
    assert_eq!(rc, 0, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1000:1000 400"; 2],
        "{out}"
    );
    let (rc, out, err) = claw.exec(&["cat", &token_path]).await;
    assert_eq!((rc, out.as_str()), (0, token.as_str()), "{err}");
    let (rc, out, err) = claw.exec(&["cat", &key_path]).await;
    assert_eq!((rc, out.as_str()), (0, key.as_str()), "{err}");

    // 3. A chat turn over the gateway's HTTP endpoint, answered by the mock with the key the
    // gateway read from its secret file.
    let sent = Instant::now();
    let res = claw.chat(&token, "ping over Swarm").await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    eprintln!(
        "MEASURE swarm_openclaw_http_chat_round_trip_s={:.1}",
        sent.elapsed().as_secs_f64()
    );
    assert_eq!(answer["choices"][0]["message"]["content"], MOCK_REPLY);
    let seen = mock.requests().await;
    let completion = seen
        .iter()
        .rev()
        .find(|r| r["path"] == "/v1/chat/completions")
        .expect("the gateway called the mock");
    assert_eq!(completion["authorization"], format!("Bearer {key}"));

    // 4. Stop is zero replicas; start one again, healthy again.
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{}/stop", claw.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "stopped", "{v}");
    assert_eq!(health(&v), "none", "{v}");
    let svc = service(&s, &claw.id).await.expect("the bot's service");
    assert_eq!(replicas(&svc), Some(0));
    let (status, v) = s
        .call(Method::POST, &format!("/api/bots/{}/start", claw.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let svc = service(&s, &claw.id).await.expect("the bot's service");
    assert_eq!(replicas(&svc), Some(1));
    let took = claw.until_healthy("after start").await;
    eprintln!(
        "MEASURE swarm_openclaw_time_to_healthy_start_s={:.1}",
        took.as_secs_f64()
    );

    // 5. Rotating the gateway token: a new Swarm secret version, the service updated to it,
    // the old version removed, the gateway healthy with the new token only.
    let before = secret_versions(&s, &claw.id, TOKEN).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let version_before = svc.version.as_ref().and_then(|v| v.index);
    let new_token = unique("rotated-gateway-token");
    let res = s
        .client
        .put(s.url(&format!("/api/bots/{}/secrets/{TOKEN}", claw.id)))
        .bearer_auth(&s.token)
        .body(new_token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let change: Value = res.json().await.unwrap();
    assert_eq!(change["restarted"], true, "{change}");
    let rotated = Instant::now();
    let after = eventually("the old token version removed", WAIT, || async {
        let now = secret_versions(&s, &claw.id, TOKEN).await;
        (now.len() == 1 && now != before).then_some(now)
    })
    .await;
    let svc = service(&s, &claw.id).await.expect("the bot's service");
    assert!(
        svc.version.as_ref().and_then(|v| v.index) > version_before,
        "the service was updated"
    );
    let refs = referenced_secrets(&svc);
    assert!(
        refs.contains(&after[0].1),
        "new version referenced: {refs:?}"
    );
    assert!(!refs.contains(&before[0].1), "old one not: {refs:?}");
    let took = claw.until_healthy("after rotation").await;
    eprintln!(
        "MEASURE swarm_openclaw_time_to_healthy_rotation_s={:.1}",
        took.as_secs_f64()
    );
    // Healthy is this task's; the token it took is the new one.
    let (new, old) = eventually("the new token in effect", WAIT, || async {
        let new = claw.models_status(&new_token).await;
        let old = claw.models_status(&token).await;
        (new == Some(StatusCode::OK)).then_some((new, old))
    })
    .await;
    assert_eq!(new, Some(StatusCode::OK));
    assert_eq!(old, Some(StatusCode::UNAUTHORIZED));
    eprintln!(
        "MEASURE swarm_openclaw_rotation_in_effect_s={:.1}",
        rotated.elapsed().as_secs_f64()
    );

    // 6. Delete: the service, its Swarm secrets and its workspace gone, nothing left with the
    // test's label.
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/bots/{}", claw.id), None)
        .await;
    assert!(status.is_success(), "{status} {v}");
    assert!(service(&s, &claw.id).await.is_none(), "service gone");
    let bot_label = [format!("botmaker.bot-id={}", claw.id)];
    assert_eq!(secrets_labelled(&s, &bot_label).await, [], "secrets gone");
    let workspace = s.data.path().join("workspaces").join(&claw.id);
    assert!(
        !workspace.exists(),
        "workspace gone: {}",
        workspace.display()
    );
    let filters = HashMap::from([("label".to_string(), bot_label.to_vec())]);
    let volumes =
        s.h.docker
            .client()
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .unwrap();
    assert_eq!(volumes.volumes.unwrap_or_default().len(), 0, "no volume");
    // The task's container goes a moment after its service.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = left_with_label(&s).await;
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left with the test's label: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "MEASURE swarm_openclaw_end_to_end_s={:.0}",
        suite_started.elapsed().as_secs_f64()
    );
    // The gateway is gone: the next real gateway may start while the private engine's data
    // (the copied image among it, a minute or two of disk work) is removed.
    drop(turn);
}
