//! The reconciler: keeps botmaker's picture of the fleet in step with Docker.
//!
//! - At start-up (and after the daemon comes back) it first finishes what a crash or an outage
//!   cut short (creates are undone, deletes finished: see
//!   [`BotService::recover_interrupted`]), then enforces desired state both ways: a bot that
//!   should run but whose container is stopped is started, one that should be stopped but runs
//!   is stopped, and one whose container vanished is recreated from its stored config (and
//!   started only if it should run). Docker's restart policy alone is not enough: containers it
//!   considers "manually stopped" stay down after a daemon restart, and others come back up
//!   whatever botmaker wanted. A lifecycle call records a new desired state only when it
//!   succeeds, so what is enforced is what the last successful call asked for.
//! - Continuously it follows the Docker event stream, inspecting a bot when its container
//!   changes. The stream resumes with `since` after a disconnect, so no event is lost, and a
//!   periodic full resync is the safety net.
//! - It runs botmaker's own HTTP health probes, which cost the daemon nothing, unlike Docker
//!   HEALTHCHECKs that exec a process in every container every interval.
//!
//! While running, it only observes: a bot stopped or removed behind botmaker's back shows as
//! `stopped`/`error`/`missing` rather than being fought over.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::BotId;
use crate::bots::template::{StatusRequest, Template};
use crate::bots::templates;
use crate::bots::{
    BotError, BotService, BotSpec, ChannelStatus, HttpProbe, ProbeResult, Recovered, RunKey,
    Unsettled,
};
use crate::docker::{ContainerError, ContainerState, EventKind, Health};
use crate::store::DesiredState;

/// How often the reconciler re-lists everything even when events flow.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// Longest wait between two pings of a daemon that went away: a ping costs nothing, and
/// following events again soon after the daemon returns matters more than quiet logs.
pub const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// How long one of those pings may take (a frozen daemon accepts and never answers).
const RECONNECT_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What a start-up reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Bots in the registry.
    pub bots_checked: usize,
    /// Interrupted creates undone and deletes finished first.
    pub recovered: Recovered,
    /// Bots whose stopped container was started.
    pub started: Vec<String>,
    /// Bots that should be stopped whose running container was stopped.
    pub stopped: Vec<String>,
    /// Bots whose missing container was recreated.
    pub recreated: Vec<String>,
    /// Bots that could not be brought to their desired state, with why.
    pub failed: Vec<(String, String)>,
}

/// Keeps the fleet's observed state current. Cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    bots: BotService,
    resync_interval: Duration,
}

impl Reconciler {
    /// A reconciler over `bots`.
    pub fn new(bots: BotService, resync_interval: Duration) -> Self {
        Self {
            bots,
            resync_interval,
        }
    }

    /// Finishes interrupted creates and deletes, then brings every bot to its desired state:
    /// starts stopped containers of bots that should run, stops running containers of bots
    /// that should not, and recreates missing ones (and those a failed change may have left
    /// with another config). Then records what it sees.
    pub async fn enforce_desired(&self) -> Result<ReconcileReport, ContainerError> {
        let docker = self.bots.docker();
        // Docker first: recovery of a bot cut short needs it, and an outage is reported as one.
        let pinged = docker.ping().await;
        self.bots.fleet().engine().set_up(pinged.is_ok());
        pinged?;
        let unsettled: HashMap<BotId, Unsettled> = self.bots.take_unsettled().into_iter().collect();
        let recovered = self
            .bots
            .recover_interrupted()
            .await
            .map_err(as_container_error)?;
        let rows = self
            .bots
            .store()
            .list_bots()
            .await
            .map_err(|e| as_container_error(e.into()))?;
        let containers: HashMap<String, ContainerState> = docker
            .list_managed_containers()
            .await?
            .into_iter()
            .filter(crate::bots::is_current_container)
            .map(|c| (c.bot_id, c.state))
            .collect();
        let mut report = ReconcileReport {
            bots_checked: rows.len(),
            recovered,
            ..Default::default()
        };
        for row in &rows {
            let recreate = unsettled.get(&row.id) == Some(&Unsettled::Container);
            let state = containers.get(row.id.as_str()).copied();
            self.enforce_one(&row.id, row.desired_state, state, recreate, &mut report)
                .await;
        }
        // One inspect per bot, a few at a time, so restart counts, OOM kills and probe
        // addresses are known without waiting for the bots' next events.
        futures_util::stream::iter(
            rows.iter()
                .filter(|r| containers.contains_key(r.id.as_str())),
        )
        .for_each_concurrent(4, |row| self.observe(&row.id))
        .await;
        self.resync().await?;
        Ok(report)
    }

