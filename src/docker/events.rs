//! The daemon's event stream, narrowed to this instance's bot containers.
//!
//! Read the same from Docker and Podman, whose events differ in shape: Podman says `remove`
//! where Docker says `destroy`, sends no `stop` after a stop request (its `die` tells), and
//! reports health changes as a bare `health_status` with the verdict outside the fields the
//! API models carry. (Its missing `kill` is put back for botmaker's own stops: see
//! [`super::requested`].) It also ORs label filters on `/events` where Docker ANDs them, so the
//! ownership labels are checked here again on every event.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::stream::{BoxStream, StreamExt};
use serde::Serialize;

use super::error::{ContainerError, Op, classify};
use super::labels::{LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED, is_owned_by};
use super::requested::RequestedStops;
use super::status::Health;
use super::{DockerService, Engine};

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
        /// The verdict it changed to; `None` when the engine does not say (Podman), and the
        /// container's inspect is what tells.
        health: Option<Health>,
    },
    /// The container was removed (Docker's `destroy`, Podman's `remove`): the bot has no
    /// container until it is recreated.
    Destroy,
    /// Any other action (pause, rename, exec, ...).
    Other {
        /// Docker's action name.
        action: String,
    },
    /// On Swarm, a node of the swarm changed (went down, came back, was drained...): every
    /// bot on it may have changed with it. Such an event names no bot (`bot_id` is empty,
    /// `container_id` is the node's id).
    Node {
        /// Docker's action (`update`, `create`, `remove`).
        action: String,
        /// The node's new state when the event says (`ready`, `down`...).
        state: Option<String>,
    },
    /// On Swarm, the bot's task on another node than the manager's is new, in a new state,
    /// or gone from there. No engine event says so: botmaker's poll of the tasks list does
    /// (see `swarm/task_watch.rs`), and `time_nanos` is 0.
    Task {
        /// Swarm's task state (`running`, `failed`, `starting`...), or `gone`.
        state: String,
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
            "destroy" | "remove" => Self::Destroy,
            // Docker reports "health_status: healthy", with the verdict in the action; Podman
            // a bare "health_status", with the verdict in a field of its own.
            "health_status" => Self::HealthStatus { health: None },
            a if a.starts_with("health_status: ") => Self::HealthStatus {
                health: Some(Health::parse(
                    a.trim_start_matches("health_status: ").trim(),
                )),
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
        let since = since_nanos.map(|n| {
            format!(
                "{}.{:09}",
                n.div_euclid(1_000_000_000),
                n.rem_euclid(1_000_000_000)
            )
        });
        if let Some(since) = &since {
            builder = builder.since(since);
        }
        let host = self.host.clone();
        let instance = self.instance.clone();
        // Podman sends no `kill` before the `die` of a stop: put it back for botmaker's own.
        let requested = (self.engine == Engine::Podman).then(|| self.requested.clone());
        let containers = self
            .docker
            .events(Some(builder.build()))
            .flat_map(move |r| {
                let items = match r {
                    Ok(msg) => to_event(msg, &instance)
                        .map(|ev| with_requested_kill(ev, requested.as_ref()))
                        .unwrap_or_default(),
                    Err(e) => vec![Err(classify(&host, Op::Events, "", e))],
                };
                futures_util::stream::iter(items)
            })
            .boxed();
        if self.swarm.is_none() {
            return containers;
        }
        // Node events carry no bot labels, so they need a request of their own: Docker ANDs
        // a `type` filter with the label filters. Tasks on other nodes have no events at all.
        let own_node = self
            .swarm
            .as_ref()
            .map(|s| s.node_id().to_string())
            .unwrap_or_default();
        let swarm_side = futures_util::stream::select(
            self.node_events(since.as_deref()),
            self.remote_task_changes(own_node, super::swarm::TASK_POLL_INTERVAL),
        );
        // The task poll never ends: the whole ends when the containers' stream does (the
        // daemon went away), which is what tells the reconciler to reconnect.
        let until_containers_end = containers
            .map(Some)
            .chain(futures_util::stream::once(async { None }));
        futures_util::stream::select(until_containers_end, swarm_side.map(Some))
            .take_while(|e| std::future::ready(e.is_some()))
            .filter_map(std::future::ready)
            .boxed()
    }

    /// The swarm's node events (Swarm managers only), as [`EventKind::Node`].
    fn node_events(
        &self,
        since: Option<&str>,
    ) -> BoxStream<'static, Result<ContainerEvent, ContainerError>> {
        let filters = HashMap::from([("type".to_string(), vec!["node".to_string()])]);
        let mut builder = EventsOptionsBuilder::new().filters(&filters);
        if let Some(since) = since {
            builder = builder.since(since);
        }
        let host = self.host.clone();
        self.docker
            .events(Some(builder.build()))
            .map(move |r| match r {
                Ok(msg) => Ok(node_event(msg)),
                Err(e) => Err(classify(&host, Op::Events, "", e)),
            })
            .boxed()
    }
}

