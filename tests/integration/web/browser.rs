//! Headless Chromium for the dashboard tests: Debian's `chromedriver` started on a free port,
//! driven through fantoccini, with the waits a page that renders asynchronously needs.
//!
//! The chromedriver process is this test's own child and is ended through its handle, never
//! by name or process group: the machine's Docker daemon and other tests' browsers run beside
//! it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long waits for the page last before failing the test.
pub const WAIT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to accept a session.
const DRIVER_START: Duration = Duration::from_secs(20);
/// Window size of every session.
const WINDOW: (u32, u32) = (1280, 1000);
/// Tallest full-page screenshot.
const MAX_SHOT_HEIGHT: u32 = 8000;

/// A chromedriver process and the browser profile; both go away on drop.
struct Driver {
    child: Child,
    port: u16,
    profile: TempDir,
}

impl Drop for Driver {
    /// Only the driver itself is killed, through its handle: the browser it started has been
    /// told to quit already (the session is ended first).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver endpoint fantoccini has no method for: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// One headless Chromium session.
pub struct Browser {
    /// `None` once closed.
    client: Option<Client>,
    session_id: String,
    driver: Driver,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a value returned by a script counts as "yes".
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
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
            profile,
        };
        let caps: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // Root in a container: no sandbox, no /dev/shm of any size, no GPU.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", driver.profile.path().display()),
                ],
            },
        }))
        .unwrap();
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver listens a moment after it starts: retry until it takes the session.
        let deadline = Instant::now() + DRIVER_START;
        let client = loop {
            match builder.connect(&url).await {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        let session_id = client
            .session_id()
            .await
            .unwrap()
            .expect("a session was opened");
        Self {
            client: Some(client),
            session_id,
            driver,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Checks the page's console held no script error and no Content Security Policy
    /// violation, then ends the session (Chromium quits).
    pub async fn close(mut self) {
        let problems = self.console_problems().await;
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        assert!(problems.is_empty(), "browser console: {problems:#?}");
    }

    /// Console entries since the last call that point at a broken page: uncaught errors and
    /// CSP refusals (failed requests the test provoked, such as a wrong password's 401, are
    /// expected and not counted).
    pub async fn console_problems(&self) -> Vec<String> {
        let entries = self
            .client()
            .issue_cmd(SessionPost {
                path: "se/log",
                body: json!({ "type": "browser" }),
            })
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
                    "SyntaxError",
                    "Failed to load module script",
                ]
                .iter()
                .any(|p| m.contains(p))
            })
            .map(str::to_string)
            .collect()
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The path of the current URL.
    pub async fn path(&self) -> String {
        self.client()
            .current_url()
            .await
            .unwrap()
            .path()
            .to_string()
    }

    /// Retries `f` on the element `css` until it succeeds or [`WAIT`] passes (pages render
    /// asynchronously, and re-render).
    async fn on<T, F, Fut>(&self, css: &str, what: &str, mut f: F) -> T
    where
        F: FnMut(Element) -> Fut,
        Fut: Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self.client().find(Locator::Css(css)).await {
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
        self.on(css, "clicking", |el| async move { el.click().await })
            .await
    }

    /// Replaces the value of the input `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on(css, "filling", |el| async move {
            el.clear().await?;
            el.send_keys(text).await
        })
        .await
    }

    /// Types `keys` into `css` as a user would, without clearing it first (WebDriver key
    /// codes such as `\u{E007}`, Enter, work).
    pub async fn type_into(&self, css: &str, keys: &str) {
        self.on(
            css,
            "typing into",
            |el| async move { el.send_keys(keys).await },
        )
        .await
    }

    /// Visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.on(css, "reading", |el| async move { el.text().await })
            .await
    }

    /// Waits until the visible text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client().find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
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
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Waits until `script` returns something truthy; returns it.
    pub async fn wait_js(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self
                .client()
                .execute(script, vec![])
                .await
                .unwrap_or(Value::Null);
            if truthy(&v) {
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
        self.client().source().await.unwrap()
    }

    /// Sets a cookie for the current site, as the server would (HttpOnly, SameSite=Strict).
    pub async fn add_cookie(&self, name: &str, value: &str) {
        // Named explicitly: fantoccini sends an absent domain as `null`, which Chromium refuses.
        let url = self.client().current_url().await.unwrap();
        let host = url.host_str().expect("the page has a host");
        let cookie = fantoccini::cookies::Cookie::parse(format!(
            "{name}={value}; Domain={host}; Path=/; HttpOnly; SameSite=Strict"
        ))
        .unwrap();
        self.client().add_cookie(cookie).await.unwrap();
    }

    /// Saves a PNG of the whole page as `target/screenshots/<name>.png` (the window grows to
    /// the page's height for the shot).
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, fantoccini::error::CmdError> {
        let client = self.client();
        client
            .execute("window.scrollTo(0, 0); return true;", vec![])
            .await?;
        let height = client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await?
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .unwrap_or(0)
            .clamp(WINDOW.1, MAX_SHOT_HEIGHT);
        client.set_window_size(WINDOW.0, height).await?;
        let shot = client.screenshot().await;
        client.set_window_size(WINDOW.0, WINDOW.1).await?;
        let png = shot?;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("creating target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing a screenshot");
        Ok(path)
    }

    /// Makes the page see `prefers-color-scheme: dark` (Chrome DevTools protocol).
    pub async fn dark_mode(&self) {
        self.client()
            .issue_cmd(SessionPost {
                path: "goog/cdp/execute",
                body: json!({
                    "cmd": "Emulation.setEmulatedMedia",
                    "params": { "features": [{ "name": "prefers-color-scheme", "value": "dark" }] },
                }),
            })
            .await
            .expect("chromedriver passes DevTools commands");
    }
}

impl Drop for Browser {
    /// Quits Chromium even when the test panicked. fantoccini ends the session on its own when
    /// the client is dropped, but from a task the driver's kill would race; so a blocking
    /// `DELETE /session/{id}` is sent first (no runtime is guaranteed here), then the driver
    /// process goes.
    fn drop(&mut self) {
        if self.client.take().is_none() {
            return;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.driver.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session_id
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
}