    /// Brings one bot to `desired`, given its container's `state`; with `recreate`, makes its
    /// container again from the stored config whatever its state.
    async fn enforce_one(
        &self,
        id: &BotId,
        desired: DesiredState,
        state: Option<ContainerState>,
        recreate: bool,
        report: &mut ReconcileReport,
    ) {
        let running = matches!(
            state,
            Some(ContainerState::Running | ContainerState::Restarting | ContainerState::Paused)
        );
        let id = id.as_str();
        let (result, done) = match (desired, state) {
            _ if recreate => (self.bots.apply(id).await, &mut report.recreated),
            (DesiredState::Running, Some(ContainerState::Running | ContainerState::Restarting)) => {
                return;
            }
            (DesiredState::Running, Some(_)) => (self.bots.start(id).await, &mut report.started),
            (DesiredState::Running, None) => (self.bots.start(id).await, &mut report.recreated),
            (DesiredState::Stopped, Some(_)) if running => {
                (self.bots.stop(id).await, &mut report.stopped)
            }
            (DesiredState::Stopped, Some(_)) => return,
            (DesiredState::Stopped, None) => (self.bots.apply(id).await, &mut report.recreated),
        };
        match result {
            Ok(_) => done.push(id.to_string()),
            // Deleted meanwhile: nothing to enforce.
            Err(BotError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(bot = %id, error = %e, "could not bring bot to its desired state");
                report.failed.push((id.to_string(), e.to_string()));
            }
        }
    }

