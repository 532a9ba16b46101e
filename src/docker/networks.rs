//! Reading Docker networks (never changing them): where a network's gateway is, so botmaker
//! can listen on the host's side of a bridge (the LLM proxy, see `crate::llm::listen`).

use std::net::{IpAddr, Ipv4Addr};

use super::{ContainerError, DockerService, Op};

impl DockerService {
    /// The gateway address of the network `name` (the host's address on that bridge). Docker
    /// reports it in the network's IPAM config when it was chosen explicitly; the default
    /// bridge of a stock daemon reports only its subnet, and its gateway is then, by Docker's
    /// own rule, the subnet's first host address (`172.17.0.0/16` → `172.17.0.1`). `None`
    /// when neither is there (a `host` or `none` network); `NOT_FOUND` for no such network.
    pub async fn network_gateway(&self, name: &str) -> Result<Option<IpAddr>, ContainerError> {
        let net = self
            .call(
                Op::Inspect,
                "",
                self.call_timeout,
                self.docker.inspect_network(name, None),
            )
            .await?;
        let configs = net.ipam.and_then(|ipam| ipam.config).unwrap_or_default();
        let explicit = configs
            .iter()
            .filter_map(|c| c.gateway.as_deref())
            .find_map(|g| g.parse().ok());
        Ok(explicit.or_else(|| {
            configs
                .iter()
                .filter_map(|c| c.subnet.as_deref())
                .find_map(first_host_of)
                .map(IpAddr::V4)
        }))
    }
}

/// The first host address of an IPv4 subnet (`a.b.c.d/n`), as Docker's default IPAM gives
/// a bridge's gateway.
fn first_host_of(subnet: &str) -> Option<Ipv4Addr> {
    let (ip, len) = subnet.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if !(1..=30).contains(&len) {
        return None;
    }
    let mask = u32::MAX << (32 - len);
    Some(Ipv4Addr::from((u32::from(ip) & mask) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridges_gateway_is_its_subnets_first_host() {
        assert_eq!(
            first_host_of("172.17.0.0/16"),
            Some(Ipv4Addr::new(172, 17, 0, 1))
        );
        assert_eq!(
            first_host_of("10.1.2.128/25"),
            Some(Ipv4Addr::new(10, 1, 2, 129))
        );
        assert_eq!(
            first_host_of("10.1.2.3/24"),
            Some(Ipv4Addr::new(10, 1, 2, 1))
        );
        for bad in ["fd00::/64", "10.0.0.0", "10.0.0.0/32", "x/8"] {
            assert_eq!(first_host_of(bad), None, "{bad}");
        }
    }
}
