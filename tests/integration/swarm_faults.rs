//! Faults and concurrency on the Swarm backend (issue 15), on a private single-node swarm the
//! test starts: `botmaker serve --backend swarm` killed with SIGKILL in the middle of rolling
//! updates, and fifty requests at once on one bot. After either, each bot is one service, on
//! the image its configuration names, in the state it is asked to be in.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::ListServicesOptionsBuilder;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::child_server::{ChildServer, assert_some_upgrade_was_interrupted};
use crate::support::swarm::{PrivateSwarm, without_digest};
use crate::support::variants::{Variant, variant};
use crate::support::{Harness, eventually};

/// Rounds of upgrade-and-kill. A rolling update of the fixture takes 12-14 s here, so a kill
/// at a random moment of the first 10 s lands inside nearly every one.
const ROUNDS: usize = 4;

/// The services of bot `id` on the swarm: `(name, image, replicas, env)`.
async fn services_of(h: &Harness, id: &str) -> Vec<(String, String, i64, Vec<String>)> {
    let filters = HashMap::from([("label".to_string(), vec![format!("botmaker.bot-id={id}")])]);
    h.docker
        .client()
        .list_services(Some(
            ListServicesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| {
            let spec = s.spec?;
            let container = spec.task_template.and_then(|t| t.container_spec);
            Some((
                spec.name.unwrap_or_default(),
                container
                    .as_ref()
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
                spec.mode
                    .and_then(|m| m.replicated)
                    .and_then(|r| r.replicas)
                    .unwrap_or(-1),
                container.and_then(|c| c.env).unwrap_or_default(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_sigkill_during_rolling_updates_leaves_one_service_on_the_configured_image() {
    let swarm = PrivateSwarm::start().await;
    let h = Harness::on(swarm.service(&crate::support::instance()).await).await;
    let docker = h.docker.client();
    let images = [
        h.image.clone(),
        variant(docker, &h.image, Variant::V2).await,
        variant(docker, &h.image, Variant::Crash).await,
    ];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let env = [("BOTMAKER_BACKEND", "swarm")];
    let mut s = ChildServer::start(&h, &data, &log, &env).await;

    let id = h.bot("swkill").to_string();
    let body = json!({
        "id": id, "image": h.image, "env": { "TICK_MS": "0" },
        "health_check": { "port": 8080, "interval_secs": 1, "start_period_secs": 1 },
    });
    let (status, v) = s.call(Method::POST, "/api/bots", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    settled(&s, &h, &id, 0).await;

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 1..=ROUNDS {
        let (_, v) = s.call(Method::GET, &format!("/api/bots/{id}"), None).await;
        let have = v["image"].as_str().unwrap().to_string();
        let (delay, target) = {
            let mut rng = rand::rng();
            let others: Vec<&String> = images.iter().filter(|i| **i != have).collect();
            (
                rng.random_range(0..10_000u64),
                others[rng.random_range(0..others.len())].clone(),
            )
        };
        let upgrade = s.upgrade_unless_killed(&id, json!({ "image": target, "timeout_secs": 30 }));
        let kill = s.sigkill_after(Duration::from_millis(delay));
        let (answer, ()) = tokio::join!(upgrade, kill);
        let result = answer
            .and_then(|v| v["result"].as_str().map(String::from))
            .unwrap_or_else(|| "killed".into());
        *outcomes.entry(result).or_default() += 1;
        s.kill().await;
        // A request the manager received just before the kill may still be under way.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s = ChildServer::start(&h, &data, &log, &env).await;
        settled(&s, &h, &id, round).await;
    }
    assert_some_upgrade_was_interrupted(&log, ROUNDS, &outcomes);
    s.kill().await;
}

/// Bot `id` runs again, as one service named `botmaker-<id>` with one replica, whose image is
/// the one the bot's configuration names, and whose running task runs that image; no orphans.
async fn settled(s: &ChildServer, h: &Harness, id: &str, round: usize) {
    let view = eventually(
        &format!("round {round}: {id} running its configured image"),
        Duration::from_secs(120),
        || async {
            let (status, v) = s.call(Method::GET, &format!("/api/bots/{id}"), None).await;
            if status != StatusCode::OK || v["state"] != "running" {
                return None;
            }
            let want = h.docker.image_id(v["image"].as_str()?).await.ok()??;
            (v["image_id"].as_str() == Some(want.as_str())).then_some(v)
        },
    )
    .await;
    let services = services_of(h, id).await;
    assert_eq!(services.len(), 1, "round {round}: {services:?}");
    let (name, image, replicas, _) = &services[0];
    assert_eq!(name, &format!("botmaker-{id}"));
    assert_eq!(
        without_digest(image),
        view["image"].as_str().unwrap(),
        "round {round}: the service runs another image than the bot's config names: {view}"
    );
    assert_eq!(*replicas, 1, "round {round}");
    let (status, o) = s.call(Method::GET, "/api/admin/orphans", None).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["total"], 0, "round {round}: orphans {o}");
}

/// Fifty requests at once on one Swarm bot (stop, start, restart, config changes, upgrades,
/// reads): each is answered (done, or refused with a code), none fails on the server's side,
/// and afterwards the bot's one service agrees with what the bot's configuration says.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_requests_on_one_swarm_bot_leave_service_and_config_agreeing() {
    let swarm = PrivateSwarm::start().await;
    let s = swarm.server().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let mut body = s.bot_body("swconc");
    body["health_check"] = json!({ "port": 8080, "interval_secs": 1, "start_period_secs": 1 });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.wait_bot(&id, "running", Duration::from_secs(60), |v| {
        v["state"] == "running"
    })
    .await;

    let requests: Vec<(Method, String, Option<Value>)> = (0..50)
        .map(|i| {
            let path = format!("/api/bots/{id}");
            match i % 10 {
                0 | 5 => (Method::POST, format!("{path}/stop"), None),
                1 | 6 => (Method::POST, format!("{path}/start"), None),
                2 => (Method::POST, format!("{path}/restart"), None),
                3 | 7 => (
                    Method::PATCH,
                    path,
                    Some(json!({ "env": { "TICK_MS": "0", "ROUND": i.to_string() } })),
                ),
                4 => {
                    let image = if i % 20 == 4 { &v2 } else { &s.h.image };
                    (
                        Method::POST,
                        format!("{path}/upgrade"),
                        Some(json!({ "image": image, "timeout_secs": 30 })),
                    )
                }
                _ => (Method::GET, path, None),
            }
        })
        .collect();
    let answers = futures_util::future::join_all(
        requests
            .iter()
            .map(|(m, p, b)| s.call(m.clone(), p, b.clone())),
    )
    .await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ((m, p, _), (status, v)) in requests.iter().zip(&answers) {
        // Done; or refused with a stable code saying why: a client error, or `BOT_BUSY`
        // (503, nothing done: the lock stayed taken longer than a request may wait).
        let busy = *status == StatusCode::SERVICE_UNAVAILABLE && v["code"] == "BOT_BUSY";
        assert!(
            status.is_success() || status.is_client_error() || busy,
            "{m} {p}: {status} {v}"
        );
        if !status.is_success() {
            assert!(v["code"].is_string(), "{m} {p}: {status} {v}");
        }
        let key = format!("{m} {} {status}", p.rsplit('/').next().unwrap_or_default());
        *seen.entry(key).or_default() += 1;
    }
    eprintln!("answers: {seen:?}");

    // Whatever order they ran in, the bot ends as its configuration says, and its one service
    // says the same: replicas, image, environment.
    let (_, view) = s.get(&format!("/api/bots/{id}")).await;
    let want_running = view["desired_state"] == "running";
    let view = s
        .wait_bot(&id, "settled as desired", Duration::from_secs(120), |v| {
            if want_running {
                v["state"] == "running"
            } else {
                v["state"] != "running"
            }
        })
        .await;
    let services = services_of(&s.h, &id).await;
    assert_eq!(services.len(), 1, "{services:?}");
    let (_, image, replicas, env) = &services[0];
    assert_eq!(*replicas, i64::from(want_running), "{view}");
    assert_eq!(without_digest(image), view["image"].as_str().unwrap());
    let round = view["env"]["ROUND"].as_str().expect("a PATCH landed");
    assert!(
        env.iter().any(|e| e == &format!("ROUND={round}")),
        "the service's env {env:?} is not the config's ROUND={round}"
    );
}
