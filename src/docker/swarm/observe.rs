//! What Swarm says about the bots: a bot's status from its service and current task (and, on
//! this node, its container), the fleet from one services list, one tasks list and one
//! containers list.

use std::collections::HashMap;

use bollard::models::{Service, Task};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListServicesOptionsBuilder};

use super::super::error::{ContainerError, Op};
use super::super::labels::{self, LABEL_BOT_ID};
use super::super::status::{ContainerInfo, ContainerState, ContainerStatus, Health, TaskNode};
use super::super::{DockerService, lenient};
use super::{Swarm, nodes, tasks};
use crate::BotId;

impl Swarm {
    pub(in crate::docker) async fn status(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Option<ContainerStatus>, ContainerError> {
        let Some(service) = self.owned(svc, bot_id).await? else {
            return Ok(None);
        };
        let tasks = self.tasks_of(svc, bot_id).await?;
        let failures = tasks::failures(&tasks);
        let current = tasks::current(&tasks);
        let state = tasks::state(current, failures);
        // The container itself, when it is on this node, tells what the task does not:
        // health, address, the image it runs.
        let local = match current.and_then(tasks::container_id) {
            Some(id) => match svc
                .call(
                    Op::Inspect,
                    bot_id.as_str(),
                    svc.call_timeout,
                    lenient::tolerant(svc.docker.inspect_container(&id, None)),
                )
                .await
            {
                Ok(r) => Some(ContainerStatus::from_inspect(r)),
                Err(ContainerError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let node = match tasks::node_id(current, &tasks) {
            Some(id) => nodes::one(svc, bot_id.as_str(), &id).await?,
            None => None,
        };
        let status = current.and_then(|t| t.status.as_ref());
        let local_running = local.as_ref().is_some_and(|l| l.running);
        let mut out = local.unwrap_or_else(|| ContainerStatus {
            id: String::new(),
            state,
            running: state == ContainerState::Running,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            health: Health::None,
            restart_count: 0,
            oom_killed: false,
            image_id: String::new(),
            ip_address: None,
            ports: Vec::new(),
            node: None,
        });
        out.node = node;
        out.id = current
            .and_then(tasks::container_id)
            .or(service.id.clone())
            .unwrap_or_default();
        // The task's state governs: a container Swarm is about to replace may still say
        // `exited` while its successor starts. But a task's report lags its container: one
        // still `starting` whose container on this node runs is running (no later event
        // would correct it).
        let state = running_ahead_of_task(state, local_running);
        out.state = state;
        out.running = state == ContainerState::Running;
        out.exit_code = current.and_then(tasks::exit_code);
        out.error = current.and_then(tasks::error);
        out.restart_count = failures;
        // Host-mode ports are the container's bindings; mesh ones are the service's.
        out.ports.extend(super::ports::mesh_ports(&service));
        if out.started_at.is_none() && state == ContainerState::Running {
            out.started_at = status
                .and_then(|s| s.timestamp.as_deref())
                .and_then(tasks::parse_time);
        }
        // An overlay address is out of a host process's reach: probes go to the task's
        // address on this node's gateway bridge instead.
        if local_running && !self.in_container && super::probe_address::on_overlay(&service) {
            if let Some(ip) =
                super::probe_address::gateway_bridge_address(svc, bot_id, &out.id).await
            {
                out.ip_address = Some(ip);
            }
        }
        Ok(Some(out))
    }

    pub(in crate::docker) async fn list(
        &self,
        svc: &DockerService,
        running_only: bool,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        let filters = labels::instance_filter(&svc.instance);
        let services = svc
            .call(
                Op::List,
                "",
                svc.call_timeout,
                lenient::tolerant(svc.docker.list_services(Some(
                    ListServicesOptionsBuilder::new().filters(&filters).build(),
                ))),
            )
            .await?;
        let tasks = svc.swarm_tasks("", &HashMap::new()).await?;
        // What the local engine knows of the containers it runs: health and image id.
        let local: HashMap<String, ContainerInfo> = svc
            .call(
                Op::List,
                "",
                svc.call_timeout,
                lenient::tolerant(
                    svc.docker.list_containers(Some(
                        ListContainersOptionsBuilder::new()
                            .all(true)
                            .filters(&filters)
                            .build(),
                    )),
                ),
            )
            .await?
            .into_iter()
            .map(ContainerInfo::from_summary)
            .map(|c| (c.id.clone(), c))
            .collect();
        let nodes = nodes::by_id(svc).await?;
        let mut by_service: HashMap<String, Vec<Task>> = HashMap::new();
        for t in tasks {
            if let Some(s) = t.service_id.clone() {
                by_service.entry(s).or_default().push(t);
            }
        }
        let mut out = Vec::new();
        for s in services {
            let spec = s.spec.clone().unwrap_or_default();
            if !labels::is_owned_by(spec.labels.as_ref(), &svc.instance) {
                continue;
            }
            let tasks =
                s.id.as_ref()
                    .and_then(|id| by_service.get(id))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
            let info = info_of(&s, tasks, &local, &nodes);
            if !running_only || info.state == ContainerState::Running {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The id of the container running the bot's current task, if there is one; whether
    /// it is on this node is for the caller's inspect to find out.
    pub(in crate::docker) async fn local_container(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<Option<String>, ContainerError> {
        if self.owned(svc, bot_id).await?.is_none() {
            return Ok(None);
        }
        let tasks = self.tasks_of(svc, bot_id).await?;
        Ok(tasks::current(&tasks).and_then(tasks::container_id))
    }

    /// Whether the bot's current task runs on another node than the manager's own, whose
    /// containers the manager's engine cannot reach (exec, console, stats).
    pub(in crate::docker) async fn runs_elsewhere(
        &self,
        svc: &DockerService,
        bot_id: &BotId,
    ) -> Result<bool, ContainerError> {
        let tasks = self.tasks_of(svc, bot_id).await?;
        Ok(tasks::current(&tasks).is_some_and(|t| {
            tasks::state(Some(t), 0) == ContainerState::Running
                && t.node_id.as_deref().is_some_and(|n| n != self.node_id())
        }))
    }
}

/// The list entry of one bot's service, its current task and (if on this node) its
/// container.
fn info_of(
    s: &Service,
    tasks: &[Task],
    local: &HashMap<String, ContainerInfo>,
    nodes: &HashMap<String, TaskNode>,
) -> ContainerInfo {
    let spec = s.spec.clone().unwrap_or_default();
    let labels = spec.labels.clone().unwrap_or_default();
    let current = tasks::current(tasks);
    let container_id = current.and_then(tasks::container_id);
    let container = container_id.as_ref().and_then(|id| local.get(id));
    let state = running_ahead_of_task(
        tasks::state(current, tasks::failures(tasks)),
        container.is_some_and(|c| c.state == ContainerState::Running),
    );
    let exit_code = current.and_then(tasks::exit_code);
    let image = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default();
    ContainerInfo {
        id: container_id.or(s.id.clone()).unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        bot_id: labels.get(LABEL_BOT_ID).cloned().unwrap_or_default(),
        state,
        status: match (state, exit_code) {
            (ContainerState::Running, _) => "Up".into(),
            (_, Some(code)) => format!("Exited ({code})"),
            (other, None) => format!("{other:?}").to_lowercase(),
        },
        health: container
            .filter(|_| state == ContainerState::Running)
            .map_or(Health::None, |c| c.health),
        exit_code,
        // Swarm pins a tag to a digest only for registry images; a local tag stays a tag.
        image: image.split('@').next().unwrap_or_default().to_string(),
        image_id: container.map(|c| c.image_id.clone()).unwrap_or_default(),
        created: s.created_at.as_deref().and_then(tasks::parse_time),
        ports: container
            .filter(|_| state == ContainerState::Running)
            .map(|c| c.ports.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(super::ports::mesh_ports(s))
            .collect(),
        node: tasks::node_id(current, tasks).and_then(|n| nodes.get(&n).cloned()),
    }
}

/// The state of a bot whose task says `state` while its container on this node runs or not:
/// a task Swarm still reports starting (`Created`, `Restarting`) whose container already runs
/// is running.
fn running_ahead_of_task(state: ContainerState, container_running: bool) -> ContainerState {
    match state {
        ContainerState::Created | ContainerState::Restarting if container_running => {
            ContainerState::Running
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_still_starting_whose_container_runs_is_running() {
        use ContainerState as C;
        assert_eq!(running_ahead_of_task(C::Created, true), C::Running);
        assert_eq!(running_ahead_of_task(C::Restarting, true), C::Running);
        assert_eq!(running_ahead_of_task(C::Created, false), C::Created);
        // An ended task stays ended, whatever a lingering container says.
        assert_eq!(running_ahead_of_task(C::Exited, true), C::Exited);
    }
}