    /// Settles what calls Docker did not answer may have left behind, while Docker is up:
    /// interrupted creates and deletes, and bots whose container may not match their row.
    /// Runs with every resync, so a short stall of the daemon (too short for the
    /// reconciler to see it down) is settled too.
    async fn settle(&self) -> Result<(), ContainerError> {
        let unsettled = self.bots.take_unsettled();
        let recovered = self.bots.recover_interrupted().await;
        if let Err(e) = &recovered {
            tracing::warn!(error = %e, "could not finish interrupted operations");
        }
        let mut report = ReconcileReport::default();
        for (id, how) in &unsettled {
            let row = match self.bots.store().get_bot(id).await {
                Ok(Some(row)) => row,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(bot = %id, error = %e, "could not read bot to settle it");
                    self.bots.unsettle(id, *how);
                    continue;
                }
            };
            let state = match self.bots.docker().container_status(id).await {
                Ok(s) => s.map(|s| s.state),
                Err(ContainerError::NotOwned { .. }) => continue,
                Err(e) => {
                    self.bots.unsettle(id, *how);
                    return Err(e);
                }
            };
            let failed = report.failed.len();
            self.enforce_one(
                id,
                row.desired_state,
                state,
                *how == Unsettled::Container,
                &mut report,
            )
            .await;
            if report.failed.len() > failed {
                self.bots.unsettle(id, *how);
            }
        }
        if !unsettled.is_empty() {
            tracing::info!(?report, "settled bots left unsure by a Docker outage");
        }
        recovered.map(drop).map_err(as_container_error)
    }

    /// Re-lists all containers and publishes every bot's observed state that changed.
    pub async fn resync(&self) -> Result<(), ContainerError> {
        let views = self.bots.list().await.map_err(as_container_error);
        let engine = self.bots.fleet().engine();
        engine.set_up(
            views
                .as_ref()
                .map_or_else(|e| !e.is_unavailable(), |_| true),
        );
        for v in views? {
            if let Ok(id) = BotId::new(v.id) {
                self.bots.fleet().publish_if_changed(&id, v.observed);
            }
        }
        Ok(())
    }

    /// Inspects one bot after an event about it, recording and publishing what changed.
    async fn observe(&self, id: &BotId) {
        if let Err(e) = self.bots.get(id.as_str()).await {
            tracing::debug!(bot = %id, error = %e, "could not refresh bot after event");
        }
    }

    /// Runs until `shutdown` turns true: follows events, resyncs periodically, reconnects
    /// (with `since`) when the daemon goes away, and enforces desired state when it returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut since: Option<i64> = None;
        let mut backoff = Duration::from_millis(250);
        let mut was_down = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if was_down {
                // Ping until the daemon answers, at most MAX_RECONNECT_BACKOFF apart, so events
                // are followed again within about a second of its return however long it was
                // away.
                let answered = matches!(
                    tokio::time::timeout(RECONNECT_PING_TIMEOUT, self.bots.docker().ping()).await,
                    Ok(Ok(()))
                );
                let reconciled = if answered {
                    self.enforce_desired().await
                } else {
                    Err(ContainerError::timeout(
                        self.bots.docker().host(),
                        crate::docker::Op::Connect,
                        RECONNECT_PING_TIMEOUT,
                    ))
                };
                match reconciled {
                    Ok(report) => {
                        tracing::info!(?report, "Docker is back: reconciled");
                        backoff = Duration::from_millis(250);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "Docker still unavailable");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => return,
                        }
                        backoff = next_backoff(backoff);
                        continue;
                    }
                }
            }
            // Overlap by a second: a duplicate event is harmless, a missed one is not.
            let start = since
                .map(|s| s - 1_000_000_000)
                .or_else(|| Utc::now().timestamp_nanos_opt());
            let mut events = self.bots.docker().events(start);
            let mut resync = tokio::time::interval(self.resync_interval);
            resync.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = resync.tick() => {
                        let synced = match self.settle().await {
                            Ok(()) => self.resync().await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = synced {
                            tracing::warn!(error = %e, "resync failed");
                            was_down = e.is_unavailable();
                            if was_down {
                                self.bots.fleet().engine().set_up(false);
                                break;
                            }
                        }
                    }
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            since = Some(ev.time_nanos);
                            self.bots.fleet().engine().set_up(true);
                            let Ok(id) = BotId::new(ev.bot_id.clone()) else { continue };
                            let at = chrono::DateTime::from_timestamp_nanos(ev.time_nanos);
                            match ev.kind {
                                EventKind::Kill => self.bots.fleet().record_kill(&id, at),
                                EventKind::Die { .. } => self.bots.fleet().record_death(&id, at),
                                EventKind::Oom => self.bots.fleet().record_oom(&id),
                                _ => {}
                            }
                            // exec_* and similar are noise for state.
                            if !matches!(ev.kind, EventKind::Other { .. }) {
                                self.observe(&id).await;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "Docker event stream failed; reconnecting");
                            self.bots.fleet().engine().set_up(false);
                            self.bots.fleet().engine().count_event_reconnect();
                            was_down = true;
                            break;
                        }
                        None => {
                            tracing::warn!("Docker event stream ended; reconnecting");
                            self.bots.fleet().engine().set_up(false);
                            self.bots.fleet().engine().count_event_reconnect();
                            was_down = true;
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// The wait before the next ping of a daemon that did not answer: doubling, capped at
/// [`MAX_RECONNECT_BACKOFF`].
fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_RECONNECT_BACKOFF)
}

/// A bot-level failure as the Docker failure it stands for (an outage stays an outage).
fn as_container_error(e: BotError) -> ContainerError {
    match e {
        BotError::DockerUnavailable(e) | BotError::Docker(e) => e,
        other => ContainerError::Docker {
            bot_id: String::new(),
            status: 0,
            message: other.to_string(),
        },
    }
}

/// How often a run with no verdict yet is probed, whatever its interval: a restarted bot shows
/// `healthy` seconds after it answers again, not an interval later.
const STARTING_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one liveness or readiness `GET` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a template's status request may take (OpenClaw's channel status asks every
/// channel).
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest status answer read: it is the bot's output, hence hostile.
const MAX_STATUS_BODY: usize = 256 * 1024;

