//! Waiting for a bot's next run from what the reconciler already observes (Docker's event
//! stream and resyncs, recorded in [`Fleet`]), never by asking Docker: a log follower waits
//! here while its bot's container is stopped, so an idle follower costs no Docker call however
//! long it waits and however many there are.
//!
//! While the event stream is down nothing changes here; the reconciler's resync after it
//! reconnects records every container that changed meanwhile, which wakes the waiters.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::observed::{BotEventKind, Fleet, RunKey};
use crate::BotId;
use crate::store::Store;

/// What ended a wait for the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// The bot's container runs, in a run other than the one followed last: a restart, a
    /// start after a stop, or a new container (recreated by an update or an upgrade).
    Started,
    /// The bot was deleted.
    Deleted,
}

/// One bot's runs, as the reconciler records them.
#[derive(Debug)]
pub struct RunWatch {
    fleet: Arc<Fleet>,
    bot: BotId,
    statuses: watch::Receiver<u64>,
    events: broadcast::Receiver<super::BotEvent>,
    /// The run followed last, while it still looks running; `None` once the bot was seen not
    /// running (then whatever runs next is new).
    followed: Option<RunKey>,
}

impl RunWatch {
    /// Starts watching `bot`; the run it records as running now counts as followed. Subscribes
    /// before reading that run, so no change between the two is missed.
    pub fn new(fleet: Arc<Fleet>, bot: BotId) -> Self {
        let statuses = fleet.status_changes();
        let events = fleet.subscribe();
        let followed = fleet
            .status(&bot)
            .filter(|s| s.running)
            .map(|s| RunKey::of(&s));
        Self {
            fleet,
            bot,
            statuses,
            events,
            followed,
        }
    }

    /// Waits until the bot runs in a run other than the one followed last (which then becomes
    /// the followed one), or is deleted. No Docker call: it wakes on the fleet's recorded
    /// statuses and events. The registry is read only if this watcher missed events (it fell
    /// more than the event channel's capacity behind), to learn whether a delete was among them.
    pub async fn next_run(&mut self, store: &Store) -> NextRun {
        loop {
            self.statuses.borrow_and_update();
            match self.fleet.status(&self.bot) {
                Some(s) if s.running => {
                    let run = RunKey::of(&s);
                    if self.followed.as_ref() != Some(&run) {
                        self.followed = Some(run);
                        return NextRun::Started;
                    }
                }
                _ => self.followed = None,
            }
            tokio::select! {
                changed = self.statuses.changed() => {
                    if changed.is_err() {
                        return NextRun::Deleted;
                    }
                }
                event = self.events.recv() => match event {
                    Ok(e) if e.kind == BotEventKind::Deleted && e.id == self.bot.as_str() => {
                        return NextRun::Deleted;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if matches!(store.get_bot(&self.bot).await, Ok(None)) {
                            return NextRun::Deleted;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return NextRun::Deleted,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::bots::CrashLoopPolicy;
    use crate::docker::{ContainerState, ContainerStatus};

    fn status(container: &str, running: bool, started_secs: i64) -> ContainerStatus {
        ContainerStatus {
            state: if running {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            running,
            exit_code: (!running).then_some(0),
            started_at: Some(Utc.timestamp_opt(1_800_000_000 + started_secs, 0).unwrap()),
            ..ContainerStatus::running_for_test(container)
        }
    }

    async fn store() -> Store {
        Store::open_in_memory().await.unwrap()
    }

    /// `next_run` must not have returned within a moment: it waits for a recorded change.
    async fn still_waiting(watch: &mut RunWatch, store: &Store) {
        let waited = tokio::time::timeout(Duration::from_millis(50), watch.next_run(store)).await;
        assert!(waited.is_err(), "returned without a new run: {waited:?}");
    }

    #[tokio::test]
    async fn a_restart_of_the_same_container_is_a_new_run() {
        let store = store().await;
        let fleet = Arc::new(Fleet::new(CrashLoopPolicy::default()));
        let bot = BotId::new("b1").unwrap();
        fleet.record_status(&bot, Some(status("c1", true, 0)));
        let mut watch = RunWatch::new(fleet.clone(), bot.clone());
        // The followed run still looks running (its die not recorded yet): keep waiting.
        still_waiting(&mut watch, &store).await;
        // Restarted, the stop and the start seen as one change: a new start time.
        fleet.record_status(&bot, Some(status("c1", true, 5)));
        assert_eq!(watch.next_run(&store).await, NextRun::Started);
        still_waiting(&mut watch, &store).await;
    }

    #[tokio::test]
    async fn a_stop_then_a_start_or_a_new_container_is_a_new_run() {
        let store = store().await;
        let fleet = Arc::new(Fleet::new(CrashLoopPolicy::default()));
        let bot = BotId::new("b2").unwrap();
        fleet.record_status(&bot, Some(status("c1", true, 0)));
        let mut watch = RunWatch::new(fleet.clone(), bot.clone());
        let waiting = {
            let (fleet, bot) = (fleet.clone(), bot.clone());
            tokio::spawn(async move {
                fleet.record_status(&bot, Some(status("c1", false, 0)));
                tokio::time::sleep(Duration::from_millis(20)).await;
                // Recreated: removed, then a new container.
                fleet.record_status(&bot, None);
                tokio::time::sleep(Duration::from_millis(20)).await;
                fleet.record_status(&bot, Some(status("c2", true, 9)));
            })
        };
        assert_eq!(watch.next_run(&store).await, NextRun::Started);
        waiting.await.unwrap();
        assert_eq!(
            watch.followed,
            Some(RunKey::of(&status("c2", true, 9))),
            "the new container's run is the followed one"
        );
    }

    #[tokio::test]
    async fn a_deleted_bot_ends_the_wait() {
        let store = store().await;
        let fleet = Arc::new(Fleet::new(CrashLoopPolicy::default()));
        let bot = BotId::new("b3").unwrap();
        fleet.record_status(&bot, Some(status("c1", false, 0)));
        let mut watch = RunWatch::new(fleet.clone(), bot.clone());
        still_waiting(&mut watch, &store).await;
        // Another bot's delete is not this one's.
        fleet.publish(&BotId::new("other").unwrap(), BotEventKind::Deleted, None);
        still_waiting(&mut watch, &store).await;
        fleet.forget(&bot);
        fleet.publish(&bot, BotEventKind::Deleted, None);
        assert_eq!(watch.next_run(&store).await, NextRun::Deleted);
    }
}
