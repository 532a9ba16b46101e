//! The seven lifecycle operations and their error codes, on a real engine.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateContainerOptionsBuilder;
use botmaker::docker::{
    ContainerError, ContainerState, DockerService, DockerSettings, Engine, Health, HealthCheck,
    PortMapping, Protocol, ResourceLimits, container_name,
};

use crate::support::{Harness, eventually, fixture::TEST_LABEL, podman, proc_status, unique};

#[tokio::test]
async fn create_sets_name_labels_readonly_secrets_policy_limits_and_hardening() {
    let h = Harness::new().await;
    let bot = h.bot("create");
    let mut cfg = h.config(&bot);
    std::fs::write(cfg.secrets_dir.join("API_KEY"), "s3cret-value").unwrap();
    // A caller label trying to pass as another bot or instance must not win.
    cfg.labels
        .insert("botmaker.bot-id".into(), "someone-else".into());
    cfg.labels
        .insert("botmaker.instance".into(), "other".into());
    cfg.limits = ResourceLimits {
        memory_bytes: Some(64 << 20),
        cpus: Some(0.5),
        pids: Some(32),
    };
    cfg.hardening.read_only_rootfs = true;
    cfg.ports = vec![PortMapping {
        container_port: 8080,
        host_port: None,
        host_ip: None,
        protocol: Protocol::Tcp,
        publish: Default::default(),
    }];

    let id = h.docker.create_container(&bot, &cfg).await.unwrap();
    let inspect = h
        .docker
        .client()
        .inspect_container(&container_name(&bot), None)
        .await
        .unwrap();
    assert_eq!(inspect.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        inspect.name.as_deref(),
        Some(format!("/botmaker-{bot}").as_str())
    );

    let labels = inspect.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["botmaker.managed"], "true");
    assert_eq!(labels["botmaker.bot-id"], bot.as_str());
    assert_eq!(labels["botmaker.instance"], h.docker.instance());
    assert_eq!(labels[TEST_LABEL], "1");

    let hc = inspect.host_config.unwrap();
    assert_eq!(
        hc.restart_policy.unwrap().name.unwrap().to_string(),
        "unless-stopped"
    );
    assert_eq!(hc.memory, Some(64 << 20));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.pids_limit, Some(32));
    // Podman reports `ALL` expanded to the capabilities it would have granted, and the
    // option without its `:true`; the running process below shows the effect is the same.
    let security = hc.security_opt.unwrap();
    match h.docker.engine() {
        Engine::Docker => {
            assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
            assert!(security.contains(&"no-new-privileges:true".to_string()));
        }
        Engine::Podman => {
            assert!(hc.cap_drop.unwrap().contains(&"SYS_CHROOT".to_string()));
            assert!(security.contains(&"no-new-privileges".to_string()));
        }
    }
    assert_eq!(hc.readonly_rootfs, Some(true));
    let binding = &hc.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));

    let mounts = inspect.mounts.unwrap();
    let secrets = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/run/secrets"))
        .expect("secrets mount");
    assert_eq!(secrets.typ.as_deref(), Some("bind"));
    assert_eq!(secrets.rw, Some(false));
    assert_eq!(
        secrets.source.as_deref(),
        Some(cfg.secrets_dir.to_str().unwrap())
    );

    // From inside: the secret is visible by name, and writing there fails.
    h.docker.start_container(&bot).await.unwrap();
    // No capability at all, none to regain, and no way to gain privileges.
    let pid = h
        .docker
        .client()
        .inspect_container(&container_name(&bot), None)
        .await
        .unwrap()
        .state
        .unwrap()
        .pid
        .unwrap();
    let status = proc_status(pid);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status[field], "0000000000000000", "{field}: {status:?}");
    }
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
    let logs = h.wait_for_log(&bot, "secrets_writable").await;
    assert!(logs.iter().any(|l| l == "secrets: API_KEY"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("secrets_writable: false")),
        "{logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("s3cret-value")),
        "a secret value reached the logs"
    );
    // The value stays out of the container's environment too.
    let env = h
        .docker
        .client()
        .inspect_container(&container_name(&bot), None)
        .await
        .unwrap()
        .config
        .unwrap()
        .env
        .unwrap_or_default();
    assert!(!env.iter().any(|e| e.contains("s3cret-value")));
}

