//! Observing bots: logs, stats, events, and secrets seen through the mount.

use std::io::{Read, Write};
use std::time::Duration;

use botmaker::docker::{EventKind, LogOptions, LogStream, PortMapping, Protocol};
use futures_util::StreamExt;

use crate::support::{Harness, eventually};

#[tokio::test]
async fn logs_tail_returns_the_last_lines_of_both_streams() {
    let h = Harness::new().await;
    let bot = h.bot("logtail");
    h.docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap();
    h.docker.start_container(&bot).await.unwrap();
    h.wait_for_log(&bot, "tock 3").await;

    let lines: Vec<_> = h
        .docker
        .logs(
            &bot,
            &LogOptions {
                tail: Some(4),
                ..LogOptions::default()
            },
        )
        .map(|l| l.unwrap())
        .collect()
        .await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.timestamp.is_some()));
    assert!(
        lines
            .iter()
            .any(|l| l.stream == LogStream::Stdout && l.message.starts_with("tick "))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.stream == LogStream::Stderr && l.message.starts_with("tock "))
    );
    // Frame headers are stripped: every message is clean text.
    assert!(lines.iter().all(|l| l.message.is_ascii()), "{lines:?}");
}

#[tokio::test]
async fn logs_follow_delivers_new_lines_and_ends_when_the_bot_stops() {
    let h = Harness::new().await;
    let bot = h.bot("logfollow");
    h.docker
        .create_container(&bot, &h.config(&bot))
        .await
        .unwrap();
    h.docker.start_container(&bot).await.unwrap();
    h.wait_for_log(&bot, "ready").await;

    let mut follow = h.docker.logs(
        &bot,
        &LogOptions {
            tail: Some(0),
            follow: true,
            ..LogOptions::default()
        },
    );
    // Ticks written after subscribing arrive.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(10), follow.next())
            .await
            .expect("a followed line within 10 s")
            .expect("stream still open")
            .unwrap();
        seen.push(line.message);
    }
    assert!(
        seen.iter()
            .any(|m| m.starts_with("tick ") || m.starts_with("tock ")),
        "{seen:?}"
    );

    h.docker.stop_container(&bot, None).await.unwrap();
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(10), follow.collect::<Vec<_>>())
        .await
        .expect("follow ends when the container stops");
    assert!(
        rest.iter().any(|l| l
            .as_ref()
            .is_ok_and(|l| l.message == "got SIGTERM, exiting")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn logs_of_unknown_bot_is_not_found() {
    let h = Harness::new().await;
    let bot = h.bot("nologs");
    let first = h
        .docker
        .logs(&bot, &LogOptions::default())
        .next()
        .await
        .unwrap();
    assert_eq!(first.unwrap_err().code(), "NOT_FOUND");
}

#[tokio::test]
async fn stats_of_a_running_bot_and_none_for_stopped_or_missing() {
    let h = Harness::new().await;
    let bot = h.bot("stats");
    let mut cfg = h.config(&bot);
    cfg.limits.memory_bytes = Some(128 << 20);
    h.docker.create_container(&bot, &cfg).await.unwrap();
    assert_eq!(h.docker.stats(&bot).await.unwrap(), None, "not started yet");
    h.docker.start_container(&bot).await.unwrap();

    let s = h.docker.stats(&bot).await.unwrap().expect("a sample");
    assert!(s.memory_bytes > 0, "{s:?}");
    assert_eq!(s.memory_limit_bytes, 128 << 20);
    assert!(s.memory_percent > 0.0 && s.memory_percent < 100.0, "{s:?}");
    assert!(s.cpu_percent >= 0.0, "{s:?}");
    assert!(s.pids >= 1, "{s:?}");
    assert!(s.read.is_some());

    // Two cheap one-shot snapshots diff into a sample as well.
    let a = h.docker.stats_snapshot(&bot).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = h.docker.stats_snapshot(&bot).await.unwrap().unwrap();
    assert!(b.cpu_total_ns >= a.cpu_total_ns);
    assert!(b.system_cpu_ns > a.system_cpu_ns);
    let sample = botmaker::docker::StatsSample::between(&a, &b);
    assert!(sample.cpu_percent >= 0.0);

    h.docker.stop_container(&bot, None).await.unwrap();
    assert_eq!(h.docker.stats(&bot).await.unwrap(), None, "stopped");
    let ghost = h.bot("stats-ghost");
    assert_eq!(h.docker.stats(&ghost).await.unwrap(), None, "missing");
}

#[tokio::test]
async fn event_stream_sees_start_and_die_with_exit_code() {
    let h = Harness::new().await;
    let bot = h.bot("events");
    let mut cfg = h.config(&bot);
    cfg.env.insert("EXIT_AFTER_MS".into(), "300".into());
    cfg.env.insert("EXIT_CODE".into(), "7".into());
    // The request goes out on first poll; `since` makes the stream start before create.
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut events = h.docker.events(Some(start));
    h.docker.create_container(&bot, &cfg).await.unwrap();
    h.docker.start_container(&bot).await.unwrap();

    let mut kinds = Vec::new();
    let mut last_time = 0;
    while !kinds.iter().any(|k| matches!(k, EventKind::Die { .. })) {
        let ev = tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("an event within 15 s")
            .unwrap()
            .unwrap();
        assert_eq!(ev.bot_id, bot.as_str(), "only this instance's events");
        last_time = ev.time_nanos;
        kinds.push(ev.kind);
    }
    assert_eq!(kinds[0], EventKind::Create);
    assert!(kinds.contains(&EventKind::Start));
    assert!(
        kinds.contains(&EventKind::Die { exit_code: Some(7) }),
        "{kinds:?}"
    );

    // Resuming from a seen time replays what came after it: nothing is lost on reconnect.
    let mut replay = h.docker.events(Some(last_time - 1));
    let ev = tokio::time::timeout(Duration::from_secs(10), replay.next())
        .await
        .expect("replayed event")
        .unwrap()
        .unwrap();
    assert!(ev.time_nanos >= last_time - 1);
}

/// GET a path from the bot over its published port.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[tokio::test]
async fn secret_rotation_shows_through_the_directory_mount_without_recreate() {
    let h = Harness::new().await;
    let bot = h.bot("rotate");
    let mut cfg = h.config(&bot);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    cfg.ports = vec![PortMapping {
        container_port: 8080,
        host_port: Some(port),
        host_ip: None,
        protocol: Protocol::Tcp,
        publish: Default::default(),
    }];
    std::fs::write(cfg.secrets_dir.join("FIRST"), "1").unwrap();
    h.docker.create_container(&bot, &cfg).await.unwrap();
    h.docker.start_container(&bot).await.unwrap();
    h.wait_for_log(&bot, "ready").await;
    let before = h.docker.container_status(&bot).await.unwrap().unwrap();

    eventually(
        "bot answers on its port",
        Duration::from_secs(10),
        || async { http_get(port, "/secrets").filter(|b| b == "FIRST") },
    )
    .await;
    std::fs::write(cfg.secrets_dir.join("SECOND"), "2").unwrap();
    let body = eventually("new secret visible", Duration::from_secs(10), || async {
        http_get(port, "/secrets").filter(|b| b.contains("SECOND"))
    })
    .await;
    assert_eq!(body, "FIRST,SECOND");
    let after = h.docker.container_status(&bot).await.unwrap().unwrap();
    assert_eq!(before.id, after.id, "same container");
    assert_eq!(before.started_at, after.started_at, "not restarted");
}
