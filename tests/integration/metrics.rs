//! `GET /metrics` against a running fleet: the exposition is parsed and its values compared
//! with what the API says about the same bots.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::eventually;
use crate::support::server::TestServer;

/// One parsed exposition: value by series (`name{labels}` exactly as written).
struct Exposition(HashMap<String, f64>);

impl Exposition {
    /// Parses Prometheus' text format: `# HELP`/`# TYPE` lines, then `series value` lines.
    /// Label values here never hold a space, so the value is after the last space.
    fn parse(text: &str) -> Self {
        let mut series = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, value) = line.rsplit_once(' ').expect("series and value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            assert!(
                series.insert(name.to_string(), value).is_none(),
                "twice: {line}"
            );
        }
        Self(series)
    }

    fn get(&self, series: &str) -> Option<f64> {
        self.0.get(series).copied()
    }
}

async fn scrape(s: &TestServer, token: &str) -> (Exposition, String) {
    let res = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = res.text().await.unwrap();
    (Exposition::parse(&text), text)
}

#[tokio::test]
async fn metrics_report_a_running_fleet_from_memory() {
    let s = TestServer::start().await;
    let (status, tok) = s.post("/api/tokens", json!({ "name": "prometheus" })).await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let (a, b, c) = (
        s.create_bot("m-a").await,
        s.create_bot("m-b").await,
        s.create_bot("m-c").await,
    );
    let (status, v) = s.post(&format!("/api/bots/{c}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // The fleet's counts and each bot's `up`, once the stop is observed.
    let up = |id: &str| format!("botmaker_bot_up{{bot=\"{id}\"}}");
    let m = eventually(
        "2 running and 1 stopped bot in /metrics",
        Duration::from_secs(30),
        || async {
            let (m, _) = scrape(&s, &token).await;
            (m.get("botmaker_bots{state=\"running\"}") == Some(2.0)
                && m.get("botmaker_bots{state=\"stopped\"}") == Some(1.0))
            .then_some(m)
        },
    )
    .await;
    assert_eq!(m.get("botmaker_bots{state=\"crash_loop\"}"), Some(0.0));
    assert_eq!(m.get(&up(&a)), Some(1.0));
    assert_eq!(m.get(&up(&b)), Some(1.0));
    assert_eq!(m.get(&up(&c)), Some(0.0));
    assert_eq!(m.get("botmaker_docker_up{engine=\"docker\"}"), Some(1.0));
    assert_eq!(
        m.get(&format!("botmaker_bot_exit_code{{bot=\"{c}\"}}")),
        Some(0.0),
        "a stopped fixture bot exits 0"
    );
    assert_eq!(
        m.get(&format!("botmaker_bot_restarts_total{{bot=\"{a}\"}}")),
        Some(0.0)
    );
    assert_eq!(
        m.get(&format!("botmaker_bot_oom_kills_total{{bot=\"{a}\"}}")),
        Some(0.0)
    );

    // CPU and memory come from the sampler's cache, for running bots only; the limit is the
    // one /api/bots/{id}/stats reports.
    let mem_limit = format!("botmaker_bot_memory_limit_bytes{{bot=\"{a}\"}}");
    let m = eventually(
        "a memory sample of a running bot",
        Duration::from_secs(30),
        || async {
            let (m, _) = scrape(&s, &token).await;
            m.get(&mem_limit).is_some().then_some(m)
        },
    )
    .await;
    let (_, stats) = s.get(&format!("/api/bots/{a}/stats")).await;
    assert_eq!(
        m.get(&mem_limit),
        stats["latest"]["memory_limit_bytes"].as_f64(),
        "{stats}"
    );
    assert!(
        m.get(&format!("botmaker_bot_memory_bytes{{bot=\"{a}\"}}"))
            .unwrap()
            > 0.0
    );
    assert!(
        m.get(&format!("botmaker_bot_cpu_percent{{bot=\"{a}\"}}"))
            .is_some()
    );
    assert_eq!(
        m.get(&format!("botmaker_bot_memory_bytes{{bot=\"{c}\"}}")),
        None,
        "a stopped bot has no sample"
    );

    // HTTP requests by route template, not by path: two reads of two bots are one series.
    let series =
        "botmaker_http_requests_total{method=\"GET\",route=\"/api/bots/{id}\",status=\"200\"}";
    let before = m.get(series).unwrap_or(0.0);
    for id in [&a, &b] {
        let (status, _) = s.get(&format!("/api/bots/{id}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = s.get("/api/bots/no-such-bot-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (m, text) = scrape(&s, &token).await;
    assert_eq!(m.get(series), Some(before + 2.0), "{text}");
    assert!(
        m.get(
            "botmaker_http_requests_total{method=\"GET\",route=\"/api/bots/{id}\",status=\"404\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        !text.contains(&format!("route=\"/api/bots/{a}\"")),
        "raw paths are not labels"
    );
    let count = m
        .get(
            "botmaker_http_request_duration_seconds_count{method=\"GET\",route=\"/api/bots/{id}\"}",
        )
        .unwrap();
    assert!(count >= before + 3.0, "{count}");
    // The families read from memory are declared even without a series yet.
    for family in [
        "# TYPE botmaker_docker_event_reconnects_total counter",
        "# TYPE botmaker_http_request_duration_seconds histogram",
        "# TYPE botmaker_llm_requests_total counter",
    ] {
        assert!(text.lines().any(|l| l == family), "{family} not in\n{text}");
    }

    let anonymous = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stats_history_keeps_a_running_bots_minutes() {
    let s = TestServer::start().await;
    let id = s.create_bot("history").await;
    // A minute is written once it is over (and the writer's next pass, every 15 s).
    let minutes = eventually(
        "a finished minute of history",
        Duration::from_secs(150),
        || async {
            let (status, v) = s.get(&format!("/api/bots/{id}/stats/history")).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["minutes"].as_array().filter(|m| !m.is_empty()).cloned()
        },
    )
    .await;
    let m = &minutes[0];
    assert!(m["samples"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["memory_bytes"].as_u64().unwrap() > 0, "{m}");
    assert!(
        m["memory_bytes_max"].as_u64() >= m["memory_bytes"].as_u64(),
        "{m}"
    );
    assert!(
        m["cpu_percent_max"].as_f64() >= m["cpu_percent"].as_f64(),
        "{m}"
    );
    let (_, stats) = s.get(&format!("/api/bots/{id}/stats")).await;
    assert_eq!(
        m["memory_limit_bytes"], stats["latest"]["memory_limit_bytes"],
        "{stats}"
    );
    // Nothing after a time to come; a bad time is a field error; an unknown bot is a 404.
    let (status, v) = s
        .get(&format!(
            "/api/bots/{id}/stats/history?since=2999-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["minutes"], json!([]));
    let (status, v) = s
        .get(&format!("/api/bots/{id}/stats/history?since=yesterday"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = s.get("/api/bots/no-such-bot-here/stats/history").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A bot deleted and created again under the same id starts with no history: its
    // predecessor's minutes are neither shown nor kept.
    let (status, v) = s
        .call(Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let db = rusqlite::Connection::open(s.data.path().join("botmaker.db")).unwrap();
    let count = || -> i64 {
        db.query_row(
            "SELECT count(*) FROM bot_stats_minutes WHERE bot_id = ?1 AND minute < ?2",
            rusqlite::params![id, chrono::Utc::now().timestamp() / 60],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count(), 0, "the deleted bot's finished minutes are gone");
    let recreated_at = chrono::Utc::now();
    let mut body = s.bot_body("history");
    body["id"] = json!(id);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["id"], id.as_str(), "the same id again");
    let (status, v) = s
        .get(&format!(
            "/api/bots/{id}/stats/history?since=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let first_minute = recreated_at.timestamp() / 60 * 60;
    for m in v["minutes"].as_array().unwrap() {
        let at = chrono::DateTime::parse_from_rfc3339(m["at"].as_str().unwrap()).unwrap();
        assert!(
            at.timestamp() >= first_minute,
            "a minute from before the bot was created: {v}"
        );
    }
}
