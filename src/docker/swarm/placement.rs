//! Where a bot's task runs on the swarm, and where its workspace lives then.
//!
//! - No placement: as before placement existed, the workspace is a host directory
//!   bind-mounted from botmaker's own node, so the bot is pinned there; a spread preference
//!   over `node.id` is set too, so a bot without a workspace spreads over the nodes.
//! - A placement: its node and labels become constraints (`node.hostname==`/`node.id==`,
//!   `node.labels.k==v`), and every bind mount becomes a named volume
//!   (`botmaker-<id>-workspace`) that Swarm creates on the node that runs the task, with the
//!   driver the operator named (`--swarm-volume-driver`, else `local`). botmaker's host sees
//!   none of it: host-side workspace operations refuse such a bot (see
//!   [`DockerService::workspace_on_host`](super::super::DockerService::workspace_on_host)).

use std::collections::HashMap;

use bollard::models::{
    Mount, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, ServiceSpec,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread,
};

use super::super::config::ContainerConfig;
use super::super::labels::container_labels;
use super::super::placement::Placement;
use crate::BotId;

/// The name of a placed bot's workspace volume (the `index`th bind mount's after the first).
pub fn workspace_volume(bot_id: &BotId, index: usize) -> String {
    match index {
        0 => format!("botmaker-{bot_id}-workspace"),
        n => format!("botmaker-{bot_id}-workspace-{n}"),
    }
}

/// Whether `node` has the shape of a Swarm node id (25 lower-case letters and digits) rather
/// than a host name: the constraint then names `node.id`.
fn is_node_id(node: &str) -> bool {
    node.len() == 25
        && node
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The constraints `placement` stands for.
pub fn constraints(placement: &Placement) -> Vec<String> {
    let mut out: Vec<String> = placement
        .node
        .iter()
        .map(|n| {
            if is_node_id(n) {
                format!("node.id=={n}")
            } else {
                format!("node.hostname=={n}")
            }
        })
        .collect();
    out.extend(
        placement
            .labels
            .iter()
            .map(|(k, v)| format!("node.labels.{k}=={v}")),
    );
    out
}

/// Rewrites the placement of `spec` (made by `spec::service_spec`, which pins a bot with a
/// bind mount to `manager`) for `config.placement`; `volume_driver` is the workspace
/// volume's driver.
pub fn place(
    spec: &mut ServiceSpec,
    instance: &str,
    bot_id: &BotId,
    config: &ContainerConfig,
    volume_driver: Option<&str>,
) {
    let task = spec.task_template.get_or_insert_with(Default::default);
    let placed = config.placement.as_ref().filter(|p| !p.is_empty());
    let Some(p) = placed else {
        let placement = task
            .placement
            .get_or_insert_with(TaskSpecPlacement::default);
        placement.preferences = Some(vec![TaskSpecPlacementPreferences {
            spread: Some(TaskSpecPlacementSpread {
                spread_descriptor: Some("node.id".into()),
            }),
        }]);
        return;
    };
    let labels: HashMap<String, String> = container_labels(instance, bot_id, &Default::default());
    if let Some(container) = task.container_spec.as_mut()
        && let Some(mounts) = container.mounts.as_mut()
    {
        let binds = mounts.iter_mut().filter(|m| m.typ == Some(MountType::BIND));
        for (index, m) in binds.enumerate() {
            *m = Mount {
                typ: Some(MountType::VOLUME),
                source: Some(workspace_volume(bot_id, index)),
                target: m.target.clone(),
                read_only: m.read_only,
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels.clone()),
                    driver_config: Some(MountVolumeOptionsDriverConfig {
                        name: Some(volume_driver.unwrap_or("local").to_string()),
                        options: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
        }
    }
    let node_named = p.node.is_some();
    task.placement = Some(TaskSpecPlacement {
        constraints: Some(constraints(p)),
        // Labels alone may match several nodes: spread over them.
        preferences: (!node_named).then(|| {
            vec![TaskSpecPlacementPreferences {
                spread: Some(TaskSpecPlacementSpread {
                    spread_descriptor: Some("node.id".into()),
                }),
            }]
        }),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::super::spec::service_spec;
    use super::*;
    use crate::docker::BindMount;

    fn bot() -> BotId {
        BotId::new("alpha").unwrap()
    }

    fn with_workspace() -> ContainerConfig {
        let mut c = ContainerConfig::new("img:1", "/s/alpha");
        c.mounts.push(BindMount {
            source: "/w/alpha".into(),
            target: "/workspace".into(),
            read_only: false,
        });
        c
    }

    fn placed(c: &ContainerConfig, driver: Option<&str>) -> ServiceSpec {
        let mut spec = service_spec("inst", &bot(), c, "manager1", 0).unwrap();
        place(&mut spec, "inst", &bot(), c, driver);
        spec
    }

    #[test]
    fn an_unplaced_bot_keeps_its_bind_mount_and_pin_and_spreads() {
        let spec = placed(&with_workspace(), None);
        let task = spec.task_template.unwrap();
        let p = task.placement.unwrap();
        assert_eq!(p.constraints, Some(vec!["node.id==manager1".to_string()]));
        assert_eq!(
            p.preferences.unwrap()[0]
                .spread
                .as_ref()
                .unwrap()
                .spread_descriptor
                .as_deref(),
            Some("node.id")
        );
        let mounts = task.container_spec.unwrap().mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
    }

    #[test]
    fn a_placed_bot_is_constrained_and_its_workspace_is_a_volume_on_its_node() {
        let mut c = with_workspace();
        c.placement = Some(Placement {
            node: Some("worker-2".into()),
            labels: [("zone".to_string(), "eu".to_string())].into(),
        });
        let spec = placed(&c, Some("nfs"));
        let task = spec.task_template.unwrap();
        let p = task.placement.unwrap();
        assert_eq!(
            p.constraints,
            Some(vec![
                "node.hostname==worker-2".to_string(),
                "node.labels.zone==eu".into()
            ]),
            "not pinned to the manager any more"
        );
        assert!(p.preferences.is_none(), "one node named: nothing to spread");
        let m = &task.container_spec.unwrap().mounts.unwrap()[0];
        assert_eq!(m.typ, Some(MountType::VOLUME));
        assert_eq!(m.source.as_deref(), Some("botmaker-alpha-workspace"));
        assert_eq!(m.target.as_deref(), Some("/workspace"));
        let o = m.volume_options.as_ref().unwrap();
        assert_eq!(
            o.driver_config.as_ref().unwrap().name.as_deref(),
            Some("nfs")
        );
        assert_eq!(o.labels.as_ref().unwrap()["botmaker.bot-id"], "alpha");
    }

    #[test]
    fn a_node_id_is_matched_as_an_id_and_labels_alone_spread() {
        let p = Placement {
            node: Some("x2k9d0p1q8r7s6t5u4v3w2y1z".into()),
            ..Default::default()
        };
        assert_eq!(
            constraints(&p),
            vec!["node.id==x2k9d0p1q8r7s6t5u4v3w2y1z".to_string()]
        );
        let mut c = with_workspace();
        c.placement = Some(Placement {
            node: None,
            labels: [("gpu".to_string(), "yes".to_string())].into(),
        });
        let p = placed(&c, None).task_template.unwrap().placement.unwrap();
        assert_eq!(
            p.constraints,
            Some(vec!["node.labels.gpu==yes".to_string()])
        );
        assert!(p.preferences.is_some());
    }
}
