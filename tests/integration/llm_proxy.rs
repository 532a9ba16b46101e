//! The LLM key proxy end to end: a real `botmaker serve`, bot containers on the real engine
//! calling their LLM from inside (the fixture's `llm` mode), a mock provider run by the test.
//! The provider sees the real key; the bot never holds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use botmaker::BotId;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::eventually;
use crate::support::llm::{CHAT_USAGE, FIRST_CHUNK, MESSAGES_USAGE, MockUpstream};
use crate::support::openclaw::TestNetwork;
use crate::support::server::TestServer;

/// The provider's real key: must reach the mock, and nothing a bot can see.
const REAL_KEY: &str = "sk-real-upstream-key-4c7e91d2";

/// Configures a provider; returns its view.
async fn add_provider(
    s: &TestServer,
    name: &str,
    kind: &str,
    base_url: &str,
    prices: Value,
) -> Value {
    let (status, v) = s
        .post(
            "/api/providers",
            json!({ "name": name, "kind": kind, "base_url": base_url, "api_key": REAL_KEY,
                    "prices": prices }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

/// A generic fixture bot that asks for `provider` and runs `calls` (see the fixture's
/// `llm_client.rs`); `extra` is merged into the create body.
async fn llm_bot(s: &TestServer, name: &str, provider: &str, calls: &str, extra: Value) -> String {
    let mut body = json!({
        "id": s.h.bot(name).to_string(),
        "image": s.h.image,
        "command": ["llm"],
        "env": { "TICK_MS": "0", "LLM_CALLS": calls },
        "settings": { "llm_provider": provider },
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn bot(id: &str) -> BotId {
    BotId::new(id).unwrap()
}

/// The bot's virtual key, read where botmaker wrote it.
fn key_file(s: &TestServer, id: &str, secret: &str) -> String {
    std::fs::read_to_string(s.data.path().join("secrets").join(id).join(secret))
        .unwrap()
        .trim()
        .to_string()
}

/// Every file under `dir`, with its contents.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                dirs.push(e.path());
            } else if ty.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// Asserts that the real key is nowhere a bot can see: its container's configuration
/// (`docker inspect`: env, command, labels, mounts), its secrets and workspace files, its logs.
async fn assert_bot_never_holds_the_real_key(s: &TestServer, id: &str) {
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&botmaker::docker::container_name(&bot(id)), None)
            .await
            .unwrap();
    let inspect = serde_json::to_string(&inspect).unwrap();
    assert!(
        !inspect.contains(REAL_KEY),
        "the real key is in docker inspect"
    );
    for root in ["secrets", "workspaces"] {
        for (path, contents) in files_under(&s.data.path().join(root).join(id)) {
            assert!(
                !String::from_utf8_lossy(&contents).contains(REAL_KEY),
                "the real key is in {}",
                path.display()
            );
        }
    }
    let logs = s.h.log_lines(&bot(id)).await.join("\n");
    assert!(
        !logs.contains(REAL_KEY),
        "the real key is in the bot's logs"
    );
}

/// A request to the proxy from the test process with `key` (Bearer), as a bot would send it.
async fn direct(
    s: &TestServer,
    key: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let url = format!("http://{}{path}", s.llm_proxy.expect("the proxy runs"));
    let res = s
        .client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn chat_body() -> Value {
    json!({ "model": "test-model", "messages": [{ "role": "user", "content": "ping" }] })
}

/// The bot's usage report.
async fn usage(s: &TestServer, id: &str) -> Value {
    let (status, v) = s.get(&format!("/api/bots/{id}/usage")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// The lines `llm <step> <what> ...` of the bot's logs.
fn step_lines<'a>(lines: &'a [String], step: &str, what: &str) -> Vec<&'a str> {
    let prefix = format!("llm {step} {what} ");
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix(&prefix)
                .or_else(|| (l.trim_end() == prefix.trim_end()).then_some(""))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generic_bot_calls_its_llm_through_the_proxy_and_never_holds_the_real_key() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    let prices = json!({ "test-model": { "input": 2.0, "output": 10.0 } });
    add_provider(
        &s,
        "mock-openai",
        "openai-compatible",
        &mock.base_url(),
        prices,
    )
    .await;

    // The key is write-only: nowhere in what the API says.
    let (_, list) = s.get("/api/providers").await;
    assert!(!list.to_string().contains(REAL_KEY), "{list}");
    assert_eq!(list["providers"][0]["has_api_key"], true);
    assert_eq!(list["proxy"]["enabled"], true);

    let id = llm_bot(
        &s,
        "llm-gen",
        "mock-openai",
        "chat;chat-stream;chat-stream-usage",
        json!({}),
    )
    .await;
    let lines = s.h.wait_for_log(&bot(&id), "llm script done").await;
    for step in ["chat", "chat-stream", "chat-stream-usage"] {
        assert_eq!(
            step_lines(&lines, step, "status"),
            ["200"],
            "{step}: {lines:?}"
        );
        assert_eq!(
            step_lines(&lines, step, "done").len(),
            1,
            "{step}: {lines:?}"
        );
    }
    assert!(
        step_lines(&lines, "chat", "body")[0].contains(FIRST_CHUNK),
        "{lines:?}"
    );
    // The stream the bot did not ask usage for has none; the other has it, unchanged.
    let plain = step_lines(&lines, "chat-stream", "data");
    assert!(plain.iter().any(|d| d.contains(FIRST_CHUNK)), "{plain:?}");
    assert_eq!(plain.last(), Some(&"[DONE]"));
    assert!(
        !plain.iter().any(|d| d.contains("prompt_tokens")),
        "{plain:?}"
    );
    let asked = step_lines(&lines, "chat-stream-usage", "data");
    assert!(
        asked.iter().any(|d| d.contains("\"prompt_tokens\":11")),
        "{asked:?}"
    );

    // The provider saw the real key every time, and was asked for usage in both streams.
    let seen = mock.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for r in &seen {
        assert_eq!(
            r.header("authorization").as_deref(),
            Some(format!("Bearer {REAL_KEY}").as_str())
        );
        assert!(r.header("cookie").is_none());
    }
    for r in &seen[1..] {
        assert_eq!(
            r.body["stream_options"]["include_usage"], true,
            "{:?}",
            r.body
        );
    }

    // The bot holds a virtual key in its file, and the URL of the proxy.
    let virtual_key = key_file(&s, &id, "LLM_API_KEY");
    assert!(virtual_key.starts_with("bmk-llm-"), "{virtual_key}");
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert!(
        v["secrets"]
            .as_array()
            .unwrap()
            .contains(&json!("LLM_API_KEY")),
        "{v}"
    );
    assert_bot_never_holds_the_real_key(&s, &id).await;

    // Usage: exactly what the provider reported, three times; cost from the price table.
    let u = usage(&s, &id).await;
    let (p, c) = CHAT_USAGE;
    assert_eq!(u["totals"]["requests"], 3, "{u}");
    assert_eq!(u["totals"]["input_tokens"], 3 * p, "{u}");
    assert_eq!(u["totals"]["output_tokens"], 3 * c, "{u}");
    let cost = u["totals"]["cost"].as_f64().unwrap();
    let want = 3.0 * (p as f64 * 2.0 + c as f64 * 10.0) / 1e6;
    assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
    assert_eq!(u["rows"][0]["model"], "test-model");
    assert_eq!(u["providers"], json!(["mock-openai"]));
    let (_, fleet) = s.get("/api/usage").await;
    assert_eq!(fleet["bots"][0]["bot"], id.as_str(), "{fleet}");
    assert_eq!(fleet["totals"]["input_tokens"], 3 * p);

    // The same counts as Prometheus series at /metrics, which needs a credential.
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for line in [
        format!(
            "botmaker_llm_requests_total{{bot=\"{id}\",provider=\"mock-openai\",status=\"200\"}} 3"
        ),
        format!(
            "botmaker_llm_tokens_total{{bot=\"{id}\",provider=\"mock-openai\",direction=\"input\"}} {}",
            3 * p
        ),
        format!(
            "botmaker_llm_tokens_total{{bot=\"{id}\",provider=\"mock-openai\",direction=\"output\"}} {}",
            3 * c
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    let anonymous = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A real key sent where the virtual one goes is refused; so is overwriting the file.
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "secrets": { "LLM_API_KEY": "sk-other" } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let res = s
        .client
        .put(s.url(&format!("/api/bots/{id}/secrets/LLM_API_KEY")))
        .bearer_auth(&s.token)
        .body("sk-other")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(key_file(&s, &id, "LLM_API_KEY"), virtual_key);

    // A provider in use is not deleted by accident.
    let res = s
        .client
        .delete(s.url("/api/providers/mock-openai"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_messages_streamed_and_not_are_metered_exactly() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    let prices = json!({ "*": { "input": 3.0, "output": 15.0 } });
    add_provider(&s, "claude", "anthropic", &mock.base_url(), prices).await;
    let id = llm_bot(
        &s,
        "llm-ant",
        "claude",
        "messages;messages-stream",
        json!({}),
    )
    .await;
    let lines = s.h.wait_for_log(&bot(&id), "llm script done").await;
    assert_eq!(
        step_lines(&lines, "messages", "status"),
        ["200"],
        "{lines:?}"
    );
    assert_eq!(
        step_lines(&lines, "messages-stream", "status"),
        ["200"],
        "{lines:?}"
    );
    let events = step_lines(&lines, "messages-stream", "data");
    assert!(
        events.iter().any(|d| d.contains("message_stop")),
        "{events:?}"
    );

    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        assert_eq!(r.route, "POST /v1/messages");
        assert_eq!(r.header("x-api-key").as_deref(), Some(REAL_KEY));
        assert_eq!(r.header("anthropic-version").as_deref(), Some("2023-06-01"));
        assert!(r.header("authorization").is_none());
    }
    // The bot's base URL is the proxy's root: Anthropic's SDKs add /v1/messages themselves.
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&botmaker::docker::container_name(&bot(&id)), None)
            .await
            .unwrap();
    let env = inspect.config.unwrap().env.unwrap();
    let port = s.llm_proxy.unwrap().port();
    assert!(
        env.contains(&format!("LLM_BASE_URL=http://botmaker-llm:{port}")),
        "{env:?}"
    );
    assert!(
        env.contains(&"LLM_API_KEY_FILE=/run/secrets/LLM_API_KEY".to_string()),
        "{env:?}"
    );
    assert_bot_never_holds_the_real_key(&s, &id).await;

    let u = usage(&s, &id).await;
    let (i, o) = MESSAGES_USAGE;
    assert_eq!(u["totals"]["requests"], 2, "{u}");
    assert_eq!(u["totals"]["input_tokens"], 2 * i, "{u}");
    assert_eq!(u["totals"]["output_tokens"], 2 * o, "{u}");
    let cost = u["totals"]["cost"].as_f64().unwrap();
    let want = 2.0 * (i as f64 * 3.0 + o as f64 * 15.0) / 1e6;
    assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openclaw_bot_is_pointed_at_the_proxy_with_a_virtual_key() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    add_provider(&s, "anthropic", "anthropic", &mock.base_url(), json!({})).await;
    let id = s.h.bot("llm-claw").to_string();
    let body = json!({
        "id": id, "template": "openclaw", "image": s.h.image,
        "command": ["openclaw"],
        "settings": { "provider": "anthropic", "model": "claude-opus-4-5" },
    });
    // Sending the real key where the virtual one goes is refused.
    let mut with_key = body.clone();
    with_key["secrets"] = json!({ "ANTHROPIC_API_KEY": REAL_KEY });
    let (status, v) = s.post("/api/bots", with_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["secrets.ANTHROPIC_API_KEY"].is_array(), "{v}");

    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(
            s.data
                .path()
                .join("workspaces")
                .join(&id)
                .join("openclaw.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let port = s.llm_proxy.unwrap().port();
    let provider = &config["models"]["providers"]["anthropic"];
    assert_eq!(
        provider["baseUrl"],
        format!("http://botmaker-llm:{port}"),
        "{config}"
    );
    let file_provider = provider["apiKey"]["provider"].as_str().unwrap();
    assert_eq!(
        config["secrets"]["providers"][file_provider]["path"],
        "/run/secrets/ANTHROPIC_API_KEY"
    );
    assert!(key_file(&s, &id, "ANTHROPIC_API_KEY").starts_with("bmk-llm-"));
    // The stand-in checked every file its config refers to.
    s.h.wait_for_log(&bot(&id), "openclaw-config: ok").await;
    let inspect =
        s.h.docker
            .client()
            .inspect_container(&botmaker::docker::container_name(&bot(&id)), None)
            .await
            .unwrap();
    let gateway = s.llm_proxy.unwrap().ip();
    let hosts = inspect.host_config.unwrap().extra_hosts.unwrap_or_default();
    assert!(
        hosts.contains(&format!("botmaker-llm:{gateway}")),
        "{hosts:?}"
    );
    assert_bot_never_holds_the_real_key(&s, &id).await;

    // The key in the bot's file works at the proxy (the bot would send it as x-api-key).
    let key = key_file(&s, &id, "ANTHROPIC_API_KEY");
    let res = s
        .client
        .post(format!("http://{}/v1/messages", s.llm_proxy.unwrap()))
        .header("x-api-key", key)
        .json(&json!({ "model": "claude-opus-4-5", "max_tokens": 8, "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        mock.seen()[0].header("x-api-key").as_deref(),
        Some(REAL_KEY)
    );
}

/// Reads `/api/events` until an event of `kind` for `bot` arrives.
async fn wait_event(s: &TestServer, bot: &str, kind: &str, events: reqwest::Response) {
    let mut stream = events.bytes_stream();
    let needle = format!("\"kind\":\"{kind}\"");
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.lines().any(|l| l.contains(&needle) && l.contains(bot)) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no {kind} event for {bot} on {}: {text}",
        s.base
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn budgets_and_rate_limits_answer_429_in_the_providers_format() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    add_provider(
        &s,
        "mock-openai",
        "openai-compatible",
        &mock.base_url(),
        json!({}),
    )
    .await;
    add_provider(&s, "claude", "anthropic", &mock.base_url(), json!({})).await;

    // Tokens per day: the call that reaches the budget goes through, the next is refused.
    let (p, c) = CHAT_USAGE;
    let tokens = json!({ "limits": { "llm_tokens_per_day": 2 * (p + c) } });
    let id = llm_bot(&s, "llm-budget", "mock-openai", "", tokens).await;
    let key = key_file(&s, &id, "LLM_API_KEY");
    let events = s
        .client
        .get(s.url("/api/events"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let (status, v, _) = direct(&s, &key, "/v1/chat/completions", chat_body()).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (status, v, headers) = direct(&s, &key, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_quota", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("llm_tokens_per_day"),
        "{v}"
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        mock.seen().len(),
        2,
        "the refused call never reached the provider"
    );
    wait_event(&s, &id, "budget_exceeded", events).await;
    let u = usage(&s, &id).await;
    assert_eq!(u["current"]["tokens_today"], 2 * (p + c), "{u}");
    assert_eq!(u["limits"]["llm_tokens_per_day"], 2 * (p + c), "{u}");

    // Requests per minute, in Anthropic's shape for an Anthropic provider. A window that
    // rolls over between the two calls resets the count: then the pair is tried again.
    let id = llm_bot(
        &s,
        "llm-rpm",
        "claude",
        "",
        json!({ "limits": { "llm_requests_per_minute": 1 } }),
    )
    .await;
    let key = key_file(&s, &id, "LLM_API_KEY");
    let body = json!({ "model": "m", "max_tokens": 8, "messages": [] });
    let call = || async {
        let res = s
            .client
            .post(format!("http://{}/v1/messages", s.llm_proxy.unwrap()))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    };
    let refused = eventually(
        "a second call in the same minute",
        Duration::from_secs(130),
        || async {
            let minute = chrono::Utc::now().timestamp() / 60;
            let (first, _) = call().await;
            let (second, v) = call().await;
            (minute == chrono::Utc::now().timestamp() / 60 && first == StatusCode::OK)
                .then_some((second, v))
        },
    )
    .await;
    assert_eq!(refused.0, StatusCode::TOO_MANY_REQUESTS, "{}", refused.1);
    assert_eq!(refused.1["type"], "error");
    assert_eq!(refused.1["error"]["type"], "rate_limit_error");

    // A limit of 0 cuts a bot off at once (PATCH without recreating the container).
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "limits": { "llm_requests_per_minute": 0 }, "apply": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) = eventually("the new limit", Duration::from_secs(10), || async {
        let (status, v) = call().await;
        (status == StatusCode::TOO_MANY_REQUESTS).then_some((status, v))
    })
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_gets_401_and_a_rotated_one_works() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    add_provider(
        &s,
        "mock-openai",
        "openai-compatible",
        &mock.base_url(),
        json!({}),
    )
    .await;
    let id = llm_bot(&s, "llm-keys", "mock-openai", "", json!({})).await;
    let old = key_file(&s, &id, "LLM_API_KEY");
    let (status, _, _) = direct(&s, &old, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, StatusCode::OK);

    // Unknown keys, in each provider's format.
    let (status, v, _) = direct(&s, "bmk-llm-guessed", "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "invalid_api_key", "{v}");
    let res = s
        .client
        .post(format!("http://{}/v1/messages", s.llm_proxy.unwrap()))
        .header("x-api-key", "bmk-llm-guessed")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");

    // Revoked: 401 at once, the file unchanged.
    let res = s
        .client
        .delete(s.url(&format!("/api/bots/{id}/llm-keys")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    let (status, v, _) = direct(&s, &old, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("revoked"),
        "{v}"
    );

    // Rotated: a new key in the same file, which works; the old one still does not.
    let (status, v) = s
        .post(&format!("/api/bots/{id}/llm-keys/rotate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rotated"], json!(["mock-openai"]));
    let new = key_file(&s, &id, "LLM_API_KEY");
    assert_ne!(new, old);
    assert_eq!(
        direct(&s, &new, "/v1/chat/completions", chat_body())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        direct(&s, &old, "/v1/chat/completions", chat_body())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // The provider's real key rotates with no change to the bot.
    let (status, v) = s
        .post(
            "/api/providers",
            json!({ "name": "mock-openai", "kind": "openai-compatible",
                    "base_url": mock.base_url(), "api_key": "sk-rotated-real-key" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        direct(&s, &new, "/v1/chat/completions", chat_body())
            .await
            .0,
        StatusCode::OK
    );
    let last = mock.seen().pop().unwrap();
    assert_eq!(
        last.header("authorization").as_deref(),
        Some("Bearer sk-rotated-real-key")
    );

    // A deleted bot's key dies with it.
    let res = s
        .client
        .delete(s.url(&format!("/api/bots/{id}")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = eventually(
        "the key to die with its bot",
        Duration::from_secs(10),
        || async {
            let (status, v, _) = direct(&s, &new, "/v1/chat/completions", chat_body()).await;
            (status == StatusCode::UNAUTHORIZED).then_some((status, v))
        },
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_provider_is_a_502_with_a_clear_body() {
    let s = TestServer::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    add_provider(
        &s,
        "gone",
        "openai-compatible",
        &format!("http://{closed}/v1"),
        json!({}),
    )
    .await;
    let id = llm_bot(&s, "llm-down", "gone", "chat", json!({})).await;
    let lines = s.h.wait_for_log(&bot(&id), "llm script done").await;
    assert_eq!(step_lines(&lines, "chat", "status"), ["502"], "{lines:?}");
    let body: Value = serde_json::from_str(step_lines(&lines, "chat", "body")[0]).unwrap();
    assert_eq!(body["error"]["code"], "upstream_unreachable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not reach provider 'gone'"),
        "{message}"
    );
    assert!(message.contains("127.0.0.1"), "{message}");
    assert_eq!(usage(&s, &id).await["totals"]["requests"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_chunks_reach_the_bot_before_the_provider_finishes() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    add_provider(
        &s,
        "mock-openai",
        "openai-compatible",
        &mock.base_url(),
        json!({}),
    )
    .await;
    let release = mock.hold_streams();
    let id = llm_bot(&s, "llm-hold", "mock-openai", "chat-stream", json!({})).await;
    // The provider holds its stream after the first chunk: the bot has that chunk already.
    let lines = s.h.wait_for_log(&bot(&id), FIRST_CHUNK).await;
    assert!(
        step_lines(&lines, "chat-stream", "done").is_empty(),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("[DONE]")), "{lines:?}");
    release.notify_one();
    let lines = s.h.wait_for_log(&bot(&id), "llm script done").await;
    assert_eq!(
        step_lines(&lines, "chat-stream", "data").last(),
        Some(&"[DONE]")
    );
    let u = eventually("the stream's usage", Duration::from_secs(10), || async {
        let u = usage(&s, &id).await;
        (u["totals"]["requests"] == 1).then_some(u)
    })
    .await;
    assert_eq!(u["totals"]["output_tokens"], CHAT_USAGE.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_on_an_internal_network_reaches_the_proxy_and_nothing_else() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    add_provider(
        &s,
        "mock-openai",
        "openai-compatible",
        &mock.base_url(),
        json!({}),
    )
    .await;
    let internal = TestNetwork::create(&s.h, true).await;

    // Something outside the internal network for the bot to try: a fixture bot on the
    // default bridge.
    let outside = s.create_bot("llm-outside").await;
    let outside_ip = eventually(
        "the outside bot's address",
        Duration::from_secs(10),
        || async {
            let c =
                s.h.docker
                    .client()
                    .inspect_container(&botmaker::docker::container_name(&bot(&outside)), None)
                    .await
                    .ok()?;
            let ip = c
                .network_settings?
                .networks?
                .get("bridge")?
                .ip_address
                .clone()?;
            (!ip.is_empty()).then_some(ip)
        },
    )
    .await;

    let calls = format!(
        "chat;get:/v1/models;absolute:/v1/models;get:/api/bots;get:/health;post:/v1/files;\
         get:/v1/models/../../api/bots;connect:{outside_ip}:8080"
    );
    let id = llm_bot(
        &s,
        "llm-internal",
        "mock-openai",
        &calls,
        json!({ "network": internal.name }),
    )
    .await;
    let lines = s.h.wait_for_log(&bot(&id), "llm script done").await;
    assert_eq!(step_lines(&lines, "chat", "status"), ["200"], "{lines:?}");
    assert_eq!(
        step_lines(&lines, "get:/v1/models", "status"),
        ["200"],
        "{lines:?}"
    );
    // An absolute URI naming another host still goes to the key's provider, nowhere else.
    assert_eq!(
        step_lines(&lines, "absolute:/v1/models", "status"),
        ["200"],
        "{lines:?}"
    );
    for step in [
        "get:/api/bots",
        "get:/health",
        "post:/v1/files",
        "get:/v1/models/../../api/bots",
    ] {
        assert_eq!(
            step_lines(&lines, step, "status"),
            ["404"],
            "{step}: {lines:?}"
        );
    }
    let connect = step_lines(&lines, &format!("connect:{outside_ip}:8080"), "connect");
    assert!(connect[0].starts_with("failed"), "{connect:?}");
    let routes: Vec<String> = mock.seen().into_iter().map(|r| r.route).collect();
    assert_eq!(
        routes,
        [
            "POST /v1/chat/completions",
            "GET /v1/models",
            "GET /v1/models"
        ]
    );
    assert_bot_never_holds_the_real_key(&s, &id).await;
}

/// The real OpenClaw gateway (the image `scripts/openclaw-image` builds) on an internal network
/// with no way out, its provider configured in botmaker: a message to its agent is answered by
/// the mock provider through the proxy, which swapped in the real key, and is metered exactly.
#[tokio::test(flavor = "multi_thread")]
async fn the_real_openclaw_answers_through_the_proxy_from_an_internal_network() {
    let _turn = crate::support::openclaw::gateway_turn().await;
    let s = TestServer::start().await;
    let image = tokio::task::spawn_blocking(crate::support::openclaw::image)
        .await
        .unwrap();
    let mock = MockUpstream::start().await;
    add_provider(
        &s,
        "deepseek",
        "openai-compatible",
        &mock.base_url(),
        json!({}),
    )
    .await;
    let internal = TestNetwork::create(&s.h, true).await;
    let id = s.h.bot("llm-real-claw").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({
                "id": id, "template": "openclaw", "image": image, "network": internal.name,
                "settings": { "provider": "deepseek", "model": "mock-model", "agent_id": "support" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let container = botmaker::docker::container_name(&bot(&id));
    let started = std::time::Instant::now();
    loop {
        let (_, v) = s.get(&format!("/api/bots/{id}")).await;
        match v["health"].as_str() {
            Some("healthy") => break,
            Some("none" | "starting") => {}
            other => panic!("health {other:?} on the way to healthy: {v}"),
        }
        if started.elapsed() >= crate::support::openclaw::HEALTHY_BOUND {
            panic!(
                "the real gateway not healthy within {:?}: {v}\n{}",
                crate::support::openclaw::HEALTHY_BOUND,
                crate::support::openclaw::log_tail(&container).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (rc, out, err) = crate::support::openclaw::exec(
        &container,
        &[
            "openclaw",
            "agent",
            "--agent",
            "support",
            "--message",
            "ping",
            "--json",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains(&format!("{FIRST_CHUNK} pong")), "{out}");

    // The provider saw the real key, for every call the gateway made.
    let calls: Vec<_> = mock
        .seen()
        .into_iter()
        .filter(|r| r.route == "POST /v1/chat/completions")
        .collect();
    assert!(!calls.is_empty(), "the gateway never reached the provider");
    for c in &calls {
        assert_eq!(
            c.header("authorization").as_deref(),
            Some(format!("Bearer {REAL_KEY}").as_str())
        );
    }
    assert_bot_never_holds_the_real_key(&s, &id).await;

    // Metered exactly: every call's usage, whether the gateway streamed or not.
    let u = usage(&s, &id).await;
    let (p, c) = CHAT_USAGE;
    let n = calls.len() as u64;
    assert_eq!(u["totals"]["requests"], n, "{u}");
    assert_eq!(u["totals"]["input_tokens"], n * p, "{u}");
    assert_eq!(u["totals"]["output_tokens"], n * c, "{u}");
    assert_eq!(u["rows"][0]["model"], "mock-model", "{u}");
}
