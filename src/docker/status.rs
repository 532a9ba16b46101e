//! What Docker says about a bot's container: [`ContainerStatus`] from one inspect,
//! [`ContainerInfo`] from the list call.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::config::Protocol;
use super::labels::LABEL_BOT_ID;

/// A container port as Docker published it on the host (`docker port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundPort {
    /// Port inside the container.
    pub container: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// Host address it is bound to.
    pub host_ip: String,
    /// Host port, the one Docker picked when none was asked for.
    pub host: u16,
}

impl BoundPort {
    /// From an inspect's `NetworkSettings.Ports` (`"8080/tcp" -> [{HostIp, HostPort}]`).
    fn from_port_map(map: Option<bollard::models::PortMap>) -> Vec<Self> {
        let mut out: Vec<Self> = map
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(key, bindings)| {
                let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                let container = port.parse::<u16>().ok();
                let protocol = if proto == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                bindings
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(move |b| {
                        Some(Self {
                            container: container?,
                            protocol,
                            host_ip: b.host_ip.unwrap_or_default(),
                            host: b.host_port?.parse().ok()?,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| {
            (a.container, &a.host_ip, a.host).cmp(&(b.container, &b.host_ip, b.host))
        });
        out
    }

    /// From a list call's `Ports` (only those published on the host).
    fn from_summaries(ports: Option<Vec<bollard::models::PortSummary>>) -> Vec<Self> {
        use bollard::models::PortSummaryTypeEnum;
        let mut out: Vec<Self> = ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some(Self {
                    container: p.private_port,
                    protocol: if p.typ == Some(PortSummaryTypeEnum::UDP) {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                    host_ip: p.ip.unwrap_or_default(),
                    host: p.public_port?,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.container, &a.host_ip, a.host).cmp(&(b.container, &b.host_ip, b.host))
        });
        out.dedup();
        out
    }
}

/// Docker's lifecycle state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created and never started: its first `start` is still to come.
    Created,
    /// Its main process is running.
    Running,
    /// Frozen by `docker pause`. botmaker never pauses a bot, so someone else did.
    Paused,
    /// Waiting for its restart policy to start it again.
    Restarting,
    /// In the middle of a removal: gone in a moment (a second removal gets 409).
    Removing,
    /// Exited (see the exit code).
    Exited,
    /// Defunct: Docker could not remove or stop it cleanly.
    Dead,
    /// A state this version of botmaker does not know.
    Unknown,
}

impl ContainerState {
    /// Parses Docker's state string (`running`, `exited`, ...).
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }
}

/// Result of the container's Docker HEALTHCHECK.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[schema(as = BotHealth)]
pub enum Health {
    /// No healthcheck is configured.
    #[default]
    None,
    /// Within the start period, no verdict yet.
    Starting,
    /// The last probes passed.
    Healthy,
    /// Too many probes in a row failed.
    Unhealthy,
    /// Alive but not fully serving: botmaker's probe found it not ready, or a configured
    /// channel that cannot run. Docker never reports this; botmaker's probes do.
    Degraded,
}

impl Health {
    /// Parses Docker's health status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "starting" => Self::Starting,
            "healthy" => Self::Healthy,
            "unhealthy" => Self::Unhealthy,
            _ => Self::None,
        }
    }

    /// Reads health from the list call's status text ("Up 5 minutes (healthy)"): API 1.41 has
    /// no health field in the list, and inspecting every container would cost N calls.
    pub fn from_status_text(status: &str) -> Self {
        if status.ends_with("(healthy)") {
            Self::Healthy
        } else if status.ends_with("(unhealthy)") {
            Self::Unhealthy
        } else if status.ends_with("(health: starting)") {
            Self::Starting
        } else {
            Self::None
        }
    }
}

