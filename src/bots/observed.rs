//! What botmaker has observed about each bot, beyond one Docker call: recent crashes (for
//! crash-loop detection), the latest inspect, and its own HTTP probe verdicts. The reconciler
//! writes it; the API reads it. State changes are broadcast for `GET /api/events`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

use crate::BotId;
use crate::docker::{ContainerInfo, ContainerState, ContainerStatus, Health, TaskNode};
use crate::store::DesiredState;

/// Longest a stop may take from signal to death (the longest grace period, with room to spare).
const KILL_TO_DEATH: chrono::Duration =
    chrono::Duration::seconds(super::spec::MAX_STOP_TIMEOUT_SECS as i64 + 60);

/// The observed state of a bot, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotState {
    /// Container created, never started.
    Created,
    /// Running.
    Running,
    /// Stopped (on request, or exited cleanly).
    Stopped,
    /// Exited with a non-zero code, or Docker reports it dead.
    Error,
    /// Restarting again and again.
    CrashLoop,
    /// The bot has no container (removed behind botmaker's back).
    Missing,
}

impl BotState {
    /// Every state, in the order the dashboard's fleet filter offers them (the usual first).
    pub const ALL: &[BotState] = &[
        BotState::Running,
        BotState::Created,
        BotState::Stopped,
        BotState::Error,
        BotState::CrashLoop,
        BotState::Missing,
    ];

    /// Its name in the API's JSON (`crash_loop`...).
    pub fn as_str(self) -> &'static str {
        match self {
            BotState::Created => "created",
            BotState::Running => "running",
            BotState::Stopped => "stopped",
            BotState::Error => "error",
            BotState::CrashLoop => "crash_loop",
            BotState::Missing => "missing",
        }
    }
}

/// When restarts count as a crash loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoopPolicy {
    /// This many container deaths...
    pub restarts: usize,
    /// ...within this window.
    pub window: Duration,
}

impl Default for CrashLoopPolicy {
    /// 3 deaths in 5 minutes: Docker's own backoff (100 ms, doubling) restarts a crashing bot
    /// far more often than that, and a healthy bot does not die 3 times in 5 minutes.
    fn default() -> Self {
        Self {
            restarts: 3,
            window: Duration::from_secs(300),
        }
    }
}

/// A bot's observed state, merged from Docker and botmaker's own observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Observed {
    /// Derived state.
    pub state: BotState,
    /// Health of the current run: botmaker's probe when configured, else Docker's HEALTHCHECK.
    /// A new run starts at `starting`; `degraded` is alive but not ready, or a configured
    /// channel that cannot run; a bot in `crash_loop` is `unhealthy`; one not running is `none`.
    pub health: Health,
    /// Exit code of the last run, if it exited.
    pub exit_code: Option<i64>,
    /// Restarts by Docker's restart policy.
    pub restart_count: i64,
    /// Whether the OOM killer ended the last run.
    pub oom_killed: bool,
    /// Container id.
    pub container_id: Option<String>,
    /// Id of the image actually running.
    pub image_id: Option<String>,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Each configured channel's state as the bot reports it (templates that know how to ask:
    /// `openclaw`), from the current run's latest probe that got an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelStatus>>,
    /// On Swarm, the node that runs (or last ran) the bot, by host name; `null` on the Docker
    /// backend. A bot whose node is not `ready` is `missing`, with the node named here.
    #[serde(default)]
    pub node: Option<String>,
    /// That node's state as the manager sees it: `ready`, `down`, `disconnected`, `unknown`.
    #[serde(default)]
    pub node_state: Option<String>,
}

impl Observed {
    /// Puts the bot's node in, and makes a bot whose node is out of reach `missing`: its
    /// task's last report (often `running`) is stale, and nothing botmaker does reaches it.
    fn on_node(mut self, node: Option<&TaskNode>) -> Self {
        if let Some(n) = node {
            self.node = Some(n.name.clone());
            self.node_state = Some(n.state.clone());
            if !n.is_ready() {
                self.state = BotState::Missing;
                self.health = Health::None;
            }
        }
        self
    }
}

/// One chat channel of a bot, as the bot itself reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelStatus {
    /// Channel id (`telegram`, `discord`...).
    pub id: String,
    /// What state it is in.
    pub state: ChannelState,
    /// The bot's own words about it (its last error), when it has some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The state of one configured channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Running (connected, or as far as the bot can tell).
    Running,
    /// Starting or reconnecting, no error yet.
    Starting,
    /// Stopped with an error.
    Failing,
    /// Configured, but the bot has no loadable code for it (no plugin): it will never run.
    NotLoaded,
}

impl ChannelState {
    /// Whether a channel in this state makes its bot `degraded`.
    pub fn degrades(self) -> bool {
        matches!(self, ChannelState::Failing | ChannelState::NotLoaded)
    }
}

/// One run of a bot's container: health verdicts belong to a run, never to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    container_id: String,
    started_at: Option<DateTime<Utc>>,
}

impl RunKey {
    /// The run `status` describes.
    pub fn of(status: &ContainerStatus) -> Self {
        Self {
            container_id: status.id.clone(),
            started_at: status.started_at,
        }
    }
}

/// What one probe of a bot's run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The liveness path answered 2xx/3xx.
    pub live: bool,
    /// The readiness path answered too (equal to `live` without one).
    pub ready: bool,
    /// Channel states, when the template asks for them and the bot answered.
    pub channels: Option<Vec<ChannelStatus>>,
}