/// Runs botmaker's HTTP probes for every running bot that has one, until `shutdown`.
pub async fn run_probes(bots: BotService, mut shutdown: watch::Receiver<bool>) {
    // No proxy (bots are on local networks), no redirects (a 3xx is an answer), no idle
    // connections kept to hundreds of bots.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client without TLS builds");
    let mut next_due: HashMap<BotId, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let Ok(rows) = bots.store().list_bots().await else {
            continue;
        };
        let now = Instant::now();
        for row in rows {
            let Ok(spec) = serde_json::from_value::<BotSpec>(row.spec.clone()) else {
                continue;
            };
            let Some(probe) = spec.health_check.clone() else {
                // Its probe may have just been removed: no verdict of it may linger.
                bots.fleet().forget_probe(&row.id);
                continue;
            };
            if next_due.get(&row.id).is_some_and(|t| *t > now) {
                continue;
            }
            let mut interval = Duration::from_secs(probe.interval_secs);
            if matches!(
                bots.fleet().probe_health(&row.id),
                None | Some(Health::Starting)
            ) {
                interval = interval.min(STARTING_PROBE_INTERVAL);
            }
            next_due.insert(row.id.clone(), now + interval);
            let Some(status) = bots.fleet().status(&row.id).filter(|s| s.running) else {
                continue;
            };
            let in_start_period = status
                .started_at
                .is_some_and(|t| (Utc::now() - t).num_seconds() < probe.start_period_secs as i64);
            let Some(ip) = status.ip_address.clone() else {
                continue;
            };
            let run = RunKey::of(&status);
            let template = templates::lookup(&row.template);
            let (bots, id, client) = (bots.clone(), row.id.clone(), client.clone());
            tokio::spawn(async move {
                let target = ProbeTarget {
                    client: &client,
                    ip: &ip,
                    probe: &probe,
                };
                let result = target.probe(&bots, &id, template, &spec).await;
                bots.fleet().record_probe(
                    &id,
                    &run,
                    result,
                    in_start_period,
                    probe.failure_threshold,
                );
                let desired = bots
                    .store()
                    .get_bot(&id)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.desired_state)
                    .unwrap_or(DesiredState::Running);
                let status = bots.fleet().status(&id);
                let observed = bots.fleet().observe_status(&id, desired, status.as_ref());
                bots.fleet().publish_if_changed(&id, observed);
            });
        }
        next_due.retain(|_, t| *t + Duration::from_secs(3600) > now);
    }
}

/// One bot's probe endpoint.
struct ProbeTarget<'a> {
    client: &'a reqwest::Client,
    ip: &'a str,
    probe: &'a HttpProbe,
}

impl ProbeTarget<'_> {
    fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.probe.port)
    }

    /// Liveness, then readiness, then (for a ready bot whose template knows how to ask) the
    /// state of its channels.
    async fn probe(
        &self,
        bots: &BotService,
        id: &BotId,
        template: Option<&'static dyn Template>,
        spec: &BotSpec,
    ) -> ProbeResult {
        let live = self.get_ok(&self.probe.path).await;
        let ready = match (&self.probe.ready_path, live) {
            (Some(path), true) => self.get_ok(path).await,
            (_, live) => live,
        };
        let mut channels = None;
        if ready && let Some(t) = template {
            if let Some(req) = t.status_request(spec) {
                channels = self.status(bots, id, t, spec, &req).await;
            }
        }
        ProbeResult {
            live,
            ready,
            channels,
        }
    }

    /// `GET path`: any 2xx or 3xx within [`PROBE_TIMEOUT`].
    async fn get_ok(&self, path: &str) -> bool {
        let sent = self
            .client
            .get(self.url(path))
            .timeout(PROBE_TIMEOUT)
            .send();
        matches!(sent.await, Ok(r) if (200..400).contains(&r.status().as_u16()))
    }

    /// The template's status request; `None` when it fails or its answer makes no sense.
    async fn status(
        &self,
        bots: &BotService,
        id: &BotId,
        template: &'static dyn Template,
        spec: &BotSpec,
        req: &StatusRequest,
    ) -> Option<Vec<ChannelStatus>> {
        let mut call = self
            .client
            .post(self.url(&req.path))
            .timeout(STATUS_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(req.body.clone());
        if let Some(name) = &req.bearer {
            let token = bots.read_secret(id, template, name).await.ok().flatten()?;
            call = call.bearer_auth(token.expose_str()?);
        }
        let mut res = call.send().await.ok()?;
        if !res.status().is_success() {
            tracing::debug!(bot = %id, status = %res.status(), "status request refused");
            return None;
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            if body.len() + chunk.len() > MAX_STATUS_BODY {
                tracing::debug!(bot = %id, "status answer too large; ignored");
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        template.read_status(spec, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_stays_short_however_long_the_outage() {
        let mut b = Duration::from_millis(250);
        for _ in 0..100 {
            b = next_backoff(b);
            assert!(b <= MAX_RECONNECT_BACKOFF, "{b:?}");
        }
        assert_eq!(b, MAX_RECONNECT_BACKOFF);
    }
}
