//! The four ways to drive one bot through its lifecycle, doing the same thing to the engine:
//! the raw Engine API (the floor), `DockerService`, botmaker's HTTP API, and the `docker` CLI.
//!
//! Every container, whichever way made it, gets the same create request: the one botmaker's
//! `generic` template renders (secrets read-only at /run/secrets, a workspace at /workspace,
//! an init process, dropped capabilities, rotated logs, restart `unless-stopped`). The raw
//! floor sends `ContainerConfig::to_create_body` serialized by hand, the CLI the equivalent
//! flags, so the daemon does identical work and only the client side differs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use botmaker::BotId;
use botmaker::docker::{
    BindMount, ContainerConfig, DockerService, LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED,
    container_name,
};
use reqwest::Method;
use serde_json::json;

use super::engine::{Conn, Engine};
use super::server::ServerProc;

/// Grace period of every stop, in seconds: botmaker's default, passed explicitly everywhere.
pub const GRACE_SECS: u64 = 10;

/// A lifecycle operation on one bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateStart,
    Stop,
    Start,
    Restart,
    Remove,
}

/// In lifecycle order: each leaves the bot ready for the next.
pub const OPS: [Op; 5] = [
    Op::CreateStart,
    Op::Stop,
    Op::Start,
    Op::Restart,
    Op::Remove,
];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateStart => "create+start",
            Op::Stop => "stop",
            Op::Start => "start",
            Op::Restart => "restart",
            Op::Remove => "remove",
        }
    }

    /// `docker` CLI invocations it takes (each pays the CLI's start-up).
    pub fn cli_invocations(self) -> usize {
        if self == Op::Remove { 2 } else { 1 }
    }
}

/// How a bot is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Raw,
    /// The raw floor a second time: an A/A control, showing the noise of the comparison.
    RawAgain,
    Service,
    Http,
    Cli,
}

pub const WAYS: [Way; 5] = [Way::Raw, Way::RawAgain, Way::Service, Way::Http, Way::Cli];

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Raw => "raw Engine API",
            Way::RawAgain => "raw Engine API again (A/A control)",
            Way::Service => "DockerService",
            Way::Http => "HTTP API",
            Way::Cli => "docker CLI",
        }
    }
}

/// Bots driven outside the server: by the raw API, `DockerService` and the CLI, all under the
/// floor instance label, with secrets and workspace directories prepared as botmaker would.
pub struct Floor {
    pub engine: Engine,
    pub docker: DockerService,
    pub image: String,
    pub instance: String,
    pub dir: PathBuf,
}

fn mkdir_private(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", p.display()))
}

impl Floor {
    /// The container config botmaker's `generic` template renders for a bot with env
    /// `TICK_MS=0`, its directories created (outside any timing: botmaker's HTTP path creates
    /// them itself, and that is part of its cost).
    pub fn config(&self, bot: &BotId) -> Result<ContainerConfig, String> {
        let secrets = self.dir.join("secrets").join(bot.as_str());
        let workspace = self.dir.join("workspaces").join(bot.as_str());
        mkdir_private(&secrets)?;
        mkdir_private(&workspace)?;
        let mut c = ContainerConfig::new(self.image.clone(), secrets);
        c.env = BTreeMap::from([("TICK_MS".into(), "0".into())]);
        c.mounts.push(BindMount {
            source: workspace,
            target: "/workspace".into(),
            read_only: false,
        });
        c.init = true;
        Ok(c)
    }

    /// The create request body, byte for byte what bollard would send for `config`.
    pub fn create_body(&self, bot: &BotId, config: &ContainerConfig) -> Vec<u8> {
        serde_json::to_vec(&config.to_create_body(&self.instance, bot)).expect("serializable")
    }

    /// Removes the directories of `bot`.
    pub fn forget(&self, bot: &BotId) {
        let _ = std::fs::remove_dir_all(self.dir.join("secrets").join(bot.as_str()));
        let _ = std::fs::remove_dir_all(self.dir.join("workspaces").join(bot.as_str()));
    }

    /// One operation through the raw Engine API. `body` is the prepared create body.
    pub async fn raw(
        &self,
        conn: &mut Conn,
        op: Op,
        bot: &BotId,
        body: &[u8],
    ) -> Result<(), String> {
        let name = container_name(bot);
        match op {
            Op::CreateStart => {
                conn.call(
                    "POST",
                    &format!("/containers/create?name={name}"),
                    Some(body),
                )
                .await?
                .ok("create")?;
                conn.call("POST", &format!("/containers/{name}/start"), None)
                    .await?
                    .ok("start")?;
            }
            Op::Stop => {
                conn.call(
                    "POST",
                    &format!("/containers/{name}/stop?t={GRACE_SECS}"),
                    None,
                )
                .await?
                .ok("stop")?;
            }
            Op::Start => {
                conn.call("POST", &format!("/containers/{name}/start"), None)
                    .await?
                    .ok("start")?;
            }
            Op::Restart => {
                conn.call(
                    "POST",
                    &format!("/containers/{name}/restart?t={GRACE_SECS}"),
                    None,
                )
                .await?
                .ok("restart")?;
            }
            // The same outcome as botmaker's remove: a graceful stop, then the removal.
            Op::Remove => {
                conn.call(
                    "POST",
                    &format!("/containers/{name}/stop?t={GRACE_SECS}"),
                    None,
                )
                .await?
                .ok("stop")?;
                conn.call("DELETE", &format!("/containers/{name}?force=true"), None)
                    .await?
                    .ok("remove")?;
            }
        }
        Ok(())
    }

