//! The health gate a new container must pass before an upgrade keeps it.
//!
//! The container is watched directly (one inspect, and one probe `GET` when it has a probe,
//! every [`POLL`]) rather than through the reconciler's cache: an upgrade wants its verdict the
//! moment it is known, and the downtime it reports is measured to that moment.

use std::time::{Duration, Instant};

use crate::BotId;
use crate::bots::HttpProbe;
use crate::docker::{ContainerState, ContainerStatus, DockerService};

/// How often the new container is looked at.
const POLL: Duration = Duration::from_millis(250);
/// How long one probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits until the bot's (new) container is healthy: its probe answers 2xx/3xx, or, with no
/// probe (or no address to probe), it has kept running for `run_grace`. Fails with the reason,
/// in words, when it exits or is restarted, vanishes, Docker stops answering, or `deadline`
/// passes first.
pub(super) async fn wait_healthy(
    docker: &DockerService,
    bot: &BotId,
    probe: Option<&HttpProbe>,
    run_grace: Duration,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), String> {
    // No proxy (bots are on local networks) and no redirects (a 3xx is an answer).
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot set up the health probe: {e}"))?;
    let started = Instant::now();
    loop {
        let status = match docker.container_status(bot).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err("the new container disappeared".into()),
            Err(e) => {
                return Err(format!(
                    "Docker did not answer about the new container: {e}"
                ));
            }
        };
        if let Some(why) = failed(&status) {
            return Err(why);
        }
        let passed = match (probe, &status.ip_address) {
            (Some(p), Some(ip)) => probe_ok(&client, ip, p).await,
            _ => started.elapsed() >= run_grace,
        };
        if passed {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(match probe {
                Some(p) => format!(
                    "not healthy within {} s: GET :{}{} never answered 2xx or 3xx",
                    timeout.as_secs(),
                    p.port,
                    p.path
                ),
                None => format!("did not keep running for {} s", run_grace.as_secs()),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why the container counts as failed, if it does: not running, or restarted by Docker's
/// restart policy since it was started (it crashed in between).
fn failed(s: &ContainerStatus) -> Option<String> {
    let exit = || match (s.exit_code, s.oom_killed) {
        (_, true) => " (killed: out of memory)".to_string(),
        (Some(code), false) => format!(" (exit code {code})"),
        (None, false) => String::new(),
    };
    if s.restart_count > 0 {
        return Some(format!(
            "the new container crashed and was restarted {} time(s){}",
            s.restart_count,
            exit()
        ));
    }
    if !s.running || s.state != ContainerState::Running {
        let error = s
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Some(format!("the new container exited{}{error}", exit()));
    }
    None
}

/// One `GET` of the probe path: any 2xx or 3xx within [`PROBE_TIMEOUT`].
async fn probe_ok(client: &reqwest::Client, ip: &str, probe: &HttpProbe) -> bool {
    let url = format!("http://{ip}:{}{}", probe.port, probe.path);
    matches!(
        client.get(url).timeout(PROBE_TIMEOUT).send().await,
        Ok(r) if (200..400).contains(&r.status().as_u16())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: ContainerState, running: bool) -> ContainerStatus {
        ContainerStatus {
            id: "c".into(),
            state,
            running,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            health: crate::docker::Health::None,
            restart_count: 0,
            oom_killed: false,
            image_id: "sha256:x".into(),
            ip_address: None,
        }
    }

    #[test]
    fn a_restart_or_an_exit_fails_the_gate() {
        assert_eq!(failed(&status(ContainerState::Running, true)), None);
        let mut s = status(ContainerState::Running, true);
        s.restart_count = 1;
        s.exit_code = Some(3);
        let why = failed(&s).unwrap();
        assert!(
            why.contains("restarted 1 time(s)") && why.contains("exit code 3"),
            "{why}"
        );
        let mut s = status(ContainerState::Exited, false);
        s.exit_code = Some(137);
        s.oom_killed = true;
        assert!(failed(&s).unwrap().contains("out of memory"));
        assert!(failed(&status(ContainerState::Restarting, true)).is_some());
    }
}
