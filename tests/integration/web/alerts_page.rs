//! The alerts page in the browser: add a channel (errors next to their field, secrets never
//! back on the page), send a test, see its deliveries, change it, remove it.

use super::logged_in;
use crate::alerts::Receiver;
use crate::support::server::TestServer;

const SECRET: &str = "web-signing-secret-0123456789";

#[tokio::test(flavor = "multi_thread")]
async fn alerts_page_adds_tests_and_removes_channels() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/alerts")).await;
    b.wait_text("#channels-empty", "No channel yet").await;

    // No URL: the server's message next to the field, nothing saved.
    b.fill("#channel-name", "web-hook").await;
    b.click("#channel-form button[type=submit]").await;
    b.wait_text("[data-error-for=\"url\"]", "required").await;

    b.fill("#channel-url", &rx.url("/web")).await;
    b.fill("#channel-secret", SECRET).await;
    b.click("#channel-events input[value=crash_loop]").await;
    b.click("#channel-form button[type=submit]").await;
    b.wait_text("#channel-rows", "web-hook").await;
    b.wait_text("#channel-rows", "crash_loop").await;
    assert_eq!(
        b.js("return document.querySelector('#channel-secret').value;")
            .await,
        serde_json::json!("")
    );
    assert!(
        !b.source().await.contains(SECRET),
        "the secret is on the page"
    );

    b.click("#channel-rows button[aria-label^='Send a test']")
        .await;
    b.wait_text("#delivery-rows", "test").await;
    b.wait_text("#delivery-rows", "ok (200)").await;
    assert!(
        rx.got().iter().any(|r| r.path == "/web"),
        "the receiver got the test"
    );
    b.screenshot("alerts").await.unwrap();

    // Change it: the form fills with the channel (never its secret); a bad URL is refused
    // next to its field and changes nothing; then every event and no signing.
    b.click("#channel-rows button[aria-label^='Edit']").await;
    b.wait_text("#h-channel-form", "Change web-hook").await;
    assert_eq!(
        b.js("return [document.querySelector('#channel-url').value, document.querySelector('#channel-kind').disabled, document.querySelector('#channel-secret').value];")
            .await,
        serde_json::json!([rx.url("/web"), true, ""])
    );
    b.fill("#channel-url", "not a url").await;
    b.click("#channel-form button[type=submit]").await;
    b.wait_text("[data-error-for=\"url\"]", "absolute").await;
    b.wait_text("#channel-rows", "crash_loop").await;
    b.fill("#channel-url", &rx.url("/web2")).await;
    b.click("#channel-events input[value=crash_loop]").await;
    b.click("#channel-unsigned").await;
    b.click("#channel-form button[type=submit]").await;
    b.wait_text("#h-channel-form", "Add a channel").await;
    b.wait_text("#channel-rows", "/web2").await;
    let (_, list) = s.get("/api/notifications").await;
    let c = &list["channels"][0];
    assert_eq!(
        (
            c["url"].clone(),
            c["all_events"].clone(),
            c["signed"].clone()
        ),
        (
            serde_json::json!(rx.url("/web2")),
            serde_json::json!(true),
            serde_json::json!(false)
        ),
        "{list}"
    );

    b.click("#channel-rows button.danger").await;
    b.wait_text("#confirm-text", "delivery history").await;
    b.click("#confirm-ok").await;
    b.wait_text("#channels-empty", "No channel yet").await;
    assert!(
        b.console_problems().await.is_empty(),
        "{:?}",
        b.console_problems().await
    );
    b.close().await;
}
