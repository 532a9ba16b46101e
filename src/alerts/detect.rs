//! Turning the fleet's event stream into alerts: one per bot and event until the bot recovers.
//!
//! Pure logic over [`BotEvent`]s and the clock, so every rule is unit-tested here:
//!
//! - `crash_loop`, `oom_killed` and `unhealthy` are alerted as soon as an observation shows them.
//! - `exited` and `missing` wait [`CONFIRM_GRACE`] for the observation to still hold, because a
//!   bot's own change goes through both (a PATCH stops and removes the old container before the
//!   new one runs), unless the evidence is already certain: Docker restarting the same container
//!   (its restart count went up) only happens after a death nobody asked for.
//! - `degraded` waits [`DEGRADED_GRACE`] the same way: a channel reconnecting fails a moment.
//! - `recovered` is sent once a bot that was alerted about has been running and healthy for
//!   `settle`: a crashing bot runs for a moment between crashes, and that is no recovery.
//! - `budget_exceeded` and `upgrade_failed` are passed on as they come: each is one event
//!   already (the LLM proxy reports a budget once per window; an upgrade fails once).
//! - While an event is alerted and not recovered it is not sent again, however often Docker
//!   restarts the bot: no storm.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::bots::{BotEvent, BotEventKind, BotState, Observed};
use crate::docker::Health;

use super::event::{Alert, AlertEvent};

/// How long an `exited` or `missing` observation must hold before it is alerted.
pub const CONFIRM_GRACE: Duration = Duration::from_secs(5);
/// How long a bot must stay `degraded` before it is alerted: a chat channel reconnecting after
/// a network blip reports a failure for a moment, and that is no news.
pub const DEGRADED_GRACE: Duration = Duration::from_secs(30);

/// How long `event` must hold once seen.
fn grace(event: AlertEvent) -> Duration {
    match event {
        AlertEvent::Degraded => DEGRADED_GRACE,
        _ => CONFIRM_GRACE,
    }
}
/// How long a bot must run healthy before `recovered` is sent (Docker's own rule: a container
/// that ran 10 s started successfully, and its restart back-off resets).
pub const DEFAULT_RECOVERY_SETTLE: Duration = Duration::from_secs(10);

/// What is known about one bot.
#[derive(Debug, Default)]
struct Track {
    last: Option<Observed>,
    /// Alerted and not recovered yet.
    active: BTreeSet<AlertEvent>,
    /// An `exited`, `missing` or `degraded` waiting for its grace.
    pending: Option<(AlertEvent, Instant)>,
    /// Since when the current run has been running and healthy.
    healthy_since: Option<Instant>,
    /// The (container, restart count) of the run whose OOM kill was last alerted or lived
    /// through: Docker keeps `OOMKilled` set until the next exit, so a flag already seen is no
    /// news.
    oom_seen: Option<(Option<String>, i64)>,
}

/// The alert rules' state for the whole fleet.
#[derive(Debug)]
pub struct Detector {
    /// Boxed: a track is a few hundred bytes, and a map's table holds up to twice as many slots
    /// as entries, so inline tracks left megabytes of empty slots resident at 10,000 bots.
    bots: HashMap<String, Box<Track>>,
    settle: Duration,
}

fn run_key(o: &Observed) -> (Option<String>, i64) {
    (o.container_id.clone(), o.restart_count)
}

fn is_healthy_run(o: &Observed) -> bool {
    o.state == BotState::Running && matches!(o.health, Health::Healthy | Health::None)
}

impl Detector {
    /// Rules with `settle` as the time a bot must run healthy to count as recovered.
    pub fn new(settle: Duration) -> Self {
        Self {
            bots: HashMap::new(),
            settle,
        }
    }

    /// Folds one fleet event in; returns the alerts it decides at once.
    pub fn observe(&mut self, ev: &BotEvent, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        match ev.kind {
            BotEventKind::Deleted => {
                self.bots.remove(&ev.id);
            }
            BotEventKind::BudgetExceeded | BotEventKind::UpgradeRolledBack => out.push(Alert {
                event: match ev.kind {
                    BotEventKind::BudgetExceeded => AlertEvent::BudgetExceeded,
                    _ => AlertEvent::UpgradeFailed,
                },
                bot_id: ev.id.clone(),
                observed: self.bots.get(&ev.id).and_then(|t| t.last.clone()),
                at: ev.at,
            }),
            BotEventKind::Created | BotEventKind::Updated | BotEventKind::State => {
                if let Some(o) = &ev.observed {
                    let track = self.bots.entry(ev.id.clone()).or_default();
                    for event in track.fold(o, ev.kind, now) {
                        out.push(Alert {
                            event,
                            bot_id: ev.id.clone(),
                            observed: Some(o.clone()),
                            at: ev.at,
                        });
                    }
                }
            }
        }
        out
    }

