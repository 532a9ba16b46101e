//! Adversarial tests that stay: a storm of concurrent mutations on one bot, SIGKILL of the
//! real `botmaker serve` in the middle of creates and deletes, and a Docker daemon stopped and
//! frozen under mixed operations. Each ends by checking invariants, not timings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use botmaker::BotId;
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::seq::SliceRandom;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::child_server::ChildServer;
use crate::support::private_engine::PrivateEngine;
use crate::support::server::TestServer;
use crate::support::{Harness, eventually};

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or_default()
}

fn settled(v: &Value) -> bool {
    matches!(
        (v["desired_state"].as_str(), state(v)),
        (Some("running"), "running") | (Some("stopped"), "stopped" | "created")
    )
}

/// The names of the files in a bot's secrets directory (temp files included: none may stay).
fn files_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Start,
    Stop,
    Restart,
    Patch(usize),
    PutSecret(usize),
    Delete,
}

impl Op {
    async fn send(self, s: &TestServer, id: &str) -> (StatusCode, Value) {
        let bot = format!("/api/bots/{id}");
        match self {
            Op::Start => s.post(&format!("{bot}/start"), json!({})).await,
            Op::Stop => s.post(&format!("{bot}/stop"), json!({})).await,
            Op::Restart => s.post(&format!("{bot}/restart"), json!({})).await,
            Op::Patch(i) => {
                let env = json!({ "env": { "TICK_MS": "200", "GENERATION": i.to_string() } });
                s.call(Method::PATCH, &bot, Some(env)).await
            }
            Op::PutSecret(i) => {
                let res = s
                    .client
                    .put(s.url(&format!("{bot}/secrets/KEY_{i}")))
                    .bearer_auth(&s.token)
                    .body(format!("value-{i}"))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json().await.unwrap_or(Value::Null))
            }
            Op::Delete => s.call(Method::DELETE, &bot, None).await,
        }
    }
}

fn updated_at(v: &Value) -> DateTime<Utc> {
    v["updated_at"].as_str().unwrap().parse().unwrap()
}

/// 50 mutations of one bot sent at once, twice: without a delete, then with two deletes in
/// the mix. Afterwards: no 5xx, one container or none consistent with the row, the desired
/// state of the last successful call, no lost PATCH or secret, nothing left of a deleted bot.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_mutations_keep_one_bot_consistent() {
    let s = TestServer::start().await;
    for with_delete in [false, true] {
        let mut body = s.bot_body("storm");
        body["secrets"] = json!({ "BASE_KEY": "base" });
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();

        let cycle = [
            Op::Start,
            Op::Stop,
            Op::Restart,
            Op::Patch(0),
            Op::PutSecret(0),
        ];
        let mut ops: Vec<Op> = (0..50)
            .map(|i| match cycle[i % cycle.len()] {
                Op::Patch(_) => Op::Patch(i),
                Op::PutSecret(_) => Op::PutSecret(i),
                op => op,
            })
            .collect();
        if with_delete {
            ops[17] = Op::Delete;
            ops[33] = Op::Delete;
        }
        ops.shuffle(&mut rand::rng());
        let results: Vec<(Op, StatusCode, Value)> =
            futures_util::future::join_all(ops.iter().map(|&op| {
                let (s, id) = (&s, &id);
                async move {
                    let (status, v) = op.send(s, id).await;
                    (op, status, v)
                }
            }))
            .await;

        // A call that waited too long for the bot's lock gives up with 503 BOT_BUSY having done
        // nothing (a slow, loaded machine gets there with 50 calls queued on one bot): it
        // must then leave no trace, which the checks below verify by counting only the
        // calls that were served.
        let busy = |status: &StatusCode, v: &Value| {
            *status == StatusCode::SERVICE_UNAVAILABLE && v["code"] == "BOT_BUSY"
        };
        for (op, status, v) in &results {
            assert!(
                *status == StatusCode::OK
                    || busy(status, v)
                    || (with_delete && *status == StatusCode::NOT_FOUND),
                "{op:?}: {status} {v}"
            );
        }
        let results: Vec<(Op, StatusCode, Value)> = results
            .into_iter()
            .filter(|(_, status, v)| !busy(status, v))
            .collect();
        let dir = s.data.path().join("secrets").join(&id);
        let deletes: Vec<StatusCode> = results
            .iter()
            .filter(|(op, ..)| *op == Op::Delete)
            .map(|(_, st, _)| *st)
            .collect();
        let deleted = deletes.iter().filter(|st| **st == StatusCode::OK).count();
        assert!(deleted <= 1, "{deletes:?}");
        // Both deletes turned away busy leave a live bot, checked like the first round.
        if deleted == 1 {
            assert_eq!(
                s.get(&format!("/api/bots/{id}")).await.0,
                StatusCode::NOT_FOUND
            );
            let bot = BotId::new(id.clone()).unwrap();
            assert_eq!(s.h.docker.container_status(&bot).await.unwrap(), None);
            assert!(
                !dir.exists(),
                "secrets of a deleted bot: {:?}",
                files_in(&dir)
            );
            assert!(!s.data.path().join("workspaces").join(&id).exists());
            let (_, o) = s.get("/api/admin/orphans").await;
            assert_eq!(o["total"], 0, "{o}");
            continue;
        }

        // The call served last decides; views are ordered by the row's `updated_at`, which
        // each call writes under the bot's lock.
        let views: Vec<&(Op, StatusCode, Value)> = results
            .iter()
            .filter(|(op, ..)| !matches!(op, Op::PutSecret(_)))
            .collect();
        let last = views.iter().max_by_key(|(_, _, v)| updated_at(v)).unwrap();
        let last_patch = views
            .iter()
            .filter(|(op, ..)| matches!(op, Op::Patch(_)))
            .max_by_key(|(_, _, v)| updated_at(v))
            .unwrap();
        let v = s
            .wait_bot(&id, "a settled state", Duration::from_secs(30), settled)
            .await;
        assert_eq!(
            v["desired_state"], last.2["desired_state"],
            "last: {:?}",
            last.0
        );
        assert_eq!(v["env"]["GENERATION"], last_patch.2["env"]["GENERATION"]);
        let containers: Vec<_> =
            s.h.docker
                .list_managed_containers()
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.bot_id == id)
                .collect();
        assert_eq!(containers.len(), 1, "{containers:?}");
        let running =
            s.h.docker
                .container_status(&BotId::new(id.clone()).unwrap())
                .await
                .unwrap()
                .unwrap()
                .running;
        assert_eq!(running, v["desired_state"] == "running", "{v}");

        let mut expected: BTreeSet<String> = results
            .iter()
            .filter_map(|(op, ..)| match op {
                Op::PutSecret(i) => Some(format!("KEY_{i}")),
                _ => None,
            })
            .collect();
        expected.insert("BASE_KEY".into());
        assert_eq!(names(&v["secrets"]), expected, "lost or phantom secret");
        assert_eq!(
            files_in(&dir),
            expected,
            "files on disk differ from the row"
        );
    }
}

