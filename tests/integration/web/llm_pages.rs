//! The LLM pages in the browser: providers (add, replace, remove; the key never comes back),
//! the fleet's usage and a bot's LLM section.

use serde_json::json;

use super::logged_in;
use crate::support::llm::MockUpstream;
use crate::support::server::TestServer;

const KEY: &str = "sk-web-provider-key-5d2a";

#[tokio::test(flavor = "multi_thread")]
async fn providers_and_usage_pages_manage_providers_and_show_what_bots_used() {
    let s = TestServer::start().await;
    let mock = MockUpstream::start().await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/providers")).await;
    b.wait_text("#proxy-info", "botmaker-llm").await;
    b.wait_text("#providers-empty", "No provider yet").await;

    // A bad name: the server's message next to the field, nothing saved.
    b.fill("#provider-name", "Bad Name").await;
    b.click("#provider-form button[type=submit]").await;
    b.wait_text("[data-error-for=\"name\"]", "provider name")
        .await;

    b.fill("#provider-name", "mock-web").await;
    b.js("document.querySelector('#provider-kind').value = 'openai-compatible'; return true;")
        .await;
    b.fill("#provider-base-url", &mock.base_url()).await;
    b.fill("#provider-key", KEY).await;
    b.fill(
        "#provider-prices",
        r#"{"test-model": {"input": 2, "output": 10}}"#,
    )
    .await;
    b.click("#provider-form button[type=submit]").await;
    b.wait_text("#provider-rows", "mock-web").await;
    b.wait_text("#provider-rows", "set").await;
    assert_eq!(
        b.js("return document.querySelector('#provider-key').value;")
            .await,
        json!("")
    );
    assert!(!b.source().await.contains(KEY), "the key is on the page");
    b.screenshot("providers").await.unwrap();

    // A bot that uses it, and what it used.
    let (status, v) = s
        .post(
            "/api/bots",
            json!({
                "id": s.h.bot("web-llm").to_string(), "image": s.h.image, "command": ["llm"],
                "env": { "TICK_MS": "0", "LLM_CALLS": "chat" },
                "settings": { "llm_provider": "mock-web" },
            }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.h.wait_for_log(
        &botmaker::BotId::new(id.as_str()).unwrap(),
        "llm script done",
    )
    .await;
    b.goto(&s.url("/usage")).await;
    b.wait_text("#usage-bot-rows", &id).await;
    b.wait_text("#usage-totals", "1 requests, 11 input and 7 output tokens")
        .await;
    b.wait_text("#usage-day-rows", "test-model").await;
    b.screenshot("usage").await.unwrap();
    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.wait_text("#llm-usage", "through the proxy to mock-web")
        .await;
    b.wait_text("#llm-usage", "18 tokens").await;

    // Removing a provider a bot uses says so, and revokes its keys.
    b.goto(&s.url("/providers")).await;
    b.wait_text("#provider-rows", &id).await;
    b.click("#provider-rows button.danger").await;
    b.wait_text("#confirm-text", "revoked").await;
    b.click("#confirm-ok").await;
    b.wait_text("#providers-empty", "No provider yet").await;
    assert!(
        b.console_problems().await.is_empty(),
        "{:?}",
        b.console_problems().await
    );
    b.close().await;
}
