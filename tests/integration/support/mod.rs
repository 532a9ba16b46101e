//! Shared test harness: a real Docker Engine, a private label namespace per test, and a drop
//! guard that removes everything the test made, even when it panics.

pub mod child_server;
pub mod claw;
pub mod fixture;
pub mod image_copy;
pub mod llm;
pub mod openclaw;
pub mod podman;
pub mod private_engine;
pub mod server;
pub mod swarm;
pub mod swarm_worker;
pub mod variants;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use botmaker::BotId;
use botmaker::docker::{ContainerConfig, DockerService, DockerSettings, LogOptions};
use futures_util::StreamExt;
use tempfile::TempDir;

/// A string unique to this test process and call: keeps parallel tests (and parallel runs on
/// one daemon) out of each other's way.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{:x}{:x}{n}", std::process::id(), nanos % 0xfff)
}

/// A fresh `botmaker.instance` name for one test. Under `scripts/test` it starts with the run's
/// `BOTMAKER_TEST_RUN` prefix, so the leftover check at the end finds exactly this run's
/// containers even while another checkout's tests share the daemon.
pub fn instance() -> String {
    let run = std::env::var("BOTMAKER_TEST_RUN").unwrap_or_default();
    unique(&format!("{run}t"))
}

/// The variable naming the engine the suite runs against when it is not the default Docker
/// Engine: `scripts/test-podman` points it at a Podman service socket. A variable of its own,
/// rather than `DOCKER_HOST`, so the tests that start `botmaker` or the `docker` CLI as child
/// processes, or a private dockerd, are not redirected by accident.
pub const ENGINE_HOST_VAR: &str = "BOTMAKER_TEST_DOCKER_HOST";

/// The engine address under test: [`ENGINE_HOST_VAR`] when set, else whatever
/// [`DockerSettings`] picks (`DOCKER_HOST`, then the default socket).
pub fn engine_host() -> Option<String> {
    std::env::var(ENGINE_HOST_VAR)
        .ok()
        .filter(|h| !h.is_empty())
}

/// Connects to the engine the suite runs against, or fails with what to do about it.
pub async fn connect(instance: &str) -> DockerService {
    let settings = DockerSettings {
        host: engine_host(),
        instance: instance.to_string(),
        ..DockerSettings::default()
    };
    match DockerService::connect(settings).await {
        Ok(d) => d,
        Err(e) => panic!(
            "These tests need a running Docker Engine and none answered: {e}\n\
             Run `scripts/test`, which starts one (Debian: installs docker.io and runs dockerd), \
             or start dockerd yourself / set DOCKER_HOST."
        ),
    }
}

/// One test's world: its own instance label, its own temp dir, its own bots.
pub struct Harness {
    /// Service scoped to this test's instance.
    pub docker: DockerService,
    /// The fixture image tag.
    pub image: String,
    /// Scratch space (secrets dirs live here).
    pub tmp: TempDir,
    /// Containers made outside the service (foreign ones) that must go too.
    foreign: std::sync::Mutex<Vec<String>>,
}

impl Harness {
    /// Connects under a fresh instance name and makes sure the fixture image exists.
    pub async fn new() -> Self {
        let docker = connect(&instance()).await;
        let image = fixture::image(docker.client());
        Self::with(docker, image)
    }

    /// A harness on another daemon (a private engine), with the fixture image built there.
    pub async fn on(docker: DockerService) -> Self {
        let image = fixture::build_image_on(docker.client()).await;
        Self::with(docker, image)
    }

    /// A harness that owns nothing (placeholder while a server restarts).
    pub async fn detached() -> Self {
        Self::with(connect(&instance()).await, String::new())
    }

    fn with(docker: DockerService, image: String) -> Self {
        Self {
            docker,
            image,
            tmp: tempfile::Builder::new()
                .prefix("botmaker-test")
                .tempdir()
                .unwrap(),
            foreign: Default::default(),
        }
    }

    /// A bot id no other test uses.
    pub fn bot(&self, name: &str) -> BotId {
        BotId::new(unique(name)).unwrap()
    }

    /// Creates (0700) and returns a secrets dir for `bot`.
    pub fn secrets_dir(&self, bot: &BotId) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.tmp.path().join("secrets").join(bot.as_str());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// A config running the fixture bot with its secrets dir, ticking every 200 ms.
    pub fn config(&self, bot: &BotId) -> ContainerConfig {
        let mut c = ContainerConfig::new(self.image.clone(), self.secrets_dir(bot));
        c.env = BTreeMap::from([("TICK_MS".into(), "200".into())]);
        c.labels = BTreeMap::from([(fixture::TEST_LABEL.into(), "1".into())]);
        c
    }

    /// Remember a container made behind the service's back, for cleanup.
    pub fn track_foreign(&self, name: &str) {
        self.foreign.lock().unwrap().push(name.to_string());
    }

    /// Waits until `needle` appears in the bot's logs.
    pub async fn wait_for_log(&self, bot: &BotId, needle: &str) -> Vec<String> {
        let mut last = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            last = self.log_lines(bot).await;
            if last.iter().any(|l| l.contains(needle)) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{needle:?} never appeared in the logs of {bot}; last lines: {last:?}");
    }

    /// Every log line of the bot so far.
    pub async fn log_lines(&self, bot: &BotId) -> Vec<String> {
        self.docker
            .logs(bot, &LogOptions::default())
            .filter_map(|l| std::future::ready(l.ok().map(|l| l.message)))
            .collect()
            .await
    }
}

/// The `/proc/<pid>/status` of a container's process, as `(field, value)` lines: what the
/// kernel, not the engine's config, says about its privileges. Tests share the engine's host.
pub fn proc_status(pid: i64) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for Harness {
    /// Force-removes every container of this test's instance and the foreign ones it made.
    /// Runs on a thread of its own: a drop may happen inside (or after) the test's runtime.
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let foreign = std::mem::take(&mut *self.foreign.lock().unwrap_or_else(|e| e.into_inner()));
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let force = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build();
                let mut names = foreign;
                // A container its engine is restarting (a crash loop) can refuse removal for a
                // moment (Podman does): list and remove again until none is left, a few times.
                for _ in 0..5 {
                    if let Ok(list) = docker.list_managed_containers().await {
                        names.extend(list.into_iter().map(|c| c.id));
                    }
                    if names.is_empty() {
                        break;
                    }
                    for name in names.drain(..) {
                        let _ = docker
                            .client()
                            .remove_container(&name, Some(force.clone()))
                            .await;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
            })
        });
        let _ = cleanup.join();
    }
}