/// Every bot has its container and every container its bot, secrets on disk are what the rows
/// say, there are no orphans, and the database is sound.
async fn check_no_half_made_bots(s: &ChildServer, h: &Harness, data: &Path) {
    let last = eventually(
        "rows and containers to match",
        Duration::from_secs(30),
        || async {
            let (status, list) = s.call(Method::GET, "/api/bots", None).await;
            if status != StatusCode::OK {
                return None;
            }
            let rows: BTreeMap<String, Value> = list["bots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (b["id"].as_str().unwrap().to_string(), b.clone()))
                .collect();
            let containers: BTreeSet<String> = h
                .docker
                .list_managed_containers()
                .await
                .ok()?
                .into_iter()
                .map(|c| c.bot_id)
                .collect();
            let ids: BTreeSet<String> = rows.keys().cloned().collect();
            (ids == containers && rows.values().all(settled)).then_some(rows)
        },
    )
    .await;
    for (id, row) in &last {
        let dir = data.join("secrets").join(id);
        assert_eq!(
            files_in(&dir),
            names(&row["secrets"]),
            "secret files of {id} differ from its row"
        );
    }
    let (status, o) = s.call(Method::GET, "/api/admin/orphans", None).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["total"], 0, "orphans after recovery: {o}");
    let db = rusqlite::Connection::open_with_flags(
        data.join("botmaker.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// SIGKILL of the real server at a random moment of a create and a delete, 20 times over;
/// after each restart nothing is half-made, nothing is orphaned, the database is sound.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_creates_and_deletes_leaves_nothing_half_made() {
    let h = Harness::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut s = ChildServer::start(&h, &data, &log, &[]).await;
    let (mut created, mut deleted) = (0, 0);
    for i in 0..20 {
        let (_, list) = s.call(Method::GET, "/api/bots", None).await;
        let existing: Vec<String> = list["bots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        let (delay, start, victim) = {
            let mut rng = rand::rng();
            let victim = (!existing.is_empty())
                .then(|| existing[rng.random_range(0..existing.len())].clone());
            (rng.random_range(0..700), rng.random_bool(0.5), victim)
        };
        let new_id = h.bot("kill").to_string();
        let create = client
            .post(format!("{}/api/bots", s.base))
            .bearer_auth(&s.token)
            .json(&json!({
                "id": new_id, "image": h.image, "env": { "TICK_MS": "0" },
                "secrets": { "API_KEY": format!("value-{i}") }, "start": start,
            }))
            .send();
        let delete = async {
            match &victim {
                Some(v) => client
                    .delete(format!("{}/api/bots/{v}", s.base))
                    .bearer_auth(&s.token)
                    .send()
                    .await
                    .map(|r| r.status()),
                None => Ok(StatusCode::NO_CONTENT),
            }
        };
        let kill = async {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            s.child.start_kill().unwrap();
        };
        let (create, delete, ()) = tokio::join!(create, delete, kill);
        if create.is_ok_and(|r| r.status() == StatusCode::CREATED) {
            created += 1;
        }
        if delete.is_ok_and(|st| st == StatusCode::OK) {
            deleted += 1;
        }
        s.child.wait().await.unwrap();
        // A request the daemon received just before the kill may still be under way.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s = ChildServer::start(&h, &data, &log, &[]).await;
        check_no_half_made_bots(&s, &h, &data).await;
    }
    let log = std::fs::read_to_string(&log).unwrap();
    let recovered = log.matches("finished an interrupted operation").count();
    eprintln!(
        "20 kills: {created} creates and {deleted} deletes answered before the kill, \
         {recovered} interrupted operations recovered"
    );
    s.child.start_kill().unwrap();
    s.child.wait().await.unwrap();
}

/// One HTTP call with a client of its own (longer timeout than the server's), timed.
async fn timed(
    client: &reqwest::Client,
    s: &TestServer,
    method: Method,
    path: String,
    body: Option<Value>,
) -> (String, StatusCode, Value, Duration) {
    let started = Instant::now();
    let mut req = client
        .request(method.clone(), s.url(&path))
        .bearer_auth(&s.token);
    req = match body {
        Some(Value::String(raw)) => req.body(raw),
        Some(b) => req.json(&b),
        None => req,
    };
    let res = req.send().await.expect("an answer, not a hang");
    let status = res.status();
    let v = res.json().await.unwrap_or(Value::Null);
    (format!("{method} {path}"), status, v, started.elapsed())
}

/// Every kind of call on every bot, at once.
fn mixed_calls(
    bots: &[String],
    doomed: &str,
    newcomer: Value,
) -> Vec<(Method, String, Option<Value>)> {
    let mut calls = Vec::new();
    for (i, id) in bots.iter().enumerate() {
        let b = format!("/api/bots/{id}");
        let action = ["start", "stop", "restart"][i % 3];
        calls.push((Method::POST, format!("{b}/{action}"), Some(json!({}))));
        calls.push((
            Method::PATCH,
            b.clone(),
            Some(json!({ "env": { "TICK_MS": "300", "ROUND": i.to_string() } })),
        ));
        calls.push((
            Method::PUT,
            format!("{b}/secrets/ROTATED"),
            Some(json!("rotated")),
        ));
        calls.push((Method::GET, format!("{b}/logs?tail=5"), None));
        calls.push((Method::GET, b.clone(), None));
    }
    calls.push((Method::GET, "/api/bots".into(), None));
    calls.push((Method::POST, "/api/bots".into(), Some(newcomer)));
    calls.push((Method::DELETE, format!("/api/bots/{doomed}"), None));
    calls
}

/// Runs `calls` at once; every one must end in bounded time, with a 503 in JSON unless it
/// needs no Docker (a secret PUT) or, with the daemon `frozen`, is a read of the watch cache
/// (a frozen daemon keeps its connections open, so the cache is trusted until
/// `botmaker::bots::cache::FRESHNESS` after the daemon last answered). Returns the bots whose
/// mutation ran out the request timeout (`TIMEOUT`: outcome unknown, the call may complete
/// after its answer).
async fn all_fail_cleanly(
    client: &reqwest::Client,
    s: &TestServer,
    calls: Vec<(Method, String, Option<Value>)>,
    frozen: bool,
) -> BTreeSet<String> {
    let results = futures_util::future::join_all(
        calls.into_iter().map(|(m, p, b)| timed(client, s, m, p, b)),
    )
    .await;
    let mut unknown = BTreeSet::new();
    for (call, status, v, took) in results {
        eprintln!("{call}: {status} {} in {took:.1?}", v["code"]);
        assert!(took < Duration::from_secs(100), "{call} took {took:?}");
        if call.starts_with("PUT") && status == StatusCode::OK {
            continue;
        }
        let cache_read = call.starts_with("GET /api/bots") && !call.ends_with("tail=5");
        if frozen && cache_read && status == StatusCode::OK {
            continue;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{call}: {v}");
        let code = v["code"].as_str().unwrap_or_default();
        assert!(
            ["DOCKER_UNAVAILABLE", "BOT_BUSY", "TIMEOUT"].contains(&code),
            "{call}: {v}"
        );
        if code == "TIMEOUT" && !call.starts_with("GET") {
            // The bot's id, or "" for a create.
            unknown.insert(call.split('/').nth(3).unwrap_or_default().to_string());
        }
    }
    unknown
}

/// Waits until every bot runs or not as it should and rows match containers; returns the
/// bots by id.
async fn converged(s: &TestServer) -> BTreeMap<String, Value> {
    eventually(
        "the fleet to converge after the daemon returned",
        Duration::from_secs(120),
        || async {
            let (status, list) = s.get("/api/bots").await;
            if status != StatusCode::OK {
                return None;
            }
            let rows: BTreeMap<String, Value> = list["bots"]
                .as_array()?
                .iter()
                .map(|b| (b["id"].as_str().unwrap().to_string(), b.clone()))
                .collect();
            let containers: BTreeSet<String> =
                s.h.docker
                    .list_managed_containers()
                    .await
                    .ok()?
                    .into_iter()
                    .map(|c| c.bot_id)
                    .collect();
            let (_, o) = s.get("/api/admin/orphans").await;
            let ids: BTreeSet<String> = rows.keys().cloned().collect();
            (ids == containers && rows.values().all(settled) && o["total"] == 0).then_some(rows)
        },
    )
    .await
}

/// A private daemon frozen (SIGSTOP), then stopped, each time under a burst of mixed calls:
/// every call ends in bounded time (a 503 in JSON, or a secret PUT that needs no Docker), and
/// once the daemon is back the fleet converges to what the registry says, which only
/// successful calls changed.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_frozen_and_stopped_under_mixed_operations() {
    let mut engine = PrivateEngine::start().await;
    let docker = engine.service(&crate::support::instance()).await.unwrap();
    let h = Harness::on(docker).await;
    let s = TestServer::start_on(h).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(150))
        .build()
        .unwrap();
    let mut bots = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let mut body = s.bot_body(name);
        body["network"] = json!("none");
        body["secrets"] = json!({ "API_KEY": "v" });
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        bots.push(v["id"].as_str().unwrap().to_string());
    }
    let (status, v) = s
        .post(&format!("/api/bots/{}/stop", bots[2]), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Stopped first: the calls a frozen daemon leaves with an unknown outcome may complete
    // at any time after the thaw, so that phase comes last.
    for outage in ["stopped", "frozen"] {
        let before = converged(&s).await;
        eprintln!(
            "{outage}: before {:?}",
            before
                .iter()
                .map(|(k, v)| (k, &v["desired_state"], state(v)))
                .collect::<Vec<_>>()
        );
        let mut newcomer = s.bot_body("newcomer");
        newcomer["network"] = json!("none");
        let new_id = newcomer["id"].as_str().unwrap().to_string();
        let doomed = bots[1].clone();
        let calls = mixed_calls(&bots, &doomed, newcomer);
        let unknown = if outage == "frozen" {
            engine.freeze();
            let unknown = all_fail_cleanly(&client, &s, calls, true).await;
            engine.thaw();
            unknown
        } else {
            engine.stop().await;
            // Reads come from the watch cache until the server has seen its event stream end
            // (milliseconds; more on a loaded machine). The burst is about the time after.
            s.wait_cache_stale().await;
            let unknown = all_fail_cleanly(&client, &s, calls, false).await;
            engine.restart().await;
            unknown
        };
        assert!(
            outage == "frozen" || unknown.is_empty(),
            "a stopped daemon answers at once, never by timeout: {unknown:?}"
        );
        let after = converged(&s).await;
        if !unknown.contains("") {
            assert!(
                !after.contains_key(&new_id),
                "{outage}: a create that failed left a bot"
            );
        }
        for (id, was) in &before {
            if unknown.contains(id) {
                continue;
            }
            let now = after
                .get(id)
                .unwrap_or_else(|| panic!("{outage}: bot {id} vanished"));
            assert_eq!(
                now["desired_state"], was["desired_state"],
                "{outage}: a failed call changed the desired state of {id}"
            );
            assert_eq!(
                now["env"], was["env"],
                "{outage}: a failed PATCH changed {id}"
            );
        }
        bots.retain(|b| after.contains_key(b));
    }
}
