//! The real `botmaker serve` binary as a child process, to be killed with SIGKILL at will (an
//! in-process server cannot die half-way the way a process does).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::Harness;
use super::server::PASSWORD;

/// The `botmaker` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_botmaker");

/// A running `botmaker serve` child and a session token for it.
pub struct ChildServer {
    /// The process (killed when dropped).
    pub child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// A session token.
    pub token: String,
    /// An HTTP client with a generous timeout.
    pub client: reqwest::Client,
}

impl ChildServer {
    /// Starts `botmaker serve` on `data` under the harness's instance, appending its log to
    /// `log`, with `extra` environment; waits for `/health` and logs in.
    pub async fn start(h: &Harness, data: &Path, log: &Path, extra: &[(&str, &str)]) -> Self {
        // Its own port, bound by itself and read from its log: a port picked here and freed
        // again could be taken by another test's server in between, which this test would then
        // talk to (same password) until that test killed it.
        let log_start = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env("BOTMAKER_DATA_DIR", data)
            .env("BOTMAKER_LISTEN", "127.0.0.1:0")
            .env("BOTMAKER_INSTANCE", h.docker.instance())
            // The engine the harness talks to (a private one in some tests), not the default.
            .env("DOCKER_HOST", h.docker.host())
            .env("BOTMAKER_ADMIN_PASSWORD", PASSWORD)
            .env("BOTMAKER_STOP_TIMEOUT", "2")
            .env("BOTMAKER_RESYNC_INTERVAL", "2")
            .env("BOTMAKER_LOG", "botmaker=info")
            .env_remove("BOTMAKER_ADMIN_PASSWORD_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            if let Some(addr) = bound_address(log, log_start) {
                break format!("http://{addr}");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "botmaker serve exited ({status}) before listening:\n{}",
                    log_since(log, log_start)
                );
            }
            assert!(
                Instant::now() < deadline,
                "botmaker serve did not say where it listens:\n{}",
                log_since(log, log_start)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        loop {
            if let Ok(res) = client.get(format!("{base}/health")).send().await {
                if res.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "botmaker serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let login: Value = client
            .post(format!("{base}/api/login"))
            .json(&json!({ "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_string();
        Self {
            child,
            base,
            token,
            client,
        }
    }

    /// A request with the session token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/bots/{id}/upgrade` with `body`: its answer, or `None` when the server died
    /// before giving one (the upgrade-and-kill tests kill it on purpose).
    pub async fn upgrade_unless_killed(&self, id: &str, body: Value) -> Option<Value> {
        let res = self
            .client
            .post(format!("{}/api/bots/{id}/upgrade", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .ok()?;
        res.json::<Value>().await.ok()
    }

    /// Sends SIGKILL to the server after `delay`, without waiting for it to be gone (the
    /// requests in flight see it die; [`Self::kill`] reaps it).
    pub async fn sigkill_after(&self, delay: Duration) {
        let pid = self.child.id().expect("the server runs").to_string();
        tokio::time::sleep(delay).await;
        let killed = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// What the server wrote to `log` from byte `start` on (this run's lines).
fn log_since(log: &Path, start: u64) -> String {
    let all = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(all.get(start as usize..).unwrap_or_default()).into_owned()
}

/// `127.0.0.1:<port>` from this run's `botmaker listening` line, once it is written.
fn bound_address(log: &Path, start: u64) -> Option<String> {
    let text = log_since(log, start);
    let line = text.lines().find(|l| l.contains("botmaker listening"))?;
    let at = line.find("127.0.0.1:")?;
    let port: String = line[at + "127.0.0.1:".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
}

/// After `rounds` kills of servers logging to `log`: prints the rounds' `outcomes` and how many
/// interrupted upgrades the restarted servers took to their end, and fails when none was (no
/// kill landed inside an upgrade: the test would prove nothing).
pub fn assert_some_upgrade_was_interrupted(
    log: &Path,
    rounds: usize,
    outcomes: &impl std::fmt::Debug,
) {
    let log = std::fs::read_to_string(log).unwrap();
    let recovered = log
        .matches("took an interrupted upgrade to its end")
        .count();
    eprintln!("{rounds} kills: outcomes {outcomes:?}, {recovered} interrupted upgrades recovered");
    assert!(
        recovered > 0,
        "no kill ever landed inside an upgrade: the test proves nothing"
    );
}
