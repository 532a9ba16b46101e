//! Measurements for docs/benchmarks.md, run on demand (they take minutes and start 100 bots):
//!
//! ```sh
//! cargo test --test integration measure -- --ignored --nocapture --test-threads 1
//! ```
//!
//! They print figures and check only that what they measured worked; speed is never asserted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::Command;

use crate::support::server::{TestServer, config};
use crate::support::variants::{Variant, variant};
use crate::support::{Harness, eventually};

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    format!(
        "median {median:.0} ms, min {:.0}, max {:.0} (n = {})",
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

/// Downtime of a health-gated upgrade (old container stopped → new one healthy), with and
/// without a probe, alternating between two images.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: see the module doc"]
async fn measure_upgrade_downtime() {
    let s = TestServer::start().await;
    let v2 = variant(s.h.docker.client(), &s.h.image, Variant::V2).await;
    for probe in [true, false] {
        let mut body = s.bot_body("measure-up");
        if probe {
            body["health_check"] =
                json!({ "port": 8080, "interval_secs": 1, "start_period_secs": 1 });
        }
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        s.wait_bot(&id, "running", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
        let (mut down, mut total) = (Vec::new(), Vec::new());
        for i in 0..6 {
            let image = if i % 2 == 0 { &v2 } else { &s.h.image };
            let t = Instant::now();
            let (status, out) = s
                .post(
                    &format!("/api/bots/{id}/upgrade"),
                    json!({ "image": image }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            total.push(t.elapsed().as_secs_f64() * 1000.0);
            down.push(out["downtime_ms"].as_u64().unwrap() as f64);
        }
        eprintln!(
            "upgrade ({}): downtime {}; whole call (incl. the 10 s stability grace) {}",
            if probe { "HTTP probe" } else { "no probe" },
            stats(down),
            stats(total)
        );
    }
}

async fn cli(s: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_botmaker"))
        .args(args)
        .env("BOTMAKER_URL", &s.base)
        .env("BOTMAKER_TOKEN", &s.token)
        .env("BOTMAKER_CONFIG", s.h.tmp.path().join("cli.json"))
        .output()
        .await
        .unwrap()
}

/// Backup and restore of 100 running bots, each with two secrets and a small workspace.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: see the module doc"]
async fn measure_backup_and_restore_of_100_bots() {
    const N: usize = 100;
    let mut s = TestServer::start().await;
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..N {
        let mut body = s.bot_body("m100");
        body["env"] = json!({ "TICK_MS": "0" });
        body["secrets"] = json!({ "API_KEY": format!("key-{i}"), "CHAT_TOKEN": "x".repeat(64) });
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let ws = s.data.path().join("workspaces").join(&id);
        std::fs::write(ws.join("notes.md"), format!("# bot {i}\n").repeat(200)).unwrap();
        std::fs::create_dir_all(ws.join("memory")).unwrap();
        std::fs::write(ws.join("memory/state.json"), vec![b'7'; 16 * 1024]).unwrap();
        ids.push(id);
    }
    eprintln!("created {N} bots in {:.1} s", t.elapsed().as_secs_f64());

    let archive = s.h.tmp.path().join("fleet.tar.gz");
    let t = Instant::now();
    let out = cli(&s, &["backup", "-o", archive.to_str().unwrap()]).await;
    let backup_time = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&archive).unwrap().len();

    let pass = s.h.tmp.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let sealed = s.h.tmp.path().join("fleet.tar.gz.age");
    let t = Instant::now();
    let out = cli(
        &s,
        &[
            "backup",
            "-o",
            sealed.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    )
    .await;
    let sealed_time = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    s.shutdown().await;
    let h = std::mem::replace(&mut s.h, Harness::detached().await);
    for c in h.docker.list_managed_containers().await.unwrap() {
        let force = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .build();
        h.docker
            .client()
            .remove_container(&c.id, Some(force))
            .await
            .unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("restored");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_botmaker"))
        .args([
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let restore_time = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut cfg = config(data, h.docker.instance());
    cfg.docker_host = Some(h.docker.host().to_string());
    let t = Instant::now();
    let s = TestServer::start_with(h, home, cfg).await;
    eventually(
        "all 100 bots running again",
        Duration::from_secs(600),
        || async {
            let (_, list) = s.get("/api/bots").await;
            let running = list["bots"]
                .as_array()?
                .iter()
                .filter(|b| b["state"] == "running")
                .count();
            (running == N).then_some(())
        },
    )
    .await;
    let back_time = t.elapsed();
    eprintln!(
        "{N} bots: backup {:.2} s, {} KiB ({:.1} KiB/bot); encrypted backup {:.2} s; restore \
         {:.2} s; serve until all {N} run again {:.1} s",
        backup_time.as_secs_f64(),
        size / 1024,
        size as f64 / 1024.0 / N as f64,
        sealed_time.as_secs_f64(),
        restore_time.as_secs_f64(),
        back_time.as_secs_f64()
    );
}

/// Docker calls per bot create (issue #16 counted 3 inspects each), against the simulated
/// engine, which counts every request: creates through the API one after another, then the
/// calls their events and the background tasks caused once everything has settled.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: see the module doc"]
async fn measure_docker_calls_per_create() {
    const CREATES: usize = 50;

    let (s, fake) = TestServer::start_simulated().await;
    let settle = || tokio::time::sleep(Duration::from_secs(3));
    settle().await;
    let before = fake.counts();
    for i in 0..CREATES {
        let mut body = s.bot_body(&format!("calls{i}"));
        body["image"] = json!("img:sim");
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "running", "{v}");
    }
    settle().await;
    let after = fake.counts();
    let per = |route: &str| {
        let n = after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0);
        n as f64 / CREATES as f64
    };
    let total: u64 = after
        .iter()
        .filter(|(r, _)| !r.ends_with("/stats") && !r.ends_with("/_ping"))
        .map(|(r, n)| n - before.get(r).copied().unwrap_or(0))
        .sum();
    println!(
        "per create: {:.2} inspects, {:.2} creates, {:.2} starts, {:.2} calls in all (stats and pings left out)",
        per("GET /containers/{id}/json"),
        per("POST /containers/create"),
        per("POST /containers/{id}/start"),
        total as f64 / CREATES as f64,
    );
    for (route, n) in after.iter() {
        let d = n - before.get(route).copied().unwrap_or(0);
        if d > 0 {
            println!("  {route}: {d}");
        }
    }
}
