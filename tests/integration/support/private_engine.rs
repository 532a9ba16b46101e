//! A second, private Docker daemon with its own socket, data root and exec root, for tests
//! that stop and restart the daemon without disturbing every other test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use botmaker::docker::{DockerService, DockerSettings};
use tokio::process::{Child, Command};

/// A private `dockerd` on a bridge of its own, with iptables off, so it never touches the
/// host's `docker0` or firewall rules. (`--bridge none` would be simpler, but a daemon started
/// with it deletes `docker0` from under the main daemon.) Its bots run with network `none`.
pub struct PrivateEngine {
    dir: PathBuf,
    bridge: String,
    child: Option<Child>,
    /// `unix:///.../docker.sock`
    pub host: String,
}

impl PrivateEngine {
    /// Starts the daemon and waits until it answers.
    pub async fn start() -> Self {
        // Short path: unix socket paths (containerd's too) are limited to 108 bytes.
        let dir = PathBuf::from(format!("/tmp/bmd-{}", super::unique("e")));
        std::fs::create_dir_all(&dir).unwrap();
        let host = format!("unix://{}/docker.sock", dir.display());
        // Interface names are at most 15 bytes.
        let bridge = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            super::unique("bridge").hash(&mut h);
            format!("bmt{:08x}", h.finish() as u32)
        };
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {args:?} failed (needs root and iproute2)");
        };
        ip(&["link", "add", "name", &bridge, "type", "bridge"]);
        // A subnet of its own, so several private engines can run side by side.
        let subnet = format!(
            "10.213.{}.1/24",
            1 + u32::from_str_radix(&bridge[3..], 16).unwrap() % 250
        );
        ip(&["addr", "add", &subnet, "dev", &bridge]);
        let mut e = Self {
            dir,
            bridge,
            child: None,
            host,
        };
        e.launch().await;
        e
    }

    async fn launch(&mut self) {
        let d = &self.dir;
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(&self.host)
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .args([
                "--bridge",
                &self.bridge,
                "--iptables=false",
                "--ip-masq=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("dockerd must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.service("probe").await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private dockerd did not answer; log: {}",
                std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A service on this daemon under `instance`, if it answers.
    pub async fn service(&self, instance: &str) -> Option<DockerService> {
        DockerService::connect(DockerSettings {
            host: Some(self.host.clone()),
            instance: instance.into(),
            ..DockerSettings::default()
        })
        .await
        .ok()
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the daemon.
    fn signal(&self, signal: &str) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let ok = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -{signal} {pid} failed");
        }
    }

    /// Freezes the daemon (SIGSTOP): its socket still accepts connections, but nothing answers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen daemon run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Stops the daemon (SIGTERM) and waits for it to exit.
    pub async fn stop(&mut self) {
        // A frozen daemon would never act on SIGTERM.
        self.thaw();
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

    /// Stops and starts the daemon again on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
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
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        // The daemon unmounted its layers on exit, unless it had to be killed: a swarm
        // manager whose worker is gone can keep network namespaces (`nsfs`) mounted under
        // its exec root. Those are unmounted (deepest first) before the files go.
        let prefix = format!("{}/", self.dir.display());
        let mut left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&self.dir)
            .status();
    }
}
