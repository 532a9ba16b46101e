//! What botmaker has observed about each bot, beyond one Docker call: recent crashes (for
//! crash-loop detection), the latest inspect, and its own HTTP probe verdicts. The reconciler
//! writes it; the API reads it. State changes are broadcast for `GET /api/events`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::BotId;
use crate::docker::{ContainerInfo, ContainerState, ContainerStatus, Health};
use crate::store::DesiredState;

/// Longest a stop may take from signal to death (the grace period, with room to spare).
const KILL_TO_DEATH: chrono::Duration = chrono::Duration::seconds(120);

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
    /// Health verdict (botmaker's probe when configured, else Docker's HEALTHCHECK).
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
}

#[derive(Debug, Default, Clone)]
struct Entry {
    status: Option<ContainerStatus>,
    deaths: VecDeque<DateTime<Utc>>,
    last_kill: Option<DateTime<Utc>>,
    probe: Option<ProbeState>,
    last_published: Option<Observed>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ProbeState {
    health: Health,
    failures: u32,
}

/// Everything observed about the fleet. Shared by the reconciler (writer) and the API.
#[derive(Debug)]
pub struct Fleet {
    entries: Mutex<HashMap<BotId, Entry>>,
    policy: CrashLoopPolicy,
    events: broadcast::Sender<BotEvent>,
}

impl Fleet {
    /// An empty fleet view.
    pub fn new(policy: CrashLoopPolicy) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            entries: Mutex::default(),
            policy,
            events,
        }
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

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<BotId, Entry>) -> R) -> R {
        f(&mut self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records the result of an inspect.
    pub fn record_status(&self, id: &BotId, status: Option<ContainerStatus>) {
        self.with(|m| {
            let e = m.entry(id.clone()).or_default();
            // A new container (recreated) starts with a clean slate; the first inspect of
            // a container keeps the deaths its events already reported.
            match (&e.status, &status) {
                (Some(old), Some(new)) if old.id != new.id => {
                    e.deaths.clear();
                    e.probe = None;
                }
                // A container after none (recreated: the old one's removal came first) owes
                // nothing to the probe verdicts of the one before.
                (None, Some(_)) => e.probe = None,
                _ => {}
            }
            e.status = status;
        });
    }

    /// Records that someone signalled the container (a stop, restart or `docker kill`): the
    /// death that follows was asked for and is no crash.
    pub fn record_kill(&self, id: &BotId, at: DateTime<Utc>) {
        self.with(|m| m.entry(id.clone()).or_default().last_kill = Some(at));
    }

    /// Records that the bot's container died at `at`. Deaths shortly after a signal sent to it
    /// were requested (stop, restart, kill) and do not count toward a crash loop.
    pub fn record_death(&self, id: &BotId, at: DateTime<Utc>) {
        let window = self.policy.window;
        self.with(|m| {
            let e = m.entry(id.clone()).or_default();
            if e.last_kill.take().is_some_and(|k| at - k <= KILL_TO_DEATH) {
                return;
            }
            e.deaths.push_back(at);
            prune(&mut e.deaths, at, window);
        });
    }

    /// Records one HTTP probe result; `threshold` consecutive failures make it unhealthy.
    pub fn record_probe(&self, id: &BotId, ok: bool, threshold: u32) {
        self.with(|m| {
            let e = m.entry(id.clone()).or_default();
            let p = e.probe.get_or_insert_with(ProbeState::default);
            if ok {
                p.failures = 0;
                p.health = Health::Healthy;
            } else {
                p.failures += 1;
                if p.failures >= threshold.max(1) {
                    p.health = Health::Unhealthy;
                } else if p.health == Health::None {
                    p.health = Health::Starting;
                }
            }
        });
    }

    /// Marks a probed bot as within its start period.
    pub fn record_probe_starting(&self, id: &BotId) {
        self.with(|m| {
            let e = m.entry(id.clone()).or_default();
            e.probe.get_or_insert(ProbeState {
                health: Health::Starting,
                failures: 0,
            });
        });
    }

    /// Forgets a bot (deleted).
    pub fn forget(&self, id: &BotId) {
        self.with(|m| m.remove(id));
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
        let (looping, probe) = self.extras(id);
        match status {
            Some(s) => observed_from(s, desired, looping, probe),
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
            prune(&mut e.deaths, now, policy.window);
            let looping = e.deaths.len() >= policy.restarts;
            match &e.status {
                Some(s) => observed_from(s, desired, looping, e.probe.map(|p| p.health)),
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
        let (looping, probe) = self.extras(id);
        let Some(c) = info else {
            return missing();
        };
        let known = self.status(id).filter(|s| s.id == c.id);
        let running = c.state == ContainerState::Running;
        Observed {
            state: derive_state(c.state, c.exit_code, desired, looping),
            health: merge_health(running, c.health, probe),
            exit_code: c.exit_code,
            restart_count: known.as_ref().map_or(0, |s| s.restart_count),
            oom_killed: known.as_ref().is_some_and(|s| s.oom_killed),
            container_id: Some(c.id.clone()),
            image_id: Some(c.image_id.clone()).filter(|i| !i.is_empty()),
            started_at: known.and_then(|s| s.started_at),
        }
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
            });
            e.last_published = Some(observed.clone());
            changed
        });
        if changed {
            self.publish(id, BotEventKind::State, Some(observed));
        }
    }

    fn extras(&self, id: &BotId) -> (bool, Option<Health>) {
        let now = Utc::now();
        let policy = self.policy;
        self.with(|m| match m.get_mut(id) {
            Some(e) => {
                prune(&mut e.deaths, now, policy.window);
                (e.deaths.len() >= policy.restarts, e.probe.map(|p| p.health))
            }
            None => (false, None),
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
    probe: Option<Health>,
) -> Observed {
    Observed {
        state: derive_state(s.state, s.exit_code, desired, looping),
        health: merge_health(s.running, s.health, probe),
        exit_code: s.exit_code,
        restart_count: s.restart_count,
        oom_killed: s.oom_killed,
        container_id: Some(s.id.clone()),
        image_id: Some(s.image_id.clone()).filter(|i| !i.is_empty()),
        started_at: s.started_at,
    }
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

fn merge_health(running: bool, docker: Health, probe: Option<Health>) -> Health {
    if !running {
        return Health::None;
    }
    probe.unwrap_or(docker)
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
        fleet.record_death(&id, now - chrono::Duration::seconds(120));
        fleet.record_death(&id, now - chrono::Duration::seconds(10));
        fleet.record_death(&id, now - chrono::Duration::seconds(5));
        assert!(!fleet.extras(&id).0, "the old death is outside the window");
        fleet.record_death(&id, now);
        assert!(fleet.extras(&id).0);
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
            fleet.record_death(&id, t + chrono::Duration::milliseconds(200));
        }
        assert!(
            !fleet.extras(&id).0,
            "stops and restarts are not a crash loop"
        );
        fleet.record_death(&id, now + chrono::Duration::seconds(6));
        fleet.record_death(&id, now + chrono::Duration::seconds(7));
        assert!(fleet.extras(&id).0);
    }

    #[test]
    fn probe_failures_turn_unhealthy_at_the_threshold_and_recover() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        fleet.record_probe(&id, false, 2);
        assert_eq!(fleet.extras(&id).1, Some(Health::Starting));
        fleet.record_probe(&id, false, 2);
        assert_eq!(fleet.extras(&id).1, Some(Health::Unhealthy));
        fleet.record_probe(&id, true, 2);
        assert_eq!(fleet.extras(&id).1, Some(Health::Healthy));
    }

    /// Regression: a PATCH recreates the container (the old one's removal is seen first);
    /// the new one kept the old probe verdict, so a bot whose probe was removed stayed
    /// `healthy` for good.
    #[test]
    fn a_recreated_container_owes_nothing_to_the_old_probe_verdict() {
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let id = BotId::new("b").unwrap();
        let running = |container: &str| ContainerStatus {
            id: container.into(),
            state: C::Running,
            running: true,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            health: Health::None,
            restart_count: 0,
            oom_killed: false,
            image_id: String::new(),
            ip_address: None,
        };
        fleet.record_status(&id, Some(running("old")));
        fleet.record_probe(&id, true, 1);
        assert_eq!(fleet.extras(&id).1, Some(Health::Healthy));
        fleet.record_status(&id, None);
        fleet.record_status(&id, Some(running("new")));
        assert_eq!(fleet.extras(&id).1, None);
        let status = fleet.status(&id);
        let o = fleet.observe_status(&id, D::Running, status.as_ref());
        assert_eq!(o.health, Health::None);
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
