//! The daemon's event stream, narrowed to this instance's bot containers.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::stream::{BoxStream, StreamExt};
use serde::Serialize;

use super::DockerService;
use super::error::{ContainerError, Op, classify};
use super::labels::{LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED};
use super::status::Health;

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The container was created (not started yet).
    Create,
    /// Started (also after a restart by the restart policy).
    Start,
    /// The process exited.
    Die {
        /// The process's exit code (137 after SIGKILL, 143 after an unhandled SIGTERM);
        /// `None` if Docker gave none.
        exit_code: Option<i64>,
    },
    /// Stopped by a stop request (its `die` came just before).
    Stop,
    /// A signal was sent (by a stop, a kill or a forced removal); a `die` follows if it
    /// ended the process.
    Kill,
    /// Restarted by a restart request. The restart policy reports `die` and `start` instead.
    Restart,
    /// The kernel's OOM killer hit it.
    Oom,
    /// Its HEALTHCHECK verdict changed.
    HealthStatus {
        /// The verdict it changed to.
        health: Health,
    },
    /// The container was removed: the bot has no container until it is recreated.
    Destroy,
    /// Any other action (pause, rename, exec, ...).
    Other {
        /// Docker's action name.
        action: String,
    },
}

/// One event about a bot's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerEvent {
    /// The `botmaker.bot-id` label.
    pub bot_id: String,
    /// The container's full id: tells a recreated container's events from its predecessor's.
    pub container_id: String,
    /// What happened, parsed from Docker's action.
    pub kind: EventKind,
    /// When, in nanoseconds since the Unix epoch: pass it back as `since` to resume.
    pub time_nanos: i64,
}

impl EventKind {
    fn parse(action: &str, attributes: &HashMap<String, String>) -> Self {
        match action {
            "create" => Self::Create,
            "start" => Self::Start,
            "die" => Self::Die {
                exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            },
            "stop" => Self::Stop,
            "kill" => Self::Kill,
            "restart" => Self::Restart,
            "oom" => Self::Oom,
            "destroy" => Self::Destroy,
            // Docker reports "health_status: healthy" (with the verdict in the action).
            a if a.starts_with("health_status") => Self::HealthStatus {
                health: Health::parse(a.rsplit(": ").next().unwrap_or_default().trim()),
            },
            a => Self::Other { action: a.into() },
        }
    }
}

impl DockerService {
    /// Events of this instance's containers from now on, or from `since_nanos` (a
    /// `time_nanos` already seen) so that a reconnecting watcher misses nothing.
    ///
    /// The request is sent when the stream is first polled; pass `since_nanos` to cover what
    /// happens before that. The stream ends or errors when the daemon goes away; the caller
    /// reconnects with the last `time_nanos` it saw.
    pub fn events(
        &self,
        since_nanos: Option<i64>,
    ) -> BoxStream<'static, Result<ContainerEvent, ContainerError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![
                    format!("{LABEL_MANAGED}=true"),
                    format!("{LABEL_INSTANCE}={}", self.instance),
                ],
            ),
        ]);
        let mut builder = EventsOptionsBuilder::new().filters(&filters);
        if let Some(n) = since_nanos {
            let since = format!(
                "{}.{:09}",
                n.div_euclid(1_000_000_000),
                n.rem_euclid(1_000_000_000)
            );
            builder = builder.since(&since);
        }
        let host = self.host.clone();
        self.docker
            .events(Some(builder.build()))
            .filter_map(move |r| {
                let item = match r {
                    Ok(msg) => to_event(msg).map(Ok),
                    Err(e) => Some(Err(classify(&host, Op::Events, "", e))),
                };
                std::future::ready(item)
            })
            .boxed()
    }
}

fn to_event(msg: bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = msg.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    let action = msg.action?;
    Some(ContainerEvent {
        bot_id: attributes.get(LABEL_BOT_ID).cloned().unwrap_or_default(),
        container_id: actor.id.unwrap_or_default(),
        kind: EventKind::parse(&action, &attributes),
        time_nanos: msg
            .time_nano
            .or(msg.time.map(|t| t * 1_000_000_000))
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions() {
        let attrs = HashMap::from([("exitCode".to_string(), "3".to_string())]);
        assert_eq!(
            EventKind::parse("die", &attrs),
            EventKind::Die { exit_code: Some(3) }
        );
        assert_eq!(
            EventKind::parse("health_status: unhealthy", &attrs),
            EventKind::HealthStatus {
                health: Health::Unhealthy
            }
        );
        assert_eq!(EventKind::parse("oom", &attrs), EventKind::Oom);
        assert_eq!(
            EventKind::parse("exec_start: sh", &attrs),
            EventKind::Other {
                action: "exec_start: sh".into()
            }
        );
    }
}
