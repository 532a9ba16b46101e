//! The dashboard, end to end: a real server and Docker Engine driven through headless Chromium
//! (Debian's `chromium` + `chromium-driver`, installed by `scripts/test`; see [`browser`]), plus
//! HTTP-level checks of the browser session: cookie attributes, CSRF, redirects, assets, and
//! that no secret value ever comes back. Screenshots of every page land in
//! `target/screenshots/`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use botmaker::access::csrf_token_for;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::server::{PASSWORD, TestServer};
use crate::support::unique;

mod alerts_page;
mod browser;
mod console;
mod llm_pages;

use browser::Browser;

/// A browser logged in to `s` (through the session the harness opened, set as the cookie).
async fn logged_in(s: &TestServer) -> Browser {
    let b = Browser::start().await;
    b.goto(&s.url("/login")).await;
    b.add_cookie("botmaker_session", &s.token).await;
    b
}

/// Marks the current document; [`assert_not_reloaded`] then proves a change came in live.
async fn mark_document(b: &Browser) {
    b.js("window.__botmakerTestMark = 'still-here'; return true;")
        .await;
}

async fn assert_not_reloaded(b: &Browser) {
    assert_eq!(
        b.js("return window.__botmakerTestMark || null;").await,
        json!("still-here"),
        "the page was reloaded; the change should have arrived over /api/events"
    );
}

