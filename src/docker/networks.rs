//! Reading Docker networks (never changing them): where a network's gateway is, so botmaker
//! can listen on the host's side of a bridge (the LLM proxy, see `crate::llm::listen`).

use std::net::IpAddr;

use super::{ContainerError, DockerService, Op};

impl DockerService {
    /// The gateway address of the network `name` (the host's address on that bridge): its
    /// first IPAM config's gateway that is an IP address. `None` when it has none (a `host`
    /// or `none` network); `NOT_FOUND` when there is no such network.
    pub async fn network_gateway(&self, name: &str) -> Result<Option<IpAddr>, ContainerError> {
        let net = self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                self.docker.inspect_network(name, None),
            )
            .await?;
        Ok(net
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse().ok()))
    }
}
