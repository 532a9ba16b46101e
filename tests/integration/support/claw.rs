//! One real-OpenClaw bot as the tests drive it, on either backend: its view, its gateway at
//! the address botmaker's probes use (the container's on Docker; on Swarm the task's
//! `docker_gwbridge` address), health with the gateway's own `/readyz` as witness, its secrets
//! as botmaker stores them, and the gateway's authenticated calls.

use std::time::{Duration, Instant};

use botmaker::BotId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::openclaw::{HEALTHY_BOUND, client};
use super::server::TestServer;

/// OpenClaw's gateway port.
pub const GATEWAY: u16 = 18789;

/// The bot's `health`.
pub fn health(v: &Value) -> &str {
    v["health"].as_str().unwrap_or_default()
}

/// One openclaw bot of the test's server.
pub struct Claw<'a> {
    /// The server that runs it.
    pub s: &'a TestServer,
    /// Its id.
    pub id: String,
}

impl Claw<'_> {
    /// Its container's (Docker) or service's (Swarm) name.
    pub fn container(&self) -> String {
        format!("botmaker-{}", self.id)
    }

    /// `GET /api/bots/{id}`, which must answer.
    pub async fn view(&self) -> Value {
        let (status, v) = self.s.get(&format!("/api/bots/{}", self.id)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// The current run's gateway, at the address botmaker probes (it changes with each run).
    pub async fn gateway(&self) -> Option<String> {
        let id = BotId::new(self.id.clone()).ok()?;
        let status = self.s.h.docker.container_status(&id).await.ok()??;
        let ip = status.ip_address.filter(|ip| !ip.is_empty())?;
        Some(format!("http://{ip}:{GATEWAY}"))
    }

    /// Whether the gateway answers `/readyz`.
    pub async fn gateway_ready(&self) -> bool {
        let Some(base) = self.gateway().await else {
            return false;
        };
        let res = client()
            .get(format!("{base}/readyz"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        res.is_ok_and(|r| r.status().is_success())
    }

    /// The last 40 lines of the bot's logs through the API, for a failure message.
    pub async fn log_tail(&self) -> String {
        let (status, v) = self
            .s
            .get(&format!("/api/bots/{}/logs?tail=40", self.id))
            .await;
        let lines: Vec<&str> = v["lines"]
            .as_array()
            .map(|l| l.iter().filter_map(|l| l["message"].as_str()).collect())
            .unwrap_or_default();
        format!(
            "last lines of {} ({status}):\n{}",
            self.id,
            lines.join("\n")
        )
    }

    /// Polls until botmaker says `healthy`, checking that whenever it does, the gateway
    /// really answers `/readyz` (health belongs to the current run). Returns how long it took.
    pub async fn until_healthy(&self, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            let v = self.view().await;
            match health(&v) {
                "healthy" => {
                    assert!(
                        self.gateway_ready().await,
                        "{what}: botmaker says healthy but the gateway does not answer: {v}"
                    );
                    return started.elapsed();
                }
                "none" | "starting" => {}
                other => panic!(
                    "{what}: health {other} on the way to healthy: {v}\n{}",
                    self.log_tail().await
                ),
            }
            if started.elapsed() >= HEALTHY_BOUND {
                panic!(
                    "{what}: not healthy within {HEALTHY_BOUND:?}: {v}\n{}",
                    self.log_tail().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A secret's value as botmaker's store holds it.
    pub fn stored_secret(&self, name: &str) -> String {
        let path = self.s.data.path().join("secrets").join(&self.id).join(name);
        std::fs::read_to_string(path).unwrap()
    }

    /// `POST /v1/chat/completions` on the gateway with `token`.
    pub async fn chat(&self, token: &str, prompt: &str) -> reqwest::Response {
        let base = self.gateway().await.expect("the gateway has an address");
        client()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(token)
            .json(&json!({
                "model": "openclaw:support",
                "messages": [{ "role": "user", "content": prompt }],
            }))
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `GET /v1/models` on the gateway with `token`: a cheap authenticated call.
    pub async fn models_status(&self, token: &str) -> Option<StatusCode> {
        let base = self.gateway().await?;
        let res = client()
            .get(format!("{base}/v1/models"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        Some(res.status())
    }

    /// Runs `cmd` in the bot as its own user through botmaker's exec: (exit code, stdout,
    /// stderr).
    pub async fn exec(&self, cmd: &[&str]) -> (i64, String, String) {
        let (status, v) = self
            .s
            .post(
                &format!("/api/bots/{}/exec", self.id),
                json!({ "cmd": cmd, "timeout_secs": 60 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        (
            v["exit_code"].as_i64().unwrap_or(-1),
            text("stdout"),
            text("stderr"),
        )
    }
}