impl Observed {
    /// Whether its container is up (running, or restarting in a loop).
    pub fn is_up(&self) -> bool {
        matches!(self.state, BotState::Running | BotState::CrashLoop)
    }
}

/// A change of a bot's observed state, for live views (`GET /api/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BotEvent {
    /// The bot.
    #[schema(value_type = crate::BotId)]
    pub id: String,
    /// What kind of change.
    pub kind: BotEventKind,
    /// Observed state after the change (absent for `deleted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// When botmaker noticed.
    pub at: DateTime<Utc>,
}

/// What a [`BotEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotEventKind {
    /// The observed state changed.
    State,
    /// The bot was created.
    Created,
    /// Its configuration changed.
    Updated,
    /// It was deleted.
    Deleted,
    /// It went over one of its LLM budgets or rate limits (`limits.llm_*`): the proxy answers
    /// its requests with 429 until the window resets.
    BudgetExceeded,
    /// An upgrade's new container failed its health gate: the bot was rolled back to the old
    /// container (see `POST /api/bots/{id}/upgrade`).
    UpgradeRolledBack,
}

#[derive(Debug, Default, Clone)]
struct Entry {
    status: Option<ContainerStatus>,
    crashes: Crashes,
    last_kill: Option<DateTime<Utc>>,
    /// The container whose last exit was asked for (a stop or restart): its exit code, 143
    /// after a SIGTERM it did not handle, is no error. Cleared when it runs again.
    requested_exit: Option<String>,
    /// Probe verdicts of the current run only.
    probe: Option<ProbeState>,
    /// Whether botmaker probes this bot: a new run then starts out `starting`.
    probed: bool,
    last_published: Option<Observed>,
    /// OOM kills Docker reported for the bot since botmaker started (all its containers).
    oom_kills: u64,
}

impl Entry {
    /// Whether the last exit of `container_id` was asked for: a signal was sent and its death
    /// is not in yet (the inspect won the race with the `die` event), or the death came in as
    /// requested.
    fn exit_requested(&self, container_id: Option<&str>, now: DateTime<Utc>) -> bool {
        self.last_kill.is_some_and(|k| now - k <= KILL_TO_DEATH)
            || (container_id.is_some() && self.requested_exit.as_deref() == container_id)
    }

    /// The probe verdict of the run in the container `container_id` (a probed bot's other
    /// container, one the list saw newer than the last inspect, is still `starting`).
    fn run_health(&self, container_id: Option<&str>) -> Option<RunHealth> {
        match &self.probe {
            Some(p) if Some(p.run.container_id.as_str()) == container_id => {
                Some((p.health, p.channels.clone()))
            }
            _ if self.probed => Some((Health::Starting, None)),
            _ => None,
        }
    }
}

/// A run's health verdict and the channel states found with it.
type RunHealth = (Health, Option<Vec<ChannelStatus>>);

/// The unrequested deaths of one container, recent first pruned. Crash history belongs to a
/// container: a bot recreated with a fix (a PATCH) starts clean, whatever its predecessor did.
#[derive(Debug, Default, Clone)]
struct Crashes {
    container_id: String,
    deaths: VecDeque<DateTime<Utc>>,
}

impl Crashes {
    /// The deaths of `container_id`, or none for any other container.
    fn of(&self, container_id: Option<&str>) -> usize {
        if container_id == Some(self.container_id.as_str()) {
            self.deaths.len()
        } else {
            0
        }
    }

    fn push(&mut self, container_id: &str, at: DateTime<Utc>, window: Duration) {
        if self.container_id != container_id {
            *self = Crashes {
                container_id: container_id.to_string(),
                deaths: VecDeque::new(),
            };
        }
        // Events of one container come in order, but a seeded history may interleave.
        let i = self.deaths.partition_point(|t| *t <= at);
        self.deaths.insert(i, at);
        prune(&mut self.deaths, at, window);
    }
}

/// What [`Fleet::record_death`] made of a death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// A stop, restart or kill asked for it: no crash.
    Requested,
    /// A crash: it counts toward a crash loop (and is worth persisting, see
    /// [`Fleet::seed_crashes`]).
    Crash,
}

#[derive(Debug, Clone)]
struct ProbeState {
    run: RunKey,
    health: Health,
    failures: u32,
    ever_ready: bool,
    channels: Option<Vec<ChannelStatus>>,
}

impl ProbeState {
    fn starting(run: RunKey) -> Self {
        Self {
            run,
            health: Health::Starting,
            failures: 0,
            ever_ready: false,
            channels: None,
        }
    }

    /// Folds one probe result in. Failures within the start period do not count, until the
    /// run has once been ready; `threshold` consecutive failures after that are `unhealthy`.
    fn record(&mut self, result: ProbeResult, in_start_period: bool, threshold: u32) {
        if !result.live {
            self.failures += 1;
            self.channels = None;
            if in_start_period && !self.ever_ready {
                self.health = Health::Starting;
            } else if self.failures >= threshold.max(1) {
                self.health = Health::Unhealthy;
            } else if self.health == Health::None {
                self.health = Health::Starting;
            }
            return;
        }
        self.failures = 0;
        if !result.ready {
            // Alive but not serving: still booting, or stuck (a broken channel, say).
            self.health = if in_start_period && !self.ever_ready {
                Health::Starting
            } else {
                Health::Degraded
            };
            return;
        }
        self.ever_ready = true;
        // A status call that failed says nothing about the channels: the run's last answer
        // stands. (A gateway shutting down still answers `/readyz` while its status RPC is
        // gone; taking that silence for "no broken channel" called a degraded bot healthy.)
        if result.channels.is_some() {
            self.channels = result.channels;
        }
        let degraded = self
            .channels
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.state.degrades()));
        self.health = if degraded {
            Health::Degraded
        } else {
            Health::Healthy
        };
    }
}

