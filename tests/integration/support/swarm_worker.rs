//! A two-node private swarm on one machine: the [`PrivateSwarm`] manager on this host, and a
//! worker `dockerd` in a network namespace (and UTS namespace, for a host name of its own)
//! that the test creates, joined over a veth pair with private addresses. No registry
//! exists, so the fixture image is exported from the manager's engine and loaded into the
//! worker's through the API. Everything is torn down by drop guards, even on panic: the
//! worker daemon is stopped, the namespace (with its veth end) deleted, the other veth end
//! and the temp directory removed; then the manager goes as a [`PrivateSwarm`] does.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::models::SwarmJoinRequest;
use botmaker::docker::{DockerService, DockerSettings};
use tokio::process::{Child, Command};

use super::image_copy::copy_image;
use super::server::TestServer;
use super::swarm::PrivateSwarm;

fn ip(args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args:?} failed (needs root and iproute2)");
}

/// The network plumbing of the worker: a namespace and a veth pair, host end `host_if`
/// with `host_ip`, namespace end with `worker_ip`.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
    worker_ip: String,
}

impl Netns {
    fn create() -> Self {
        let n = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            super::unique("netns").hash(&mut h);
            h.finish() as u32
        };
        // A /30 of 10.215.0.0/16 per pair, so parallel two-node swarms never share one.
        let block = (n % 16_000) * 4;
        let (a, b) = (block / 256, block % 256);
        let net = Self {
            name: format!("bmn{n:08x}"),
            host_if: format!("bmh{n:08x}"),
            host_ip: format!("10.215.{a}.{}", b + 1),
            worker_ip: format!("10.215.{a}.{}", b + 2),
        };
        let peer = format!("bmp{n:08x}");
        ip(&["netns", "add", &net.name]);
        ip(&[
            "link",
            "add",
            &net.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &net.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", net.host_ip),
            "dev",
            &net.host_if,
        ]);
        ip(&["link", "set", &net.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &net.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/30", net.worker_ip),
            "dev",
            &peer,
        ]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        net
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth end in it, and with it the pair.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}

/// The worker's `dockerd`, in the namespace, with its own socket, data and exec roots.
pub struct WorkerEngine {
    dir: PathBuf,
    child: Option<Child>,
    /// Its host name (the swarm's name for the node).
    pub hostname: String,
    /// `unix:///.../docker.sock`
    pub host: String,
    netns: Netns,
}

impl WorkerEngine {
    async fn start(netns: Netns) -> Self {
        let dir = PathBuf::from(format!("/tmp/bmw-{}", super::unique("w")));
        std::fs::create_dir_all(&dir).unwrap();
        let hostname = format!("bm-worker-{}", &netns.name[3..]);
        let host = format!("unix://{}/docker.sock", dir.display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        // In a mount namespace of its own, a sysfs of the network namespace goes over /sys
        // (what `ip netns exec` does), with the host's cgroup hierarchies bound back under it
        // (`ip netns exec` loses them, and dockerd needs them). `nsenter`, `unshare` and the
        // shell exec their command: the child's pid is the daemon's.
        let script = format!(
            "set -e; mkdir -p {d}/cg; mount --rbind /sys/fs/cgroup {d}/cg; \
             mount -t sysfs sysfs /sys; mount --rbind {d}/cg /sys/fs/cgroup; \
             hostname {hostname}; exec dockerd --host {host} --data-root {d}/root \
             --exec-root {d}/x --pidfile {d}/dockerd.pid --iptables=false --ip-masq=false",
            d = dir.display()
        );
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", netns.name))
            .args(["--", "unshare", "--uts", "--mount", "--", "sh", "-c"])
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("ip, unshare and dockerd must be installed");
        let e = Self {
            dir,
            child: Some(child),
            hostname,
            host,
            netns,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while e.service().await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the worker dockerd did not answer; log: {}",
                std::fs::read_to_string(e.dir.join("dockerd.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        e
    }

    /// A service on the worker's engine (plain Docker backend), if it answers.
    pub async fn service(&self) -> Option<DockerService> {
        DockerService::connect(DockerSettings {
            host: Some(self.host.clone()),
            instance: "probe".into(),
            ..DockerSettings::default()
        })
        .await
        .ok()
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 30 s): to the manager, the node goes down.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

impl Drop for WorkerEngine {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = child.start_kill();
        }
        // The daemon's mounts lived in its own mount namespace, gone with it.
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&self.dir)
            .status();
        // `netns` drops after this: namespace and veth pair deleted.
        let _ = &self.netns;
    }
}

/// A manager on this host and a worker in a network namespace, in one swarm.
pub struct TwoNodeSwarm {
    /// The worker (dropped first: it leaves with its daemon).
    pub worker: WorkerEngine,
    /// The manager; botmaker talks to it.
    pub manager: PrivateSwarm,
}

impl TwoNodeSwarm {
    /// Starts both engines and joins the worker to the manager's swarm.
    pub async fn start() -> Self {
        let netns = Netns::create();
        let manager = PrivateSwarm::start_on(&netns.host_ip.clone()).await;
        let worker_ip = netns.worker_ip.clone();
        let worker = WorkerEngine::start(netns).await;
        let m = manager.engine.service("probe").await.unwrap();
        let swarm = m.client().inspect_swarm().await.expect("swarm inspect");
        let token = swarm.join_tokens.unwrap().worker.unwrap();
        let info = m.client().info().await.unwrap();
        let remote = info
            .swarm
            .unwrap()
            .remote_managers
            .unwrap()
            .into_iter()
            .find_map(|p| p.addr)
            .expect("the manager's address");
        let w = worker.service().await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(60),
            w.client().join_swarm(SwarmJoinRequest {
                listen_addr: Some(format!("{worker_ip}:2377")),
                advertise_addr: Some(worker_ip.clone()),
                data_path_addr: Some(worker_ip),
                remote_addrs: Some(vec![remote]),
                join_token: Some(token),
            }),
        )
        .await
        .expect("swarm join answers")
        .expect("swarm join");
        Self { worker, manager }
    }

    /// A botmaker server on the manager, with the fixture image on both engines. Its resync
    /// runs once, at start: what it sees of the nodes later comes from events.
    pub async fn server(&self) -> TestServer {
        let s = self.manager.server_with(|c| c.resync_interval = 3600).await;
        let w = self.worker.service().await.unwrap();
        copy_image(s.h.docker.client(), w.client(), &s.h.image).await;
        s
    }

    /// The worker's node id, as the manager knows it.
    pub async fn worker_node_id(&self) -> String {
        let w = self.worker.service().await.unwrap();
        w.client()
            .info()
            .await
            .unwrap()
            .swarm
            .unwrap()
            .node_id
            .unwrap()
    }
}