    /// Decides what waiting allows: confirmed `exited`/`missing`, settled `recovered`.
    pub fn tick(&mut self, now: Instant) -> Vec<Alert> {
        let settle = self.settle;
        let mut out = Vec::new();
        for (id, track) in &mut self.bots {
            for event in track.tick(now, settle) {
                out.push(Alert {
                    event,
                    bot_id: id.clone(),
                    observed: track.last.clone(),
                    at: chrono::Utc::now(),
                });
            }
        }
        out
    }
}

impl Track {
    /// Records `o`; returns the events to alert now.
    fn fold(&mut self, o: &Observed, kind: BotEventKind, now: Instant) -> Vec<AlertEvent> {
        let prev = self.last.replace(o.clone());
        let mut fire = Vec::new();
        let new_run = prev.as_ref().is_none_or(|p| {
            p.container_id != o.container_id
                || p.restart_count != o.restart_count
                || p.started_at != o.started_at
        });
        // Docker restarted the same container: it died, unasked.
        let restarted = prev.as_ref().is_some_and(|p| {
            p.container_id.is_some()
                && p.container_id == o.container_id
                && o.restart_count > p.restart_count
        });

        // A pending observation that no longer holds was a step of a change, not trouble.
        if let Some((pending, _)) = self.pending
            && !still_holds(pending, o)
        {
            self.pending = None;
        }
        if o.oom_killed && self.oom_seen != Some(run_key(o)) {
            // A bot first seen running with an old OOM flag (botmaker just started) is not news.
            let old_news = prev.is_none() && o.state == BotState::Running;
            self.oom_seen = Some(run_key(o));
            if !old_news {
                fire.push(AlertEvent::OomKilled);
            }
        }
        match o.state {
            BotState::CrashLoop => fire.push(AlertEvent::CrashLoop),
            BotState::Error if !o.oom_killed && !self.active.contains(&AlertEvent::CrashLoop) => {
                self.pending.get_or_insert((AlertEvent::Exited, now));
            }
            BotState::Missing if kind == BotEventKind::State => {
                self.pending.get_or_insert((AlertEvent::Missing, now));
            }
            BotState::Running if o.health == Health::Unhealthy => fire.push(AlertEvent::Unhealthy),
            BotState::Running if o.health == Health::Degraded => {
                self.pending.get_or_insert((AlertEvent::Degraded, now));
            }
            _ => {}
        }
        // A crash loop already says it dies: each death is no news.
        if restarted
            && !o.oom_killed
            && o.state != BotState::CrashLoop
            && !self.active.contains(&AlertEvent::CrashLoop)
        {
            fire.push(AlertEvent::Exited);
        }
        if is_healthy_run(o) {
            if new_run || self.healthy_since.is_none() {
                self.healthy_since = Some(now);
            }
        } else {
            self.healthy_since = None;
        }
        fire.retain(|e| self.active.insert(*e));
        if fire.contains(&AlertEvent::Exited) {
            self.pending = None;
        }
        fire
    }

    fn tick(&mut self, now: Instant, settle: Duration) -> Vec<AlertEvent> {
        let mut fire = Vec::new();
        if let Some((event, since)) = self.pending
            && now.duration_since(since) >= grace(event)
        {
            self.pending = None;
            if self.last.as_ref().is_some_and(|o| still_holds(event, o))
                && self.active.insert(event)
            {
                fire.push(event);
            }
        }
        if !self.active.is_empty()
            && self
                .healthy_since
                .is_some_and(|t| now.duration_since(t) >= settle)
        {
            self.active.clear();
            self.pending = None;
            if let Some(o) = &self.last {
                // Its OOM flag (kept by Docker until the next exit) is history now.
                self.oom_seen = o.oom_killed.then(|| run_key(o));
            }
            fire.push(AlertEvent::Recovered);
        }
        fire
    }
}

