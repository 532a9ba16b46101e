//! A bot's published ports on Swarm: in `host` mode on the node that runs its task (the
//! default, what one Docker host does), or through the routing mesh (`ingress`) when a port
//! asks for `publish: mesh`; and the host ports Swarm bound, for the API's view.
//!
//! Swarm cannot bind a port to one address of a node: both modes publish on all of them. A
//! port must therefore say so itself, with `host_ip` `0.0.0.0` (or `::`); a port on
//! `127.0.0.1` (the default on the Docker backend) or any other address is refused rather
//! than exposed more widely than asked.

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Service,
};

use super::super::config::{
    BindScope, DEFAULT_HOST_IP, EVERY_ADDRESS, PortMapping, PortPublish, Protocol,
};
use super::super::status::BoundPort;

/// The service's endpoint for `ports` (`None` without ports), or the one host address a port
/// asked for that Swarm cannot bind alone.
pub(super) fn endpoint_spec(ports: &[PortMapping]) -> Result<Option<EndpointSpec>, String> {
    if ports.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(ports.len());
    for p in ports {
        if !BindScope::EveryAddress.publishes_as_asked(p.host_ip.as_deref()) {
            return Err(p.host_ip.as_deref().unwrap_or(DEFAULT_HOST_IP).to_string());
        }
        out.push(EndpointPortConfig {
            protocol: Some(match p.protocol {
                Protocol::Tcp => EndpointPortConfigProtocolEnum::TCP,
                Protocol::Udp => EndpointPortConfigProtocolEnum::UDP,
            }),
            target_port: Some(i64::from(p.container_port)),
            // 0: Swarm picks one (from 30000-32767 on the mesh, any free one in host mode).
            published_port: p.host_port.map(i64::from),
            publish_mode: Some(match p.publish {
                PortPublish::Host => EndpointPortConfigPublishModeEnum::HOST,
                PortPublish::Mesh => EndpointPortConfigPublishModeEnum::INGRESS,
            }),
            ..Default::default()
        });
    }
    Ok(Some(EndpointSpec {
        mode: Some(EndpointSpecModeEnum::VIP),
        ports: Some(out),
    }))
}

/// The routing-mesh ports Swarm published for `service` (the host-mode ones are the
/// container's own bindings, read from it where it runs).
pub(super) fn mesh_ports(service: &Service) -> Vec<BoundPort> {
    let ports = service
        .endpoint
        .as_ref()
        .and_then(|e| e.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ports
        .iter()
        .filter(|p| p.publish_mode == Some(EndpointPortConfigPublishModeEnum::INGRESS))
        .filter_map(|p| {
            Some(BoundPort {
                container: u16::try_from(p.target_port?).ok()?,
                protocol: match p.protocol {
                    Some(EndpointPortConfigProtocolEnum::UDP) => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
                host_ip: EVERY_ADDRESS[0].to_string(),
                host: u16::try_from(p.published_port?).ok().filter(|h| *h > 0)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ServiceEndpoint;

    fn port(ip: Option<&str>, publish: PortPublish) -> PortMapping {
        PortMapping {
            container_port: 8080,
            host_port: Some(18080),
            host_ip: ip.map(str::to_string),
            protocol: Protocol::Tcp,
            publish,
        }
    }

    #[test]
    fn a_port_on_one_address_is_refused_rather_than_published_on_all() {
        for ip in [None, Some("127.0.0.1"), Some("10.0.0.5")] {
            let err = endpoint_spec(&[port(ip, PortPublish::Host)]).unwrap_err();
            assert_eq!(err, ip.unwrap_or("127.0.0.1"));
        }
    }

    #[test]
    fn ports_on_every_address_go_in_host_mode_or_through_the_mesh() {
        let spec = endpoint_spec(&[
            port(Some("0.0.0.0"), PortPublish::Host),
            port(Some("::"), PortPublish::Mesh),
        ])
        .unwrap()
        .unwrap();
        let ports = spec.ports.unwrap();
        assert_eq!(
            ports[0].publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        assert_eq!(
            ports[1].publish_mode,
            Some(EndpointPortConfigPublishModeEnum::INGRESS)
        );
        assert_eq!(ports[0].target_port, Some(8080));
        assert_eq!(ports[0].published_port, Some(18080));
        assert_eq!(endpoint_spec(&[]).unwrap(), None);
    }

    #[test]
    fn the_mesh_ports_swarm_assigned_are_the_bound_ones() {
        let service = Service {
            endpoint: Some(ServiceEndpoint {
                ports: Some(vec![
                    EndpointPortConfig {
                        protocol: Some(EndpointPortConfigProtocolEnum::UDP),
                        target_port: Some(53),
                        published_port: Some(30001),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
                        ..Default::default()
                    },
                    EndpointPortConfig {
                        target_port: Some(80),
                        published_port: Some(8080),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            mesh_ports(&service),
            vec![BoundPort {
                container: 53,
                protocol: Protocol::Udp,
                host_ip: "0.0.0.0".into(),
                host: 30001,
            }]
        );
    }
}
