//! The dashboard's console (`/bots/{id}/console`) in headless Chromium: xterm.js over the exec
//! WebSocket, typed into with real keystrokes, under the page's Content Security Policy (the
//! browser's log must show no violation: `Browser::close` checks). Screenshots:
//! `bot-console`, `bot-console-stopped`.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::browser::Browser;
use super::logged_in;
use crate::exec::{running_bot, runs_in};
use crate::support::server::TestServer;

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";
/// Where xterm.js takes keyboard input.
const KEYS: &str = "#terminal .xterm-helper-textarea";

/// The terminal's screen as the DOM renderer shows it.
const SCREEN_JS: &str = "const r = document.querySelector('#terminal .xterm-rows'); \
     return r ? Array.from(r.children).map((row) => row.textContent.replace(/\\u00a0/g, ' ')).join('\\n') : '';";

/// Waits until the terminal shows `needle`; returns the screen.
async fn wait_screen(b: &Browser, needle: &str) -> String {
    let script = format!(
        "const s = (() => {{ {SCREEN_JS} }})(); return s.includes({}) ? s : null;",
        serde_json::to_string(needle).unwrap()
    );
    b.wait_js(&format!("the terminal to show {needle:?}"), &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn connect_enabled(b: &Browser) -> bool {
    b.js("return !document.querySelector('#console-connect').disabled;")
        .await
        .as_bool()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_runs_a_shell_in_the_bot_typed_into_from_the_browser() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "console").await;
    let b = logged_in(&s).await;

    // The bot's page has a Console tab.
    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.click("nav.tabs a[href$='/console']").await;
    assert_eq!(b.path().await, format!("/bots/{id}/console"));
    b.wait_for("#terminal .xterm-screen").await;
    b.wait_js(
        "Connect to be offered for a running bot",
        "return !document.querySelector('#console-connect').disabled;",
    )
    .await;

    b.fill("#console-cmd", "/testbot sh").await;
    b.click("#console-connect").await;
    b.wait_text("#console-status", "Connected").await;
    wait_screen(&b, "$ ").await;
    b.type_into(KEYS, &format!("echo hello from the browser{ENTER}"))
        .await;
    let screen = wait_screen(&b, "\nhello from the browser").await;
    assert!(
        screen.contains("$ echo hello from the browser"),
        "the terminal echoes the typed line: {screen:?}"
    );
    // The terminal's size reached the bot: what xterm.js fitted to the page.
    let (cols, rows) = {
        let v = b
            .js("const t = window.botmakerConsole; return [t.cols, t.rows];")
            .await;
        (v[0].as_u64().unwrap(), v[1].as_u64().unwrap())
    };
    b.type_into(KEYS, &format!("size{ENTER}")).await;
    wait_screen(&b, &format!("size {rows}x{cols}")).await;
    b.screenshot("bot-console").await.unwrap();

    b.type_into(KEYS, &format!("exit 3{ENTER}")).await;
    b.wait_text("#console-status", "exited with code 3").await;
    assert!(connect_enabled(&b).await, "a new session can be opened");

    // A stopped bot: no Connect, and the page says why, live.
    let (status, _) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert!(status.is_success());
    b.wait_text("#console-reason", "needs a running bot").await;
    assert!(!connect_enabled(&b).await);
    b.screenshot("bot-console-stopped").await.unwrap();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn console_session_ends_when_its_login_session_does() {
    let s = TestServer::start().await;
    let id = running_bot(&s, "console-out").await;
    // A session of the browser's own, so that the harness's token lives on.
    let session = s.login().await;
    let b = Browser::start().await;
    b.goto(&s.url("/login")).await;
    b.add_cookie("botmaker_session", &session).await;
    b.goto(&s.url(&format!("/bots/{id}/console"))).await;
    b.wait_js(
        "Connect to be offered",
        "return !document.querySelector('#console-connect').disabled;",
    )
    .await;
    b.fill("#console-cmd", "/testbot sh").await;
    b.click("#console-connect").await;
    wait_screen(&b, "$ ").await;

    let (status, _) = s
        .call_as(Some(&session), Method::POST, "/api/logout", None)
        .await;
    assert!(status.is_success());
    // The page leaves for the login form, and the shell in the bot is hung up.
    b.wait_js(
        "the login page",
        "return location.pathname === '/login' && document.querySelector('#password') !== null;",
    )
    .await;
    crate::support::eventually("the shell to end", Duration::from_secs(60), || async {
        (!runs_in(&s, &id, "/testbot sh").await).then_some(())
    })
    .await;
    b.close().await;
}
