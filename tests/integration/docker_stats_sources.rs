//! Where the stats sampler reads: cgroup files for the local engine (checked against the
//! engine's own stats), the Docker API for a remote one or a container it cannot place.

use std::time::Duration;

use botmaker::docker::{DockerService, DockerSettings, StatsSnapshot};
use botmaker::sampler::{Sampler, StatsSource};
use botmaker_fake_engine::{FakeConfig, FakeEngine, Listen, Seed};
use reqwest::Method;
use tokio::sync::watch;

use crate::support::server::TestServer;
use crate::support::{Harness, eventually};

/// Runs `sampler` every second against `docker` until the returned sender is dropped.
fn run_sampler(sampler: &Sampler, docker: &DockerService) -> watch::Sender<bool> {
    let (stop, rx) = watch::channel(false);
    tokio::spawn(
        sampler
            .clone()
            .run(docker.clone(), Duration::from_secs(1), rx),
    );
    stop
}

#[tokio::test]
async fn docker_cgroupfs_sampler_reads_running_bots_and_agrees_with_docker() {
    let h = Harness::new().await;
    let bot = h.bot("cgstats");
    let mut cfg = h.config(&bot);
    // Busy: a line to each stream every millisecond.
    cfg.env.insert("TICK_MS".into(), "1".into());
    cfg.limits.memory_bytes = Some(96 << 20);
    h.docker.create_container(&bot, &cfg).await.unwrap();
    h.docker.start_container(&bot).await.unwrap();

    let sampler = Sampler::new();
    let _stop = run_sampler(&sampler, &h.docker);
    let first = eventually("a first sample", Duration::from_secs(60), || async {
        sampler.latest().into_iter().find(|s| s.id == bot.as_str())
    })
    .await;
    let source = sampler.source();
    assert_eq!(source.source, StatsSource::Cgroupfs, "{source:?}");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(source.cgroup_version, Some(if v2 { 2 } else { 1 }));
    assert!(source.bots_from_cgroupfs >= 1, "{source:?}");
    assert_eq!(source.fallback_reason, None);

    let s = first.sample;
    assert_eq!(s.memory_limit_bytes, 96 << 20, "{s:?}");
    assert!(s.memory_bytes > 0 && s.memory_bytes < 96 << 20, "{s:?}");
    assert!(s.pids >= 1, "{s:?}");
    let busy = eventually(
        "a busy bot's CPU above 0",
        Duration::from_secs(30),
        || async {
            sampler
                .latest()
                .into_iter()
                .find(|s| s.id == bot.as_str() && s.sample.cpu_percent > 0.0)
        },
    )
    .await;
    assert!(busy.sample.cpu_percent < 200.0, "{busy:?}");

    // The same counters the daemon reads, read a moment after it: never less, barely more.
    let reader = h.docker.cgroup_stats().await.unwrap();
    let container = h.docker.container_status(&bot).await.unwrap().unwrap();
    let hint = h.docker.cgroup_hint(&container.id).await.unwrap().unwrap();
    let paths = reader
        .locate(&container.id, &hint.cgroup_parent, hint.pid)
        .expect("the bot's cgroup is on this host");
    let docker: StatsSnapshot = h.docker.stats_snapshot(&bot).await.unwrap().unwrap();
    let ours = reader.read(&paths, &reader.host_cpu().unwrap()).unwrap();
    let ours = ours.snapshot;
    assert!(
        ours.cpu_total_ns >= docker.cpu_total_ns,
        "{ours:?} vs {docker:?}"
    );
    assert!(
        ours.cpu_total_ns - docker.cpu_total_ns < 5_000_000_000,
        "more CPU than two cores in the 2 s between readings: {ours:?} vs {docker:?}"
    );
    assert_eq!(ours.memory_limit_bytes, docker.memory_limit_bytes);
    let mem_diff = ours.memory_bytes.abs_diff(docker.memory_bytes);
    assert!(mem_diff < 8 << 20, "memory {ours:?} vs {docker:?}");
    assert_eq!(ours.online_cpus, docker.online_cpus);
    assert!(
        ours.network_rx_bytes >= docker.network_rx_bytes,
        "{ours:?} vs {docker:?}"
    );

    // A stopped bot leaves the cache.
    h.docker.stop_container(&bot, None).await.unwrap();
    eventually(
        "the stopped bot dropped",
        Duration::from_secs(30),
        || async { (!sampler.latest().iter().any(|s| s.id == bot.as_str())).then_some(()) },
    )
    .await;
}

async fn fake_with_bots(listen: Listen, n: usize) -> FakeEngine {
    let f = FakeEngine::start(FakeConfig {
        listen,
        stats_tick: None,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    f.add_image("img:sim");
    f.seed(&Seed::new("sim", "img:sim", n));
    f
}

async fn connect(f: &FakeEngine) -> DockerService {
    DockerService::connect(DockerSettings {
        host: Some(f.host().into()),
        instance: "sim".into(),
        ..DockerSettings::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn docker_sampler_uses_the_api_for_a_remote_engine() {
    let f = fake_with_bots(Listen::Tcp, 3).await;
    let docker = connect(&f).await;
    let sampler = Sampler::new();
    let _stop = run_sampler(&sampler, &docker);
    eventually(
        "all three bots sampled",
        Duration::from_secs(30),
        || async { (sampler.latest().len() == 3).then_some(()) },
    )
    .await;
    let source = sampler.source();
    assert_eq!(source.source, StatsSource::DockerApi);
    assert_eq!(source.bots_from_docker_api, 3, "{source:?}");
    assert!(
        source
            .fallback_reason
            .as_deref()
            .is_some_and(|r| r.contains("not reached through a local unix socket")),
        "{source:?}"
    );
    assert_eq!(
        f.counts().get("GET /info"),
        None,
        "a remote engine is not asked"
    );
}

#[tokio::test]
async fn docker_sampler_uses_the_api_for_containers_it_cannot_place() {
    // A unix socket, but its containers have no cgroups on this host.
    let f = fake_with_bots(Listen::TempUnix, 2).await;
    let docker = connect(&f).await;
    let sampler = Sampler::new();
    let _stop = run_sampler(&sampler, &docker);
    eventually("both bots sampled", Duration::from_secs(30), || async {
        (sampler.latest().len() == 2).then_some(())
    })
    .await;
    let source = sampler.source();
    assert_eq!(source.source, StatsSource::DockerApi, "{source:?}");
    assert_eq!(source.bots_from_cgroupfs, 0, "{source:?}");
    // Placed once per container, not once per round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let inspects = f.counts()["GET /containers/{id}/json"];
    assert_eq!(inspects, 2, "{:?}", f.counts());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_health_names_the_stats_source() {
    let s = TestServer::start().await;
    let health = eventually("the sampler decided", Duration::from_secs(30), || async {
        let (_, v) = s.call_as(None, Method::GET, "/health", None).await;
        let decided = v["stats"]["fallback_reason"] != "sampler not started";
        decided.then_some(v)
    })
    .await;
    // This machine's engine is local: the sampler reads cgroup files.
    assert_eq!(health["stats"]["source"], "cgroupfs", "{health}");
    assert!(health["stats"]["cgroup_version"].is_u64(), "{health}");
}