#[tokio::test]
async fn start_and_stop_twice_each_are_idempotent() {
    let h = Harness::new().await;
    let bot = h.bot("idem");
    h.docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap();

    h.docker.start_container(&bot).await.unwrap();
    h.docker
        .start_container(&bot)
        .await
        .expect("second start (304) is success");
    let s = h.docker.container_status(&bot).await.unwrap().unwrap();
    assert_eq!(s.state, ContainerState::Running);
    assert!(s.running);

    let t = Instant::now();
    h.docker.stop_container(&bot, None).await.unwrap();
    // The fixture handles SIGTERM as PID 1, so stop does not wait out the grace period.
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
    h.docker
        .stop_container(&bot, None)
        .await
        .expect("second stop (304) is success");
    let s = h.docker.container_status(&bot).await.unwrap().unwrap();
    assert_eq!(s.state, ContainerState::Exited);
    assert_eq!(s.exit_code, Some(0));
    assert!(s.finished_at.is_some());
}

#[tokio::test]
async fn restart_starts_a_new_run() {
    let h = Harness::new().await;
    let bot = h.bot("restart");
    h.docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap();
    h.docker.start_container(&bot).await.unwrap();
    // The fixture says `ready` once its SIGTERM handling is set up: a SIGTERM sent before
    // that, to PID 1 with no handler, is dropped by the kernel (seen on Podman under load:
    // the run was killed after its grace, and never said "got SIGTERM").
    h.wait_for_log(&bot, "ready").await;
    let first = h.docker.container_status(&bot).await.unwrap().unwrap();

    h.docker.restart_container(&bot, None).await.unwrap();
    let second = h.docker.container_status(&bot).await.unwrap().unwrap();
    assert_eq!(second.state, ContainerState::Running);
    assert!(
        second.started_at > first.started_at,
        "{first:?} → {second:?}"
    );
    h.wait_for_log(&bot, "got SIGTERM").await;

    // Restart of a stopped container starts it.
    h.docker.stop_container(&bot, None).await.unwrap();
    h.docker.restart_container(&bot, None).await.unwrap();
    assert!(
        h.docker
            .container_status(&bot)
            .await
            .unwrap()
            .unwrap()
            .running
    );
}

#[tokio::test]
async fn status_of_unknown_bot_is_none_and_ops_on_it_are_not_found() {
    let h = Harness::new().await;
    let bot = h.bot("ghost");
    assert_eq!(h.docker.container_status(&bot).await.unwrap(), None);
    let e = h.docker.start_container(&bot).await.unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND", "{e}");
    let e = h.docker.stop_container(&bot, None).await.unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND", "{e}");
    // Removing what is not there is success: the caller's goal is met.
    assert!(!h.docker.remove_container(&bot, None).await.unwrap());
}

#[tokio::test]
async fn duplicate_create_is_already_exists() {
    let h = Harness::new().await;
    let bot = h.bot("dup");
    let cfg = h.config(&bot);
    h.docker.create_container(&bot, &cfg).await.unwrap();
    let e = h.docker.create_container(&bot, &cfg).await.unwrap_err();
    assert_eq!(e.code(), "ALREADY_EXISTS", "{e}");
    assert!(matches!(e, ContainerError::AlreadyExists { ref bot_id } if bot_id == bot.as_str()));
    assert_eq!(h.docker.list_managed_containers().await.unwrap().len(), 1);
}

#[tokio::test]
async fn start_with_command_missing_from_image_is_start_failed_with_dockers_message() {
    let h = Harness::new().await;
    let bot = h.bot("nocmd");
    let mut cfg = h.config(&bot);
    cfg.entrypoint = Some(vec!["/no/such/binary".into()]);
    h.docker.create_container(&bot, &cfg).await.unwrap();
    let e = h.docker.start_container(&bot).await.unwrap_err();
    assert_eq!(e.code(), "START_FAILED", "{e}");
    assert!(e.to_string().contains("/no/such/binary"), "{e}");
    // The container stays for the user to inspect; it is not silently deleted.
    let s = h.docker.container_status(&bot).await.unwrap().unwrap();
    assert!(!s.running);
}

#[tokio::test]
async fn missing_image_is_not_found_and_creates_nothing() {
    let h = Harness::new().await;
    let bot = h.bot("noimg");
    let mut cfg = h.config(&bot);
    cfg.image = "botmaker-no-such-image:never".into();
    let e = h.docker.create_container(&bot, &cfg).await.unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND", "{e}");
    assert!(e.to_string().contains("botmaker-no-such-image"), "{e}");
    assert_eq!(h.docker.container_status(&bot).await.unwrap(), None);
}

#[tokio::test]
async fn missing_secrets_dir_is_invalid_config_not_an_empty_mount() {
    let h = Harness::new().await;
    let bot = h.bot("nosecrets");
    let mut cfg = h.config(&bot);
    cfg.secrets_dir = h.tmp.path().join("does-not-exist");
    let e = h.docker.create_container(&bot, &cfg).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_CONFIG", "{e}");
    assert!(
        !cfg.secrets_dir.exists(),
        "Docker created the missing source"
    );
    assert_eq!(h.docker.container_status(&bot).await.unwrap(), None);
}