fn node_event(msg: bollard::models::EventMessage) -> ContainerEvent {
    let actor = msg.actor.unwrap_or_default();
    let attributes = actor.attributes.unwrap_or_default();
    ContainerEvent {
        bot_id: String::new(),
        container_id: actor.id.unwrap_or_default(),
        kind: EventKind::Node {
            action: msg.action.unwrap_or_default(),
            state: attributes.get("state.new").cloned(),
        },
        time_nanos: msg
            .time_nano
            .or(msg.time.map(|t| t * 1_000_000_000))
            .unwrap_or(0),
    }
}

/// `ev`, preceded by the `kill` Docker would have sent when it is a death during one of
/// botmaker's stop or restart requests.
fn with_requested_kill(
    ev: ContainerEvent,
    requested: Option<&RequestedStops>,
) -> Vec<Result<ContainerEvent, ContainerError>> {
    let asked = matches!(ev.kind, EventKind::Die { .. })
        && requested.is_some_and(|r| r.covers(&ev.bot_id, ev.time_nanos));
    if asked {
        let kill = ContainerEvent {
            kind: EventKind::Kill,
            ..ev.clone()
        };
        vec![Ok(kill), Ok(ev)]
    } else {
        vec![Ok(ev)]
    }
}

/// The event, if it is about a container of `instance`: an event's attributes carry the
/// container's labels.
fn to_event(msg: bollard::models::EventMessage, instance: &str) -> Option<ContainerEvent> {
    let actor = msg.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    if !is_owned_by(Some(&attributes), instance) {
        return None;
    }
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
                health: Some(Health::Unhealthy)
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

    #[test]
    fn podman_remove_and_bare_health_status_are_understood() {
        let attrs = HashMap::new();
        assert_eq!(EventKind::parse("remove", &attrs), EventKind::Destroy);
        assert_eq!(EventKind::parse("destroy", &attrs), EventKind::Destroy);
        assert_eq!(
            EventKind::parse("health_status", &attrs),
            EventKind::HealthStatus { health: None }
        );
        // Podman's bookkeeping actions are noise, as Docker's exec_* are.
        assert!(matches!(
            EventKind::parse("cleanup", &attrs),
            EventKind::Other { .. }
        ));
    }

    fn message(action: &str, labels: &[(&str, &str)]) -> bollard::models::EventMessage {
        bollard::models::EventMessage {
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("c1".into()),
                attributes: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            time_nano: Some(5),
            ..Default::default()
        }
    }

    #[test]
    fn a_podman_death_during_botmakers_stop_reads_as_killed_then_died() {
        let requested = RequestedStops::default();
        let guard = requested.begin("b");
        let die = |time_nanos| ContainerEvent {
            bot_id: "b".into(),
            container_id: "c1".into(),
            kind: EventKind::Die { exit_code: Some(0) },
            time_nanos,
        };
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let kinds = |evs: Vec<Result<ContainerEvent, ContainerError>>| {
            evs.into_iter().map(|e| e.unwrap().kind).collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(with_requested_kill(die(now), Some(&requested))),
            [EventKind::Kill, EventKind::Die { exit_code: Some(0) }]
        );
        drop(guard);
        // A crash a minute later is a crash; Docker (no registry) is left as it speaks.
        assert_eq!(
            kinds(with_requested_kill(
                die(now + 60_000_000_000),
                Some(&requested)
            )),
            [EventKind::Die { exit_code: Some(0) }]
        );
        assert_eq!(
            kinds(with_requested_kill(die(now), None)),
            [EventKind::Die { exit_code: Some(0) }]
        );
    }

    /// Podman 4.3 ORs the two label filters of `/events`: the stream brings every managed
    /// container's events, other installations' included.
    #[test]
    fn podman_ored_label_filters_let_no_other_instances_event_through() {
        let ours = message(
            "die",
            &[
                (LABEL_MANAGED, "true"),
                (LABEL_INSTANCE, "ours"),
                (LABEL_BOT_ID, "b"),
            ],
        );
        let ev = to_event(ours, "ours").expect("our event");
        assert_eq!(ev.bot_id, "b");
        assert_eq!(ev.time_nanos, 5);
        let theirs = message(
            "die",
            &[
                (LABEL_MANAGED, "true"),
                (LABEL_INSTANCE, "theirs"),
                (LABEL_BOT_ID, "b"),
            ],
        );
        assert_eq!(to_event(theirs, "ours"), None);
        let unmanaged = message("die", &[(LABEL_INSTANCE, "ours"), (LABEL_BOT_ID, "b")]);
        assert_eq!(to_event(unmanaged, "ours"), None);
    }
}