/// Everything observed about the fleet. Shared by the reconciler (writer) and the API.
#[derive(Debug)]
pub struct Fleet {
    /// Boxed: an entry is several hundred bytes, and a map's table holds up to twice as many
    /// slots as entries, so inline entries left megabytes of empty slots resident at 10,000
    /// bots.
    entries: Mutex<HashMap<BotId, Box<Entry>>>,
    policy: CrashLoopPolicy,
    events: broadcast::Sender<BotEvent>,
    /// Bumped whenever a bot's recorded container status changes or a bot is forgotten, so
    /// that waiters on one bot's next run (log followers) wake on the reconciler's
    /// observations instead of polling Docker. Carries no data: a waiter re-reads
    /// [`Fleet::status`].
    statuses: watch::Sender<u64>,
    /// See [`Fleet::generation`].
    generation: AtomicU64,
    engine: EngineWatch,
}

/// What the reconciler saw of the Docker Engine itself: whether it answers, and how often its
/// event stream had to be followed again. Read by the metrics.
#[derive(Debug, Default)]
pub struct EngineWatch {
    up: AtomicBool,
    event_reconnects: AtomicU64,
}

impl EngineWatch {
    /// Records whether the engine answered the last call the reconciler made.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Whether the engine answered the last call the reconciler made (false until it did).
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Counts one loss of the event stream (it ended or failed; it is followed again).
    pub fn count_event_reconnect(&self) {
        self.event_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Losses of the event stream since start-up.
    pub fn event_reconnects(&self) -> u64 {
        self.event_reconnects.load(Ordering::Relaxed)
    }
}

/// The last observed state of one bot, with its OOM kills: what `/metrics` serves per bot.
#[derive(Debug, Clone)]
pub struct ObservedBot {
    /// The bot.
    pub id: BotId,
    /// Its last published observed state.
    pub observed: Observed,
    /// OOM kills Docker reported for it since botmaker started.
    pub oom_kills: u64,
}

impl Fleet {
    /// An empty fleet view.
    pub fn new(policy: CrashLoopPolicy) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            entries: Mutex::default(),
            policy,
            events,
            statuses: watch::Sender::new(0),
            generation: AtomicU64::new(0),
            engine: EngineWatch::default(),
        }
    }

    /// Wakes (`changed()`) after every change of a recorded container status (see
    /// [`Fleet::status`]) and every forgotten bot, of any bot: the signal to re-read the one a
    /// waiter cares about, with no Docker call.
    pub fn status_changes(&self) -> watch::Receiver<u64> {
        self.statuses.subscribe()
    }

    fn status_changed(&self) {
        self.statuses.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// What makes a crash loop.
    pub fn policy(&self) -> CrashLoopPolicy {
        self.policy
    }

    /// The Docker Engine's reachability and event-stream losses, as the reconciler saw them.
    pub fn engine(&self) -> &EngineWatch {
        &self.engine
    }

    /// Records an OOM kill Docker reported for the bot.
    pub fn record_oom(&self, id: &BotId) {
        self.with_mut(|m| m.entry(id.clone()).or_default().oom_kills += 1);
    }

    /// Every bot's last published observed state (the one `GET /api/events` last sent), from
    /// memory: no Docker call. Bots not observed yet are left out. Sorted by id.
    pub fn observed_all(&self) -> Vec<ObservedBot> {
        let mut out: Vec<ObservedBot> = self.with(|m| {
            m.iter()
                .filter_map(|(id, e)| {
                    e.last_published.as_ref().map(|o| ObservedBot {
                        id: id.clone(),
                        observed: o.clone(),
                        oom_kills: e.oom_kills,
                    })
                })
                .collect()
        });
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Live bot events.
    pub fn subscribe(&self) -> broadcast::Receiver<BotEvent> {
        self.events.subscribe()
    }

    /// Publishes a lifecycle event (created, updated, deleted).
    pub fn publish(&self, id: &BotId, kind: BotEventKind, observed: Option<Observed>) {
        let _ = self.events.send(BotEvent {
            id: id.to_string(),
            kind,
            observed,
            at: Utc::now(),
        });
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<BotId, Box<Entry>>) -> R) -> R {
        f(&mut self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// [`Fleet::with`] for a change of what [`Fleet::observe`] derives from: counted in
    /// [`Fleet::generation`] once the change is made.
    fn with_mut<R>(&self, f: impl FnOnce(&mut HashMap<BotId, Box<Entry>>) -> R) -> R {
        let r = self.with(f);
        self.generation.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Changes recorded so far (statuses, deaths, kills, probes, OOM kills, forgotten bots):
    /// equal before and after a computation means nothing it read from the fleet changed,
    /// except what time alone changes (crashes ageing out of the crash-loop window, a kill
    /// older than its grace). The watch cache keys its assembled list on it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records the result of an inspect.
    pub fn record_status(&self, id: &BotId, status: Option<ContainerStatus>) {
        let changed = self.with_mut(|m| {
            let e = m.entry(id.clone()).or_default();
            // A new container (recreated) starts with a clean slate; the first inspect of
            // a container keeps the deaths its events already reported.
            if let Some(new) = &status
                && !e.crashes.container_id.is_empty()
                && e.crashes.container_id != new.id
            {
                e.crashes = Crashes::default();
            }
            // Running again: its last exit, asked for or not, is over.
            if status.as_ref().is_none_or(|s| s.running)
                || status.as_ref().map(|s| s.id.as_str()) != e.requested_exit.as_deref()
            {
                e.requested_exit = None;
            }
            // Health belongs to a run: a new run (restart, recreate, crash) knows nothing yet.
            let run = status.as_ref().map(RunKey::of);
            if e.probe.as_ref().map(|p| &p.run) != run.as_ref() {
                e.probe = match run {
                    Some(run) if e.probed => Some(ProbeState::starting(run)),
                    _ => None,
                };
            }
            let changed = e.status != status;
            e.status = status;
            changed
        });
        if changed {
            self.status_changed();
        }
    }

    /// Records that someone signalled the container (a stop, restart or `docker kill`): the
    /// death that follows was asked for and is no crash.
    pub fn record_kill(&self, id: &BotId, at: DateTime<Utc>) {
        self.with_mut(|m| m.entry(id.clone()).or_default().last_kill = Some(at));
    }

    /// Records that the bot's container `container_id` died at `at`. Deaths shortly after a
    /// signal sent to it were requested (stop, restart, kill): they do not count toward a
    /// crash loop, and their exit code is no error.
    pub fn record_death(&self, id: &BotId, container_id: &str, at: DateTime<Utc>) -> Death {
        let window = self.policy.window;
        self.with_mut(|m| {
            let e = m.entry(id.clone()).or_default();
            if e.last_kill.take().is_some_and(|k| at - k <= KILL_TO_DEATH) {
                e.requested_exit = Some(container_id.to_string());
                return Death::Requested;
            }
            e.requested_exit = None;
            e.crashes.push(container_id, at, window);
            Death::Crash
        })
    }

    /// Puts back crash history kept across a server restart (the store's `crash_history`): a
    /// bot crash-looping when the server went down is still `crash_loop` when it is back,
    /// not `error` until it has crashed enough times again. History already in memory wins.
    pub fn seed_crashes(&self, id: &BotId, container_id: &str, deaths: &[DateTime<Utc>]) {
        let window = self.policy.window;
        self.with_mut(|m| {
            let e = m.entry(id.clone()).or_default();
            if !e.crashes.deaths.is_empty() {
                return;
            }
            for at in deaths {
                e.crashes.push(container_id, *at, window);
            }
        });
    }

    /// Records one probe of the run `run`; a result about another run than the current one
    /// (a probe that raced a restart) is dropped. `threshold` consecutive failures after the
    /// start period make the bot unhealthy.
    pub fn record_probe(
        &self,
        id: &BotId,
        run: &RunKey,
        result: ProbeResult,
        in_start_period: bool,
        threshold: u32,
    ) {
        self.with_mut(|m| {
            let e = m.entry(id.clone()).or_default();
            e.probed = true;
            if e.status.as_ref().map(RunKey::of).as_ref() != Some(run) {
                return;
            }
            let p = match &mut e.probe {
                Some(p) if &p.run == run => p,
                slot => slot.insert(ProbeState::starting(run.clone())),
            };
            p.record(result, in_start_period, threshold);
        });
    }

    /// Forgets that the bot is probed, and its verdict: its probe was removed (a PATCH), so
    /// its runs no longer start out `starting` nor keep the last probe's verdict.
    pub fn forget_probe(&self, id: &BotId) {
        self.with_mut(|m| {
            if let Some(e) = m.get_mut(id)
                && (e.probed || e.probe.is_some())
            {
                e.probed = false;
                e.probe = None;
            }
        });
    }

    /// The probe verdict of the bot's current run, if it has one.
    pub fn probe_health(&self, id: &BotId) -> Option<Health> {
        self.with(|m| m.get(id).and_then(|e| e.probe.as_ref().map(|p| p.health)))
    }

    /// Forgets a bot (deleted).
    pub fn forget(&self, id: &BotId) {
        self.with_mut(|m| m.remove(id));
        self.status_changed();
    }

    /// The last inspected status of the bot, if any.
    pub fn status(&self, id: &BotId) -> Option<ContainerStatus> {
        self.with(|m| m.get(id).and_then(|e| e.status.clone()))
    }

    /// Observed state from a fresh inspect.
    pub fn observe_status(
        &self,
        id: &BotId,
        desired: DesiredState,
        status: Option<&ContainerStatus>,
    ) -> Observed {
        let (looping, requested, probe) = self.extras(id, status.map(|s| s.id.as_str()));
        match status {
            Some(s) => observed_from(s, desired, looping, requested, probe),
            None => missing(),
        }
    }

    /// Observed state from what events and inspects told us last, with no Docker call: what
    /// the watch cache answers with.
    pub fn observe(&self, id: &BotId, desired: DesiredState) -> Observed {
        let now = Utc::now();
        let policy = self.policy;
        self.with(|m| {
            let Some(e) = m.get_mut(id) else {
                return missing();
            };
            prune(&mut e.crashes.deaths, now, policy.window);
            match &e.status {
                Some(s) => {
                    let container = Some(s.id.as_str());
                    observed_from(
                        s,
                        desired,
                        e.crashes.of(container) >= policy.restarts,
                        e.exit_requested(container, now),
                        e.run_health(container),
                    )
                }
                None => missing(),
            }
        })
    }

    /// Observed state from the list call, completed with what inspects and events told us
    /// earlier (restart count, OOM): no extra Docker call per bot.
    pub fn observe_info(
        &self,
        id: &BotId,
        desired: DesiredState,
        info: Option<&ContainerInfo>,
    ) -> Observed {
        let (looping, requested, probe) = self.extras(id, info.map(|c| c.id.as_str()));
        let Some(c) = info else {
            return missing();
        };
        let known = self.status(id).filter(|s| s.id == c.id);
        let running = c.state == ContainerState::Running;
        let exit_code = c.exit_code.filter(|_| !requested);
        let state = derive_state(c.state, exit_code, desired, looping);
        let (health, channels) = merge_health(state, running, c.health, probe);
        Observed {
            state,
            health,
            exit_code: c.exit_code,
            restart_count: known.as_ref().map_or(0, |s| s.restart_count),
            oom_killed: known.as_ref().is_some_and(|s| s.oom_killed),
            container_id: Some(c.id.clone()),
            image_id: Some(c.image_id.clone()).filter(|i| !i.is_empty()),
            started_at: known.and_then(|s| s.started_at),
            channels,
            node: None,
            node_state: None,
        }
        .on_node(c.node.as_ref())
    }

    /// Publishes a `state` event if the observed state differs from the last one published.
    pub fn publish_if_changed(&self, id: &BotId, observed: Observed) {
        let changed = self.with(|m| {
            let e = m.entry(id.clone()).or_default();
            let changed = e.last_published.as_ref().is_none_or(|last| {
                last.state != observed.state
                    || last.health != observed.health
                    || last.restart_count != observed.restart_count
                    || last.container_id != observed.container_id
                    || last.channels != observed.channels
                    || last.node_state != observed.node_state
            });
            e.last_published = Some(observed.clone());
            changed
        });
        if changed {
            self.publish(id, BotEventKind::State, Some(observed));
        }
    }

    /// Whether the container `container_id` is crash-looping, whether its exit was asked for
    /// (a stop or restart: its exit code is no error), and the probe verdict of its current
    /// run (none for another container: the list saw a newer one).
    fn extras(&self, id: &BotId, container_id: Option<&str>) -> (bool, bool, Option<RunHealth>) {
        let now = Utc::now();
        let policy = self.policy;
        self.with(|m| match m.get_mut(id) {
            Some(e) => {
                prune(&mut e.crashes.deaths, now, policy.window);
                (
                    e.crashes.of(container_id) >= policy.restarts,
                    e.exit_requested(container_id, now),
                    e.run_health(container_id),
                )
            }
            None => (false, false, None),
        })
    }
}

fn prune(deaths: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window: Duration) {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    while deaths.front().is_some_and(|t| now - *t > window) {
        deaths.pop_front();
    }
}

fn observed_from(
    s: &ContainerStatus,
    desired: DesiredState,
    looping: bool,
    exit_requested: bool,
    probe: Option<RunHealth>,
) -> Observed {
    // A stop or restart's exit code (143 after an unhandled SIGTERM) is no error.
    let exit_code = s.exit_code.filter(|_| !exit_requested);
    let state = derive_state(s.state, exit_code, desired, looping);
    let (health, channels) = merge_health(state, s.running, s.health, probe);
    Observed {
        state,
        health,
        exit_code: s.exit_code,
        restart_count: s.restart_count,
        oom_killed: s.oom_killed,
        container_id: Some(s.id.clone()),
        image_id: Some(s.image_id.clone()).filter(|i| !i.is_empty()),
        started_at: s.started_at,
        channels,
        node: None,
        node_state: None,
    }
    .on_node(s.node.as_ref())
}

/// The observed state of a bot without a container.
pub(crate) fn missing() -> Observed {
    Observed {
        state: BotState::Missing,
        health: Health::None,
        exit_code: None,
        restart_count: 0,
        oom_killed: false,
        container_id: None,
        image_id: None,
        started_at: None,
        channels: None,
        node: None,
        node_state: None,
    }
}

/// Observed state from Docker's state, the exit code, what the user wants, and crash history.
pub fn derive_state(
    state: ContainerState,
    exit_code: Option<i64>,
    desired: DesiredState,
    crash_looping: bool,
) -> BotState {
    use ContainerState as C;
    match state {
        C::Created => BotState::Created,
        C::Running | C::Restarting if crash_looping => BotState::CrashLoop,
        C::Running => BotState::Running,
        C::Restarting => BotState::Error,
        // A bot the user stopped is stopped, whatever code SIGTERM/SIGKILL left behind.
        C::Exited | C::Paused | C::Removing if desired == DesiredState::Stopped => {
            BotState::Stopped
        }
        C::Exited if crash_looping => BotState::CrashLoop,
        C::Exited => match exit_code {
            Some(0) | None => BotState::Stopped,
            Some(_) => BotState::Error,
        },
        C::Paused | C::Removing => BotState::Stopped,
        C::Dead | C::Unknown => BotState::Error,
    }
}

/// The health to show: the probe's verdict on the current run (else Docker's HEALTHCHECK) while
/// the bot runs. A crash-looping bot is unhealthy whatever a probe of one brief run said, and a
/// bot that is not running has no health.
fn merge_health(
    state: BotState,
    running: bool,
    docker: Health,
    probe: Option<RunHealth>,
) -> RunHealth {
    match state {
        BotState::CrashLoop => (Health::Unhealthy, None),
        BotState::Running if running => match probe {
            Some((health, channels)) => (health, channels),
            None => (docker, None),
        },
        _ => (Health::None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerState as C;
    use DesiredState as D;

    #[test]
    fn every_state_is_listed_once_under_its_json_name() {
        // A new variant must be added here (the match is exhaustive) and to `ALL`.
        let listed = |s: BotState| match s {
            BotState::Created
            | BotState::Running
            | BotState::Stopped
            | BotState::Error
            | BotState::CrashLoop
            | BotState::Missing => BotState::ALL.iter().filter(|x| **x == s).count(),
        };
        for s in BotState::ALL {
            assert_eq!(listed(*s), 1, "{s:?}");
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(BotState::ALL.len(), 6);
    }

    #[test]
    fn state_derivation() {
        assert_eq!(
            derive_state(C::Running, None, D::Running, false),
            BotState::Running
        );
        assert_eq!(
            derive_state(C::Running, None, D::Running, true),
            BotState::CrashLoop
        );
        assert_eq!(
            derive_state(C::Restarting, Some(1), D::Running, false),
            BotState::Error
        );
        assert_eq!(
            derive_state(C::Exited, Some(0), D::Running, false),
            BotState::Stopped
        );
        assert_eq!(
            derive_state(C::Exited, Some(3), D::Running, false),
            BotState::Error
        );
        assert_eq!(
            derive_state(C::Exited, Some(137), D::Stopped, false),
            BotState::Stopped
        );
        assert_eq!(
            derive_state(C::Created, None, D::Running, false),
            BotState::Created
        );
        assert_eq!(
            derive_state(C::Dead, None, D::Running, false),
            BotState::Error
        );
    }

    #[test]
    fn crash_loop_needs_enough_deaths_inside_the_window() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 3,
            window: Duration::from_secs(60),
        });
        let id = BotId::new("b").unwrap();
        let now = Utc::now();
        fleet.record_death(&id, "c", now - chrono::Duration::seconds(120));
        fleet.record_death(&id, "c", now - chrono::Duration::seconds(10));
        fleet.record_death(&id, "c", now - chrono::Duration::seconds(5));
        assert!(
            !fleet.extras(&id, Some("c")).0,
            "the old death is outside the window"
        );
        fleet.record_death(&id, "c", now);
        assert!(fleet.extras(&id, Some("c")).0);
    }

    #[test]
    fn requested_deaths_are_no_crashes() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 2,
            window: Duration::from_secs(60),
        });
        let id = BotId::new("b").unwrap();
        let now = Utc::now();
        for i in 0..5 {
            let t = now + chrono::Duration::seconds(i);
            fleet.record_kill(&id, t);
            assert_eq!(
                fleet.record_death(&id, "c", t + chrono::Duration::milliseconds(200)),
                Death::Requested
            );
        }
        assert!(
            !fleet.extras(&id, Some("c")).0,
            "stops and restarts are not a crash loop"
        );
        fleet.record_death(&id, "c", now + chrono::Duration::seconds(6));
        fleet.record_death(&id, "c", now + chrono::Duration::seconds(7));
        assert!(fleet.extras(&id, Some("c")).0);
    }

    /// Regression (issue 11, bug 8): a crash-looping bot fixed by a PATCH stayed `crash_loop`
    /// for up to 5 minutes, its old container's deaths still counted in the window.
    #[test]
    fn crash_loop_fixed_by_a_new_container_starts_clean() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 3,
            window: Duration::from_secs(300),
        });
        let id = BotId::new("b").unwrap();
        let now = Utc::now();
        for i in 0..4 {
            fleet.record_death(&id, "old", now - chrono::Duration::seconds(10 - i));
        }
        assert!(fleet.extras(&id, Some("old")).0);
        // Removed (no container for a moment), then recreated: the new run owes nothing.
        fleet.record_status(&id, None);
        fleet.record_status(&id, Some(running("new", 1)));
        assert!(!fleet.extras(&id, Some("new")).0);
        let o = fleet.observe_status(&id, D::Running, fleet.status(&id).as_ref());
        assert_eq!(o.state, BotState::Running);
        // A late `die` of the old container does not count against the new one either.
        fleet.record_death(&id, "old", now);
        assert!(!fleet.extras(&id, Some("new")).0);
    }

    /// Regression (issue 11, bug 4): a restart showed a transient `error` (exit 143, the
    /// SIGTERM the bot did not handle) before `running`.
    #[test]
    fn restart_exit_143_is_not_an_error() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let exited = ContainerStatus {
            state: C::Exited,
            running: false,
            exit_code: Some(143),
            ..running("c", 5)
        };
        let now = Utc::now();
        // The inspect after `kill` may see the exit before the `die` event is in...
        fleet.record_kill(&id, now);
        fleet.record_status(&id, Some(exited.clone()));
        let o = fleet.observe_status(&id, D::Running, Some(&exited));
        assert_eq!(o.state, BotState::Stopped);
        // ...and after it, the exit is known to be requested.
        fleet.record_death(&id, "c", now);
        let o = fleet.observe_status(&id, D::Running, Some(&exited));
        assert_eq!(o.state, BotState::Stopped);
        // Running again, the next unrequested exit is an error as always.
        fleet.record_status(&id, Some(running("c", 0)));
        fleet.record_death(&id, "c", now + chrono::Duration::seconds(1));
        fleet.record_status(&id, Some(exited.clone()));
        let o = fleet.observe_status(&id, D::Running, Some(&exited));
        assert_eq!(o.state, BotState::Error);
    }

    /// Regression (issue 11, bug 5): `crash_loop` became `error` after a server restart, the
    /// death history being in memory only. Seeded back from the store, it holds.
    #[test]
    fn seeded_crash_history_keeps_a_crash_loop_across_a_restart() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 3,
            window: Duration::from_secs(300),
        });
        let id = BotId::new("b").unwrap();
        let now = Utc::now();
        let deaths: Vec<_> = (1..=3)
            .map(|i| now - chrono::Duration::seconds(i))
            .collect();
        fleet.seed_crashes(&id, "c", &deaths);
        let looping = ContainerStatus {
            state: C::Restarting,
            running: false,
            exit_code: Some(1),
            ..running("c", 5)
        };
        let o = fleet.observe_status(&id, D::Running, Some(&looping));
        assert_eq!(o.state, BotState::CrashLoop);
        // Old history only fills a blank: what the running server saw wins.
        fleet.seed_crashes(&id, "other", &deaths);
        assert!(fleet.extras(&id, Some("c")).0);
    }

    #[test]
    fn a_bot_on_a_swarm_node_that_is_not_ready_is_missing_with_the_node_named() {
        let on = |state: &str| ContainerStatus {
            node: Some(crate::docker::TaskNode {
                name: "worker-1".into(),
                state: state.into(),
            }),
            ..ContainerStatus::running_for_test("c")
        };
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let up = fleet.observe_status(&id, D::Running, Some(&on("ready")));
        assert_eq!(up.state, BotState::Running);
        assert_eq!(up.node.as_deref(), Some("worker-1"));
        let down = fleet.observe_status(&id, D::Running, Some(&on("down")));
        assert_eq!(down.state, BotState::Missing);
        assert_eq!(
            (down.node.as_deref(), down.node_state.as_deref()),
            (Some("worker-1"), Some("down"))
        );
        let docker = fleet.observe_status(&id, D::Running, Some(&running("c", 5)));
        assert_eq!((docker.node, docker.node_state), (None, None));
    }

    fn running(container: &str, started_secs_ago: i64) -> ContainerStatus {
        ContainerStatus {
            started_at: Some(Utc::now() - chrono::Duration::seconds(started_secs_ago)),
            ip_address: Some("10.0.0.2".into()),
            ..ContainerStatus::running_for_test(container)
        }
    }

    fn result(live: bool, ready: bool) -> ProbeResult {
        ProbeResult {
            live,
            ready,
            channels: None,
        }
    }

    /// A ready run that answered its channel-status call.
    fn answered(channels: Vec<ChannelStatus>) -> ProbeResult {
        ProbeResult {
            channels: Some(channels),
            ..result(true, true)
        }
    }

    fn health(fleet: &Fleet, id: &BotId) -> Health {
        let status = fleet.status(id);
        fleet.observe_status(id, D::Running, status.as_ref()).health
    }

    #[test]
    fn probe_failures_turn_unhealthy_at_the_threshold_and_recover() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let s = running("c1", 600);
        let run = RunKey::of(&s);
        fleet.record_status(&id, Some(s));
        fleet.record_probe(&id, &run, result(false, false), false, 2);
        assert_eq!(health(&fleet, &id), Health::Starting);
        fleet.record_probe(&id, &run, result(false, false), false, 2);
        assert_eq!(health(&fleet, &id), Health::Unhealthy);
        fleet.record_probe(&id, &run, result(true, true), false, 2);
        assert_eq!(health(&fleet, &id), Health::Healthy);
    }

    /// Regression: after a restart the previous run's `healthy` survived (for 85 s with a real
    /// OpenClaw) although the new run's gateway did not answer yet.
    #[test]
    fn a_new_run_starts_at_starting_not_at_the_last_runs_verdict() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let first = running("c1", 600);
        fleet.record_status(&id, Some(first.clone()));
        fleet.record_probe(&id, &RunKey::of(&first), result(true, true), false, 3);
        assert_eq!(health(&fleet, &id), Health::Healthy);

        // Same container, new run (a restart): nothing known yet.
        let second = running("c1", 1);
        fleet.record_status(&id, Some(second.clone()));
        assert_eq!(health(&fleet, &id), Health::Starting);
        // A probe of the old run that lands late changes nothing.
        fleet.record_probe(&id, &RunKey::of(&first), result(true, true), false, 3);
        assert_eq!(health(&fleet, &id), Health::Starting);
        // Failing probes within the start period stay `starting`...
        for _ in 0..5 {
            fleet.record_probe(&id, &RunKey::of(&second), result(false, false), true, 3);
        }
        assert_eq!(health(&fleet, &id), Health::Starting);
        // ...alive but not ready too...
        fleet.record_probe(&id, &RunKey::of(&second), result(true, false), true, 3);
        assert_eq!(health(&fleet, &id), Health::Starting);
        // ...until the run is ready.
        fleet.record_probe(&id, &RunKey::of(&second), result(true, true), true, 3);
        assert_eq!(health(&fleet, &id), Health::Healthy);

        // A recreated container starts over as well.
        fleet.record_status(&id, Some(running("c2", 0)));
        assert_eq!(health(&fleet, &id), Health::Starting);
    }

    /// Regression: a bot in `crash_loop` showed `healthy` for minutes (the verdict of one
    /// brief run).
    #[test]
    fn a_crash_looping_bot_is_never_healthy() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 2,
            window: Duration::from_secs(60),
        });
        let id = BotId::new("b").unwrap();
        let s = running("c1", 1);
        fleet.record_status(&id, Some(s.clone()));
        fleet.record_probe(&id, &RunKey::of(&s), result(true, true), true, 3);
        assert_eq!(health(&fleet, &id), Health::Healthy);
        fleet.record_death(&id, "c1", Utc::now());
        fleet.record_death(&id, "c1", Utc::now());
        let o = fleet.observe_status(&id, D::Running, Some(&s));
        assert_eq!(o.state, BotState::CrashLoop);
        assert_eq!(o.health, Health::Unhealthy);
        let mut exited = s.clone();
        exited.state = C::Exited;
        exited.running = false;
        exited.exit_code = Some(1);
        for desired in [D::Running, D::Stopped] {
            let o = fleet.observe_status(&id, desired, Some(&exited));
            assert_ne!(o.health, Health::Healthy, "{o:?}");
        }
    }

    #[test]
    fn alive_but_not_ready_after_the_start_period_is_degraded_and_so_is_a_dead_channel() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let s = running("c1", 600);
        let run = RunKey::of(&s);
        fleet.record_status(&id, Some(s));
        fleet.record_probe(&id, &run, result(true, false), false, 3);
        assert_eq!(health(&fleet, &id), Health::Degraded);
        let channels = vec![
            ChannelStatus {
                id: "telegram".into(),
                state: ChannelState::Running,
                detail: None,
            },
            ChannelStatus {
                id: "discord".into(),
                state: ChannelState::NotLoaded,
                detail: Some("no plugin".into()),
            },
        ];
        fleet.record_probe(&id, &run, answered(channels.clone()), false, 3);
        let status = fleet.status(&id);
        let o = fleet.observe_status(&id, D::Running, status.as_ref());
        assert_eq!(o.health, Health::Degraded);
        assert_eq!(o.channels.as_deref(), Some(&channels[..]));
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["health"], "degraded");
        assert_eq!(json["channels"][1]["state"], "not_loaded");

        // Regression (CI, real gateway): while a gateway shuts down, `/readyz` still answers
        // but its status call fails. That silence is not news about the channels.
        fleet.record_probe(&id, &run, result(true, true), false, 3);
        let o = fleet.observe_status(&id, D::Running, status.as_ref());
        assert_eq!(o.health, Health::Degraded, "{o:?}");
        assert_eq!(o.channels.as_deref(), Some(&channels[..]));
        // A new answer does count.
        fleet.record_probe(&id, &run, answered(channels[..1].to_vec()), false, 3);
        assert_eq!(health(&fleet, &id), Health::Healthy);
    }

    /// Regression: a PATCH recreates the container (the old one's removal is seen first);
    /// the new one kept the old probe verdict, so a bot whose probe was removed stayed
    /// `healthy` for good.
    #[test]
    fn a_recreated_container_owes_nothing_to_the_old_probe_verdict() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let old = running("old", 600);
        fleet.record_status(&id, Some(old.clone()));
        fleet.record_probe(&id, &RunKey::of(&old), result(true, true), false, 1);
        assert_eq!(health(&fleet, &id), Health::Healthy);
        fleet.record_status(&id, None);
        fleet.record_status(&id, Some(running("new", 0)));
        // Still probed (as far as the fleet knows): the new run knows nothing yet.
        assert_eq!(health(&fleet, &id), Health::Starting);
        // The prober finds the probe gone from the bot's config.
        fleet.forget_probe(&id);
        assert_eq!(health(&fleet, &id), Health::None);
        // A late verdict about the old container does not come back either.
        fleet.record_probe(&id, &RunKey::of(&old), result(true, true), false, 1);
        fleet.forget_probe(&id);
        assert_eq!(health(&fleet, &id), Health::None);
    }

    /// Regression: a crash-looping bot fixed by a PATCH stayed `crash_loop` for the whole
    /// window. The PATCH removes the old container before the new one exists, so the fleet saw
    /// no container in between, and the new container inherited the old one's deaths.
    #[test]
    fn a_crash_loop_ends_with_its_container_even_through_a_moment_without_one() {
        let fleet = Fleet::new(CrashLoopPolicy {
            restarts: 3,
            window: Duration::from_secs(300),
        });
        let id = BotId::new("b").unwrap();
        let old = running("old", 1);
        fleet.record_status(&id, Some(old.clone()));
        for _ in 0..3 {
            fleet.record_death(&id, "old", Utc::now());
        }
        let o = fleet.observe_status(&id, D::Running, Some(&old));
        assert_eq!(o.state, BotState::CrashLoop);
        fleet.record_status(&id, None);
        let new = running("new", 0);
        fleet.record_status(&id, Some(new.clone()));
        let o = fleet.observe_status(&id, D::Running, Some(&new));
        assert_eq!(o.state, BotState::Running, "{o:?}");
    }

    #[test]
    fn publishes_only_changes() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let mut rx = fleet.subscribe();
        let id = BotId::new("b").unwrap();
        let o = missing();
        fleet.publish_if_changed(&id, o.clone());
        fleet.publish_if_changed(&id, o);
        assert_eq!(rx.try_recv().unwrap().kind, BotEventKind::State);
        assert!(rx.try_recv().is_err());
    }
}
