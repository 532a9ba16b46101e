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

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::BotId;
use crate::bots::template::{StatusRequest, Template};
use crate::bots::templates;
use crate::bots::{
    BotError, BotService, BotSpec, ChannelStatus, Death, HttpProbe, ProbeResult, Recovered, RunKey,
    Unsettled,
};
use crate::docker::{
    ContainerError, ContainerEvent, ContainerInfo, ContainerState, ContainerStatus, EventKind,
    Health,
};
use crate::store::DesiredState;

/// How often the reconciler re-lists everything even when events flow.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// Longest wait between two pings of a daemon that went away: a ping costs nothing, and
/// following events again soon after the daemon returns matters more than quiet logs.
pub const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// How long one of those pings may take (a frozen daemon accepts and never answers).
const RECONNECT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the daemon is pinged while events flow: often enough that the watch cache
/// learns of a daemon that stopped answering within [`FRESHNESS`](crate::bots::cache::FRESHNESS).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How many inspects a resync runs at once.
const INSPECT_CONCURRENCY: usize = 4;

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
        // The resync inspects every bot whose container it has not seen yet (all of them
        // at start-up), so restart counts, OOM kills and probe addresses are known without
        // waiting for the bots' next events.
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

    /// The watch cache's check: re-reads every row, lists every container in ONE call and
    /// compares each with what events told the cache. A bot whose container differs (another
    /// id, another state or health, gone, or never seen) is inspected again, a few at a time,
    /// and published; the others only publish a change of derived state (a crash loop that
    /// aged out). Returns how many bots disagreed.
    pub async fn resync(&self) -> Result<usize, ContainerError> {
        let store = self.bots.store();
        let listed = tokio::try_join!(
            async {
                store
                    .list_bots()
                    .await
                    .map_err(|e| as_container_error(e.into()))
            },
            self.bots.docker().list_managed_containers(),
        );
        self.bots.fleet().engine().set_up(
            listed
                .as_ref()
                .map_or_else(|e| !e.is_unavailable(), |_| true),
        );
        let (rows, containers) = listed?;
        self.bots.cache().heard_from_docker();
        // A container an upgrade parked carries the bot's label too: the bot's own name is
        // the one the cache follows (an event about the parked one inspects that name).
        let by_bot: HashMap<&str, &ContainerInfo> = containers
            .iter()
            .filter(|c| crate::bots::is_current_container(c))
            .map(|c| (c.bot_id.as_str(), c))
            .collect();
        let fleet = self.bots.fleet();
        let mut stale = Vec::new();
        for row in &rows {
            let known = fleet.status(&row.id);
            if disagrees(by_bot.get(row.id.as_str()).copied(), known.as_ref()) {
                stale.push(row.clone());
            } else {
                fleet.publish_if_changed(&row.id, fleet.observe(&row.id, row.desired_state));
            }
        }
        let stale_count = stale.len();
        let inspected: Vec<_> = futures_util::stream::iter(stale)
            .map(|row| {
                let bots = self.bots.clone();
                async move { bots.inspect_row(&row).await }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        for result in inspected {
            match result {
                // Deleted meanwhile, or a container of another instance took the name.
                Ok(_) | Err(BotError::NotFound(_)) => {}
                Err(e) if e.is_outage() => return Err(as_container_error(e)),
                Err(e) => tracing::warn!(error = %e, "could not inspect bot during resync"),
            }
        }
        // A bot wanted `stopped` whose container runs (started behind botmaker's back, with
        // `docker start`) is stopped again: `stopped` is enforced on every resync, as `running`
        // is by the containers' restart policy and by [`Self::enforce_desired`].
        for row in rows
            .iter()
            .filter(|r| r.desired_state == DesiredState::Stopped)
        {
            if !fleet.observe(&row.id, row.desired_state).is_up() {
                continue;
            }
            tracing::info!(bot = %row.id, "bot wanted stopped was started outside botmaker: stopping it");
            match self.bots.enforce_stopped(row.id.as_str()).await {
                Ok(now) => fleet.publish_if_changed(&row.id, now.observed),
                Err(BotError::NotFound(_)) => {}
                Err(e) if e.is_outage() => return Err(as_container_error(e)),
                Err(e) => {
                    tracing::warn!(bot = %row.id, error = %e, "could not stop a bot wanted stopped");
                }
            }
        }
        // Freed before the cache reads every row again: at 10,000 bots each of these is
        // megabytes, and holding them through the reload only raised its peak.
        drop(by_bot);
        drop((rows, containers));
        self.bots
            .cache()
            .reload(store)
            .await
            .map_err(as_container_error)?;
        Ok(stale_count)
    }

    /// Records a death of the bot's container; a crash is also written to the store, so that a
    /// crash loop survives a server restart (see [`Self::load_crash_history`]).
    async fn record_death(&self, id: &BotId, container_id: &str, at: DateTime<Utc>) {
        if self.bots.fleet().record_death(id, container_id, at) != Death::Crash {
            return;
        }
        let keep_since = at - crash_window(&self.bots);
        if let Err(e) = self
            .bots
            .store()
            .record_crash(id, container_id, at, keep_since)
            .await
        {
            tracing::warn!(bot = %id, error = %e, "could not record a crash in the store");
        }
    }

    /// Puts the crash history the store kept (the crash-loop window's worth) back into the
    /// fleet's view: a bot crash-looping before a server restart is `crash_loop` after it.
    pub async fn load_crash_history(&self) {
        let since = Utc::now() - crash_window(&self.bots);
        match self.bots.store().crash_history(since).await {
            Ok(history) => {
                for h in history {
                    self.bots
                        .fleet()
                        .seed_crashes(&h.bot_id, &h.container_id, &h.deaths);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the crash history"),
        }
    }

    /// Inspects one bot after an event about it, recording and publishing what changed.
    async fn observe(&self, id: &BotId) {
        if let Err(e) = self.bots.inspect(id.as_str()).await {
            tracing::debug!(bot = %id, error = %e, "could not refresh bot after event");
        }
    }

    /// Pings the daemon every [`HEARTBEAT_INTERVAL`] until `shutdown`, so the watch cache
    /// knows within [`FRESHNESS`](crate::bots::cache::FRESHNESS) when a daemon stops answering without closing its
    /// connections (frozen, or a network that drops packets).
    async fn heartbeat(&self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let ping = tokio::time::timeout(HEARTBEAT_INTERVAL * 2, self.bots.docker().ping());
            if let Ok(Ok(())) = ping.await {
                self.bots.cache().heard_from_docker();
            }
        }
    }

    /// Runs until `shutdown` turns true: follows events, resyncs periodically, reconnects
    /// (with `since`) when the daemon goes away, and enforces desired state when it returns.
    ///
    /// Everything it awaits (a resync of the whole fleet, an enforcement after an outage, a
    /// ping) is dropped at the shutdown rather than run to its end: at a few thousand bots
    /// those take longer than the server's shutdown grace. A change cut short is settled by
    /// the next start's recovery and enforcement, as after a crash.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let work = futures_util::future::join(
            self.heartbeat(shutdown.clone()),
            self.follow(shutdown.clone()),
        );
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            _ = work => {}
        }
        self.bots.cache().mark_unsynced();
    }

    async fn follow(&self, mut shutdown: watch::Receiver<bool>) {
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
            // The first tick is at once: the resync that makes the cache trustworthy, taken
            // after `start`, so every change it does not show comes as an event.
            let mut resync = tokio::time::interval(self.resync_interval);
            // Create and start events of a bot that botmaker itself is creating or starting
            // arrive while the operation still runs, before its own inspect: each waits for
            // the operation to end and is inspected only if that inspect does not show it.
            // Tasks of their own, not futures polled by this loop: a waiter granted the bot's
            // lock holds it until it is polled, and this loop may be busy in a resync for long.
            let mut after_operation = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    Some(_) = after_operation.join_next(), if !after_operation.is_empty() => {}
                    _ = resync.tick() => {
                        let synced = match self.settle().await {
                            Ok(()) => self.resync().await,
                            Err(e) => Err(e),
                        };
                        match synced {
                            Ok(stale) => {
                                if stale > 0 && self.bots.cache().is_fresh() {
                                    tracing::warn!(bots = stale, "resync corrected bots the event stream had not reported");
                                }
                                self.bots.cache().mark_synced();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "resync failed");
                                self.bots.cache().mark_unsynced();
                                was_down = e.is_unavailable();
                                if was_down {
                                    self.bots.fleet().engine().set_up(false);
                                    break;
                                }
                            }
                        }
                    }
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            self.bots.cache().heard_from_docker();
                            // botmaker's own poll of Swarm tasks has no engine time.
                            if ev.time_nanos > 0 {
                                since = Some(ev.time_nanos);
                            }
                            self.bots.fleet().engine().set_up(true);
                            if let EventKind::Node { action, state } = &ev.kind {
                                // A node down, back or drained: its bots' observed state
                                // changes with it now, not at the next resync (one list call
                                // each, whatever the fleet).
                                tracing::info!(node = %ev.container_id, %action, state = state.as_deref().unwrap_or("-"), "swarm node changed");
                                if let Err(e) = self.resync().await {
                                    tracing::warn!(error = %e, "resync after a node event failed");
                                }
                                continue;
                            }
                            let Ok(id) = BotId::new(ev.bot_id.clone()) else { continue };
                            let at = chrono::DateTime::from_timestamp_nanos(ev.time_nanos);
                            match ev.kind {
                                EventKind::Kill => self.bots.fleet().record_kill(&id, at),
                                EventKind::Die { .. } => {
                                    self.record_death(&id, &ev.container_id, at).await;
                                }
                                EventKind::Oom => self.bots.fleet().record_oom(&id),
                                _ => {}
                            }
                            // exec_* and similar are noise for state; a create or start the
                            // last inspect already shows (botmaker's own, after its call)
                            // needs no inspect of its own.
                            let known = self.bots.fleet().status(&id);
                            if matches!(ev.kind, EventKind::Other { .. })
                                || already_observed(known.as_ref(), &ev)
                            {
                                continue;
                            }
                            if matches!(ev.kind, EventKind::Create | EventKind::Start)
                                && self.bots.busy(&id)
                            {
                                after_operation.spawn(observe_after_operation(
                                    self.bots.clone(),
                                    id,
                                    ev,
                                ));
                            } else {
                                self.observe(&id).await;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "Docker event stream failed; reconnecting");
                            self.bots.cache().mark_unsynced();
                            self.bots.fleet().engine().set_up(false);
                            self.bots.fleet().engine().count_event_reconnect();
                            was_down = true;
                            break;
                        }
                        None => {
                            tracing::warn!("Docker event stream ended; reconnecting");
                            self.bots.cache().mark_unsynced();
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

/// Inspects bot `id` once the operation holding its lock has ended, unless the inspect that
/// operation made on its way out already shows `ev`.
async fn observe_after_operation(bots: BotService, id: BotId, ev: ContainerEvent) {
    bots.operation_done(&id).await;
    if !already_observed(bots.fleet().status(&id).as_ref(), &ev)
        && let Err(e) = bots.inspect(id.as_str()).await
    {
        tracing::debug!(bot = %id, error = %e, "could not refresh bot after event");
    }
}

/// How far back crashes count toward a crash loop.
fn crash_window(bots: &BotService) -> chrono::Duration {
    chrono::Duration::from_std(bots.fleet().policy().window)
        .unwrap_or(chrono::Duration::MAX)
        .min(chrono::Duration::days(366))
}

/// Whether the list call's view of a bot's container contradicts the status events left in
/// the cache: another container, another state or HEALTHCHECK verdict, or one side missing.
fn disagrees(listed: Option<&ContainerInfo>, known: Option<&ContainerStatus>) -> bool {
    match (listed, known) {
        (None, None) => false,
        // Podman's list carries no health: a list without one says nothing about it.
        (Some(c), Some(s)) => {
            c.id != s.id
                || c.state != s.state
                || (c.health != Health::None && c.health != s.health)
                // On Swarm: its node went down or came back (the task's own report is stale).
                || c.node != s.node
        }
        _ => true,
    }
}

/// Longest a start event may follow the `StartedAt` the daemon gives the run it reports (the
/// daemon sets the time, then logs the event). Beyond it the event is taken for a later run.
const START_EVENT_LAG: chrono::Duration = chrono::Duration::seconds(1);

/// Whether the last inspect (`known`) already shows what `ev` reports, so inspecting again
/// would only repeat it: a create of the container it is about, or a start of the run it
/// shows running. A create then costs the one inspect botmaker makes after its own calls, not
/// one more per event. Anything that ends or changes a run (die, stop, kill, OOM, health,
/// destroy) is always inspected.
fn already_observed(known: Option<&ContainerStatus>, ev: &ContainerEvent) -> bool {
    let Some(s) = known.filter(|s| s.id == ev.container_id) else {
        return false;
    };
    match ev.kind {
        EventKind::Create => true,
        EventKind::Start => {
            let at = chrono::DateTime::from_timestamp_nanos(ev.time_nanos);
            s.running && s.started_at.is_some_and(|t| t + START_EVENT_LAG >= at)
        }
        _ => false,
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
///
/// The schedule comes from the watch cache's rows, which change only when a row is written:
/// no SQLite read and no spec parsing per tick, whatever the fleet's size.
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
    // Bots that had a probe at the last tick.
    let mut scheduled: std::collections::HashSet<BotId> = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let refreshed = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            r = bots.cache().refresh(bots.store()) => r,
        };
        if let Err(e) = refreshed {
            tracing::debug!(error = %e, "could not read the probe schedule");
            continue;
        }
        let now = Instant::now();
        let probes = bots.cache().probes();
        // A bot whose probe was just removed: no verdict of it may linger.
        let mut unprobed = std::mem::take(&mut scheduled);
        for (id, _) in &probes {
            unprobed.remove(id);
            scheduled.insert(id.clone());
        }
        for id in unprobed {
            bots.fleet().forget_probe(&id);
            next_due.remove(&id);
        }
        for (id, probe) in probes {
            if next_due.get(&id).is_some_and(|t| *t > now) {
                continue;
            }
            let mut interval = Duration::from_secs(probe.interval_secs);
            if matches!(
                bots.fleet().probe_health(&id),
                None | Some(Health::Starting)
            ) {
                interval = interval.min(STARTING_PROBE_INTERVAL);
            }
            next_due.insert(id.clone(), now + interval);
            let Some(status) = bots.fleet().status(&id).filter(|s| s.running) else {
                continue;
            };
            let in_start_period = status
                .started_at
                .is_some_and(|t| (Utc::now() - t).num_seconds() < probe.start_period_secs as i64);
            let Some(ip) = status.ip_address.clone() else {
                continue;
            };
            // The spec only for a bot that is due: its template's status request reads it.
            let Some((template, spec)) = bots.cache().template_and_spec(&id) else {
                continue;
            };
            let run = RunKey::of(&status);
            let template = templates::lookup(&template);
            let (bots, client) = (bots.clone(), client.clone());
            tokio::spawn(async move {
                let target = ProbeTarget {
                    client: &client,
                    ip: &ip,
                    probe: &probe,
                };
                let result = target.probe(&bots, &id, template, &spec).await;
                // A result about another run than the current one (a probe that raced a
                // restart or a recreate) is dropped there.
                bots.fleet().record_probe(
                    &id,
                    &run,
                    result,
                    in_start_period,
                    probe.failure_threshold,
                );
                let desired = bots.cache().desired(&id).unwrap_or(DesiredState::Running);
                let observed = bots.fleet().observe(&id, desired);
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

    fn event(kind: EventKind, container: &str, at: chrono::DateTime<Utc>) -> ContainerEvent {
        ContainerEvent {
            bot_id: "b".into(),
            container_id: container.into(),
            kind,
            time_nanos: at.timestamp_nanos_opt().unwrap(),
        }
    }

    fn running(container: &str, started: chrono::DateTime<Utc>) -> ContainerStatus {
        ContainerStatus {
            id: container.into(),
            state: ContainerState::Running,
            running: true,
            exit_code: None,
            error: None,
            started_at: Some(started),
            finished_at: None,
            health: Health::None,
            restart_count: 0,
            oom_killed: false,
            image_id: "sha256:i".into(),
            ip_address: None,
            ports: Vec::new(),
            node: None,
        }
    }

    #[test]
    fn only_a_create_or_start_the_last_inspect_shows_skips_its_inspect() {
        let t0 = Utc::now();
        let ms = chrono::Duration::milliseconds;
        let known = running("c1", t0);
        let skip =
            |ev: ContainerEvent, known: Option<&ContainerStatus>| already_observed(known, &ev);
        // botmaker's own create and start, inspected after its calls: nothing to add.
        assert!(skip(
            event(EventKind::Create, "c1", t0 - ms(50)),
            Some(&known)
        ));
        assert!(skip(
            event(EventKind::Start, "c1", t0 + ms(5)),
            Some(&known)
        ));
        // Another container (recreated), or none known yet: inspect.
        assert!(!skip(event(EventKind::Create, "c2", t0), Some(&known)));
        assert!(!skip(event(EventKind::Start, "c1", t0), None));
        // A start of a later run than the one seen (a restart by the policy): inspect.
        assert!(!skip(
            event(EventKind::Start, "c1", t0 + ms(5_000)),
            Some(&known)
        ));
        // The run seen has ended: its start event cannot be trusted to match.
        let mut exited = known.clone();
        exited.running = false;
        exited.state = ContainerState::Exited;
        assert!(!skip(
            event(EventKind::Start, "c1", t0 + ms(5)),
            Some(&exited)
        ));
        // What ends or changes a run is always inspected.
        for kind in [
            EventKind::Die { exit_code: Some(1) },
            EventKind::Stop,
            EventKind::Kill,
            EventKind::Restart,
            EventKind::Oom,
            EventKind::HealthStatus { health: None },
            EventKind::Destroy,
        ] {
            assert!(!skip(event(kind, "c1", t0 + ms(5)), Some(&known)));
        }
    }

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