/// Waits until the fleet row of `id` shows `state`.
async fn wait_row_state(b: &Browser, id: &str, state: &str) {
    b.wait_js(
        &format!("row {id} to show {state}"),
        &format!(
            "const r = document.querySelector('tr[data-id=\"{id}\"]'); \
             return r && r.dataset.state === '{state}' && \
             r.querySelector('.state').textContent.length > 0;"
        ),
    )
    .await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn session_cookie(token: &str) -> String {
    format!("botmaker_session={token}")
}

// ==================================================================== browser tests

#[tokio::test(flavor = "multi_thread")]
async fn login_page_shows_a_failed_login_and_then_lets_the_admin_in() {
    let s = TestServer::start().await;
    let b = Browser::start().await;

    b.goto(&s.url("/")).await;
    b.wait_for("#login-form").await;
    assert_eq!(
        b.path().await,
        "/login",
        "an anonymous visitor is sent to the login page"
    );
    // The CSP is in force: an injected inline script is refused (and the console check used
    // by every browser test sees it).
    b.js(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1;'; \
          document.body.append(s); return true;",
    )
    .await;
    assert_eq!(b.js("return window.__inline || null;").await, Value::Null);
    let refused = b.console_problems().await;
    assert!(
        refused
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{refused:?}"
    );
    let hint = b.text("#login-hint").await;
    assert!(hint.contains("admin-password"), "first-run hint: {hint}");
    b.screenshot("login").await.unwrap();

    // A second submit while the first is under way is not sent (login.js): one failed login,
    // one answer.
    b.fill("#password", "not the password at all").await;
    let sent = b
        .js(
            "const f = document.querySelector('#login-form'); let sent = 0; \
             f.addEventListener('submit', (e) => { if (!e.defaultPrevented) sent += 1; }); \
             f.requestSubmit(); f.requestSubmit(); \
             return [sent, f.querySelector('button[type=submit]').textContent];",
        )
        .await;
    assert_eq!(sent, json!([1, "Logging in…"]));
    b.wait_text("#login-error", "Wrong password").await;
    b.screenshot("login-failed").await.unwrap();

    b.fill("#password", PASSWORD).await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for("body[data-page=fleet]").await;
    assert_eq!(b.path().await, "/");
    b.wait_js(
        "the empty fleet message",
        "return !document.querySelector('#fleet-empty').hidden;",
    )
    .await;
    b.wait_text("#live", "live").await;
    b.screenshot("fleet-empty").await.unwrap();

    // Logging out ends the session: pages send the browser back to the login form.
    b.click("form.logout button").await;
    b.wait_for("#login-form").await;
    b.goto(&s.url("/admin")).await;
    b.wait_for("#login-form").await;
    assert_eq!(b.path().await, "/login");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_form_shows_the_servers_validation_messages_next_to_the_fields() {
    let s = TestServer::start().await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/bots/new")).await;
    b.wait_for("#create-form").await;
    b.screenshot("new-bot").await.unwrap();

    // What the API itself says about the same input.
    let (status, expected) = s
        .post(
            "/api/bots",
            json!({ "id": "Not A Valid Id", "template": "generic", "env": {"1BAD": "x"} }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
    assert_eq!(expected["code"], "VALIDATION_FAILED");

    b.fill("#f-id", "Not A Valid Id").await;
    b.fill("#f-env", "1BAD=x").await;
    b.click("#create-submit").await;
    for (field, slot) in [("id", "id"), ("image", "image"), ("env.1BAD", "env")] {
        let message = expected["fields"][field][0]
            .as_str()
            .unwrap_or_else(|| panic!("the API reports no {field}: {expected}"));
        b.wait_text(&format!("[data-error-for=\"{slot}\"]"), message)
            .await;
    }
    let invalid = b
        .js("return document.querySelector('#f-id').getAttribute('aria-invalid');")
        .await;
    assert_eq!(invalid, json!("true"));
    b.wait_text("#form-summary", "not created: 3 problems")
        .await;
    let summary = b.text("#form-summary").await;
    assert!(
        summary.contains("Id: "),
        "the summary names the fields: {summary}"
    );
    b.click("#form-summary a").await;
    assert_eq!(
        b.js("return document.activeElement.id;").await,
        json!("f-id"),
        "a summary entry leads to its field"
    );
    b.screenshot("new-bot-validation").await.unwrap();

    // Regression (issue 11, friction): the form reported one problem at a time. A bad id, a
    // port the form cannot take, a memory limit too small and no image: all on one submit.
    b.fill("#f-env", "").await;
    b.fill("#f-id", "Bad_ID").await;
    b.fill("#f-ports", "99999").await;
    b.fill("#f-limits-memory_mb", "1").await;
    b.click("#create-submit").await;
    b.wait_text("#form-summary", "not created: 4 problems")
        .await;
    for slot in ["id", "image", "ports", "limits.memory_mb"] {
        let text = b.text(&format!("[data-error-for=\"{slot}\"]")).await;
        assert!(!text.trim().is_empty(), "no message for {slot}");
    }
    b.screenshot("new-bot-every-problem").await.unwrap();
    b.fill("#f-ports", "").await;
    b.fill("#f-limits-memory_mb", "").await;

    // The openclaw template's own rules: missing settings and the secrets they need.
    b.click("input[name=template][value=openclaw]").await;
    b.fill("#f-id", s.h.bot("web-oc-invalid").as_str()).await;
    b.fill("#f-env", "").await;
    b.fill("#f-settings-provider", "anthropic").await;
    b.fill("#f-settings-model", "bad..model").await;
    b.click("#create-submit").await;
    b.wait_text("[data-error-for=\"settings.model\"]", "without '..'")
        .await;
    // With valid settings, the template names the secrets they need (rows left empty are not
    // sent).
    b.fill("#f-settings-model", "claude-opus-4-5").await;
    b.click("#create-submit").await;
    b.wait_text(
        "[data-error-for=\"secrets.ANTHROPIC_API_KEY\"]",
        "required by the openclaw template",
    )
    .await;
    // Regression (issue 11, friction): the summary said `Name: required…` although the name
    // is there and the value is what is missing.
    let summary = b.text("#form-summary").await;
    assert!(
        summary.contains("Value of ANTHROPIC_API_KEY: required"),
        "{summary}"
    );
    b.screenshot("new-bot-openclaw-validation").await.unwrap();
    let (status, list) = s.get("/api/bots").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["bots"], json!([]), "nothing was created");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_bot_lifecycle_in_the_browser() {
    let s = TestServer::start().await;
    let b = logged_in(&s).await;
    let id = s.h.bot("web-generic").to_string();
    let first_secret = format!("first-{}", unique("value"));
    let second_secret = format!("second-{}", unique("value"));

    // Create from the form.
    b.goto(&s.url("/bots/new")).await;
    b.fill("#f-id", &id).await;
    b.fill("#f-name", "Web generic").await;
    b.fill("#f-image", &s.h.image).await;
    b.fill("#f-env", "TICK_MS=200").await;
    b.fill("#f-limits-memory_mb", "64").await;
    b.click("#add-secret").await;
    b.fill(
        "#secret-rows .secret-row:last-child .secret-name",
        "API_KEY",
    )
    .await;
    b.fill(
        "#secret-rows .secret-row:last-child .secret-value",
        &first_secret,
    )
    .await;
    b.click("#create-submit").await;

    // The bot's page; the state arrives without a reload.
    b.wait_for("body[data-page=bot]").await;
    assert_eq!(b.path().await, format!("/bots/{id}"));
    mark_document(&b).await;
    b.wait_text("#bot-state", "running").await;
    b.wait_text("#state-table", "running").await;
    b.wait_text("#config", "TICK_MS=200").await;
    b.wait_text("#secret-list", "API_KEY").await;

    // Logs: lines arrive, the filter hides the others.
    b.wait_text("#log", "tick").await;
    b.fill("#log-filter", "tock").await;
    b.wait_js(
        "the log filter to hide non-matching lines",
        "const ls = [...document.querySelectorAll('#log .line')]; \
         const shown = ls.filter(l => !l.hidden); \
         return shown.length > 0 && shown.length < ls.length && \
           shown.every(l => l.textContent.includes('tock'));",
    )
    .await;
    b.fill("#log-filter", "").await;

    // Scrolling up pauses following; the button brings it back.
    b.wait_js(
        "enough log lines to scroll",
        "const l = document.querySelector('#log'); return l.scrollHeight > l.clientHeight * 1.5;",
    )
    .await;
    b.js("const l = document.querySelector('#log'); l.scrollTop = 0; l.dispatchEvent(new Event('scroll')); return true;")
        .await;
    b.wait_js(
        "the paused indicator",
        "return !document.querySelector('#log-resume').hidden;",
    )
    .await;
    b.click("#log-resume").await;
    b.wait_js(
        "following to resume",
        "const l = document.querySelector('#log'); \
         return document.querySelector('#log-resume').hidden && \
           l.scrollHeight - l.scrollTop - l.clientHeight < 8;",
    )
    .await;
    // The sampler's readings: a summary and a chart of each.
    b.wait_text("#stats-summary", "Now: CPU").await;
    b.wait_js(
        "the CPU and memory charts",
        "return document.querySelector('#chart-cpu polyline') && \
         document.querySelector('#chart-mem polyline');",
    )
    .await;
    b.screenshot("bot-detail").await.unwrap();

    // Set a secret; its value appears nowhere in the page.
    b.fill("#secret-name", "EXTRA_TOKEN").await;
    b.fill("#secret-value", &second_secret).await;
    b.click("#secret-submit").await;
    b.wait_for("#secret-list li[data-secret=EXTRA_TOKEN]").await;
    // The answer says how the bot gets the new value (generic: the file changes in place).
    b.wait_text("#toast", "in place").await;
    let (_, names) = s.get(&format!("/api/bots/{id}/secrets")).await;
    assert_eq!(names["secrets"], json!(["API_KEY", "EXTRA_TOKEN"]));
    let dom = b.source().await;
    for v in [&first_secret, &second_secret] {
        assert!(!dom.contains(v.as_str()), "the page shows a secret value");
    }
    b.screenshot("bot-detail-secrets").await.unwrap();

    // Stop, from the page.
    b.click("button[data-action=stop]").await;
    b.wait_text("#bot-state", "stopped").await;
    b.wait_text("#state-table", "stopped").await;
    assert_not_reloaded(&b).await;

    // Delete, after confirming.
    b.click("button[data-action=delete]").await;
    b.wait_js(
        "the confirmation dialog",
        "return document.querySelector('#confirm').open;",
    )
    .await;
    b.screenshot("bot-delete-confirm").await.unwrap();
    b.click("#confirm-ok").await;
    b.wait_for("body[data-page=fleet]").await;
    let (status, _) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openclaw_bot_from_the_form_runs_in_stand_in_mode() {
    let s = TestServer::start().await;
    let b = logged_in(&s).await;
    let id = s.h.bot("web-claw").to_string();

    b.goto(&s.url("/bots/new")).await;
    b.click("input[name=template][value=openclaw]").await;
    b.fill("#f-id", &id).await;
    // The fixture image stands in for OpenClaw: `testbot openclaw` checks openclaw.json.
    b.fill("#f-image", &s.h.image).await;
    b.fill("#f-command", "openclaw").await;
    b.fill("#f-settings-provider", "anthropic").await;
    b.fill("#f-settings-model", "claude-opus-4-5").await;
    b.click("input[name=channel][value=telegram]").await;
    b.fill("#f-settings-persona-name", "Ada").await;
    b.fill("#f-settings-persona-soul", "Curious and kind.")
        .await;
    // The form proposes the secrets the settings need.
    for name in ["ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"] {
        b.wait_js(
            &format!("a suggested row for {name}"),
            &format!(
                "return [...document.querySelectorAll('.secret-name')].some(i => i.value === '{name}');"
            ),
        )
        .await;
    }
    b.js("for (const r of document.querySelectorAll('[data-secret-row]')) { \
            r.querySelector('.secret-value').dataset.test = r.querySelector('.secret-name').value; } \
          return true;")
        .await;
    b.fill(
        ".secret-value[data-test=ANTHROPIC_API_KEY]",
        "sk-ant-test-web",
    )
    .await;
    b.fill(
        ".secret-value[data-test=TELEGRAM_BOT_TOKEN]",
        "123:telegram-web",
    )
    .await;
    b.screenshot("new-bot-openclaw").await.unwrap();
    b.click("#create-submit").await;

    b.wait_for("body[data-page=bot]").await;
    mark_document(&b).await;
    b.wait_text("#bot-state", "running").await;
    b.wait_text("#config", "openclaw").await;
    b.wait_text("#log", "openclaw-config: ok").await;
    b.wait_text("#secret-list", "OPENCLAW_GATEWAY_TOKEN").await;
    b.screenshot("bot-detail-openclaw").await.unwrap();
    assert_not_reloaded(&b).await;

    let (_, view) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(view["template"], "openclaw");
    assert_eq!(view["image"], s.h.image.as_str(), "a given image is kept");
    assert_eq!(view["command"], json!(["openclaw"]));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_stayed_live_after_its_session_was_logged_out() {
    let s = TestServer::start().await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/")).await;
    b.wait_text("#live", "live").await;
    // The session ends elsewhere (another tab, or the API): the page's event stream ends with
    // it, and the page goes to the login form instead of reconnecting.
    let (status, v) = s.post("/api/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    b.wait_js("the login page", "return location.pathname === '/login';")
        .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_follows_state_changes_without_reload_and_acts_on_the_selection() {
    let s = TestServer::start().await;
    let a = s.create_bot("web-fleet-a").await;
    let c = s.create_bot("web-fleet-c").await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/")).await;
    wait_row_state(&b, &a, "running").await;
    wait_row_state(&b, &c, "running").await;
    b.wait_text("#live", "live").await;
    mark_document(&b).await;
    // The page fetched its own module and the shared one it imports, nothing else.
    let scripts = b
        .js(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname) \
             .filter(p => p.endsWith('.js')).sort();",
        )
        .await;
    assert_eq!(scripts, json!(["/assets/common.js", "/assets/fleet.js"]));

    // Changes made elsewhere (here: the API) show up live.
    let (status, v) = s.post(&format!("/api/bots/{a}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    wait_row_state(&b, &a, "stopped").await;
    let (status, v) = s.post(&format!("/api/bots/{a}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    wait_row_state(&b, &a, "running").await;
    let late = s.create_bot("web-fleet-late").await;
    wait_row_state(&b, &late, "running").await;

    // CPU and memory come from the stats stream.
    b.wait_js(
        "memory figures for a running bot",
        &format!(
            "const r = document.querySelector('tr[data-id=\"{a}\"] td.mem'); \
             return r && r.textContent.includes('/');"
        ),
    )
    .await;
    b.screenshot("fleet").await.unwrap();
    b.dark_mode().await;
    b.screenshot("fleet-dark").await.unwrap();

    // Filter by name, then by state.
    b.fill("#filter-name", "fleet-c").await;
    b.wait_js(
        "the name filter",
        &format!(
            "return document.querySelector('tr[data-id=\"{a}\"]').hidden && \
             !document.querySelector('tr[data-id=\"{c}\"]').hidden;"
        ),
    )
    .await;
    b.fill("#filter-name", "").await;
    b.js(
        "const s = document.querySelector('#filter-state'); s.value = 'stopped'; \
          s.dispatchEvent(new Event('change')); return true;",
    )
    .await;
    b.wait_js(
        "the state filter",
        "return [...document.querySelectorAll('#fleet-rows tr')].every(r => r.hidden) && \
         !document.querySelector('#fleet-none-shown').hidden;",
    )
    .await;
    b.js(
        "const s = document.querySelector('#filter-state'); s.value = ''; \
          s.dispatchEvent(new Event('change')); return true;",
    )
    .await;

    // Bulk stop of two selected bots, then bulk start.
    b.click(&format!("tr[data-id=\"{a}\"] input.select")).await;
    b.click(&format!("tr[data-id=\"{c}\"] input.select")).await;
    b.wait_text("#selection-count", "2 selected").await;
    b.click("button[data-bulk=stop]").await;
    wait_row_state(&b, &a, "stopped").await;
    wait_row_state(&b, &c, "stopped").await;
    wait_row_state(&b, &late, "running").await;
    b.click("button[data-bulk=start]").await;
    wait_row_state(&b, &a, "running").await;
    wait_row_state(&b, &c, "running").await;

    // Deleted elsewhere: the row goes.
    let (status, _) = s
        .call(Method::DELETE, &format!("/api/bots/{late}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    b.wait_js(
        "the deleted bot's row to go",
        &format!("return !document.querySelector('tr[data-id=\"{late}\"]');"),
    )
    .await;
    assert_not_reloaded(&b).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_page_lists_the_engine_with_its_bots_and_follows_a_new_bot() {
    let s = TestServer::start().await;
    let (status, v) = s.post("/api/bots", s.bot_body("web-node-a")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let a = v["id"].as_str().unwrap().to_string();
    let b = logged_in(&s).await;
    b.goto(&s.url("/nodes")).await;
    // The Docker backend's one node: the engine, with its name from `GET /api/nodes`, and
    // the bot on it, linked to its page.
    let (_, nodes) = s.get("/api/nodes").await;
    let engine = nodes["nodes"][0]["name"].as_str().unwrap().to_string();
    b.wait_text("#node-rows", &engine).await;
    let row = format!("#node-rows tr[data-node=\"{engine}\"]");
    b.wait_for(&format!("{row} li[data-id=\"{a}\"] a[href=\"/bots/{a}\"]"))
        .await;
    assert!(b.text(&row).await.contains("engine"), "the role");
    assert_eq!(
        b.js("return document.querySelector('nav a[aria-current=page]').textContent;")
            .await,
        json!("Nodes")
    );

    // A bot created elsewhere shows on its node without a reload.
    mark_document(&b).await;
    let (status, v) = s.post("/api/bots", s.bot_body("web-node-b")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let c = v["id"].as_str().unwrap().to_string();
    b.wait_for(&format!("{row} li[data-id=\"{c}\"]")).await;
    assert_not_reloaded(&b).await;
    b.screenshot("nodes").await.unwrap();
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_page_lists_orphans_and_manages_api_tokens() {
    let s = TestServer::start().await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/admin")).await;
    b.wait_text("#orphans", "Nothing to clean up").await;

    // A secrets directory no bot owns (as a crash could leave) is listed, then cleaned up.
    let orphan = s.h.bot("web-orphan").to_string();
    let orphan_dir = s.data.path().join("secrets").join(&orphan);
    std::fs::create_dir_all(&orphan_dir).unwrap();
    b.click("#orphans-refresh").await;
    b.wait_text("#orphans", &orphan).await;
    b.screenshot("admin-orphans").await.unwrap();
    b.click("#cleanup").await;
    b.wait_js(
        "the confirmation dialog",
        "return document.querySelector('#confirm').open;",
    )
    .await;
    b.click("#confirm-ok").await;
    b.wait_text("#orphans", "Nothing to clean up").await;
    assert!(!orphan_dir.exists(), "cleanup removed the orphan");

    b.fill("#token-name", "web-test").await;
    b.click("#token-form button[type=submit]").await;
    let token = b
        .wait_js(
            "the new token",
            "const v = document.querySelector('#token-value'); return v && v.value;",
        )
        .await;
    let token = token.as_str().unwrap().to_string();
    assert!(token.starts_with("bmt_"), "{token}");
    b.wait_text("#token-rows", "web-test").await;
    b.screenshot("admin").await.unwrap();
    // The token works, and is shown only once: the list has no trace of it.
    let (status, list) = s
        .call_as(Some(&token), Method::GET, "/api/tokens", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&token));
    b.click("#token-dismiss").await;
    assert!(!b.source().await.contains(&token));

    b.click("#token-rows button.danger").await;
    b.wait_js(
        "the confirmation dialog",
        "return document.querySelector('#confirm').open;",
    )
    .await;
    b.click("#confirm-ok").await;
    b.wait_js(
        "the revoked token's row to go",
        "return document.querySelectorAll('#token-rows tr').length === 0;",
    )
    .await;
    let (status, _) = s
        .call_as(Some(&token), Method::GET, "/api/tokens", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An empty name: the server's message next to the field.
    b.fill("#token-name", "").await;
    b.click("#token-form button[type=submit]").await;
    b.wait_text("[data-error-for=\"token.name\"]", "printable")
        .await;
    b.close().await;
}

// ==================================================================== HTTP-level tests

#[tokio::test(flavor = "multi_thread")]
async fn no_page_or_api_response_contains_a_secret_value() {
    let s = TestServer::start().await;
    let http = no_redirects();
    let cookie = session_cookie(&s.token);
    let csrf = csrf_token_for(&s.token);
    let v = |what: &str| format!("{what}-{}", unique("secret-value"));
    let (created, put_json, put_raw) = (v("created"), v("put-json"), v("put-raw"));
    let (claw_key, claw_telegram) = (v("anthropic"), v("telegram"));
    let mut bodies: Vec<(String, String)> = Vec::new();

    // A generic bot with a secret at creation, then two more set afterwards.
    let generic = s.h.bot("web-nosecret").to_string();
    let mut body = s.bot_body("unused");
    body["id"] = json!(generic);
    body["secrets"] = json!({ "API_KEY": created });
    let (status, v1) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    bodies.push(("POST /api/bots".into(), v1.to_string()));
    let (status, v2) = s
        .call(
            Method::PUT,
            &format!("/api/bots/{generic}/secrets/JSON_TOKEN"),
            Some(json!({ "value": put_json })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    bodies.push(("PUT secret (JSON)".into(), v2.to_string()));
    let res = http
        .put(s.url(&format!("/api/bots/{generic}/secrets/RAW_TOKEN")))
        .header(header::COOKIE, &cookie)
        .header("X-CSRF-Token", &csrf)
        .body(put_raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    bodies.push(("PUT secret (raw)".into(), res.text().await.unwrap()));

    // An openclaw bot (fixture stand-in): user secrets plus the generated gateway token.
    let claw = s.h.bot("web-nosecret-claw").to_string();
    let (status, v3) = s
        .post(
            "/api/bots",
            json!({
                "id": claw, "template": "openclaw", "image": s.h.image, "command": ["openclaw"],
                "settings": { "provider": "anthropic", "model": "claude-opus-4-5", "channels": ["telegram"] },
                "secrets": { "ANTHROPIC_API_KEY": claw_key, "TELEGRAM_BOT_TOKEN": claw_telegram },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v3}");
    bodies.push(("POST /api/bots (openclaw)".into(), v3.to_string()));
    let gateway = std::fs::read_to_string(
        s.data
            .path()
            .join("secrets")
            .join(&claw)
            .join("OPENCLAW_GATEWAY_TOKEN"),
    )
    .expect("the generated gateway token is on disk");
    let gateway = gateway.trim().to_string();
    assert!(gateway.len() >= 32);
    s.h.wait_for_log(
        &botmaker::BotId::new(claw.clone()).unwrap(),
        "openclaw-config: ok",
    )
    .await;
    s.h.wait_for_log(&botmaker::BotId::new(generic.clone()).unwrap(), "secrets:")
        .await;

    // Every page and every readable API route, as the dashboard sees them.
    let mut paths: Vec<String> = [
        "/",
        "/bots/new",
        "/admin",
        "/login",
        "/health",
        "/api/bots",
        "/api/stats",
        "/api/admin/orphans",
        "/api/tokens",
        "/api/openapi.json",
        "/assets/common.js",
        "/assets/forms.js",
        "/assets/fleet.js",
        "/assets/new-bot.js",
        "/assets/bot.js",
        "/assets/admin.js",
        "/assets/login.js",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for id in [&generic, &claw] {
        for p in ["", "/secrets", "/stats", "/logs?tail=1000"] {
            paths.push(format!("/api/bots/{id}{p}"));
        }
        paths.push(format!("/bots/{id}"));
    }
    for path in &paths {
        let mut req = http.get(s.url(path));
        // The login page is what a visitor without a session sees.
        if path != "/login" {
            req = req.header(header::COOKIE, &cookie);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        bodies.push((format!("GET {path}"), res.text().await.unwrap()));
    }
    let (status, apply) = s
        .post(&format!("/api/bots/{generic}/restart"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    bodies.push(("POST restart".into(), apply.to_string()));

    let secrets = [
        &created,
        &put_json,
        &put_raw,
        &claw_key,
        &claw_telegram,
        &gateway,
    ];
    for (what, body) in &bodies {
        for secret in secrets {
            assert!(
                !body.contains(secret.as_str()),
                "{what} contains a secret value"
            );
        }
    }
    // The names are there; only the values are not.
    let (_, names) = s.get(&format!("/api/bots/{generic}/secrets")).await;
    assert_eq!(
        names["secrets"],
        json!(["API_KEY", "JSON_TOKEN", "RAW_TOKEN"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_authenticated_changes_need_the_sessions_csrf_token() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-csrf").await;
    let http = no_redirects();
    let cookie = session_cookie(&s.token);
    let csrf = csrf_token_for(&s.token);
    let stop = s.url(&format!("/api/bots/{id}/stop"));

    let send = |method: Method, url: String, token: Option<&str>| {
        let mut req = http.request(method, url).header(header::COOKIE, &cookie);
        if let Some(t) = token {
            req = req.header("X-CSRF-Token", t);
        }
        req.send()
    };

    for (token, why) in [(None, "no token"), (Some("0".repeat(64)), "a wrong token")] {
        let res = send(Method::POST, stop.clone(), token.as_deref())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{why}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "CSRF", "{why}: {body}");
        assert!(body["error"].as_str().is_some());
    }
    // Another session's token does not fit this one.
    let other = s.login().await;
    let res = send(Method::POST, stop.clone(), Some(&csrf_token_for(&other)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let res = send(method.clone(), s.url(&format!("/api/bots/{id}")), None)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method}");
    }
    let (status, still) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::OK, "the bot survived the forged DELETE");
    assert_eq!(
        still["desired_state"], "running",
        "the forged stop did nothing"
    );

    // Safe methods need no token; the right token lets a change through.
    let res = send(Method::GET, s.url("/api/bots"), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(Method::POST, stop.clone(), Some(&csrf)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A bearer token is not sent by browsers on their own: no CSRF token needed.
    let (status, v) = s.post(&format!("/api/bots/{id}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // The logout form is checked too.
    let logout = |form: Vec<(&'static str, String)>| {
        http.post(s.url("/logout"))
            .header(header::COOKIE, &cookie)
            .form(&form)
            .send()
    };
    let res = logout(vec![]).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = logout(vec![("csrf", "f".repeat(64))]).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, _) = s.get("/api/bots").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a forged logout leaves the session alive"
    );
    let res = logout(vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/login");
    let cleared = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("botmaker_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _) = s.get("/api/bots").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session is over");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_need_a_session_and_the_login_form_sets_a_locked_down_cookie() {
    let s = TestServer::start().await;
    let http = no_redirects();

    for (path, to) in [
        ("/", "/login"),
        ("/bots/new", "/login?next=/bots/new"),
        ("/admin", "/login?next=/admin"),
        ("/bots/some-bot", "/login?next=/bots/some-bot"),
    ] {
        let res = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[header::LOCATION], to, "{path}");
    }
    // An API token is for scripts, not a browser session.
    let (_, t) = s
        .post("/api/tokens", json!({ "name": "not-a-session" }))
        .await;
    let api_token = t["token"].as_str().unwrap();
    let res = http
        .get(s.url("/"))
        .header(header::COOKIE, session_cookie(api_token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = http.get(s.url("/stream/stats")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The login form: a double-submit token in a cookie of its own.
    let res = http.get(s.url("/login?next=/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let form_cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        form_cookie.contains("HttpOnly") && form_cookie.contains("SameSite=Strict"),
        "{form_cookie}"
    );
    let form_token = form_cookie
        .strip_prefix("botmaker_login=")
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("name=\"csrf\" value=\"{form_token}\"")));
    assert!(html.contains("name=\"next\" value=\"/admin\""));
    assert!(html.contains("admin-password"), "the first-run hint");

    let login = |password: &str, token: &str, with_cookie: bool| {
        let mut req = http.post(s.url("/login")).form(&[
            ("password", password),
            ("csrf", token),
            ("next", "/admin"),
        ]);
        if with_cookie {
            req = req.header(header::COOKIE, format!("botmaker_login={form_token}"));
        }
        req.send()
    };
    let res = login(PASSWORD, &form_token, false).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "no form cookie: a cross-site post"
    );
    let res = login(PASSWORD, "forged", true).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = login("wrong password here", &form_token, true)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let page = res.text().await.unwrap();
    assert!(page.contains("Wrong password"));
    assert!(
        !page.contains("wrong password here"),
        "the password is not echoed"
    );

    let res = login(PASSWORD, &form_token, true).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/admin");
    let cookies: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("botmaker_session="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    let token = session
        .strip_prefix("botmaker_session=")
        .and_then(|r| r.split(';').next())
        .unwrap();

    // Pages embed the session's CSRF token, load only same-origin script and style files, and
    // carry no inline script, style or handler.
    for (path, module) in [
        ("/", "fleet"),
        ("/bots/new", "new-bot"),
        ("/admin", "admin"),
    ] {
        let res = http
            .get(s.url(path))
            .header(header::COOKIE, session_cookie(token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!(
            "<meta name=\"csrf-token\" content=\"{}\">",
            csrf_token_for(token)
        )));
        assert!(!html.contains(token), "{path} shows the session token");
        assert_eq!(html.matches("<script").count(), 1, "{path}");
        assert!(
            html.contains(&format!(
                "<script type=\"module\" src=\"/assets/{module}.js?v="
            )),
            "{path} loads its own module"
        );
        for inline in [" style=", " onclick=", " onload=", "<style", "javascript:"] {
            assert!(!html.contains(inline), "{path} has {inline}");
        }
    }
    let res = http
        .get(s.url("/bots/no-such-bot"))
        .header(header::COOKIE, session_cookie(token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // What a visitor puts in the URL comes back as text, never as markup.
    let res = http
        .get(s.url("/bots/%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%3E"))
        .header(header::COOKIE, session_cookie(token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
}

/// Every `/assets/<file>?v=<hex>` URL in `text`, in order.
fn asset_urls(text: &str) -> Vec<String> {
    text.match_indices("/assets/")
        .filter_map(|(at, _)| {
            let rest = &text[at..];
            let q = rest.find("?v=")?;
            let name = &rest["/assets/".len()..q];
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            let hex: String = rest[q + 3..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            (ok && !hex.is_empty()).then(|| format!("{}{hex}", &rest[..q + 3]))
        })
        .collect()
}

/// The modules a script imports: `from './x.js?v=...'` as `/assets/x.js?v=...`.
fn imports(js: &str) -> Vec<String> {
    js.match_indices("from './")
        .map(|(at, m)| {
            let spec = &js[at + m.len()..];
            format!("/assets/{}", &spec[..spec.find('\'').unwrap()])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_served_with_their_types_and_content_hashed_urls() {
    let s = TestServer::start().await;
    let http = no_redirects();
    let get = |path: String, cookie: bool| {
        let mut req = http.get(s.url(&path));
        if cookie {
            req = req.header(header::COOKIE, session_cookie(&s.token));
        }
        req.send()
    };
    // Each page loads its own module and preloads exactly the modules that one imports, so a
    // page fetches only what it runs.
    let mut pages = Vec::new();
    let mut queue = Vec::new();
    for (path, module) in [
        ("/", "fleet"),
        ("/bots/new", "new-bot"),
        ("/admin", "admin"),
        ("/login", "login"),
    ] {
        let page = get(path.to_string(), path != "/login")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let urls = asset_urls(&page);
        let script = urls
            .iter()
            .find(|u| u.starts_with(&format!("/assets/{module}.js?v=")))
            .unwrap_or_else(|| panic!("{path} does not load {module}.js: {urls:?}"))
            .clone();
        let js = get(script.clone(), false)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let mut todo = imports(&js);
        while let Some(dep) = todo.pop() {
            if wanted.insert(dep.clone()) {
                let body = get(dep, false).await.unwrap().text().await.unwrap();
                todo.extend(imports(&body));
            }
        }
        let preloaded: BTreeSet<String> = urls
            .iter()
            .filter(|u| u.contains(".js?"))
            .filter(|u| **u != script)
            .cloned()
            .collect();
        assert_eq!(preloaded, wanted, "{path}: preloads and imports differ");
        assert!(
            !wanted.is_empty(),
            "{path}: every page module imports common.js"
        );
        queue.extend(urls);
        pages.push(page);
    }
    // Every file, and every module a module imports, is served with its type, for good, under
    // a URL whose version is the hash of what is served.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    while let Some(url) = queue.pop() {
        if seen.contains_key(&url) {
            continue;
        }
        let res = get(url.clone(), false).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let kind = if url.contains(".css?") {
            "text/css"
        } else {
            "text/javascript"
        };
        let h = res.headers();
        assert!(
            h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind),
            "{url}"
        );
        assert!(
            h[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let body = res.text().await.unwrap();
        let version = &url[url.find("?v=").unwrap() + 3..];
        assert!(
            hex::encode(Sha256::digest(body.as_bytes())).starts_with(version),
            "{url}: the URL's version is a hash of the contents"
        );
        queue.extend(imports(&body));
        seen.insert(url, body);
    }
    let names: BTreeSet<&str> = seen
        .keys()
        .map(|u| &u["/assets/".len()..u.find('?').unwrap()])
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "admin.js",
            "app.css",
            "common.js",
            "fleet.js",
            "forms.js",
            "login.js",
            "new-bot.js"
        ]),
        "the bot page's module is checked by the browser tests"
    );
    assert!(seen.values().all(|b| b.len() > 500));
    let (status, body) = s.get("/assets/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NOT_FOUND", "{body}");
    // No third-party origin anywhere: scripts, styles and fonts are all served from here.
    for text in pages.iter().chain(seen.values()) {
        assert!(!text.contains("https://"), "an external URL");
        assert!(!text.contains("@import") && !text.contains("@font-face"));
    }
}

/// Image drift shows in the fleet and on the bot's page, and the page's upgrade picks up the
/// moved tag (through the health gate) and clears the mark.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_marks_drift_and_upgrades_a_bot() {
    use crate::support::variants::{Tags, Variant, variant};
    let s = TestServer::start().await;
    let docker = s.h.docker.client();
    let v2 = variant(docker, &s.h.image, Variant::V2).await;
    let mut tags = Tags::new(docker);
    let repo = format!("botmaker-webdrift-{}", s.h.docker.instance());
    let tag = tags.point(&repo, "live", &s.h.image).await;
    let mut body = s.bot_body("web-up");
    body["image"] = json!(tag);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    tags.point(&repo, "live", &v2).await;
    s.wait_bot(&id, "drift", Duration::from_secs(20), |v| {
        v["state"] == "running" && v["image_drift"] == true
    })
    .await;

    let b = logged_in(&s).await;
    b.goto(&s.url("/")).await;
    b.wait_for(&format!("tr[data-id=\"{id}\"] td[data-col=image] .drift"))
        .await;
    b.screenshot("fleet-drift").await.unwrap();

    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.wait_js(
        "the drift note",
        "return !document.querySelector('#drift-note').hidden;",
    )
    .await;
    b.wait_text("#state-table", "the tag names another image now")
        .await;
    b.click("#upgrade-submit").await;
    b.wait_text("#upgrade-result", "Upgraded: now running the image")
        .await;
    b.wait_js(
        "the drift note gone",
        "return document.querySelector('#drift-note').hidden;",
    )
    .await;
    b.screenshot("bot-upgraded").await.unwrap();
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(
        v["image_id"],
        json!(s.h.docker.image_id(&v2).await.unwrap().unwrap())
    );
    assert_eq!(v["image"], json!(tag), "still on the tag");
    b.close().await;
}

/// Regression (issue 11, friction): Start stayed enabled on a running bot, and a crash-looping
/// bot's page gave no reason (last exit code, OOM, last log lines).
#[tokio::test(flavor = "multi_thread")]
async fn bot_page_buttons_follow_the_state_and_a_crash_shows_its_reason() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-buttons").await;
    let mut body = s.bot_body("web-crash");
    body["env"] = json!({ "EXIT_AFTER_MS": "100", "EXIT_CODE": "3", "TICK_MS": "0" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let crashing = v["id"].as_str().unwrap().to_string();

    let b = logged_in(&s).await;
    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.wait_text("#bot-state", "running").await;
    let disabled = |action: &'static str| {
        format!("return document.querySelector('[data-action={action}]').disabled;")
    };
    b.wait_js("Start disabled on a running bot", &disabled("start"))
        .await;
    assert_eq!(b.js(&disabled("stop")).await, json!(false));
    assert_eq!(b.js(&disabled("restart")).await, json!(false));
    assert_eq!(
        b.js("return document.querySelector('#crash-reason').hidden;")
            .await,
        json!(true),
        "a running bot has no crash to explain"
    );
    b.click("[data-action=stop]").await;
    b.wait_text("#bot-state", "stopped").await;
    b.wait_js(
        "Start enabled, Stop and Restart disabled on a stopped bot",
        "const d = (a) => document.querySelector(`[data-action=${a}]`).disabled; \
         return !d('start') && d('stop') && d('restart');",
    )
    .await;

    b.goto(&s.url(&format!("/bots/{crashing}"))).await;
    b.wait_text("#bot-state", "crash").await;
    b.wait_text("#crash-summary", "Last exit code: 3").await;
    b.wait_text("#crash-summary", "Crash-looping").await;
    // The fixture announces its exit on stderr before it goes.
    b.wait_text("#crash-log", "exiting with code 3").await;
    let log = b.text("#crash-log").await;
    assert!(!log.trim().is_empty() && log != "(no output)", "{log}");
    b.screenshot("bot-crash-reason").await.unwrap();
    b.close().await;
}

/// Regression (issue 11, friction): at 420 px the fleet table was cut off, and the New-bot
/// page's header differed from the others. Every page: one header (the same links, live
/// indicator and Log out), nothing wider than the window, the table scrolled inside its box.
#[tokio::test(flavor = "multi_thread")]
async fn pages_work_at_420_px_with_one_header() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-narrow").await;
    let b = logged_in(&s).await;
    b.resize(420, 900).await;
    b.goto(&s.url("/")).await;
    let width = b.js("return window.innerWidth;").await;
    assert!(
        width.as_i64().unwrap() <= 420,
        "the window is {width} px wide"
    );
    let header = "const h = document.querySelector('header.top'); \
        return [...h.querySelectorAll('nav a')].map(a => a.getAttribute('href')).join(' ') \
          + (h.querySelector('#live') ? ' live' : '') \
          + (h.querySelector('form.logout') ? ' logout' : '');";
    let mut headers = Vec::new();
    for (path, name) in [
        ("/".to_string(), "narrow-fleet"),
        ("/bots/new".to_string(), "narrow-new-bot"),
        (format!("/bots/{id}"), "narrow-bot"),
    ] {
        b.goto(&s.url(&path)).await;
        b.wait_for("header.top").await;
        if path == "/" {
            b.wait_for(&format!("tr[data-id=\"{id}\"]")).await;
        }
        headers.push(b.js(header).await);
        let overflow = b
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path}: the page is {overflow} px wider than the window"
        );
        // The header's parts are all in the window.
        let outside = b
            .js(
                "return [...document.querySelectorAll('header.top a, header.top button, #live')] \
                 .filter(e => { const r = e.getBoundingClientRect(); \
                   return r.right > window.innerWidth + 1 || r.left < -1; }) \
                 .map(e => e.textContent.trim());",
            )
            .await;
        assert_eq!(outside, json!([]), "{path}: header items off screen");
        b.screenshot(name).await.unwrap();
    }
    assert!(
        headers.windows(2).all(|w| w[0] == w[1]),
        "headers differ: {headers:?}"
    );
    assert!(headers[0].as_str().unwrap().ends_with("live logout"));
    // The fleet's bot link is on screen: the table scrolls inside its box, not off the page.
    b.goto(&s.url("/")).await;
    b.wait_for(&format!("tr[data-id=\"{id}\"] td[data-col=bot] a"))
        .await;
    let link_right = b
        .js(&format!(
            "return document.querySelector('tr[data-id=\"{id}\"] td[data-col=bot] a')\
             .getBoundingClientRect().right;"
        ))
        .await;
    assert!(link_right.as_f64().unwrap() <= 420.0, "{link_right}");
    b.close().await;
}

#[tokio::test]
async fn audit_page_lists_changes_and_filters_by_bot_and_action() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-audit").await;
    let (status, v) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let b = logged_in(&s).await;
    b.goto(&s.url("/audit")).await;
    b.wait_text("#audit-rows", "stop").await;
    b.wait_text("#audit-rows", "login").await;
    b.fill("#audit-bot", &id).await;
    b.click("#audit-filters button[type=submit]").await;
    b.wait_js(
        "only the bot's entries",
        "const r = [...document.querySelectorAll('#audit-rows tr')]; \
         return r.length === 2 && r.every(t => t.dataset.action !== 'login');",
    )
    .await;
    b.js(
        "const s = document.querySelector('#audit-action'); s.value = 'stop'; \
          s.dispatchEvent(new Event('change')); return true;",
    )
    .await;
    b.wait_js(
        "only the stop",
        "const r = [...document.querySelectorAll('#audit-rows tr')]; \
         return r.length === 1 && r[0].dataset.action === 'stop';",
    )
    .await;
    assert!(b.text("#audit-rows").await.contains("session: admin"));
    b.screenshot("audit").await.unwrap();
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

#[tokio::test]
async fn bot_page_charts_the_last_hour_and_day_from_the_stats_history() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-history").await;
    let b = logged_in(&s).await;
    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.wait_text("#chart-cpu", "10 min ago").await;
    for (value, axis) in [
        ("1h", "1 h ago"),
        ("24h", "24 h ago"),
        ("live", "10 min ago"),
    ] {
        b.js(&format!(
            "const s = document.querySelector('#stats-range'); s.value = '{value}'; \
             s.dispatchEvent(new Event('change')); return true;"
        ))
        .await;
        b.wait_text("#chart-cpu", axis).await;
        b.wait_text("#chart-mem", axis).await;
    }
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

/// Bytes from the dashboard's `fmtBytes` text (`"1.5 MiB"`).
fn parse_bytes(text: &str) -> f64 {
    let (n, unit) = text.trim().split_once(' ').unwrap_or((text, "B"));
    let n: f64 = n
        .parse()
        .unwrap_or_else(|_| panic!("not a byte count: {text:?}"));
    let pow = ["B", "KiB", "MiB", "GiB", "TiB"]
        .iter()
        .position(|u| *u == unit)
        .unwrap_or_else(|| panic!("not a byte unit: {text:?}"));
    n * 1024f64.powi(pow as i32)
}

/// Issue 11: the memory chart of a bot without a memory limit read `1 B / 1 B / 0 B` (no
/// limit and no samples yet). Every bot has a memory limit now (the default is filled in at
/// create, update and load), so the axis tops out at that limit, before the first sample
/// (stopped) and after; a bot's own limit is its top.
#[tokio::test(flavor = "multi_thread")]
async fn memory_axis_tops_out_at_the_bots_limit_never_one_byte() {
    let s = TestServer::start().await;
    let plain = s.create_bot("web-axis-default").await;
    let mut body = s.bot_body("web-axis-capped");
    body["limits"] = json!({ "memory_mb": 64 });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let capped = v["id"].as_str().unwrap().to_string();
    let (status, v) = s.post(&format!("/api/bots/{plain}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let default_mb = v["limits"]["memory_mb"]
        .as_u64()
        .expect("a default memory limit");

    let b = logged_in(&s).await;
    let top = "return document.querySelector('#chart-mem text[data-tick=\"1\"]').textContent;";
    b.goto(&s.url(&format!("/bots/{plain}"))).await;
    b.wait_text("#bot-state", "stopped").await;
    b.wait_text("#chart-mem", "no samples").await;
    let label = b.js(top).await.as_str().unwrap().to_string();
    assert_eq!(
        parse_bytes(&label),
        (default_mb * 1024 * 1024) as f64,
        "{label}"
    );

    let (status, v) = s.post(&format!("/api/bots/{plain}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    b.wait_text("#stats-summary", "Now:").await;
    let label = b.js(top).await.as_str().unwrap().to_string();
    assert_eq!(
        parse_bytes(&label),
        (default_mb * 1024 * 1024) as f64,
        "{label}"
    );
    b.screenshot("bot-memory-axis-default-limit").await.unwrap();

    b.goto(&s.url(&format!("/bots/{capped}"))).await;
    b.wait_text("#stats-summary", "of 64.0 MiB").await;
    assert_eq!(b.js(top).await, json!("64.0 MiB"));
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

/// Issue 11: no bulk delete. Selected bots are deleted after a confirmation that names them
/// (Cancel deletes nothing), one DELETE per bot, each one's result listed, the rest untouched.
#[tokio::test(flavor = "multi_thread")]
async fn fleet_deletes_the_selected_bots_after_a_confirmation_naming_them() {
    let s = TestServer::start().await;
    let one = s.create_bot("web-bulkdel-a").await;
    let two = s.create_bot("web-bulkdel-b").await;
    let keep = s.create_bot("web-bulkdel-keep").await;
    let b = logged_in(&s).await;
    b.goto(&s.url("/")).await;
    for id in [&one, &two, &keep] {
        b.wait_for(&format!("tr[data-id=\"{id}\"]")).await;
    }
    let disabled = "return document.querySelector('#bulk-delete').disabled;";
    assert_eq!(b.js(disabled).await, json!(true), "nothing selected yet");
    b.click(&format!("tr[data-id=\"{one}\"] input.select"))
        .await;
    b.click(&format!("tr[data-id=\"{two}\"] input.select"))
        .await;
    b.wait_text("#selection-count", "2 selected").await;
    assert_eq!(b.js(disabled).await, json!(false));

    // Cancel: nothing goes.
    b.click("#bulk-delete").await;
    b.wait_text("#confirm-title", "Delete 2 bots?").await;
    let text = b.text("#confirm-text").await;
    assert!(
        text.contains(&one) && text.contains(&two) && !text.contains(&keep),
        "{text}"
    );
    b.screenshot("fleet-bulk-delete-confirm").await.unwrap();
    b.click("#confirm-cancel").await;
    b.wait_js(
        "the dialog to close",
        "return !document.querySelector('#confirm').open;",
    )
    .await;
    for id in [&one, &two, &keep] {
        let (status, _) = s.get(&format!("/api/bots/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id} survives a cancelled delete");
    }

    // Confirm: the two go, each reported; the third stays.
    b.click("#bulk-delete").await;
    b.wait_text("#confirm-title", "Delete 2 bots?").await;
    b.click("#confirm-ok").await;
    b.wait_js(
        "both deletions reported",
        "return document.querySelectorAll('#bulk-results li[data-result=ok]').length === 2;",
    )
    .await;
    let results = b.text("#bulk-results").await;
    assert!(
        results.contains(&one) && results.contains(&two),
        "{results}"
    );
    b.wait_js(
        "the deleted rows to go",
        &format!(
            "return !document.querySelector('tr[data-id=\"{one}\"]') && \
             !document.querySelector('tr[data-id=\"{two}\"]') && \
             !!document.querySelector('tr[data-id=\"{keep}\"]');"
        ),
    )
    .await;
    b.wait_text("#selection-count", "0 selected").await;
    assert_eq!(b.js(disabled).await, json!(true));
    for id in [&one, &two] {
        let (status, _) = s.get(&format!("/api/bots/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id} deleted");
    }
    let (status, _) = s.get(&format!("/api/bots/{keep}")).await;
    assert_eq!(status, StatusCode::OK);
    b.screenshot("fleet-bulk-delete-done").await.unwrap();
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

/// Issue 11: editing a bot's configuration meant writing JSON. The editor has a field per
/// common setting, filled from the bot, and sends only what changed; the server's messages
/// land next to the field they are about; the JSON view is still there on request.
#[tokio::test(flavor = "multi_thread")]
async fn bot_config_editor_changes_fields_and_shows_the_servers_errors_next_to_them() {
    let s = TestServer::start().await;
    let id = s.create_bot("web-config").await;
    let b = logged_in(&s).await;
    b.goto(&s.url(&format!("/bots/{id}"))).await;
    b.wait_text("#bot-state", "running").await;
    b.click("#edit-config summary").await;
    let value = |field: &str| {
        format!("return document.querySelector('#config-fields [data-config=\"{field}\"]').value;")
    };
    b.wait_js(
        "the fields filled from the bot",
        "return document.querySelector('#config-fields [data-config=env]').value === 'TICK_MS=200' \
         && document.querySelector('#config-fields [data-config=image]').value.length > 0;",
    )
    .await;
    assert_eq!(b.js(&value("limits.memory_mb")).await, json!("512"));
    assert!(
        b.js("return document.querySelector('#config-json-field').hidden;")
            .await
            .as_bool()
            .unwrap(),
        "the JSON view is optional"
    );

    // A bad port: the server's message shows next to the ports field; nothing changes.
    b.fill("#cf-ports", "70000:8080").await;
    b.click("#config-submit").await;
    let msg = b.wait_text("#cerr-ports", "65535").await;
    assert!(msg.contains("line 1"), "{msg}");
    assert_eq!(
        b.js("return document.querySelector('#cf-ports').getAttribute('aria-invalid');")
            .await,
        json!("true")
    );
    b.screenshot("bot-config-editor-port-error").await.unwrap();
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["ports"], json!([]), "{v}");

    // Memory and an env var through the fields.
    b.fill("#cf-ports", "").await;
    b.fill("#cf-limits-memory-mb", "128").await;
    b.js(
        "const e = document.querySelector('#cf-env'); e.value = 'TICK_MS=300\\nGREETING=hello'; \
         e.dispatchEvent(new Event('input', { bubbles: true })); return true;",
    )
    .await;
    b.click("#config-submit").await;
    b.wait_text("#config", "memory 128 MiB").await;
    b.wait_text("#config", "GREETING=hello").await;
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(v["limits"]["memory_mb"], json!(128), "{v}");
    assert_eq!(
        v["env"],
        json!({ "TICK_MS": "300", "GREETING": "hello" }),
        "{v}"
    );
    assert_eq!(v["ports"], json!([]), "{v}");
    assert!(
        b.js("return document.querySelector('#cerr-ports').hidden;")
            .await
            .as_bool()
            .unwrap(),
        "the old error is cleared"
    );
    assert_eq!(b.js(&value("limits.memory_mb")).await, json!("128"));
    b.screenshot("bot-config-editor").await.unwrap();

    // The JSON view is still there.
    b.click("#config-raw").await;
    let json_text = b
        .js("return document.querySelector('#config-json').value;")
        .await;
    let parsed: Value = serde_json::from_str(json_text.as_str().unwrap()).unwrap();
    assert_eq!(parsed["limits"]["memory_mb"], json!(128));
    assert_eq!(b.console_problems().await, Vec::<String>::new());
    b.close().await;
}

/// Regression: the create form read `HOST:CONTAINER` (`18080:8080`, the form its own help
/// shows) as an address and a container port, so the server refused `host_ip: must be an IP
/// address`. The host port is the bot's, published on 127.0.0.1.
#[tokio::test(flavor = "multi_thread")]
async fn create_form_reads_host_port_colon_container_port_as_two_ports() {
    let s = TestServer::start().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = s.h.bot("web-hostport").to_string();
    let b = logged_in(&s).await;
    b.goto(&s.url("/bots/new")).await;
    b.fill("#f-id", &id).await;
    b.fill("#f-image", &s.h.image).await;
    b.fill("#f-env", "TICK_MS=200").await;
    b.fill("#f-ports", &format!("{free}:8080")).await;
    b.click("#create-submit").await;
    b.wait_for("body[data-page=bot]").await;
    let (status, v) = s.get(&format!("/api/bots/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ports"][0]["host"], json!(free), "{v}");
    assert_eq!(v["ports"][0]["container"], json!(8080), "{v}");
    assert_ne!(v["ports"][0]["host_ip"], json!(free.to_string()), "{v}");
    b.close().await;
}
