//! Changes of the bots' tasks on other nodes, which no event reports.
//!
//! The Engine API has no task events (its event types stop at `service`, `node`, `secret` and
//! `config`, up to API 1.57), and a container on a worker sends its events to that worker's
//! engine only. So a bot that crashes, is restarted by Swarm or moves between workers showed
//! nothing until the next full resync (every 60 s by default). Here one tasks list, only the
//! tasks Swarm wants running, every [`TASK_POLL_INTERVAL`] tells each bot whose task on another
//! node is new or in a new state, or has left that node; the reconciler inspects that bot as
//! it does after any container event. Tasks on the manager's own node are left out: their
//! containers' events come from the manager's engine, at once. On a single-node swarm the poll
//! is one nodes list.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::Task;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::super::DockerService;
use super::super::error::ContainerError;
use super::super::labels::{self, LABEL_BOT_ID};
use super::tasks;

/// How often the tasks list is read: a crash on a worker shows within this, plus the inspect.
pub const TASK_POLL_INTERVAL: Duration = Duration::from_secs(3);

/// Each bot with a task on another node: its task's id, container id and state.
type RemoteTasks = HashMap<String, RemoteTask>;

/// A bot's task on another node that is new, in a new state or gone: the docker module's
/// event stream turns it into an event of that bot (kept apart so this module does not
/// depend on the events module, which merges it in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTaskChange {
    /// The bot.
    pub bot_id: String,
    /// Its task's container, else the task's id (a task not started yet has no container).
    pub container_id: String,
    /// Swarm's task state (`running`, `failed`, `starting`...), or `gone`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RemoteTask {
    task_id: String,
    container_id: Option<String>,
    state: String,
}

impl DockerService {
    /// The bots whose task on another node than `own_node` changed, polled every `every`. The first list only sets what is known (the resync the
    /// reconciler makes when it starts following covers the moment before); a list that fails
    /// is skipped (an outage ends the container stream, which the reconciler follows).
    pub(in crate::docker) fn remote_task_changes(
        &self,
        own_node: String,
        every: Duration,
    ) -> BoxStream<'static, RemoteTaskChange> {
        let svc = self.clone();
        stream::unfold(
            (svc, own_node, None::<RemoteTasks>),
            move |(svc, own_node, known)| async move {
                if known.is_some() {
                    tokio::time::sleep(every).await;
                }
                let (events, known) = match svc.remote_tasks(&own_node).await {
                    Ok(now) => (
                        known
                            .as_ref()
                            .map(|before| changes(before, &now))
                            .unwrap_or_default(),
                        now,
                    ),
                    Err(e) => {
                        tracing::debug!(error = %e, "could not list the swarm's tasks");
                        (Vec::new(), known.unwrap_or_default())
                    }
                };
                Some((events, (svc, own_node, Some(known))))
            },
        )
        .flat_map(stream::iter)
        .boxed()
    }

    /// This instance's bots whose running-wanted task is on another node than `own_node`.
    /// The nodes list comes first (a few entries): a single-node swarm makes no tasks list at
    /// all, and a larger one lists only the tasks of the other nodes, so the cost follows the
    /// bots out of the manager's sight, not the fleet.
    async fn remote_tasks(&self, own_node: &str) -> Result<RemoteTasks, ContainerError> {
        let others: Vec<String> = self
            .swarm_nodes()
            .await?
            .into_iter()
            .filter_map(|n| n.id)
            .filter(|id| id != own_node)
            .collect();
        if others.is_empty() {
            return Ok(RemoteTasks::new());
        }
        let filters = HashMap::from([
            ("desired-state".to_string(), vec!["running".to_string()]),
            ("node".to_string(), others),
        ]);
        let listed = self.swarm_tasks("", &filters).await?;
        Ok(listed
            .iter()
            .filter(|t| t.node_id.as_deref().is_some_and(|n| n != own_node))
            .filter_map(|t| Some((self.owned_bot(t)?, remote_task(t)?)))
            .collect())
    }

    /// The bot of this instance a task runs, from its container's labels.
    fn owned_bot(&self, task: &Task) -> Option<String> {
        let labels = task.spec.as_ref()?.container_spec.as_ref()?.labels.as_ref();
        labels::is_owned_by(labels, &self.instance)
            .then(|| labels?.get(LABEL_BOT_ID).cloned())
            .flatten()
    }
}

fn remote_task(t: &Task) -> Option<RemoteTask> {
    Some(RemoteTask {
        task_id: t.id.clone()?,
        container_id: tasks::container_id(t),
        state: t
            .status
            .as_ref()
            .and_then(|s| s.state)
            .map(|s| s.to_string())
            .unwrap_or_default(),
    })
}

/// An event for each bot whose remote task is new, changed state, or left (ended, or moved
/// to the manager's node).
fn changes(before: &RemoteTasks, now: &RemoteTasks) -> Vec<RemoteTaskChange> {
    let changed = now
        .iter()
        .filter(|(bot, task)| before.get(*bot) != Some(task))
        .map(|(bot, task)| event(bot, task));
    let left = before
        .iter()
        .filter(|(bot, _)| !now.contains_key(*bot))
        .map(|(bot, task)| RemoteTaskChange {
            state: "gone".into(),
            ..event(bot, task)
        });
    changed.chain(left).collect()
}

fn event(bot: &str, task: &RemoteTask) -> RemoteTaskChange {
    RemoteTaskChange {
        bot_id: bot.to_string(),
        container_id: task
            .container_id
            .clone()
            .unwrap_or_else(|| task.task_id.clone()),
        state: task.state.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: &str) -> RemoteTask {
        RemoteTask {
            task_id: id.into(),
            container_id: Some(format!("c-{id}")),
            state: state.into(),
        }
    }

    #[test]
    fn a_new_task_a_new_state_and_a_task_gone_are_each_reported_once() {
        let before = HashMap::from([
            ("same".to_string(), task("t1", "running")),
            ("crashed".to_string(), task("t2", "running")),
            ("moved".to_string(), task("t3", "running")),
            ("gone".to_string(), task("t4", "running")),
        ]);
        let now = HashMap::from([
            ("same".to_string(), task("t1", "running")),
            ("crashed".to_string(), task("t2", "failed")),
            ("moved".to_string(), task("t5", "starting")),
            ("new".to_string(), task("t6", "running")),
        ]);
        let mut seen: Vec<(String, String, String)> = changes(&before, &now)
            .into_iter()
            .map(|e| (e.bot_id, e.container_id, e.state))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let task_kind = |s: &str| s.to_string();
        assert_eq!(
            seen,
            vec![
                ("crashed".into(), "c-t2".into(), task_kind("failed")),
                ("gone".into(), "c-t4".into(), task_kind("gone")),
                ("moved".into(), "c-t5".into(), task_kind("starting")),
                ("new".into(), "c-t6".into(), task_kind("running")),
            ]
        );
        assert!(changes(&now, &now).is_empty());
    }
}
