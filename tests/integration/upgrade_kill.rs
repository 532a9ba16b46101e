//! SIGKILL of the real `botmaker serve` at random moments of upgrades, over and over: after
//! every restart each bot has exactly one container, under its own name, running the image its
//! configuration names, and nothing is left parked, orphaned or journaled.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::child_server::{ChildServer, assert_some_upgrade_was_interrupted};
use crate::support::variants::{Variant, variant};
use crate::support::{Harness, eventually};

/// Rounds of upgrade-and-kill.
const ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_upgrades_leaves_one_container_per_bot() {
    let h = Harness::new().await;
    let docker = h.docker.client();
    let images = [
        h.image.clone(),
        variant(docker, &h.image, Variant::V2).await,
        variant(docker, &h.image, Variant::Crash).await,
    ];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let mut s = ChildServer::start(&h, &data, &log, &[]).await;

    // One bot judged by its probe, one by running for the grace period.
    let mut ids = Vec::new();
    for probe in [true, false] {
        let id = h.bot(if probe { "kp" } else { "kg" }).to_string();
        let mut body = json!({ "id": id, "image": h.image, "env": { "TICK_MS": "0" } });
        if probe {
            body["health_check"] =
                json!({ "port": 8080, "interval_secs": 1, "start_period_secs": 1 });
        }
        let (status, v) = s.call(Method::POST, "/api/bots", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(id);
    }

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut current = Vec::new();
        for id in &ids {
            let (_, v) = s.call(Method::GET, &format!("/api/bots/{id}"), None).await;
            current.push(v["image"].as_str().unwrap().to_string());
        }
        let (delay, targets) = {
            let mut rng = rand::rng();
            let delay = rng.random_range(0..4000);
            // Always another image than the bot has, so every round replaces something.
            let targets: Vec<String> = current
                .iter()
                .map(|have| {
                    let others: Vec<&String> = images.iter().filter(|i| *i != have).collect();
                    others[rng.random_range(0..others.len())].clone()
                })
                .collect();
            (delay, targets)
        };
        let upgrades =
            futures_util::future::join_all(ids.iter().zip(&targets).map(|(id, image)| {
                s.upgrade_unless_killed(id, json!({ "image": image, "timeout_secs": 20 }))
            }));
        let kill = s.sigkill_after(Duration::from_millis(delay));
        let (answers, ()) = tokio::join!(upgrades, kill);
        for a in answers {
            let result = a
                .and_then(|v| v["result"].as_str().map(String::from))
                .unwrap_or_else(|| "killed".into());
            *outcomes.entry(result).or_default() += 1;
        }
        s.kill().await;
        // A request the daemon received just before the kill may still be under way.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s = ChildServer::start(&h, &data, &log, &[]).await;
        check_one_container_each(&s, &h, &ids, round).await;
    }
    assert_some_upgrade_was_interrupted(&log, ROUNDS, &outcomes);
    s.kill().await;
}

/// Every bot: one container, named `botmaker-<id>`, running, on the image its config names;
/// no unfinished journal entry; no orphans.
async fn check_one_container_each(s: &ChildServer, h: &Harness, ids: &[String], round: usize) {
    for id in ids {
        let view = eventually(
            &format!("round {round}: {id} back to one running container"),
            Duration::from_secs(60),
            || async {
                let (status, v) = s.call(Method::GET, &format!("/api/bots/{id}"), None).await;
                (status == StatusCode::OK && v["state"] == "running").then_some(v)
            },
        )
        .await;
        let containers: Vec<_> = h
            .docker
            .list_managed_containers()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.bot_id == *id)
            .collect();
        assert_eq!(containers.len(), 1, "round {round}, {id}: {containers:?}");
        assert_eq!(containers[0].name, format!("botmaker-{id}"));
        let configured = view["image"].as_str().unwrap();
        let want = h.docker.image_id(configured).await.unwrap();
        assert_eq!(
            view["image_id"].as_str(),
            want.as_deref(),
            "round {round}, {id}: runs another image than its config names: {view}"
        );
    }
    let (status, o) = s.call(Method::GET, "/api/admin/orphans", None).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["total"], 0, "round {round}: orphans {o}");
}
