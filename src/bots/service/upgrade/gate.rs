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

/// Waits until the bot's (new) container has kept running for `run_grace` and, when it has a
/// probe (and an address to probe), its probe answers 2xx/3xx. Returns when it was first
/// healthy (the end of the downtime: the first probe that passed, or the start when there is
/// no probe). Fails with the reason, in words, when it exits or is restarted, vanishes, Docker
/// stops answering, or `deadline` passes first.
///
/// A probe that passes is not enough on its own: a crash-looping release may answer once
/// before it dies, so the container must also stay up for the grace period.
///
/// `restarts_before` is the restart count the bot had before the new image ran: 0 for a new
/// container; on a backend that counts restarts from a task history the upgrade keeps
/// (Swarm), the count before. A crash there also gives the bot a new container id, which
/// fails the gate however the history was trimmed.
pub(super) async fn wait_healthy(
    docker: &DockerService,
    bot: &BotId,
    probe: Option<&HttpProbe>,
    run_grace: Duration,
    deadline: Instant,
    timeout: Duration,
    restarts_before: i64,
) -> Result<Instant, String> {
    // No proxy (bots are on local networks) and no redirects (a 3xx is an answer).
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot set up the health probe: {e}"))?;
    let started = Instant::now();
    let mut first_healthy: Option<Instant> = None;
    let mut first_id: Option<String> = None;
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
        if let Some(why) = failed(&status, restarts_before) {
            return Err(why);
        }
        if first_id.get_or_insert_with(|| status.id.clone()) != &status.id {
            return Err("the new container crashed and was replaced".into());
        }
        let probe_passed = match (probe, &status.ip_address) {
            (Some(p), Some(ip)) => probe_ok(&client, ip, p).await,
            _ => true,
        };
        if probe_passed {
            first_healthy.get_or_insert_with(Instant::now);
            if started.elapsed() >= run_grace {
                return Ok(first_healthy.unwrap_or(started));
            }
        }
        if Instant::now() >= deadline {
            return Err(match (probe, first_healthy) {
                (_, None) => never_healthy(probe, timeout, run_grace),
                (Some(p), Some(_)) => format!(
                    "not healthy at the deadline ({} s): GET :{}{} stopped answering 2xx or 3xx",
                    timeout.as_secs(),
                    p.port,
                    p.path
                ),
                (None, Some(_)) => never_healthy(None, timeout, run_grace),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why a new container that never was healthy before the deadline fails: the same words
/// whether it never ran (a Swarm task still starting) or ran and never answered its probe.
pub(super) fn never_healthy(
    probe: Option<&HttpProbe>,
    timeout: Duration,
    run_grace: Duration,
) -> String {
    match probe {
        Some(p) => format!(
            "not healthy within {} s: GET :{}{} never answered 2xx or 3xx",
            timeout.as_secs(),
            p.port,
            p.path
        ),
        None => format!("did not keep running for {} s", run_grace.as_secs()),
    }
}

/// Why the container counts as failed, if it does: not running, or restarted by Docker's
/// restart policy since it was started (it crashed in between).
fn failed(s: &ContainerStatus, restarts_before: i64) -> Option<String> {
    let exit = || match (s.exit_code, s.oom_killed) {
        (_, true) => " (killed: out of memory)".to_string(),
        (Some(code), false) => format!(" (exit code {code})"),
        (None, false) => String::new(),
    };
    if s.restart_count > restarts_before {
        return Some(format!(
            "the new container crashed and was restarted {} time(s){}",
            s.restart_count - restarts_before,
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
            state,
            running,
            ..ContainerStatus::running_for_test("c")
        }
    }

    #[test]
    fn a_restart_or_an_exit_fails_the_gate() {
        assert_eq!(failed(&status(ContainerState::Running, true), 0), None);
        let mut s = status(ContainerState::Running, true);
        s.restart_count = 1;
        s.exit_code = Some(3);
        let why = failed(&s, 0).unwrap();
        assert_eq!(failed(&s, 1), None, "a restart from before the upgrade");
        assert!(
            why.contains("restarted 1 time(s)") && why.contains("exit code 3"),
            "{why}"
        );
        let mut s = status(ContainerState::Exited, false);
        s.exit_code = Some(137);
        s.oom_killed = true;
        assert!(failed(&s, 0).unwrap().contains("out of memory"));
        assert!(failed(&status(ContainerState::Restarting, true), 0).is_some());
    }
}