fn still_holds(event: AlertEvent, o: &Observed) -> bool {
    match event {
        AlertEvent::Exited => o.state == BotState::Error,
        AlertEvent::Missing => o.state == BotState::Missing,
        AlertEvent::Degraded => o.state == BotState::Running && o.health == Health::Degraded,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    const SETTLE: Duration = Duration::from_secs(10);

    fn observed(state: BotState, container: &str, restarts: i64) -> Observed {
        Observed {
            state,
            health: if state == BotState::Running {
                Health::None
            } else if state == BotState::CrashLoop {
                Health::Unhealthy
            } else {
                Health::None
            },
            exit_code: (state == BotState::Error).then_some(1),
            restart_count: restarts,
            oom_killed: false,
            container_id: (state != BotState::Missing).then(|| container.to_string()),
            image_id: None,
            started_at: None,
            channels: None,
            node: None,
            node_state: None,
        }
    }

    fn state(o: Observed) -> BotEvent {
        BotEvent {
            id: "b".into(),
            kind: BotEventKind::State,
            observed: Some(o),
            at: Utc::now(),
        }
    }

    fn events(alerts: Vec<Alert>) -> Vec<AlertEvent> {
        alerts.into_iter().map(|a| a.event).collect()
    }

    /// Feeds `obs` one second apart (ticking each second) and returns every event alerted.
    fn run(d: &mut Detector, start: Instant, obs: &[Observed]) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        for (i, o) in obs.iter().enumerate() {
            let now = start + Duration::from_secs(i as u64);
            out.extend(events(d.observe(&state(o.clone()), now)));
            out.extend(events(d.tick(now)));
        }
        out
    }

    #[test]
    fn a_crash_looping_bot_alerts_once_then_recovers_once() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let mut obs = vec![observed(BotState::Running, "c1", 0)];
        for rc in 1..=2 {
            obs.push(observed(BotState::Error, "c1", rc - 1));
            obs.push(observed(BotState::Running, "c1", rc));
        }
        for rc in 3..20 {
            obs.push(observed(BotState::CrashLoop, "c1", rc));
        }
        let alerted = run(&mut d, t0, &obs);
        assert_eq!(alerted, [AlertEvent::Exited, AlertEvent::CrashLoop]);
        // Fixed: a new container that keeps running.
        let later = t0 + Duration::from_secs(100);
        let fixed = observed(BotState::Running, "c2", 0);
        assert!(d.observe(&state(fixed.clone()), later).is_empty());
        assert!(d.tick(later + SETTLE / 2).is_empty(), "not settled yet");
        assert_eq!(
            events(d.tick(later + SETTLE)),
            [AlertEvent::Recovered],
            "once settled"
        );
        assert!(d.tick(later + SETTLE * 3).is_empty(), "only once");
        // A new crash loop later is news again.
        let again = observed(BotState::CrashLoop, "c2", 5);
        assert_eq!(
            events(d.observe(&state(again), later + SETTLE * 4)),
            [AlertEvent::CrashLoop]
        );
    }

    #[test]
    fn a_brief_run_between_crashes_is_no_recovery() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let mut obs = vec![observed(BotState::CrashLoop, "c1", 3)];
        // Runs 5 s each time (shorter than the settle time), then dies again.
        for rc in 4..10 {
            for _ in 0..5 {
                obs.push(observed(BotState::Running, "c1", rc));
            }
            obs.push(observed(BotState::Error, "c1", rc));
        }
        let alerted = run(&mut d, t0, &obs);
        assert_eq!(alerted, [AlertEvent::CrashLoop]);
    }

    /// A PATCH removes the old container and starts a new one: the bot shows `missing` (and
    /// maybe `error`, the old run's SIGTERM code) for a moment. None of it is an alert.
    #[test]
    fn a_recreate_is_neither_missing_nor_exited() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let mut stopped = observed(BotState::Error, "c1", 0);
        stopped.exit_code = Some(143);
        let obs = [
            observed(BotState::Running, "c1", 0),
            stopped,
            observed(BotState::Missing, "", 0),
            observed(BotState::Running, "c2", 0),
        ];
        let mut alerted = run(&mut d, t0, &obs);
        alerted.extend(events(d.tick(t0 + Duration::from_secs(60))));
        assert!(alerted.is_empty(), "{alerted:?}");
    }

    #[test]
    fn missing_and_exited_are_alerted_once_they_hold() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let obs: Vec<_> = std::iter::once(observed(BotState::Running, "c1", 0))
            .chain(std::iter::repeat_n(observed(BotState::Missing, "", 0), 8))
            .collect();
        assert_eq!(run(&mut d, t0, &obs), [AlertEvent::Missing]);

        let mut d = Detector::new(SETTLE);
        let obs: Vec<_> = std::iter::once(observed(BotState::Running, "c1", 0))
            .chain(std::iter::repeat_n(observed(BotState::Error, "c1", 0), 8))
            .collect();
        assert_eq!(run(&mut d, t0, &obs), [AlertEvent::Exited]);
    }

    #[test]
    fn an_oom_kill_is_alerted_once_per_kill_and_an_old_flag_is_no_news() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let mut killed = observed(BotState::Error, "c1", 0);
        killed.oom_killed = true;
        killed.exit_code = Some(137);
        let mut back = observed(BotState::Running, "c1", 1);
        back.oom_killed = true;
        let mut obs = vec![observed(BotState::Running, "c1", 0), killed, back.clone()];
        obs.extend(std::iter::repeat_n(back.clone(), 12));
        assert_eq!(
            run(&mut d, t0, &obs),
            [AlertEvent::OomKilled, AlertEvent::Recovered]
        );
        // Docker keeps the flag set while it runs: the same run is no news.
        let later = t0 + Duration::from_secs(30);
        assert!(d.observe(&state(back.clone()), later).is_empty());
        // Killed again (restart count moves): news.
        let mut again = back.clone();
        again.restart_count = 2;
        assert_eq!(
            events(d.observe(&state(again), later)),
            [AlertEvent::OomKilled]
        );

        // A bot first seen running with the flag (botmaker restarted) is no news.
        let mut d = Detector::new(SETTLE);
        assert!(d.observe(&state(back), t0).is_empty());
    }

    #[test]
    fn degraded_alerts_once_it_held_its_grace_and_a_blip_is_no_news() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let well = observed(BotState::Running, "c1", 0);
        let mut degraded = well.clone();
        degraded.health = Health::Degraded;
        let blip_s = DEGRADED_GRACE.as_secs() as usize - 5;
        // A channel failing for less than the grace, then running again: nothing.
        let mut obs = vec![well.clone()];
        obs.extend(std::iter::repeat_n(degraded.clone(), blip_s));
        obs.extend(std::iter::repeat_n(well.clone(), 3));
        assert!(run(&mut d, t0, &obs).is_empty());
        // Failing for longer: one alert, however long it lasts; recovered once well again.
        let later = t0 + Duration::from_secs(100);
        let mut obs = std::iter::repeat_n(degraded, 2 * DEGRADED_GRACE.as_secs() as usize)
            .collect::<Vec<_>>();
        obs.extend(std::iter::repeat_n(well, 12));
        assert_eq!(
            run(&mut d, later, &obs),
            [AlertEvent::Degraded, AlertEvent::Recovered]
        );
    }

    #[test]
    fn unhealthy_alerts_once_and_recovers_when_healthy() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        let mut sick = observed(BotState::Running, "c1", 0);
        sick.health = Health::Unhealthy;
        let mut well = sick.clone();
        well.health = Health::Healthy;
        let obs: Vec<_> = [sick.clone(), sick.clone(), sick]
            .into_iter()
            .chain(std::iter::repeat_n(well, 12))
            .collect();
        assert_eq!(
            run(&mut d, t0, &obs),
            [AlertEvent::Unhealthy, AlertEvent::Recovered]
        );
    }

    #[test]
    fn a_deleted_bot_is_forgotten_and_budgets_are_passed_on() {
        let mut d = Detector::new(SETTLE);
        let t0 = Instant::now();
        run(
            &mut d,
            t0,
            &[
                observed(BotState::Running, "c1", 0),
                observed(BotState::Missing, "", 0),
            ],
        );
        d.observe(
            &BotEvent {
                id: "b".into(),
                kind: BotEventKind::Deleted,
                observed: None,
                at: Utc::now(),
            },
            t0,
        );
        assert!(d.tick(t0 + Duration::from_secs(60)).is_empty());
        let budget = BotEvent {
            id: "b".into(),
            kind: BotEventKind::BudgetExceeded,
            observed: None,
            at: Utc::now(),
        };
        assert_eq!(events(d.observe(&budget, t0)), [AlertEvent::BudgetExceeded]);
        let upgrade = BotEvent {
            kind: BotEventKind::UpgradeRolledBack,
            ..budget
        };
        assert_eq!(events(d.observe(&upgrade, t0)), [AlertEvent::UpgradeFailed]);
    }
}
