//! A real `botmaker serve` in the test process: own data directory, own instance label, a
//! random port, the real Docker Engine behind it. Dropping it stops the server; the inner
//! [`Harness`] then removes the containers it made.

use std::path::PathBuf;
use std::time::Duration;

use botmaker::config::ServeConfig;
use botmaker::serve::Server;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

use super::Harness;

/// The admin password every test server uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server and a logged-in client.
pub struct TestServer {
    /// Docker side: instance namespace, fixture image, cleanup.
    pub h: Harness,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// A session token.
    pub token: String,
    /// The data directory.
    pub data: TempDir,
    /// The server's authentication state (login limits, argon2 verification count).
    pub auth: std::sync::Arc<botmaker::access::Auth>,
    /// The server's bot service (watch cache, observed fleet).
    pub bots: botmaker::bots::BotService,
    /// Where its LLM proxy listens (the default bridge's gateway, any free port).
    pub llm_proxy: Option<std::net::SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Settings for a test server in `data` under `instance`.
pub fn config(data: PathBuf, instance: &str) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        docker_host: super::engine_host(),
        backend: botmaker::docker::Backend::Docker,
        swarm_volume_driver: None,
        instance: instance.to_string(),
        admin_password: Some(PASSWORD.to_string()),
        admin_password_file: None,
        session_hours: 24,
        session_seconds: None,
        public_url: None,
        trust_proxy: false,
        stop_timeout: 5,
        stats_interval: 1,
        resync_interval: 2,
        crash_loop_restarts: 3,
        crash_loop_window: 300,
        audit_retention_days: botmaker::audit::DEFAULT_RETENTION_DAYS,
        allow_host_network: false,
        // Any free port on the default bridge's gateway: parallel test servers each get one.
        llm_proxy_listen: botmaker::llm::ProxyListen::Auto { port: 0 },
        log: "warn".into(),
        backup: Default::default(),
        alerts: Default::default(),
        log_format: botmaker::config::LogFormat::Text,
    }
}

impl TestServer {
    /// Starts a server with a fresh data directory, on the engine the suite runs against,
    /// and logs in.
    pub async fn start() -> Self {
        Self::start_on(Harness::new().await).await
    }

    /// Starts a server driving the daemon of `h` (which may be a private engine).
    pub async fn start_on(h: Harness) -> Self {
        let data = tempfile::Builder::new()
            .prefix("botmaker-data")
            .tempdir()
            .unwrap();
        let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
        cfg.docker_host = Some(h.docker.host().to_string());
        Self::start_with(h, data, cfg).await
    }

    /// Starts a server against a fresh simulated engine that counts every request (an image
    /// `img:sim` on it, no resync during the test), once its watch cache is synced.
    pub async fn start_simulated() -> (Self, botmaker_fake_engine::FakeEngine) {
        use botmaker_fake_engine::{FakeConfig, FakeEngine};
        let h = Harness::new().await;
        let fake = FakeEngine::start(FakeConfig::default()).await.unwrap();
        fake.add_image("img:sim");
        let data = tempfile::Builder::new()
            .prefix("botmaker-data")
            .tempdir()
            .unwrap();
        let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
        cfg.docker_host = Some(fake.host().to_string());
        cfg.resync_interval = 3600;
        let s = Self::start_with(h, data, cfg).await;
        s.wait_cache_fresh().await;
        (s, fake)
    }

    /// Starts a server from `cfg`, reusing `h` and `data`.
    pub async fn start_with(h: Harness, data: TempDir, cfg: ServeConfig) -> Self {
        let server = Server::prepare(cfg).await.expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let auth = server.auth();
        let bots = server.bots();
        let llm_proxy = server.llm_proxy_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut s = Self {
            h,
            base,
            client,
            token: String::new(),
            data,
            auth,
            bots,
            llm_proxy,
            stop: Some(stop),
            task: Some(task),
        };
        s.token = s.login().await;
        s
    }

    /// Stops the server (bots keep running) and starts a new one on the same data and
    /// instance. The old session token stays in `token`.
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let token = self.token.clone();
        let mut cfg = config(self.data.path().to_path_buf(), self.h.docker.instance());
        cfg.docker_host = Some(self.h.docker.host().to_string());
        let h = std::mem::replace(&mut self.h, Harness::detached().await);
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        let mut s = Self::start_with(h, data, cfg).await;
        s.token = token;
        s
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// Logs in with the admin password and returns the session token.
    pub async fn login(&self) -> String {
        let (status, body) = self
            .call_as(
                None,
                Method::POST,
                "/api/login",
                Some(serde_json::json!({ "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the session token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), method, path, body).await
    }

    /// A request with the given bearer token (or none).
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// GET with the session token.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// POST with the session token.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A create body for a fixture bot with a fresh id.
    pub fn bot_body(&self, name: &str) -> Value {
        serde_json::json!({
            "id": self.h.bot(name).to_string(),
            "image": self.h.image,
            "env": { "TICK_MS": "200" },
        })
    }

    /// Creates a fixture bot and returns its id.
    pub async fn create_bot(&self, name: &str) -> String {
        let body = self.bot_body(name);
        let (status, v) = self.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Waits until the watch cache is trusted (synced with Docker), or panics after 60 s.
    pub async fn wait_cache_fresh(&self) {
        super::eventually(
            "the watch cache is synced",
            Duration::from_secs(60),
            || async { self.bots.cache().is_fresh().then_some(()) },
        )
        .await;
    }

    /// Waits until the server has noticed that Docker is gone (its watch cache is no longer
    /// trusted, so reads ask the daemon), or panics after 20 s. It learns that when its event
    /// stream ends, a moment after the daemon: until then reads come from the cache.
    pub async fn wait_cache_stale(&self) {
        super::eventually(
            "the server notices the engine is gone",
            Duration::from_secs(20),
            || async { (!self.bots.cache().is_fresh()).then_some(()) },
        )
        .await;
    }

    /// Polls the bot until `pred` holds for its JSON, or panics after `limit`.
    pub async fn wait_bot(
        &self,
        id: &str,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (status, v) = self.get(&format!("/api/bots/{id}")).await;
            if status == StatusCode::OK && pred(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
