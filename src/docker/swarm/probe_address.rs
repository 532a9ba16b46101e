//! The address at which botmaker reaches a bot whose task runs on its own node, for its probes.
//!
//! A task on an overlay network has its overlay address as its container's only address, and
//! that address lives in the swarm's network namespaces: a botmaker running on the host cannot
//! reach it (and the same address may well answer elsewhere on the host's networks: seen
//! answering 404 where the bot answered 200). A task on a non-internal overlay is also attached
//! to the node's `docker_gwbridge`, a bridge on the host: that address the host reaches. So a
//! botmaker not in a container probes an overlay task at its `docker_gwbridge` address. A
//! botmaker in a container joins the bot's overlay (the README's advice), where the overlay
//! address is the right one; it keeps it, and so does a task on an internal overlay, which has
//! no `docker_gwbridge` endpoint.

use bollard::models::{NetworkInspect, Service};

use super::super::error::Op;
use super::super::{DockerService, lenient};
use crate::BotId;

/// The bridge Swarm attaches every task on a non-internal overlay to, on each node.
const GATEWAY_BRIDGE: &str = "docker_gwbridge";

/// Whether the service's tasks join a network of their own (an overlay, or `host`, which has
/// no address of its own and never reaches here with one).
pub(super) fn on_overlay(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.networks.as_ref())
        .is_some_and(|n| !n.is_empty())
}

/// The address of container `container_id` on this node's `docker_gwbridge`, if it has one.
/// A node without that bridge, or one the engine will not show, leaves the task's own address
/// in place: `None`, never an error (the status itself stands).
pub(super) async fn gateway_bridge_address(
    svc: &DockerService,
    bot_id: &BotId,
    container_id: &str,
) -> Option<String> {
    let network = svc
        .call(
            Op::Inspect,
            bot_id.as_str(),
            svc.call_timeout,
            lenient::tolerant(svc.docker.inspect_network(GATEWAY_BRIDGE, None)),
        )
        .await
        .ok()?;
    endpoint_address(&network, container_id)
}

/// The IPv4 address (without its prefix length) of `container_id`'s endpoint on `network`.
fn endpoint_address(network: &NetworkInspect, container_id: &str) -> Option<String> {
    let endpoint = network.containers.as_ref()?.get(container_id)?;
    let cidr = endpoint.ipv4_address.as_deref()?;
    let ip = cidr.split_once('/').map_or(cidr, |(ip, _)| ip);
    (!ip.is_empty()).then(|| ip.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{EndpointResource, NetworkAttachmentConfig, ServiceSpec, TaskSpec};

    use super::*;

    fn bridge_with(id: &str, ipv4: &str) -> NetworkInspect {
        NetworkInspect {
            containers: Some(HashMap::from([(
                id.to_string(),
                EndpointResource {
                    name: Some("gateway_6f2c9cf19f1c".into()),
                    ipv4_address: Some(ipv4.into()),
                    ..Default::default()
                },
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn the_containers_gateway_bridge_address_without_its_prefix() {
        let n = bridge_with("c1", "10.214.216.3/24");
        assert_eq!(endpoint_address(&n, "c1").as_deref(), Some("10.214.216.3"));
        assert_eq!(endpoint_address(&n, "c2"), None, "another container's");
        assert_eq!(endpoint_address(&bridge_with("c1", ""), "c1"), None);
        assert_eq!(endpoint_address(&NetworkInspect::default(), "c1"), None);
    }

    #[test]
    fn only_a_service_on_a_network_of_its_own_is_on_an_overlay() {
        let with = |networks: Option<Vec<NetworkAttachmentConfig>>| Service {
            spec: Some(ServiceSpec {
                task_template: Some(TaskSpec {
                    networks,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!on_overlay(&with(None)));
        assert!(!on_overlay(&with(Some(Vec::new()))));
        assert!(on_overlay(&with(Some(vec![NetworkAttachmentConfig {
            target: Some("bm-ov".into()),
            ..Default::default()
        }]))));
    }
}
