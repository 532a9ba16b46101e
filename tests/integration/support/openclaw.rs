//! What the real-OpenClaw tests need beyond the harness: the gateway image (built by
//! `scripts/openclaw-image` when its tag is missing), a Docker network of the test's own, and a
//! mock OpenAI-compatible LLM on it (the fixture bot's `mock-llm` mode). Everything is removed
//! in a drop guard, even when the test panics.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use serde_json::Value;

use super::fixture::TEST_LABEL;
use super::{Harness, eventually, unique};

/// The mock's name on the test network, as bots' `base_url` uses it.
pub const MOCK_ALIAS: &str = "mockllm";
/// The mock's port.
pub const MOCK_PORT: u16 = 8080;
/// What the mock answers to every chat completion.
pub const MOCK_REPLY: &str = "pong from the mock LLM, 7f3e";

/// Real gateways running at once. Each one's Node start-up takes most of a core for a minute or
/// more: three at once beside the rest of the suite (and other builds) on two cores missed the
/// 300 s health bound, and so did two at once in CI beside the Swarm and browser tests (both
/// still `starting` after 300 s, while the third, alone afterwards, was healthy in time). Alone
/// a gateway is healthy 20-30 s after its create on an idle machine.
const GATEWAYS_AT_ONCE: usize = 1;

/// From a real gateway's create (or restart, or apply) to `healthy`: a bound on liveness, not a
/// performance figure (those are the tests' `MEASURE` lines). Generous: 20-30 s alone, up to
/// 174 s measured at load 9-17 on these two cores.
pub const HEALTHY_BOUND: Duration = Duration::from_secs(600);

/// A turn to run a real gateway, held for the whole test.
pub async fn gateway_turn() -> tokio::sync::SemaphorePermit<'static> {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(GATEWAYS_AT_ONCE);
    TURNS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real OpenClaw image's tag, running `scripts/openclaw-image` first (a no-op when the
/// tag exists; minutes when it must build). Its progress goes to the test's stderr.
pub fn image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let script = workspace_root().join("scripts/openclaw-image");
            let out = Command::new(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/openclaw-image failed ({}); its output is above",
                out.status
            );
            String::from_utf8(out.stdout)
                .expect("a tag")
                .lines()
                .last()
                .expect("the script prints the tag last")
                .trim()
                .to_string()
        })
        .clone()
}

/// A Docker network the test made, removed (after disconnecting whatever is still on it) when
/// dropped.
pub struct TestNetwork {
    docker: Docker,
    /// Its name.
    pub name: String,
    /// True for a swarm overlay, whose addresses the host does not reach.
    overlay: bool,
}

impl TestNetwork {
    /// Creates a network; `internal` ones reach nothing outside (and publish no port).
    pub async fn create(h: &Harness, internal: bool) -> Self {
        let name = unique("botmaker-test-net");
        h.docker
            .client()
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                internal: Some(internal),
                labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
                ..Default::default()
            })
            .await
            .expect("creating the test network");
        Self {
            docker: h.docker.client().clone(),
            name,
            overlay: false,
        }
    }

    /// Creates an attachable overlay on a swarm manager's engine: what bots on Swarm join,
    /// and containers too (the mock). Not internal: its containers get an address on the
    /// node's `docker_gwbridge`, the one the host reaches them at.
    pub async fn create_overlay(h: &Harness) -> Self {
        let name = unique("botmaker-test-ov");
        h.docker
            .client()
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("overlay".into()),
                attachable: Some(true),
                labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
                ..Default::default()
            })
            .await
            .expect("creating the test overlay");
        Self {
            docker: h.docker.client().clone(),
            name,
            overlay: true,
        }
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let (docker, name) = (self.docker.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(n) = docker.inspect_network(&name, None).await {
                    for id in n.containers.unwrap_or_default().into_keys() {
                        let _ = docker
                            .disconnect_network(
                                &name,
                                NetworkDisconnectRequest {
                                    container: id,
                                    force: Some(true),
                                },
                            )
                            .await;
                    }
                }
                // A container still being removed may hold it a moment longer.
                for _ in 0..20 {
                    if docker.remove_network(&name).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        })
        .join();
    }
}

/// A mock OpenAI-compatible LLM on an internal network (or a swarm overlay) of its own.
pub struct MockLlm {
    docker: Docker,
    container: String,
    /// Its address as the host reaches it: on the network, or on an overlay its
    /// `docker_gwbridge` one.
    pub ip: String,
    /// The network bots join to reach it (dropped after the mock).
    pub network: TestNetwork,
}

