//! A bot's `network` on Swarm: a service's task can only join a swarm-scoped network (an
//! overlay; make it `--attachable` so botmaker's own container, or a tool, can join it too),
//! or a node-local one Swarm knows how to give every node (`host`). A bridge of one engine is
//! refused at create, with the fix, before anything is made: Swarm would otherwise accept
//! the service and reject every task ("network not found" on the node).

use bollard::query_parameters::InspectNetworkOptions;

use super::super::error::{ContainerError, Op};
use super::super::{DockerService, lenient};
use crate::BotId;

/// Checks that the network `name` exists and a service's task can join it.
pub(super) async fn check(
    svc: &DockerService,
    bot_id: &BotId,
    name: &str,
) -> Result<(), ContainerError> {
    let invalid = |message: String| ContainerError::InvalidConfig {
        bot_id: bot_id.to_string(),
        message,
    };
    let net = match svc
        .call(
            Op::Inspect,
            bot_id.as_str(),
            svc.call_timeout,
            lenient::tolerant(
                svc.docker
                    .inspect_network(name, None::<InspectNetworkOptions>),
            ),
        )
        .await
    {
        Ok(n) => n,
        Err(ContainerError::NotFound { .. }) => {
            return Err(invalid(format!(
                "no network {name:?} on the swarm; create it with `docker network create \
                 --driver overlay --attachable {name}` on a manager"
            )));
        }
        Err(e) => return Err(e),
    };
    let scope = net.scope.as_deref().unwrap_or_default();
    let driver = net.driver.as_deref().unwrap_or_default();
    if verdict(scope, driver) {
        return Ok(());
    }
    Err(invalid(format!(
        "network {name:?} is a {driver} network of one engine ({scope} scope): on the swarm \
         backend a bot's network must be a swarm-scoped overlay; create one with `docker \
         network create --driver overlay --attachable <name>`"
    )))
}

/// Whether a task can join a network of this scope and driver.
fn verdict(scope: &str, driver: &str) -> bool {
    scope == "swarm" || driver == "host"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_swarm_scoped_networks_and_the_host_network_are_joined() {
        assert!(verdict("swarm", "overlay"));
        assert!(verdict("local", "host"));
        assert!(!verdict("local", "bridge"));
        assert!(!verdict("local", "macvlan"));
    }
}
