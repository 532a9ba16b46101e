//! The real `botmaker serve` binary as a child process, so its memory and CPU are its own
//! (read from /proc/<pid>) and its HTTP API is measured across a real socket, as a user sees
//! it. Dropping it kills the process; bot containers stay for the cleanup guard.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// The admin password of bench servers.
pub const PASSWORD: &str = "bench password, not a secret";
/// How long a start may take before the bench gives up.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A `botmaker serve` child process and a logged-in client.
pub struct ServerProc {
    bin: PathBuf,
    data: PathBuf,
    password_file: PathBuf,
    log: PathBuf,
    listen: SocketAddr,
    instance: String,
    /// `--docker-host`; the caller's `DOCKER_HOST` (or the default socket) when `None`.
    docker_host: Option<String>,
    /// `--log` filter.
    log_filter: String,
    /// More `serve` arguments.
    extra_args: Vec<String>,
    child: Option<Child>,
    paused: bool,
    /// `http://127.0.0.1:port`.
    pub base: String,
    client: reqwest::Client,
    /// For dashboard pages: redirects are not followed.
    pages: reqwest::Client,
    /// A session token (sessions live in the database, so it survives restarts).
    pub token: String,
}

fn free_port() -> Result<SocketAddr, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map_err(|e| e.to_string())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .expect("HTTP client")
}

fn page_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Sends `req` and reads the whole body: the time, the status and the bytes.
async fn timed(
    req: reqwest::RequestBuilder,
    path: &str,
) -> Result<(Duration, u16, bytes::Bytes), String> {
    let t = Instant::now();
    let res = req.send().await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = res.status().as_u16();
    let body = res.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
    Ok((t.elapsed(), status, body))
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {sig} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill {sig} {pid} failed"))
    }
}

impl ServerProc {
    /// A server (not yet started) with its data in `dir`, serving `instance`.
    pub fn new(bin: &Path, dir: &Path, instance: &str) -> Result<Self, String> {
        let data = dir.join("data");
        let password_file = dir.join("admin-password");
        std::fs::write(&password_file, PASSWORD).map_err(|e| e.to_string())?;
        let listen = free_port()?;
        Ok(Self {
            bin: bin.to_path_buf(),
            data,
            password_file,
            log: dir.join("server.log"),
            listen,
            instance: instance.to_string(),
            docker_host: None,
            log_filter: "warn".into(),
            extra_args: Vec::new(),
            child: None,
            paused: false,
            base: format!("http://{listen}"),
            client: client(),
            pages: page_client(),
            token: String::new(),
        })
    }

    /// Serve the engine at `host` (e.g. the simulated one) instead of `DOCKER_HOST`.
    pub fn docker_host(mut self, host: &str) -> Self {
        self.docker_host = Some(host.to_string());
        self
    }

    /// Log with this filter instead of `warn` (the simulation reads the start-up
    /// reconciliation's log line).
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Passes more arguments to `serve` (`--llm-proxy-listen ...`).
    #[allow(dead_code)] // the llm_proxy bench's; the fleet bench passes none
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and returns the time from spawning it to `/health` answering 200.
    pub async fn start(&mut self) -> Result<Duration, String> {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg(self.listen.to_string())
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--instance")
            .arg(&self.instance)
            .arg("--admin-password-file")
            .arg(&self.password_file)
            .arg("--log")
            .arg(&self.log_filter)
            // The defaults, pinned so a BOTMAKER_* variable in the caller's shell cannot
            // change what is measured.
            .args(["--stop-timeout", "10"])
            .args(["--stats-interval", "10"])
            .args(["--resync-interval", "60"])
            .env_remove("BOTMAKER_ADMIN_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(h) = &self.docker_host {
            cmd.arg("--docker-host").arg(h);
        }
        cmd.args(&self.extra_args);
        // A fresh client: pooled connections to a previous process are dead.
        self.client = client();
        self.pages = page_client();
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.paused = false;
        let health = format!("{}/health", self.base);
        let poll = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .build()
            .expect("HTTP client");
        loop {
            if let Ok(r) = poll.get(&health).send().await {
                if r.status().is_success() {
                    return Ok(spawned.elapsed());
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "botmaker serve exited at start ({status}); its log:\n{}",
                    self.log_tail()
                ));
            }
            if spawned.elapsed() > START_LIMIT {
                return Err(format!(
                    "botmaker serve did not answer /health within {START_LIMIT:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the process gracefully (SIGTERM) and waits for it; bots keep running.
    pub async fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if self.paused {
            signal(child.id(), "-CONT")?;
            self.paused = false;
        }
        signal(child.id(), "-TERM")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("botmaker serve did not exit within 30 s of SIGTERM".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Freezes the process (SIGSTOP): it uses no CPU and makes no Docker calls.
    pub fn pause(&mut self) -> Result<(), String> {
        let pid = self.pid().ok_or("server not running")?;
        signal(pid, "-STOP")?;
        self.paused = true;
        Ok(())
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&mut self) -> Result<(), String> {
        let pid = self.pid().ok_or("server not running")?;
        signal(pid, "-CONT")?;
        self.paused = false;
        Ok(())
    }

    /// Logs in with the admin password and keeps the session token.
    pub async fn login(&mut self) -> Result<(), String> {
        let (status, body) = self
            .call_as(
                None,
                Method::POST,
                "/api/login",
                Some(&json!({ "password": PASSWORD })),
            )
            .await?;
        if status != 200 {
            return Err(format!("login failed: {status} {body}"));
        }
        self.token = body["token"]
            .as_str()
            .ok_or("login answered without a token")?
            .to_string();
        Ok(())
    }

    /// A request with the session token; the status and the JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        self.call_as(Some(&self.token), method, path, body).await
    }

    /// Like [`call`](Self::call), failing unless the status is `want`.
    pub async fn expect(
        &self,
        want: u16,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let (status, v) = self.call(method.clone(), path, body).await?;
        if status == want {
            Ok(v)
        } else {
            Err(format!(
                "{method} {path}: expected {want}, got {status}: {v}"
            ))
        }
    }

    /// `GET path` with the session token, timed from sending to the last byte of the body
    /// (which is not parsed).
    pub async fn timed_get(&self, path: &str) -> Result<(Duration, u16, bytes::Bytes), String> {
        let req = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        timed(req, path).await
    }

    /// `GET path` of the dashboard with the session as its cookie, timed like
    /// [`timed_get`](Self::timed_get). Redirects are not followed: a redirect to the login
    /// page is a failure to measure, not a page.
    pub async fn timed_page(&self, path: &str) -> Result<(Duration, u16, bytes::Bytes), String> {
        let req = self
            .pages
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("botmaker_session={}", self.token));
        timed(req, path).await
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, v))
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
