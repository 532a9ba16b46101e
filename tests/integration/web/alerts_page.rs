//! The alerts page in the browser: add a channel (errors next to their field, secrets never
//! back on the page), send a test, see its deliveries, remove it.

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