/// The state of one bot's container, from `docker inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerStatus {
    /// Full 64-hex container id: the same across restarts, new with every recreate.
    pub id: String,
    /// Docker's lifecycle state.
    pub state: ContainerState,
    /// Whether the process is running (also true while paused or restarting-in-progress).
    pub running: bool,
    /// Exit code of the last run; `None` if it never exited.
    pub exit_code: Option<i64>,
    /// Docker's error text for the last start, if it failed.
    pub error: Option<String>,
    /// When the current (or last) run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The Docker HEALTHCHECK verdict (`none` without one; botmaker's own HTTP probe is
    /// separate).
    pub health: Health,
    /// How often Docker restarted it under its restart policy.
    pub restart_count: i64,
    /// Whether the kernel's OOM killer ended the last run.
    pub oom_killed: bool,
    /// Id of the image the container runs (`sha256:...`).
    pub image_id: String,
    /// The container's address on its first network, while it runs (for probes).
    pub ip_address: Option<String>,
    /// Its published ports as Docker bound them, while it runs.
    pub ports: Vec<BoundPort>,
    /// The Swarm node that runs (or last ran) it; `None` on the Docker backend.
    pub node: Option<TaskNode>,
}

/// The Swarm node a bot's task is on, as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskNode {
    /// Its host name (its id if the manager knows no host name).
    pub name: String,
    /// `ready`, `down`, `disconnected` or `unknown`.
    pub state: String,
}

impl TaskNode {
    /// Whether the manager hears from the node: a bot on a node that is not `ready` is out of
    /// reach, whatever its task's last reported state.
    pub fn is_ready(&self) -> bool {
        self.state == "ready"
    }
}

impl ContainerStatus {
    /// A running container `id` with nothing else known: the base tests change with `..`.
    #[cfg(test)]
    pub(crate) fn running_for_test(id: &str) -> Self {
        Self {
            id: id.into(),
            state: ContainerState::Running,
            running: true,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            health: Health::None,
            restart_count: 0,
            oom_killed: false,
            image_id: "sha256:x".into(),
            ip_address: None,
            ports: Vec::new(),
            node: None,
        }
    }

    pub(crate) fn from_inspect(r: bollard::models::ContainerInspectResponse) -> Self {
        let s = r.state.unwrap_or_default();
        let state = s
            .status
            .map(|st| ContainerState::parse(st.as_ref()))
            .unwrap_or(ContainerState::Unknown);
        let finished_at = s.finished_at.as_deref().and_then(parse_time);
        Self {
            id: r.id.unwrap_or_default(),
            state,
            running: s.running.unwrap_or(false),
            // Docker reports 0 for a container that never ran; only a finished run has a code.
            exit_code: if finished_at.is_some() && !matches!(state, ContainerState::Running) {
                s.exit_code
            } else {
                None
            },
            error: s.error.filter(|e| !e.is_empty()),
            started_at: s.started_at.as_deref().and_then(parse_time),
            finished_at,
            health: s
                .health
                .and_then(|h| h.status)
                .map(|h| Health::parse(h.as_ref()))
                .unwrap_or_default(),
            restart_count: r.restart_count.unwrap_or(0),
            oom_killed: s.oom_killed.unwrap_or(false),
            image_id: r.image.unwrap_or_default(),
            ports: BoundPort::from_port_map(
                r.network_settings.as_ref().and_then(|n| n.ports.clone()),
            ),
            node: None,
            ip_address: r
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.into_values().find_map(|e| e.ip_address))
                .filter(|ip| !ip.is_empty()),
        }
    }
}

/// One managed container, as the list call reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerInfo {
    /// Full 64-hex container id: the same across restarts, new with every recreate.
    pub id: String,
    /// Container name without the leading `/`.
    pub name: String,
    /// The `botmaker.bot-id` label (kept as text: a container made by hand could carry any).
    pub bot_id: String,
    /// Lifecycle state, from the list call (no inspect per container).
    pub state: ContainerState,
    /// Docker's human status, e.g. "Up 2 hours (healthy)" or "Exited (1) 3 seconds ago".
    pub status: String,
    /// HEALTHCHECK verdict, read from `status`. Podman's list leaves it out of `status`, so
    /// there it is `none`; [`ContainerStatus`] (an inspect) has it on both engines.
    pub health: Health,
    /// Exit code of an exited container, read from `status` ("Exited (3) 2 minutes ago").
    pub exit_code: Option<i64>,
    /// Image reference the container was created from, in Docker's short form
    /// (`botmaker-testbot:1`, not Podman's `docker.io/library/botmaker-testbot:1`).
    pub image: String,
    /// Id of that image: differs from the tag's current image when the tag was rebuilt, so
    /// it tells a container that runs a stale build.
    pub image_id: String,
    /// When the container was created (the list call reports whole seconds).
    pub created: Option<DateTime<Utc>>,
    /// Its published ports as Docker bound them, while it runs.
    pub ports: Vec<BoundPort>,
    /// The Swarm node that runs (or last ran) it; `None` on the Docker backend.
    pub node: Option<TaskNode>,
}

