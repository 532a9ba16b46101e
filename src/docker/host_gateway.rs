//! Docker's special `host-gateway` address in a bot's extra `/etc/hosts` entries
//! (`host.docker.internal:host-gateway`, which the openclaw template adds to reach a model
//! server on the host) for an engine that does not know it.
//!
//! Docker replaces `host-gateway` with the host's address on the default bridge. Podman 4.3
//! copies the word into `/etc/hosts` as if it were an address, so the name resolves to
//! nothing. For Podman, botmaker puts in the gateway of the bot's network itself (the host's
//! side of that bridge), which is what Docker's replacement amounts to.

use bollard::models::NetworkInspect;

use super::error::{ContainerError, Op};
use super::{DockerService, Engine};
use crate::BotId;

/// Docker's word for "the host, as seen from the container".
const HOST_GATEWAY: &str = "host-gateway";
/// What Podman's compat API calls its default network, as Docker calls its default bridge.
const DEFAULT_NETWORK: &str = "bridge";

/// Whether any `name:address` entry asks for the host gateway.
fn asks_for_gateway(hosts: &[String]) -> bool {
    hosts.iter().any(|h| is_gateway_entry(h))
}

fn is_gateway_entry(host: &str) -> bool {
    host.rsplit_once(':')
        .is_some_and(|(_, ip)| ip == HOST_GATEWAY)
}

/// `hosts` with `host-gateway` replaced by `gateway`.
fn substitute(hosts: &[String], gateway: &str) -> Vec<String> {
    hosts
        .iter()
        .map(|h| match h.rsplit_once(':') {
            Some((name, HOST_GATEWAY)) => format!("{name}:{gateway}"),
            _ => h.clone(),
        })
        .collect()
}

/// The network's first IPv4 gateway.
fn ipv4_gateway(network: &NetworkInspect) -> Option<String> {
    network
        .ipam
        .as_ref()?
        .config
        .iter()
        .flatten()
        .filter_map(|c| c.gateway.as_deref())
        .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
        .map(String::from)
}

impl DockerService {
    /// The extra hosts to create a container with: as given on Docker; on Podman with
    /// `host-gateway` resolved to the gateway of `network` (the default network when unset,
    /// `host` or `none`). A network without an IPv4 gateway is `INVALID_CONFIG`.
    pub(crate) async fn extra_hosts_for_engine(
        &self,
        bot_id: &BotId,
        network: Option<&str>,
        hosts: &[String],
    ) -> Result<Vec<String>, ContainerError> {
        if self.engine != Engine::Podman || !asks_for_gateway(hosts) {
            return Ok(hosts.to_vec());
        }
        let network = network
            .filter(|n| !matches!(*n, "host" | "none" | "default" | DEFAULT_NETWORK))
            .unwrap_or(DEFAULT_NETWORK);
        let inspect = self
            .call(
                Op::Inspect,
                bot_id.as_str(),
                self.call_timeout,
                self.docker.inspect_network(network, None),
            )
            .await?;
        let gateway = ipv4_gateway(&inspect).ok_or_else(|| ContainerError::InvalidConfig {
            bot_id: bot_id.to_string(),
            message: format!(
                "{HOST_GATEWAY} was asked for, but network {network} has no IPv4 gateway"
            ),
        })?;
        Ok(substitute(hosts, &gateway))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_gateway_entries_get_the_gateway_and_others_stay() {
        let hosts = vec![
            "host.docker.internal:host-gateway".to_string(),
            "db:10.1.2.3".to_string(),
            "v6:fe80::1".to_string(),
        ];
        assert!(asks_for_gateway(&hosts));
        assert!(!asks_for_gateway(&hosts[1..]));
        assert_eq!(
            substitute(&hosts, "10.88.0.1"),
            [
                "host.docker.internal:10.88.0.1",
                "db:10.1.2.3",
                "v6:fe80::1"
            ]
        );
    }

    #[test]
    fn the_gateway_is_the_networks_first_ipv4_one() {
        // Podman 4.3's answer for GET /networks/bridge, trimmed.
        let n: NetworkInspect = serde_json::from_str(
            r#"{"Name":"bridge","IPAM":{"Driver":"default","Config":[
                {"Subnet":"fd00::/64","Gateway":"fd00::1"},
                {"Subnet":"10.88.0.0/16","Gateway":"10.88.0.1"}]}}"#,
        )
        .unwrap();
        assert_eq!(ipv4_gateway(&n).as_deref(), Some("10.88.0.1"));
        let none: NetworkInspect = serde_json::from_str(r#"{"Name":"none"}"#).unwrap();
        assert_eq!(ipv4_gateway(&none), None);
    }
}
