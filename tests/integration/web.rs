//! The dashboard, end to end: a real server and Docker Engine driven through headless Chromium
//! (Debian's `chromium` + `chromium-driver`, installed by `scripts/test`), plus HTTP-level checks
//! of the browser session: cookie attributes, CSRF, redirects, assets, and that no secret value
//! ever comes back. Screenshots of every page land in `target/screenshots/`.

use std::collections::BTreeMap;
use std::time::Duration;

use botmaker::access::csrf_token_for;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::server::{PASSWORD, TestServer};
use crate::support::unique;

// ==================================================================== a small WebDriver client

/// A minimal W3C WebDriver client over reqwest. (fantoccini's plain-HTTP mode needs a
/// `hyper-util` connector the test crate does not depend on; the protocol is a dozen JSON
/// calls, so they are spelled out here.)
mod webdriver {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use reqwest::Method;
    use serde_json::{Value, json};
    use tempfile::TempDir;

    const CHROMIUM: &str = "/usr/bin/chromium";
    const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
    /// W3C's key for element references.
    const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
    /// How long waits for the page last before failing the test.
    pub const WAIT: Duration = Duration::from_secs(30);
    /// Window size of every session.
    const WINDOW: (u64, u64) = (1280, 1000);

    /// A chromedriver process and the browser profile; both go away on drop.
    struct Driver {
        child: Child,
        port: u16,
        _profile: TempDir,
    }

    impl Drop for Driver {
        /// Only the driver itself is killed, through its handle: the browser it started has
        /// been told to quit already (`Browser`'s drop ends the session first).
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// One headless Chromium session.
    pub struct Browser {
        http: reqwest::Client,
        session: String,
        closed: bool,
        driver: Driver,
    }

    /// A WebDriver error answer.
    #[derive(Debug)]
    pub struct WdError(pub String);

