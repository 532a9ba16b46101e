//! Where a bot may run: a node named by host name or id, and node labels it must carry.
//! The Swarm backend turns it into placement constraints; the Docker backend, with one
//! engine, accepts only a placement that engine satisfies (see
//! [`DockerService::placement_problem`](super::DockerService::placement_problem)).

use std::collections::BTreeMap;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DockerService;
use super::error::{ContainerError, Op};
use super::labels::{LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED};
use crate::BotId;

/// How often a workspace volume still held by a container Swarm is removing is tried again.
const VOLUME_RETRY: Duration = Duration::from_millis(250);

/// Where a bot may run. Absent: anywhere (on Swarm, spread over the nodes by a `node.id`
/// spread preference, unless the workspace pins it to botmaker's own node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The node to run on: its host name or its Swarm node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    pub node: Option<String>,
    /// Node labels the node must carry (`docker node update --label-add k=v`), all of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Placement {
    /// Whether it asks for nothing (the same as no placement).
    pub fn is_empty(&self) -> bool {
        self.node.is_none() && self.labels.is_empty()
    }

    /// Whether a node called `name` with id `id` and `labels` satisfies it.
    pub fn admits(&self, name: &str, id: &str, labels: &BTreeMap<String, String>) -> bool {
        self.node.as_deref().is_none_or(|n| n == name || n == id)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The problems with its syntax, as (field, message): a node name or label that could not
    /// be written into a Swarm constraint unambiguously.
    pub fn syntax_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(n) = &self.node
            && !is_word(n, 128)
        {
            out.push((
                "placement.node".into(),
                "must be a node's host name or id (letters, digits, '.', '_', '-')".into(),
            ));
        }
        for (k, v) in &self.labels {
            if !is_word(k, 128) {
                out.push((
                    format!("placement.labels.{k}"),
                    "a label name is letters, digits, '.', '_', '-'".into(),
                ));
            } else if !is_value(v) {
                out.push((
                    format!("placement.labels.{k}"),
                    "a label value is 1-256 characters without spaces, ',', '=' or '!'".into(),
                ));
            }
        }
        out
    }
}

impl DockerService {
    /// Why no node of this backend can run a bot placed by `placement`, as (field, message);
    /// `None` when one can. On Swarm: one nodes list, a node must have the name or id and
    /// every label. On the Docker backend the one engine must be the node named (by its name
    /// or id) and carry the labels as engine labels (`dockerd --label k=v`): a placement it
    /// satisfies is accepted and changes nothing, any other is refused.
    pub async fn placement_problem(
        &self,
        placement: &Placement,
    ) -> Result<Option<(String, String)>, ContainerError> {
        if placement.is_empty() {
            return Ok(None);
        }
        // (name, id, labels) of every node a bot could run on.
        let nodes: Vec<(String, String, BTreeMap<String, String>)> = if self.swarm.is_some() {
            self.swarm_nodes()
                .await?
                .into_iter()
                .map(|n| {
                    let labels = n
                        .spec
                        .and_then(|s| s.labels)
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    let name = n.description.and_then(|d| d.hostname).unwrap_or_default();
                    (name, n.id.unwrap_or_default(), labels)
                })
                .collect()
        } else {
            let info = self
                .call(Op::Info, "", self.call_timeout, self.docker.info())
                .await?;
            let labels = info
                .labels
                .unwrap_or_default()
                .iter()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            vec![(
                info.name.unwrap_or_default(),
                info.id.unwrap_or_default(),
                labels,
            )]
        };
        if nodes.iter().any(|(n, id, l)| placement.admits(n, id, l)) {
            return Ok(None);
        }
        let known: Vec<&str> = nodes.iter().map(|(n, _, _)| n.as_str()).collect();
        let docker = self.swarm.is_none();
        Ok(Some(match &placement.node {
            Some(node) if !nodes.iter().any(|(n, id, _)| n == node || id == node) => (
                "placement.node".into(),
                if docker {
                    format!(
                        "the docker backend runs bots on one engine, {}; placing a bot on                          another node needs --backend swarm",
                        known.join(", ")
                    )
                } else {
                    format!(
                        "no node {node} in the swarm; its nodes: {}",
                        known.join(", ")
                    )
                },
            ),
            node => (
                "placement.labels".into(),
                format!(
                    "no {} carries the labels {}{}",
                    node.as_ref()
                        .map_or("node".to_string(), |n| format!("node {n}")),
                    placement
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if docker {
                        " (the docker backend reads them from the engine's --label)"
                    } else {
                        " (docker node update --label-add)"
                    }
                ),
            ),
        }))
    }

    /// Whether the bot's workspace is the host directory botmaker reads and writes (backups,
    /// template files): always on the Docker backend; on Swarm only for a bot not placed,
    /// whose workspace is bind-mounted from botmaker's own node. A placed bot's workspace is
    /// a volume on whichever node runs it.
    pub fn workspace_on_host(&self, placement: Option<&Placement>) -> bool {
        self.swarm.is_none() || placement.is_none_or(Placement::is_empty)
    }

    /// Removes the workspace volumes of `bot_id` (a placed bot on Swarm) that this engine
    /// holds, once the service is gone. A volume on another node is out of the manager's
    /// reach (the Engine API has no remote volume calls before cluster volumes): it stays
    /// there, and is logged. A volume still held by a container Swarm is removing is tried
    /// again until the call timeout.
    pub async fn remove_workspace_volumes(&self, bot_id: &BotId) -> Result<(), ContainerError> {
        if self.swarm.is_none() {
            return Ok(());
        }
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_MANAGED}=true"),
                format!("{LABEL_INSTANCE}={}", self.instance),
                format!("{LABEL_BOT_ID}={bot_id}"),
            ],
        )]);
        let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let volumes = self
            .call(
                Op::List,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.list_volumes(Some(options)),
            )
            .await?
            .volumes
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + self.call_timeout;
        for v in volumes {
            loop {
                match self
                    .call(
                        Op::Remove,
                        bot_id.as_str(),
                        self.call_timeout,
                        self.docker.remove_volume(
                            &v.name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        ),
                    )
                    .await
                {
                    Ok(()) | Err(ContainerError::NotFound { .. }) => break,
                    Err(ContainerError::RemoveFailed { .. })
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(VOLUME_RETRY).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

fn is_word(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A value Swarm's constraint parser reads back as written: no operator characters, no
/// separators.
fn is_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '=' | '!'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_node_is_named_by_host_name_or_id_and_must_carry_every_label() {
        let p = Placement {
            node: Some("w1".into()),
            labels: labels(&[("zone", "a")]),
        };
        assert!(p.admits("w1", "xyz", &labels(&[("zone", "a"), ("gpu", "1")])));
        assert!(!p.admits("w1", "xyz", &labels(&[("zone", "b")])));
        assert!(!p.admits("w2", "xyz", &labels(&[("zone", "a")])));
        let by_id = Placement {
            node: Some("xyz".into()),
            ..Default::default()
        };
        assert!(by_id.admits("w1", "xyz", &BTreeMap::new()));
        assert!(Placement::default().is_empty());
    }

    #[test]
    fn names_and_values_that_would_change_a_constraint_are_refused() {
        let p = Placement {
            node: Some("w1==x".into()),
            labels: labels(&[("ok", "a,b"), ("bad key", "v"), ("zone", "eu-1/a")]),
        };
        let fields: Vec<String> = p.syntax_problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec![
                "placement.node".to_string(),
                "placement.labels.bad key".into(),
                "placement.labels.ok".into()
            ]
        );
    }
}
