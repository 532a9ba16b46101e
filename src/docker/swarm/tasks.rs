//! What a service's tasks say about its bot: which task is current, and Docker's container
//! vocabulary (state, exit code, restarts) read from Swarm's task states. Pure functions.

use bollard::models::{Task, TaskState};
use chrono::{DateTime, Utc};

use super::super::status::ContainerState;

/// The task that stands for the bot now: the newest one Swarm wants running, else the newest
/// of all (the last run of a stopped bot).
pub fn current(tasks: &[Task]) -> Option<&Task> {
    let key = |t: &&Task| (created(t), t.id.clone());
    tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .max_by_key(key)
        .or_else(|| tasks.iter().max_by_key(key))
}

fn created(t: &Task) -> Option<DateTime<Utc>> {
    parse_time(t.created_at.as_deref()?)
}

/// Swarm's RFC 3339 timestamps (trailing zeros trimmed, so never compared as text).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0)
}

/// The id of the node the bot is on: its current task's, or, while that one waits for a node
/// (its node went down and no other may run it), the newest task's that had one.
pub fn node_id(current: Option<&Task>, tasks: &[Task]) -> Option<String> {
    let assigned = |t: &Task| t.node_id.clone().filter(|n| !n.is_empty());
    current.and_then(assigned).or_else(|| {
        tasks
            .iter()
            .filter(|t| assigned(t).is_some())
            .max_by_key(|t| (created(t), t.id.clone()))
            .and_then(assigned)
    })
}

/// How many runs of the bot failed, in the task history Swarm keeps (5 per slot by default):
/// Docker's `RestartCount` for a bot whose restarts each made a new task.
pub fn failures(tasks: &[Task]) -> i64 {
    tasks
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::FAILED))
        .count() as i64
}

/// The Docker state of the bot whose current task is `task` (`None`: no task yet).
pub fn state(task: Option<&Task>, failures: i64) -> ContainerState {
    let Some(task) = task else {
        return ContainerState::Created;
    };
    let wanted = task.desired_state == Some(TaskState::RUNNING);
    match task.status.as_ref().and_then(|s| s.state) {
        Some(TaskState::RUNNING) => ContainerState::Running,
        Some(
            TaskState::NEW
            | TaskState::ALLOCATED
            | TaskState::PENDING
            | TaskState::ASSIGNED
            | TaskState::ACCEPTED
            | TaskState::PREPARING
            | TaskState::READY
            | TaskState::STARTING,
        ) if wanted => {
            // A replacement for a run that failed is Docker's `restarting`.
            if failures > 0 {
                ContainerState::Restarting
            } else {
                ContainerState::Created
            }
        }
        Some(_) => ContainerState::Exited,
        None => ContainerState::Unknown,
    }
}

/// Whether the task ended (will never run again).
pub fn is_terminal(task: &Task) -> bool {
    matches!(
        task.status.as_ref().and_then(|s| s.state),
        Some(
            TaskState::COMPLETE
                | TaskState::SHUTDOWN
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::ORPHANED
                | TaskState::REMOVE
        )
    )
}

/// The exit code of a task that ended.
pub fn exit_code(task: &Task) -> Option<i64> {
    if !is_terminal(task) {
        return None;
    }
    task.status.as_ref()?.container_status.as_ref()?.exit_code
}

/// The id of the container that runs (or ran) the task.
pub fn container_id(task: &Task) -> Option<String> {
    task.status
        .as_ref()?
        .container_status
        .as_ref()?
        .container_id
        .clone()
        .filter(|c| !c.is_empty())
}

/// Swarm's explanation of a task that failed or was rejected ("No such image: ...").
pub fn error(task: &Task) -> Option<String> {
    let status = task.status.as_ref()?;
    status
        .err
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| match status.state {
            Some(TaskState::FAILED | TaskState::REJECTED) => status.message.clone(),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStatus, TaskStatus};

    fn task(id: &str, created: &str, desired: TaskState, state: TaskState, exit: i64) -> Task {
        Task {
            id: Some(id.into()),
            created_at: Some(created.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                container_status: Some(ContainerStatus {
                    container_id: Some(format!("c-{id}")),
                    exit_code: Some(exit),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_task_swarm_wants_running_is_current_even_when_older_ones_linger() {
        let tasks = [
            task(
                "old",
                "2026-11-30T10:00:00.5Z",
                TaskState::SHUTDOWN,
                TaskState::FAILED,
                3,
            ),
            task(
                "new",
                "2026-11-30T10:00:02Z",
                TaskState::RUNNING,
                TaskState::STARTING,
                0,
            ),
        ];
        let cur = current(&tasks).unwrap();
        assert_eq!(cur.id.as_deref(), Some("new"));
        assert_eq!(failures(&tasks), 1);
        assert_eq!(state(Some(cur), 1), ContainerState::Restarting);
        assert_eq!(exit_code(cur), None, "a task that runs has no exit code");
        assert_eq!(container_id(cur).as_deref(), Some("c-new"));
    }

    #[test]
    fn a_stopped_bot_shows_its_last_run_exited_with_its_code() {
        // Timestamps whose text order is not their time order.
        let tasks = [
            task(
                "a",
                "2026-11-30T10:00:00.9Z",
                TaskState::SHUTDOWN,
                TaskState::SHUTDOWN,
                0,
            ),
            task(
                "b",
                "2026-11-30T10:00:01Z",
                TaskState::SHUTDOWN,
                TaskState::SHUTDOWN,
                143,
            ),
        ];
        let cur = current(&tasks).unwrap();
        assert_eq!(cur.id.as_deref(), Some("b"));
        assert_eq!(state(Some(cur), 0), ContainerState::Exited);
        assert_eq!(exit_code(cur), Some(143));
        assert_eq!(state(None, 0), ContainerState::Created, "never started");
    }

    #[test]
    fn a_task_waiting_for_a_node_is_on_the_node_its_predecessor_ran_on() {
        let mut old = task(
            "old",
            "2026-11-30T10:00:00Z",
            TaskState::SHUTDOWN,
            TaskState::RUNNING,
            0,
        );
        old.node_id = Some("worker".into());
        let pending = task(
            "new",
            "2026-11-30T10:00:09Z",
            TaskState::RUNNING,
            TaskState::PENDING,
            0,
        );
        let tasks = [old, pending];
        let cur = current(&tasks);
        assert_eq!(cur.unwrap().id.as_deref(), Some("new"));
        assert_eq!(node_id(cur, &tasks).as_deref(), Some("worker"));
        assert_eq!(node_id(None, &[]), None);
    }
}