impl MockLlm {
    /// Starts the mock on a fresh internal network and waits until it answers.
    pub async fn start(h: &Harness) -> Self {
        let network = TestNetwork::create(h, true).await;
        Self::start_on(h, network).await
    }

    /// Starts the mock on a fresh attachable overlay of the swarm `h` drives (see
    /// [`TestNetwork::create_overlay`]) and waits until it answers.
    pub async fn start_on_overlay(h: &Harness) -> Self {
        let network = TestNetwork::create_overlay(h).await;
        Self::start_on(h, network).await
    }

    async fn start_on(h: &Harness, network: TestNetwork) -> Self {
        let docker = h.docker.client().clone();
        let container = unique("botmaker-test-mockllm");
        let body = ContainerCreateBody {
            image: Some(h.image.clone()),
            cmd: Some(vec!["mock-llm".into()]),
            env: Some(vec![format!("MOCK_REPLY={MOCK_REPLY}")]),
            labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
            host_config: Some(HostConfig {
                network_mode: Some(network.name.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.name.clone(),
                    EndpointSettings {
                        aliases: Some(vec![MOCK_ALIAS.into()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        docker
            .create_container(Some(options), body)
            .await
            .expect("creating the mock LLM");
        let mut mock = Self {
            docker,
            container,
            ip: String::new(),
            network,
        };
        mock.docker
            .start_container(&mock.container, None)
            .await
            .expect("starting the mock LLM");
        let inspect = mock
            .docker
            .inspect_container(&mock.container, None)
            .await
            .unwrap();
        mock.ip = if mock.network.overlay {
            gateway_bridge_address(&mock.docker, inspect.id.as_deref().unwrap_or_default()).await
        } else {
            inspect
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(&mock.network.name))
                .and_then(|e| e.ip_address)
                .expect("the mock has an address on its network")
        };
        let url = format!("http://{}:{MOCK_PORT}/healthz", mock.ip);
        let client = client();
        eventually("the mock LLM answers", Duration::from_secs(20), || async {
            client
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        mock
    }

    /// The `base_url` a bot on the network uses.
    pub fn base_url(&self) -> String {
        format!("http://{MOCK_ALIAS}:{MOCK_PORT}/v1")
    }

    /// Every request the mock has seen (see fixtures/testbot/src/mock_llm.rs).
    pub async fn requests(&self) -> Vec<Value> {
        let url = format!("http://{}:{MOCK_PORT}/mock/requests", self.ip);
        client()
            .get(url)
            .send()
            .await
            .expect("the mock answers")
            .json()
            .await
            .expect("a JSON list")
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        let (docker, name) = (self.docker.clone(), self.container.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let force = RemoveContainerOptionsBuilder::new().force(true).build();
            rt.block_on(async { docker.remove_container(&name, Some(force)).await })
        })
        .join();
    }
}

/// The address of `container` on its engine's `docker_gwbridge`: where the host reaches a
/// container on a swarm overlay.
pub async fn gateway_bridge_address(docker: &Docker, container: &str) -> String {
    let cidr = docker
        .inspect_network("docker_gwbridge", None)
        .await
        .expect("the swarm's docker_gwbridge")
        .containers
        .and_then(|mut c| c.remove(container))
        .and_then(|e| e.ipv4_address)
        .expect("the container has an address on docker_gwbridge");
    cidr.split('/').next().unwrap_or_default().to_string()
}

/// An HTTP client that never goes through a proxy (bots live on local networks).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// The last lines `container` wrote (stdout and stderr), for a failure message: what a gateway
/// that never became healthy was doing.
pub async fn log_tail(container: &str) -> String {
    let mut cmd = Command::new("docker");
    cmd.args(["logs", "--tail", "40"]).arg(container);
    match tokio::task::spawn_blocking(move || cmd.output()).await {
        Ok(Ok(out)) => format!(
            "last lines of {container}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(Err(e)) => format!("(docker logs {container}: {e})"),
        Err(e) => format!("(docker logs {container}: {e})"),
    }
}

/// `docker exec <container> <args>` (the CLI, which honours DOCKER_HOST): exit code, stdout
/// and stderr.
pub async fn exec(container: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new("docker");
    cmd.arg("exec").arg(container).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("running docker exec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