#[tokio::test]
async fn remove_stops_then_removes() {
    let h = Harness::new().await;
    let bot = h.bot("rm");
    h.docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap();
    h.docker.start_container(&bot).await.unwrap();
    assert!(h.docker.remove_container(&bot, None).await.unwrap());
    assert_eq!(h.docker.container_status(&bot).await.unwrap(), None);
    assert!(!h.docker.remove_container(&bot, None).await.unwrap());
}

#[tokio::test]
async fn container_of_another_owner_is_never_touched() {
    let h = Harness::new().await;
    let bot = h.bot("foreign");
    let name = container_name(&bot);
    // Made by hand, with botmaker's name but no ownership labels.
    h.track_foreign(&name);
    h.docker
        .client()
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            bollard::models::ContainerCreateBody {
                image: Some(h.image.clone()),
                labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let e = h
        .docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ALREADY_EXISTS");
    let e = h.docker.remove_container(&bot, None).await.unwrap_err();
    assert_eq!(e.code(), "NOT_OWNED", "{e}");
    let e = h.docker.container_status(&bot).await.unwrap_err();
    assert_eq!(e.code(), "NOT_OWNED");
    // Still there.
    h.docker
        .client()
        .inspect_container(&name, None)
        .await
        .unwrap();
    // And not listed as ours.
    assert!(h.docker.list_managed_containers().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_sees_only_this_instances_containers_stopped_included() {
    let h = Harness::new().await;
    let other = Harness::new().await;
    let a = h.bot("lista");
    let b = h.bot("listb");
    let theirs = other.bot("listc");
    h.docker.create_container(&a, &h.config(&a)).await.unwrap();
    h.docker.create_container(&b, &h.config(&b)).await.unwrap();
    h.docker.start_container(&b).await.unwrap();
    other
        .docker
        .create_container(&theirs, &other.config(&theirs))
        .await
        .unwrap();

    let mut list = h.docker.list_managed_containers().await.unwrap();
    list.sort_by(|x, y| x.bot_id.cmp(&y.bot_id));
    let ids: Vec<_> = list.iter().map(|c| c.bot_id.as_str()).collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);
    assert_eq!(list[0].state, ContainerState::Created);
    assert_eq!(list[0].name, container_name(&a));
    assert_eq!(list[1].state, ContainerState::Running);
    assert_eq!(list[1].image, h.image);
}

#[tokio::test]
async fn crashing_bot_is_restarted_by_docker_and_counted() {
    let h = Harness::new().await;
    let bot = h.bot("crash");
    let mut cfg = h.config(&bot);
    cfg.env.insert("EXIT_AFTER_MS".into(), "100".into());
    cfg.env.insert("EXIT_CODE".into(), "3".into());
    h.docker.create_container(&bot, &cfg).await.unwrap();
    h.docker.start_container(&bot).await.unwrap();
    // Docker's restart backoff doubles from 100 ms: two restarts come within a few seconds.
    let s = eventually("two restarts", Duration::from_secs(30), || async {
        let s = h.docker.container_status(&bot).await.unwrap().unwrap();
        (s.restart_count >= 2).then_some(s)
    })
    .await;
    assert!(s.restart_count >= 2);
    let s = eventually("an exit code", Duration::from_secs(10), || async {
        let s = h.docker.container_status(&bot).await.unwrap().unwrap();
        s.exit_code.is_some().then_some(s)
    })
    .await;
    assert_eq!(s.exit_code, Some(3));
}

#[tokio::test]
async fn healthcheck_reports_healthy_then_unhealthy() {
    let h = Harness::new().await;
    let good = h.bot("healthy");
    let bad = h.bot("unhealthy");
    let check = |c: &mut botmaker::docker::ContainerConfig| {
        let mut hc = HealthCheck::new(vec!["/testbot".into(), "healthcheck".into()]);
        hc.interval = Duration::from_secs(1);
        hc.timeout = Duration::from_secs(2);
        hc.retries = 1;
        hc.start_period = Duration::ZERO;
        c.healthcheck = Some(hc);
    };
    let mut cfg = h.config(&good);
    check(&mut cfg);
    h.docker.create_container(&good, &cfg).await.unwrap();
    let mut cfg = h.config(&bad);
    check(&mut cfg);
    cfg.env.insert("HEALTHZ_STATUS".into(), "500".into());
    h.docker.create_container(&bad, &cfg).await.unwrap();
    h.docker.start_container(&good).await.unwrap();
    h.docker.start_container(&bad).await.unwrap();

    let podman = h.docker.engine() == Engine::Podman;
    for (bot, want) in [(&good, Health::Healthy), (&bad, Health::Unhealthy)] {
        eventually(
            &format!("{bot} {want:?}"),
            Duration::from_secs(30),
            || async {
                if podman {
                    // Podman runs HEALTHCHECKs from systemd timers, and the test service has
                    // no systemd: run the check as the timer would.
                    podman::run_healthcheck(&h.docker, &container_name(bot)).await;
                }
                let s = h.docker.container_status(bot).await.unwrap().unwrap();
                (s.health == want).then_some(())
            },
        )
        .await;
    }
    // The list call carries health too (from its status text), without N inspects. Podman's
    // list leaves health out of the status text (README, "Running on Podman").
    let list = h.docker.list_managed_containers().await.unwrap();
    let health: BTreeMap<_, _> = list.iter().map(|c| (c.bot_id.clone(), c.health)).collect();
    let (good_listed, bad_listed) = if podman {
        (Health::None, Health::None)
    } else {
        (Health::Healthy, Health::Unhealthy)
    };
    assert_eq!(health[good.as_str()], good_listed);
    assert_eq!(health[bad.as_str()], bad_listed);
}

#[tokio::test]
async fn daemon_nobody_listens_on_is_network_error_within_seconds() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for host in [
        format!("tcp://127.0.0.1:{port}"),
        format!("unix:///tmp/{}.sock", unique("nobody")),
    ] {
        let t = Instant::now();
        let e = DockerService::connect(DockerSettings {
            host: Some(host.clone()),
            ..DockerSettings::default()
        })
        .await
        .unwrap_err();
        assert_eq!(e.code(), "NETWORK_ERROR", "{e}");
        assert!(e.to_string().contains(&host), "message names the host: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn daemon_that_accepts_but_never_answers_times_out() {
    // A listener that takes connections and says nothing: a hung daemon.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("tcp://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let t = Instant::now();
    let e = DockerService::connect(DockerSettings {
        host: Some(host),
        connect_timeout: Duration::from_secs(1),
        ..DockerSettings::default()
    })
    .await
    .unwrap_err();
    assert_eq!(e.code(), "NETWORK_ERROR", "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    hold.abort();
}

#[tokio::test]
async fn negotiates_an_api_version_the_engine_speaks() {
    let h = Harness::new().await;
    let (major, minor) = h
        .docker
        .api_version()
        .split_once('.')
        .map(|(a, b)| (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()))
        .unwrap();
    assert!((major, minor) >= (1, 41), "{major}.{minor}");
    let server = h.docker.client().version().await.unwrap();
    let server_api = server.api_version.unwrap();
    let (smaj, smin) = server_api.split_once('.').unwrap();
    assert!(
        (major, minor) <= (smaj.parse().unwrap(), smin.parse().unwrap()),
        "client {major}.{minor} newer than server {server_api}"
    );
}

#[tokio::test]
async fn invalid_config_is_rejected_before_docker_is_asked() {
    let h = Harness::new().await;
    let bot = h.bot("badcfg");
    let mut cfg = h.config(&bot);
    cfg.env.insert("BAD=NAME".into(), "x".into());
    let e = h.docker.create_container(&bot, &cfg).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_CONFIG");
    assert_eq!(h.docker.container_status(&bot).await.unwrap(), None);
}

/// Podman 4.3 wrote `host-gateway` into /etc/hosts as if it were an address.
#[tokio::test]
async fn host_gateway_in_extra_hosts_becomes_the_hosts_address() {
    let h = Harness::new().await;
    let bot = h.bot("hostgw");
    let mut cfg = h.config(&bot);
    cfg.extra_hosts = vec![
        "host.docker.internal:host-gateway".into(),
        "db.internal:10.1.2.3".into(),
    ];
    h.docker.create_container(&bot, &cfg).await.unwrap();
    h.docker.start_container(&bot).await.unwrap();
    let hosts_path = h
        .docker
        .client()
        .inspect_container(&container_name(&bot), None)
        .await
        .unwrap()
        .hosts_path
        .expect("the engine names the container's hosts file");
    let hosts = std::fs::read_to_string(&hosts_path).unwrap();
    let address_of = |name: &str| {
        hosts
            .lines()
            .find(|l| l.split_whitespace().skip(1).any(|n| n == name))
            .and_then(|l| l.split_whitespace().next())
            .map(String::from)
    };
    let gateway = address_of("host.docker.internal").expect("an entry");
    assert!(
        gateway.parse::<std::net::Ipv4Addr>().is_ok(),
        "host.docker.internal -> {gateway:?} in {hosts}"
    );
    assert_eq!(address_of("db.internal").as_deref(), Some("10.1.2.3"));
}
