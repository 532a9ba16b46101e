//! The swarm's nodes as the fleet sees them: `GET /api/nodes` and `botmaker nodes`.

use std::collections::HashMap;

use serde::Serialize;

use super::super::error::{ContainerError, Op};
use super::super::status::{ContainerInfo, TaskNode};
use super::super::{DockerService, lenient};

/// One node that runs (or could run) bots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NodeInfo {
    /// Swarm's node id (the engine's own name on the Docker backend).
    pub id: String,
    /// Its host name.
    pub name: String,
    /// `ready`, `down`, `disconnected` or `unknown`.
    pub state: String,
    /// `active`, `pause` or `drain`: whether Swarm places new tasks there.
    pub availability: String,
    /// `manager` or `worker`.
    pub role: String,
    /// Bots of this installation running there now.
    pub bots: usize,
    /// Memory of the node, in bytes.
    pub memory_bytes: i64,
}

/// Every node, with how many of the `running` bots each runs: one nodes list and one list
/// of running tasks.
pub(super) async fn list(
    svc: &DockerService,
    running: &[ContainerInfo],
) -> Result<Vec<NodeInfo>, ContainerError> {
    let nodes = svc.swarm_nodes().await?;
    let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
    let tasks = svc.swarm_tasks("", &filters).await?;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let container = super::tasks::container_id(&t);
        if container.is_some_and(|c| running.iter().any(|r| r.id == c))
            && let Some(node) = t.node_id
        {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut out: Vec<NodeInfo> = nodes
        .into_iter()
        .map(|n| {
            let id = n.id.unwrap_or_default();
            let spec = n.spec.unwrap_or_default();
            let description = n.description.unwrap_or_default();
            NodeInfo {
                bots: per_node.get(&id).copied().unwrap_or(0),
                name: description.hostname.unwrap_or_default(),
                state: n
                    .status
                    .and_then(|s| s.state)
                    .map_or("unknown".into(), |s| s.to_string()),
                availability: spec
                    .availability
                    .map_or("unknown".into(), |a| a.to_string()),
                role: spec.role.map_or("unknown".into(), |r| r.to_string()),
                memory_bytes: description
                    .resources
                    .and_then(|r| r.memory_bytes)
                    .unwrap_or(0),
                id,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(out)
}

/// The manager's view of node `n`, as a bot's status names it.
pub(super) fn task_node(n: bollard::models::Node) -> TaskNode {
    let id = n.id.unwrap_or_default();
    TaskNode {
        name: n
            .description
            .and_then(|d| d.hostname)
            .filter(|h| !h.is_empty())
            .unwrap_or(id),
        state: n
            .status
            .and_then(|s| s.state)
            .map_or("unknown".into(), |s| s.to_string()),
    }
}

impl DockerService {
    /// Every node of the swarm, in one nodes list: what the node view, the observed state and
    /// the placement check each read.
    pub(in crate::docker) async fn swarm_nodes(
        &self,
    ) -> Result<Vec<bollard::models::Node>, ContainerError> {
        self.call(
            Op::List,
            "",
            self.call_timeout,
            lenient::tolerant(
                self.docker
                    .list_nodes(None::<bollard::query_parameters::ListNodesOptions>),
            ),
        )
        .await
    }
}

/// Every node by id, from one nodes list: what the fleet's observed state names.
pub(super) async fn by_id(
    svc: &DockerService,
) -> Result<HashMap<String, TaskNode>, ContainerError> {
    Ok(svc
        .swarm_nodes()
        .await?
        .into_iter()
        .filter_map(|n| Some((n.id.clone()?, task_node(n))))
        .collect())
}

/// The node `id`, if the manager knows it (a node removed from the swarm is `None`).
pub(super) async fn one(
    svc: &DockerService,
    bot_id: &str,
    id: &str,
) -> Result<Option<TaskNode>, ContainerError> {
    match svc
        .call(
            Op::Inspect,
            bot_id,
            svc.call_timeout,
            lenient::tolerant(svc.docker.inspect_node(id)),
        )
        .await
    {
        Ok(n) => Ok(Some(task_node(n))),
        Err(ContainerError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
