//! A private single-node Docker Swarm: a [`PrivateEngine`] on which the test runs
//! `swarm init` through the API. The shared engine is never made a swarm; everything the swarm
//! holds (services, secrets, the raft state) lives in the private engine's data directory,
//! which its drop guard removes with the daemon. The one thing a swarm puts in the host's
//! network namespace, its `docker_gwbridge` bridge, is created beforehand under a name and
//! subnet of this swarm's own (Docker's documented way to customise it), so parallel swarms
//! never share it, and the drop guard deletes it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest, SwarmInitRequest};
use bollard::query_parameters::ListSecretsOptionsBuilder;
use botmaker::docker::{Backend, DockerService, DockerSettings};

use super::Harness;
use super::private_engine::PrivateEngine;
use super::server::{TestServer, config};

/// A free TCP port on 127.0.0.1 (the swarm's listen and data-path ports must not collide
/// with another test's swarm).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private engine made a single-node swarm manager.
pub struct PrivateSwarm {
    /// The engine; dropping it stops the daemon and removes its data (the swarm with it).
    pub engine: PrivateEngine,
    /// The host bridge of this swarm's `docker_gwbridge` network.
    gateway_bridge: String,
}

impl Drop for PrivateSwarm {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.gateway_bridge])
            .status();
    }
}

impl PrivateSwarm {
    /// Starts a private engine and initialises a swarm on it.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// Starts a private engine and initialises a swarm on it, listening and advertising on
    /// `ip` (an address of this host other nodes can reach: see `swarm_worker`).
    pub async fn start_on(ip: &str) -> Self {
        let engine = PrivateEngine::start().await;
        let docker = engine
            .service("probe")
            .await
            .expect("private engine answers");
        let n = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            super::unique("gw").hash(&mut h);
            h.finish() as u32
        };
        let gateway_bridge = format!("bmg{n:08x}");
        let mut options = std::collections::HashMap::new();
        for (k, v) in [
            ("com.docker.network.bridge.name", gateway_bridge.as_str()),
            ("com.docker.network.bridge.enable_icc", "false"),
            ("com.docker.network.bridge.enable_ip_masquerade", "false"),
        ] {
            options.insert(k.to_string(), v.to_string());
        }
        docker
            .client()
            .create_network(NetworkCreateRequest {
                name: "docker_gwbridge".into(),
                driver: Some("bridge".into()),
                options: Some(options),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("10.214.{}.0/24", 1 + n % 250)),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("the swarm's own docker_gwbridge");
        let listen = free_port();
        let request = SwarmInitRequest {
            listen_addr: Some(format!("{ip}:{listen}")),
            advertise_addr: Some(format!("{ip}:{listen}")),
            // VXLAN's default 4789 would be shared by every swarm on this host.
            data_path_port: Some(u32::from(free_port())),
            ..Default::default()
        };
        tokio::time::timeout(Duration::from_secs(60), docker.client().init_swarm(request))
            .await
            .expect("swarm init answers")
            .expect("swarm init");
        Self {
            engine,
            gateway_bridge,
        }
    }

    /// A service driving this swarm under `instance`.
    pub async fn service(&self, instance: &str) -> DockerService {
        DockerService::connect(DockerSettings {
            host: Some(self.engine.host.clone()),
            instance: instance.into(),
            backend: Backend::Swarm,
            ..DockerSettings::default()
        })
        .await
        .expect("the swarm backend connects to a manager")
    }

    /// A botmaker server serving with `--backend swarm` on this swarm, the fixture image
    /// built on the engine.
    pub async fn server(&self) -> TestServer {
        self.server_with(|_| {}).await
    }

    /// [`Self::server`], with its settings changed by `change` first.
    pub async fn server_with(
        &self,
        change: impl FnOnce(&mut botmaker::config::ServeConfig),
    ) -> TestServer {
        let docker = self.service(&super::instance()).await;
        let h = Harness::on(docker).await;
        let data = tempfile::Builder::new()
            .prefix("botmaker-data")
            .tempdir()
            .unwrap();
        let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
        cfg.docker_host = Some(self.engine.host.clone());
        cfg.backend = Backend::Swarm;
        change(&mut cfg);
        TestServer::start_with(h, data, cfg).await
    }
}

/// A service's image reference without the `@sha256:` digest Swarm may pin it to.
pub fn without_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

/// The Swarm secrets carrying every label of `labels` (`key=value`), as (name, id).
pub async fn secrets_labelled(s: &TestServer, labels: &[String]) -> Vec<(String, String)> {
    let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
    let options = ListSecretsOptionsBuilder::new().filters(&filters).build();
    s.h.docker
        .client()
        .list_secrets(Some(options))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|x| Some((x.spec?.name?, x.id?)))
        .collect()
}
