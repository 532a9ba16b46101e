//! The stops botmaker asked for, remembered so that the deaths they cause can be told from
//! crashes on an engine whose events do not say so.
//!
//! Docker sends `kill` before the `die` of every stop and restart, and the crash-loop count
//! ([`crate::bots`]) ignores a death that follows a kill. Podman (4.3) sends a bare `die`: every
//! stop or restart botmaker made would count as a crash, and three in five minutes would show
//! a healthy bot as `crash_loop`. So [`DockerService`](super::DockerService) notes the time
//! window of each stop and restart it sends, and its event stream puts a `kill` before a
//! Podman `die` that falls inside one. Only botmaker's own requests are known: a `podman stop`
//! typed by hand still counts as a death (the README says so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How far an engine's event time may be from botmaker's clock and still match a request
/// (the engine stamps the `die` while the request is under way; a local engine shares the
/// clock, a remote one may drift a little).
const SLACK_NANOS: i64 = 2_000_000_000;
/// Windows older than this are forgotten: their `die` has long been read.
const KEEP_NANOS: i64 = 600_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    /// `None` while the request is under way.
    end: Option<i64>,
}

/// Stop and restart requests per bot, shared by every clone of a service.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestedStops {
    windows: Arc<Mutex<HashMap<String, Vec<Window>>>>,
}

/// Marks the end of a request's window when dropped, whatever the request's outcome.
pub(crate) struct Requested {
    stops: RequestedStops,
    bot_id: String,
    start: i64,
}

impl RequestedStops {
    /// Notes that a stop or restart of `bot_id` starts now; the window closes when the
    /// returned guard is dropped.
    pub(crate) fn begin(&self, bot_id: &str) -> Requested {
        self.begin_at(bot_id, now_nanos())
    }

    fn begin_at(&self, bot_id: &str, start: i64) -> Requested {
        self.with(|m| {
            m.retain(|_, ws| {
                ws.retain(|w| w.end.is_none_or(|e| start - e < KEEP_NANOS));
                !ws.is_empty()
            });
            m.entry(bot_id.to_string())
                .or_default()
                .push(Window { start, end: None });
        });
        Requested {
            stops: self.clone(),
            bot_id: bot_id.to_string(),
            start,
        }
    }

    /// Whether a death of `bot_id` at `at` (engine time, ns) happened during one of
    /// botmaker's stop or restart requests.
    pub(crate) fn covers(&self, bot_id: &str, at: i64) -> bool {
        let now = now_nanos();
        self.with(|m| {
            m.get(bot_id).is_some_and(|ws| {
                ws.iter().any(|w| {
                    w.start - SLACK_NANOS <= at && at <= w.end.unwrap_or(now) + SLACK_NANOS
                })
            })
        })
    }

    fn end(&self, bot_id: &str, start: i64, end: i64) {
        self.with(|m| {
            if let Some(w) = m
                .get_mut(bot_id)
                .and_then(|ws| ws.iter_mut().find(|w| w.start == start && w.end.is_none()))
            {
                w.end = Some(end);
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Window>>) -> T) -> T {
        f(&mut self.windows.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Requested {
    fn drop(&mut self) {
        self.stops.end(&self.bot_id, self.start, now_nanos());
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_death_during_a_request_is_covered_and_one_outside_is_not() {
        let stops = RequestedStops::default();
        let t = 1_000 * S;
        let guard = stops.begin_at("b", t);
        // Under way: anything from the start on counts.
        assert!(stops.covers("b", t + 5 * S));
        stops.end("b", guard.start, t + 10 * S);
        std::mem::forget(guard);
        assert!(stops.covers("b", t));
        assert!(stops.covers("b", t + 10 * S));
        // Within the clock slack on either side.
        assert!(stops.covers("b", t - S));
        assert!(stops.covers("b", t + 11 * S));
        // A crash well after the stop, or another bot's death, is not covered.
        assert!(!stops.covers("b", t + 60 * S));
        assert!(!stops.covers("b", t - 60 * S));
        assert!(!stops.covers("other", t + 5 * S));
    }

    #[test]
    fn the_guard_closes_the_window_and_old_windows_are_forgotten() {
        let stops = RequestedStops::default();
        drop(stops.begin("b"));
        let now = now_nanos();
        assert!(stops.covers("b", now));
        assert!(!stops.covers("b", now + 60 * S), "closed at drop");
        // A request much later forgets the old window.
        let later = now + KEEP_NANOS + S;
        let _g = stops.begin_at("c", later);
        assert!(stops.with(|m| !m.contains_key("b")));
    }
}
