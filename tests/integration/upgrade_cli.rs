//! Upgrades from the command line, as an operator runs them: `bots upgrade`, the rolling
//! `upgrade` with `--max-unavailable` and `--stop-on-failure`, and `apply` of a fleet file
//! whose image changed. The built binary against an in-process server on the real engine.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::server::TestServer;
use crate::support::variants::{Variant, variant};

/// Exit code, stdout and stderr of one CLI run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn cli(s: &TestServer, args: &[&str]) -> Run {
    let config = s.h.tmp.path().join("cli.json");
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new(env!("CARGO_BIN_EXE_botmaker"))
            .args(args)
            .env("BOTMAKER_CONFIG", config)
            .env("BOTMAKER_URL", &s.base)
            .env("BOTMAKER_TOKEN", &s.token)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the CLI finishes")
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn bots(s: &TestServer, n: usize, name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(s.create_bot(name).await);
    }
    for id in &ids {
        s.wait_bot(id, "running", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    }
    ids
}

async fn image_of(s: &TestServer, id: &str) -> (String, Value) {
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    (v["image"].as_str().unwrap().to_string(), v)
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_upgrade_reports_the_outcome_and_exits_1_on_a_rollback() {
    let s = TestServer::start().await;
    let docker = s.h.docker.client();
    let v2 = variant(docker, &s.h.image, Variant::V2).await;
    let crash = variant(docker, &s.h.image, Variant::Crash).await;
    let id = bots(&s, 1, "cli-up").await.remove(0);

    let r = cli(&s, &["bots", "upgrade", &id, "--image", &v2]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("upgraded {id}: {} -> {v2}, down ", s.h.image)),
        "{}",
        r.stdout
    );
    let r = cli(
        &s,
        &["bots", "upgrade", &id, "--image", &crash, "--timeout", "30"],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let err: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(err.len(), 1, "{}", r.stderr);
    assert!(
        err[0].starts_with("botmaker: error: ") && err[0].contains("rolled back"),
        "{}",
        err[0]
    );
    assert_eq!(image_of(&s, &id).await.0, v2);
}

/// Four bots, two at a time: all end on the new image, and no more than two were ever down at
/// once (sampled all along the rollout).
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_upgrade_keeps_at_most_max_unavailable_bots_down() {
    let s = Arc::new(TestServer::start().await);
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    let ids = bots(&s, 4, "roll").await;
    let other = bots(&s, 1, "roll-out").await.remove(0);

    let done = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (s, done, worst) = (s.clone(), done.clone(), worst.clone());
        let ids: BTreeSet<String> = ids.iter().cloned().collect();
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let (_, list) = s.get("/api/bots").await;
                let down = list["bots"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|b| ids.contains(b["id"].as_str().unwrap_or_default()))
                    .filter(|b| b["state"] != "running")
                    .count();
                worst.fetch_max(down, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let list = ids.join(",");
    let r = cli(
        &s,
        &[
            "upgrade",
            "--image",
            &v2,
            "--bots",
            &list,
            "--max-unavailable",
            "2",
        ],
    )
    .await;
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l == "upgraded 4, rolled back 0, unchanged 0, failed 0, skipped 0"),
        "{}",
        r.stdout
    );
    for id in &ids {
        assert_eq!(image_of(&s, id).await.0, v2, "{id}");
    }
    assert_eq!(image_of(&s, &other).await.0, s.h.image, "not selected");
    let worst = worst.load(Ordering::SeqCst);
    assert!(worst <= 2, "{worst} bots were down at once");
    assert!(
        worst >= 1,
        "the sampler never saw a bot down: it proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_on_failure_leaves_the_rest_untouched_after_a_rollback() {
    let s = TestServer::start().await;
    let crash = variant(s.h.docker.client(), &s.h.image, Variant::Crash).await;
    let ids = bots(&s, 3, "halt").await;
    let list = ids.join(",");
    let r = cli(
        &s,
        &[
            "upgrade",
            "--image",
            &crash,
            "--bots",
            &list,
            "--stop-on-failure",
            "--timeout",
            "30",
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l == "upgraded 0, rolled back 1, unchanged 0, failed 0, skipped 2"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    for id in &ids {
        let (image, v) = image_of(&s, id).await;
        assert_eq!(image, s.h.image, "{id}");
        assert_eq!(v["state"], "running", "{id}: {v}");
    }
}

/// `apply` of a file whose image changed: a failing release is rolled back (the other changes
/// of the file stay applied) and reported; a good one goes through the same gate.
#[tokio::test(flavor = "multi_thread")]
async fn apply_sends_a_changed_image_through_the_health_gate() {
    let s = TestServer::start().await;
    let docker = s.h.docker.client();
    let crash = variant(docker, &s.h.image, Variant::Crash).await;
    let v2 = variant(docker, &s.h.image, Variant::V2).await;
    let id = bots(&s, 1, "apply-up").await.remove(0);
    let fleet = |image: &str, generation: u32| {
        format!(
            "[[bot]]\nid = \"{id}\"\nimage = \"{image}\"\n\
             env = {{ TICK_MS = \"200\", GENERATION = \"{generation}\" }}\n"
        )
    };
    let file = s.h.tmp.path().join("fleet.toml");

    std::fs::write(&file, fleet(&crash, 1)).unwrap();
    let r = cli(&s, &["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    let (image, v) = image_of(&s, &id).await;
    assert_eq!(image, s.h.image);
    assert_eq!(
        v["env"]["GENERATION"], "1",
        "the rest of the file is applied"
    );
    assert_eq!(v["state"], "running");

    std::fs::write(&file, fleet(&v2, 2)).unwrap();
    let r = cli(&s, &["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let (image, v) = image_of(&s, &id).await;
    assert_eq!(image, v2);
    assert_eq!(v["env"]["GENERATION"], "2");
    assert_eq!(
        v["image_id"],
        json!(s.h.docker.image_id(&v2).await.unwrap().unwrap())
    );
}