    /// One operation through `DockerService`.
    pub async fn service(
        &self,
        op: Op,
        bot: &BotId,
        config: &ContainerConfig,
    ) -> Result<(), String> {
        let grace = Some(Duration::from_secs(GRACE_SECS));
        let d = &self.docker;
        let r = match op {
            Op::CreateStart => match d.create_container(bot, config).await {
                Ok(_) => d.start_container(bot).await,
                Err(e) => Err(e),
            },
            Op::Stop => d.stop_container(bot, grace).await,
            Op::Start => d.start_container(bot).await,
            Op::Restart => d.restart_container(bot, grace).await,
            Op::Remove => d.remove_container(bot, grace).await.map(drop),
        };
        r.map_err(|e| format!("DockerService {}: {e}", op.name()))
    }

    /// The `docker run` arguments equivalent to `config`'s create request.
    fn run_args(&self, bot: &BotId, config: &ContainerConfig) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "-d".into()];
        let mut push = |k: &str, v: String| {
            a.push(k.into());
            a.push(v);
        };
        push("--name", container_name(bot));
        push("--hostname", bot.to_string());
        push("--label", format!("{LABEL_MANAGED}=true"));
        push("--label", format!("{LABEL_BOT_ID}={bot}"));
        push("--label", format!("{LABEL_INSTANCE}={}", self.instance));
        push(
            "--mount",
            format!(
                "type=bind,source={},target=/run/secrets,readonly",
                config.secrets_dir.display()
            ),
        );
        for m in &config.mounts {
            push(
                "--mount",
                format!(
                    "type=bind,source={},target={}{}",
                    m.source.display(),
                    m.target,
                    if m.read_only { ",readonly" } else { "" }
                ),
            );
        }
        push("--restart", "unless-stopped".into());
        push("--cap-drop", "ALL".into());
        push("--security-opt", "no-new-privileges:true".into());
        push("--log-driver", "json-file".into());
        push("--log-opt", "max-size=10m".into());
        push("--log-opt", "max-file=3".into());
        for (k, v) in &config.env {
            push("-e", format!("{k}={v}"));
        }
        a.push("--init".into());
        a.push(config.image.clone());
        a
    }

    /// One operation through the `docker` CLI.
    pub async fn cli(&self, op: Op, bot: &BotId, config: &ContainerConfig) -> Result<(), String> {
        let name = container_name(bot);
        let grace = GRACE_SECS.to_string();
        match op {
            Op::CreateStart => docker_cli(&self.run_args(bot, config)).await,
            Op::Stop => docker_cli(&["stop", "-t", &grace, &name]).await,
            Op::Start => docker_cli(&["start", &name]).await,
            Op::Restart => docker_cli(&["restart", "-t", &grace, &name]).await,
            Op::Remove => {
                docker_cli(&["stop", "-t", &grace, &name]).await?;
                docker_cli(&["rm", &name]).await
            }
        }
    }
}

/// Runs `docker <args>`, failing with its stderr.
pub async fn docker_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<(), String> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running docker: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker {}: {}",
            args.first()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The create request of a fixture bot through the HTTP API.
pub fn create_request(id: &str, image: &str, start: bool, probe: bool) -> serde_json::Value {
    let mut body = json!({
        "id": id,
        "image": image,
        "env": { "TICK_MS": "0" },
        "start": start,
    });
    if probe {
        body["health_check"] = json!({ "port": 8080, "interval_secs": 30 });
    }
    body
}

/// One operation through botmaker's HTTP API.
pub async fn http(server: &ServerProc, op: Op, id: &str, image: &str) -> Result<(), String> {
    let action = |a: &str| format!("/api/bots/{id}/{a}");
    match op {
        Op::CreateStart => server
            .expect(
                201,
                Method::POST,
                "/api/bots",
                Some(&create_request(id, image, true, false)),
            )
            .await
            .map(drop),
        Op::Stop => server
            .expect(200, Method::POST, &action("stop"), None)
            .await
            .map(drop),
        Op::Start => server
            .expect(200, Method::POST, &action("start"), None)
            .await
            .map(drop),
        Op::Restart => server
            .expect(200, Method::POST, &action("restart"), None)
            .await
            .map(drop),
        Op::Remove => server
            .expect(200, Method::DELETE, &format!("/api/bots/{id}"), None)
            .await
            .map(drop),
    }
}