    impl std::fmt::Display for WdError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    impl Browser {
        /// Starts chromedriver on a free port and opens a headless session with a fresh profile.
        pub async fn start() -> Self {
            for bin in [CHROMIUM, CHROMEDRIVER] {
                assert!(
                    Path::new(bin).exists(),
                    "{bin} is missing: the dashboard tests drive Debian's chromium and \
                     chromium-driver; run scripts/test (it installs them as root) or \
                     apt-get install chromium chromium-driver"
                );
            }
            let profile = tempfile::Builder::new()
                .prefix("botmaker-chromium")
                .tempdir()
                .unwrap();
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver");
            let driver = Driver {
                child,
                port,
                _profile: profile,
            };
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let ready = http
                    .get(format!("{base}/status"))
                    .send()
                    .await
                    .ok()
                    .and_then(|r| r.status().is_success().then_some(()));
                if ready.is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "chromedriver did not answer");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let caps = json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": { "browser": "ALL" },
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run",
                        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                        format!("--user-data-dir={}", driver._profile.path().display()),
                    ],
                },
            }}});
            let res: Value = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .expect("chromedriver answers")
                .json()
                .await
                .unwrap();
            let id = res["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
                .to_string();
            Self {
                http,
                session: format!("{base}/session/{id}"),
                closed: false,
                driver,
            }
        }

        async fn cmd(
            &self,
            method: Method,
            path: &str,
            body: Option<Value>,
        ) -> Result<Value, WdError> {
            let mut req = self.http.request(method, format!("{}{path}", self.session));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.map_err(|e| WdError(e.to_string()))?;
            let ok = res.status().is_success();
            let v: Value = res.json().await.map_err(|e| WdError(e.to_string()))?;
            if ok {
                Ok(v["value"].clone())
            } else {
                Err(WdError(format!(
                    "{}: {}",
                    v["value"]["error"], v["value"]["message"]
                )))
            }
        }

        /// Checks the page's console held no script error and no Content Security Policy
        /// violation, then ends the session (Chromium quits).
        pub async fn close(mut self) {
            let problems = self.console_problems().await;
            let _ = self.cmd(Method::DELETE, "", None).await;
            self.closed = true;
            assert!(problems.is_empty(), "browser console: {problems:#?}");
        }

        /// Console entries since the last call that point at a broken page: uncaught errors
        /// and CSP refusals (failed requests the test provoked, such as a wrong password's
        /// 401, are expected and not counted).
        pub async fn console_problems(&self) -> Vec<String> {
            let entries = self
                .cmd(Method::POST, "/se/log", Some(json!({ "type": "browser" })))
                .await
                .expect("chromedriver hands out the browser log");
            entries
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str())
                .filter(|m| {
                    [
                        "Content Security Policy",
                        "Uncaught",
                        "TypeError",
                        "ReferenceError",
                    ]
                    .iter()
                    .any(|p| m.contains(p))
                })
                .map(str::to_string)
                .collect()
        }

        /// Navigates and waits for the page to load.
        pub async fn goto(&self, url: &str) {
            self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
                .await
                .unwrap_or_else(|e| panic!("goto {url}: {e}"));
        }

        /// The path of the current URL.
        pub async fn path(&self) -> String {
            let url = self.cmd(Method::GET, "/url", None).await.unwrap();
            let url = url.as_str().unwrap_or_default();
            let rest = url.splitn(4, '/').nth(3).unwrap_or("");
            format!("/{}", rest.split(['?', '#']).next().unwrap_or(""))
        }

        async fn find(&self, css: &str) -> Result<String, WdError> {
            let v = self
                .cmd(
                    Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await?;
            v[ELEMENT_KEY]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| WdError(format!("no element id in {v}")))
        }

        /// Retries `f` on the element `css` until it succeeds or [`WAIT`] passes (pages render
        /// asynchronously, and re-render).
        async fn on<T, F, Fut>(&self, css: &str, what: &str, mut f: F) -> T
        where
            F: FnMut(String) -> Fut,
            Fut: Future<Output = Result<T, WdError>>,
        {
            let deadline = Instant::now() + WAIT;
            loop {
                let last = match self.find(css).await {
                    Ok(el) => match f(el).await {
                        Ok(v) => return v,
                        Err(e) => e,
                    },
                    Err(e) => e,
                };
                if Instant::now() > deadline {
                    let _ = self
                        .screenshot(&format!("failed-{}", what.replace(' ', "-")))
                        .await;
                    panic!("{what} `{css}`: {last}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        /// Waits until `css` matches an element.
        pub async fn wait_for(&self, css: &str) {
            self.on(css, "waiting for", |_| async { Ok(()) }).await
        }

        /// Clicks `css`.
        pub async fn click(&self, css: &str) {
            self.on(css, "clicking", |el| async move {
                self.cmd(
                    Method::POST,
                    &format!("/element/{el}/click"),
                    Some(json!({})),
                )
                .await
                .map(|_| ())
            })
            .await
        }

        /// Replaces the value of the input `css` with `text`.
        pub async fn fill(&self, css: &str, text: &str) {
            self.on(css, "filling", |el| async move {
                self.cmd(
                    Method::POST,
                    &format!("/element/{el}/clear"),
                    Some(json!({})),
                )
                .await?;
                self.cmd(
                    Method::POST,
                    &format!("/element/{el}/value"),
                    Some(json!({ "text": text })),
                )
                .await
                .map(|_| ())
            })
            .await
        }

        /// Visible text of `css`.
        pub async fn text(&self, css: &str) -> String {
            self.on(css, "reading", |el| async move {
                let v = self
                    .cmd(Method::GET, &format!("/element/{el}/text"), None)
                    .await?;
                Ok(v.as_str().unwrap_or_default().to_string())
            })
            .await
        }

        /// Waits until the visible text of `css` contains `needle`; returns the text.
        pub async fn wait_text(&self, css: &str, needle: &str) -> String {
            let deadline = Instant::now() + WAIT;
            loop {
                let text = match self.find(css).await {
                    Ok(el) => self
                        .cmd(Method::GET, &format!("/element/{el}/text"), None)
                        .await
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if text.contains(needle) {
                    return text;
                }
                if Instant::now() > deadline {
                    let _ = self.screenshot("failed-wait-text").await;
                    panic!("`{css}` never showed {needle:?}; it shows {text:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        /// Runs `script` (a function body) in the page.
        pub async fn js(&self, script: &str) -> Value {
            self.cmd(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": script, "args": [] })),
            )
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
        }

        /// Waits until `script` returns something truthy; returns it.
        pub async fn wait_js(&self, what: &str, script: &str) -> Value {
            let deadline = Instant::now() + WAIT;
            loop {
                let v = self
                    .cmd(
                        Method::POST,
                        "/execute/sync",
                        Some(json!({ "script": script, "args": [] })),
                    )
                    .await
                    .unwrap_or(Value::Null);
                let truthy = match &v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                };
                if truthy {
                    return v;
                }
                if Instant::now() > deadline {
                    let _ = self.screenshot("failed-wait").await;
                    panic!("timed out waiting for {what}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        /// The current DOM, serialized.
        pub async fn source(&self) -> String {
            self.cmd(Method::GET, "/source", None)
                .await
                .unwrap()
                .as_str()
                .unwrap_or_default()
                .to_string()
        }

        /// Sets a cookie for the current site.
        pub async fn add_cookie(&self, name: &str, value: &str) {
            self.cmd(
                Method::POST,
                "/cookie",
                Some(json!({ "cookie": {
                    "name": name, "value": value, "path": "/", "httpOnly": true, "sameSite": "Strict",
                }})),
            )
            .await
            .unwrap();
        }

        /// Saves a PNG of the whole page as `target/screenshots/<name>.png` (the window grows
        /// to the page's height for the shot).
        pub async fn screenshot(&self, name: &str) -> Result<PathBuf, WdError> {
            self.cmd(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": "window.scrollTo(0, 0); return true;", "args": [] })),
            )
            .await?;
            let height = self
                .cmd(
                    Method::POST,
                    "/execute/sync",
                    Some(json!({
                        "script": "return document.documentElement.scrollHeight;", "args": [],
                    })),
                )
                .await?
                .as_u64()
                .unwrap_or(0)
                .clamp(WINDOW.1, 8000);
            self.resize(WINDOW.0, height).await?;
            let shot = self.cmd(Method::GET, "/screenshot", None).await;
            self.resize(WINDOW.0, WINDOW.1).await?;
            let v = shot?;
            let png = base64_decode(v.as_str().unwrap_or_default());
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
            std::fs::create_dir_all(&dir).map_err(|e| WdError(e.to_string()))?;
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, png).map_err(|e| WdError(e.to_string()))?;
            Ok(path)
        }
    }

    impl Browser {
        /// Makes the page see `prefers-color-scheme: dark` (Chrome DevTools protocol).
        pub async fn dark_mode(&self) {
            self.cmd(
                Method::POST,
                "/goog/cdp/execute",
                Some(json!({
                    "cmd": "Emulation.setEmulatedMedia",
                    "params": { "features": [{ "name": "prefers-color-scheme", "value": "dark" }] },
                })),
            )
            .await
            .expect("chromedriver passes DevTools commands");
        }

        async fn resize(&self, width: u64, height: u64) -> Result<(), WdError> {
            self.cmd(
                Method::POST,
                "/window/rect",
                Some(json!({ "width": width, "height": height })),
            )
            .await
            .map(|_| ())
        }
    }

    impl Drop for Browser {
        /// Quits Chromium even when the test panicked: a blocking `DELETE /session` (no runtime
        /// is guaranteed here), then the driver's process group goes.
        fn drop(&mut self) {
            if self.closed {
                return;
            }
            let path = self
                .session
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.driver.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    s,
                    "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
    }

    /// Standard base64 (screenshots come as such).
    fn base64_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            } as u32)
        };
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes().filter_map(val) {
            acc = (acc << 6) | c;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(base64_decode("AAEC/w=="), [0, 1, 2, 255]);
    }
}

use webdriver::Browser;

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

    b.fill("#password", "not the password at all").await;
    b.click("#login-form button[type=submit]").await;
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
        "/assets/app.js",
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
    for path in ["/", "/bots/new", "/admin"] {
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
        assert!(html.contains("<script src=\"/assets/app.js?v="), "{path}");
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
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_served_with_their_types_and_content_hashed_urls() {
    let s = TestServer::start().await;
    let http = no_redirects();
    let page = http
        .get(s.url("/"))
        .header(header::COOKIE, session_cookie(&s.token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut seen = BTreeMap::new();
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let marker = format!("/assets/{file}?v=");
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("{file} not linked"))
            + marker.len();
        let version: String = page[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        let res = http
            .get(s.url(&format!("/assets/{file}?v={version}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(
            res.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let body = res.bytes().await.unwrap();
        assert!(
            hex::encode(Sha256::digest(&body)).starts_with(&version),
            "{file}: the URL's version is a hash of the contents"
        );
        seen.insert(file, body.len());
    }
    assert!(seen.values().all(|n| *n > 1000));
    // No third-party origin anywhere: scripts, styles and fonts are all served from here.
    let js = http
        .get(s.url("/assets/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = http
        .get(s.url("/assets/app.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [&page, &js, &css] {
        assert!(!text.contains("https://"), "an external URL");
        assert!(!text.contains("@import") && !text.contains("@font-face"));
    }
}