impl ContainerInfo {
    pub(crate) fn from_summary(c: bollard::models::ContainerSummary) -> Self {
        let status = c.status.unwrap_or_default();
        let ports = BoundPort::from_summaries(c.ports.clone());
        Self {
            ports,
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            bot_id: c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_BOT_ID).cloned())
                .unwrap_or_default(),
            state: c
                .state
                .map(|s| ContainerState::parse(s.as_ref()))
                .unwrap_or(ContainerState::Unknown),
            health: Health::from_status_text(&status),
            exit_code: exit_code_from_status_text(&status),
            status,
            image: familiar_image(c.image.unwrap_or_default()),
            image_id: c.image_id.unwrap_or_default(),
            created: c.created.and_then(|t| DateTime::from_timestamp(t, 0)),
            node: None,
        }
    }
}

/// Docker's short name for an image on Docker Hub: `docker.io/library/x:1` → `x:1`,
/// `docker.io/org/x:1` → `org/x:1`. Podman reports the long form that Docker abbreviates; any
/// other registry (Podman's `localhost/` for local builds included) is kept as it is.
fn familiar_image(image: String) -> String {
    let Some(rest) = image.strip_prefix("docker.io/") else {
        return image;
    };
    let rest = rest
        .strip_prefix("library/")
        .filter(|r| !r.contains('/'))
        .unwrap_or(rest);
    rest.to_string()
}

/// "Exited (3) 2 minutes ago" → 3.
fn exit_code_from_status_text(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

/// Docker writes `0001-01-01T00:00:00Z` for "never"; that is `None` here.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_long_image_names_read_as_dockers_short_ones() {
        let f = |s: &str| familiar_image(s.into());
        assert_eq!(
            f("docker.io/library/botmaker-testbot:1"),
            "botmaker-testbot:1"
        );
        assert_eq!(
            f("docker.io/openclaw/openclaw:2026.7.1"),
            "openclaw/openclaw:2026.7.1"
        );
        assert_eq!(f("botmaker-testbot:1"), "botmaker-testbot:1");
        assert_eq!(f("localhost/mybot:1"), "localhost/mybot:1");
        assert_eq!(
            f("ghcr.io/openclaw/openclaw:1"),
            "ghcr.io/openclaw/openclaw:1"
        );
        // `library/` is Docker Hub's namespace only for one-part names.
        assert_eq!(f("docker.io/library/a/b:1"), "library/a/b:1");
    }

    #[test]
    fn health_from_list_status_text() {
        assert_eq!(
            Health::from_status_text("Up 2 hours (healthy)"),
            Health::Healthy
        );
        assert_eq!(
            Health::from_status_text("Up 1 second (unhealthy)"),
            Health::Unhealthy
        );
        assert_eq!(
            Health::from_status_text("Up 1 second (health: starting)"),
            Health::Starting
        );
        assert_eq!(
            Health::from_status_text("Exited (0) 1 minute ago"),
            Health::None
        );
    }

    #[test]
    fn exit_code_from_list_status_text() {
        assert_eq!(
            exit_code_from_status_text("Exited (3) 2 minutes ago"),
            Some(3)
        );
        assert_eq!(
            exit_code_from_status_text("Exited (0) 1 second ago"),
            Some(0)
        );
        assert_eq!(exit_code_from_status_text("Up 2 hours"), None);
        assert_eq!(exit_code_from_status_text("Created"), None);
    }

    #[test]
    fn zero_time_is_none() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert!(parse_time("2026-11-26T09:00:00.123456789Z").is_some());
        assert_eq!(parse_time("garbage"), None);
    }
}
