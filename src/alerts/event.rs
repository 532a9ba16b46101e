//! What an alert says: the events botmaker alerts on, and the one alert value every channel
//! kind formats in its own way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bots::{BotState, ChannelState, Observed};
use crate::docker::Health;

/// An event a channel can be told about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The bot dies again and again (`crash_loop` state).
    CrashLoop,
    /// The kernel's OOM killer ended the bot's process (its memory limit is too low, or it
    /// leaks).
    OomKilled,
    /// The bot exited on its own, unasked (Docker restarted it, or it stays down).
    Exited,
    /// The bot runs but its health check fails.
    Unhealthy,
    /// The bot runs but cannot do its job: a chat channel it is configured with fails (a
    /// revoked token, say) or has no plugin, or it stays alive but not ready. Alerted once it
    /// has held [`super::detect::DEGRADED_GRACE`].
    Degraded,
    /// The bot's container is gone (removed behind botmaker's back).
    Missing,
    /// Back to running and healthy after any of the above.
    Recovered,
    /// It went over one of its LLM budgets or rate limits: the proxy refuses its requests
    /// until the window resets.
    BudgetExceeded,
    /// An upgrade's new container failed its health gate and the bot was rolled back to the
    /// old one.
    UpgradeFailed,
    /// A test message (`POST /api/notifications/{id}/test`), sent whatever the channel's
    /// `events`.
    Test,
}

impl AlertEvent {
    /// The events a channel may ask for (`test` is always sent when asked for).
    pub const SUBSCRIBABLE: &[AlertEvent] = &[
        AlertEvent::CrashLoop,
        AlertEvent::OomKilled,
        AlertEvent::Exited,
        AlertEvent::Unhealthy,
        AlertEvent::Degraded,
        AlertEvent::Missing,
        AlertEvent::Recovered,
        AlertEvent::BudgetExceeded,
        AlertEvent::UpgradeFailed,
    ];

    /// Its name in JSON (`crash_loop`...).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::CrashLoop => "crash_loop",
            AlertEvent::OomKilled => "oom_killed",
            AlertEvent::Exited => "exited",
            AlertEvent::Unhealthy => "unhealthy",
            AlertEvent::Degraded => "degraded",
            AlertEvent::Missing => "missing",
            AlertEvent::Recovered => "recovered",
            AlertEvent::BudgetExceeded => "budget_exceeded",
            AlertEvent::UpgradeFailed => "upgrade_failed",
            AlertEvent::Test => "test",
        }
    }

    /// The event named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .iter()
            .chain([&AlertEvent::Test])
            .copied()
            .find(|e| e.as_str() == s)
    }

    /// Whether it reports trouble (everything but `recovered` and `test`).
    pub fn is_trouble(self) -> bool {
        !matches!(self, AlertEvent::Recovered | AlertEvent::Test)
    }
}

impl std::fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert about one bot, before it is addressed to a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The bot (empty for a test alert).
    pub bot_id: String,
    /// What botmaker observed when it decided (absent for a budget or a test).
    pub observed: Option<Observed>,
    /// When botmaker noticed.
    pub at: DateTime<Utc>,
}

/// The JSON a `webhook` channel receives (the body the signature covers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertPayload {
    /// What happened.
    pub event: AlertEvent,
    /// The bot.
    #[schema(value_type = String)]
    pub bot_id: String,
    /// Its display name (its id when it has none or is gone).
    pub bot_name: String,
    /// Its observed state when botmaker decided.
    pub state: Option<BotState>,
    /// Its health then.
    pub health: Option<Health>,
    /// Exit code of its last run, if it exited.
    pub exit_code: Option<i64>,
    /// Whether the OOM killer ended its last run.
    pub oom_killed: bool,
    /// Restarts by Docker's restart policy of its current container.
    pub restart_count: i64,
    /// When botmaker noticed (RFC 3339).
    pub at: DateTime<Utc>,
    /// One readable sentence.
    pub message: String,
    /// The bot's dashboard page, when `serve --public-url` is set.
    pub url: Option<String>,
}

impl AlertPayload {
    /// The payload of `alert`, for the bot named `bot_name`, with links under `public_url`.
    pub fn new(alert: &Alert, bot_name: Option<&str>, public_url: Option<&str>) -> Self {
        let o = alert.observed.as_ref();
        let bot_name = bot_name
            .filter(|n| !n.is_empty())
            .unwrap_or(&alert.bot_id)
            .to_string();
        let url = public_url
            .filter(|_| !alert.bot_id.is_empty())
            .map(|base| format!("{}/bots/{}", base.trim_end_matches('/'), alert.bot_id));
        Self {
            event: alert.event,
            bot_id: alert.bot_id.clone(),
            message: message(alert, &bot_name),
            bot_name,
            state: o.map(|o| o.state),
            health: o.map(|o| o.health),
            exit_code: o.and_then(|o| o.exit_code),
            oom_killed: o.is_some_and(|o| o.oom_killed),
            restart_count: o.map_or(0, |o| o.restart_count),
            at: alert.at,
            url,
        }
    }
}

/// Most of a bot's own words about a channel kept in an alert.
const MAX_DETAIL_CHARS: usize = 160;

/// `s` on one line, without control characters, at most `max` characters: a channel's detail
/// is what the bot says, and a bot is not trusted to format an operator's messages.
fn plain(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
    match trimmed.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed,
    }
}

fn message(alert: &Alert, name: &str) -> String {
    let o = alert.observed.as_ref();
    let restarts = o.map_or(0, |o| o.restart_count);
    match alert.event {
        AlertEvent::CrashLoop => format!(
            "Bot {name} is crash-looping: it keeps dying and Docker keeps restarting it \
             ({restarts} restarts)"
        ),
        AlertEvent::OomKilled => format!(
            "Bot {name} was killed for running out of memory (OOM); raise limits.memory_mb or \
             look for a leak"
        ),
        AlertEvent::Exited => match o.and_then(|o| o.exit_code).filter(|c| *c != 0) {
            Some(code) => format!("Bot {name} exited unexpectedly with code {code}"),
            None => format!("Bot {name} exited unexpectedly (Docker restarted it)"),
        },
        AlertEvent::Unhealthy => format!("Bot {name} is running but fails its health check"),
        AlertEvent::Degraded => {
            let failing: Vec<String> = o
                .and_then(|o| o.channels.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| c.state.degrades())
                .map(|c| {
                    let what = match c.state {
                        ChannelState::NotLoaded => "has no plugin".to_string(),
                        _ => "is failing".to_string(),
                    };
                    match c.detail.as_deref().map(|d| plain(d, MAX_DETAIL_CHARS)) {
                        Some(d) if !d.is_empty() => {
                            format!("channel {} {what} ({d})", plain(&c.id, 32))
                        }
                        _ => format!("channel {} {what}", plain(&c.id, 32)),
                    }
                })
                .collect();
            if failing.is_empty() {
                format!("Bot {name} is running but not ready: it answers, but cannot serve")
            } else {
                format!("Bot {name} is running but degraded: {}", failing.join("; "))
            }
        }
        AlertEvent::Missing => format!(
            "Bot {name} has no container: it was removed behind botmaker's back (apply the bot \
             to recreate it)"
        ),
        AlertEvent::Recovered => format!("Bot {name} is running and healthy again"),
        AlertEvent::BudgetExceeded => format!(
            "Bot {name} went over one of its LLM budgets: its LLM requests are refused until \
             the window resets"
        ),
        AlertEvent::UpgradeFailed => format!(
            "An upgrade of bot {name} failed its health gate; the bot was rolled back to its \
             previous container"
        ),
        AlertEvent::Test => "Test message from botmaker: this channel receives alerts".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_under_its_json_name() {
        for e in AlertEvent::SUBSCRIBABLE.iter().chain([&AlertEvent::Test]) {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
            assert_eq!(AlertEvent::parse(e.as_str()), Some(*e));
        }
        assert_eq!(AlertEvent::parse("crashloop"), None);
    }

    #[test]
    fn a_degraded_alert_names_the_failing_channel_in_the_bots_words_kept_to_one_short_line() {
        use crate::bots::ChannelStatus;
        let mut o: Observed = serde_json::from_value(serde_json::json!({
            "state": "running", "health": "degraded", "exit_code": null, "restart_count": 0,
            "oom_killed": false, "container_id": "c", "image_id": null, "started_at": null,
        }))
        .unwrap();
        o.channels = Some(vec![
            ChannelStatus {
                id: "telegram".into(),
                state: ChannelState::Failing,
                detail: Some(format!("401: Unauthorized\n\u{1b}[31m{}", "x".repeat(500))),
            },
            ChannelStatus {
                id: "slack".into(),
                state: ChannelState::Running,
                detail: None,
            },
        ]);
        let alert = Alert {
            event: AlertEvent::Degraded,
            bot_id: "b1".into(),
            observed: Some(o),
            at: Utc::now(),
        };
        let p = AlertPayload::new(&alert, Some("Helper"), None);
        assert!(
            p.message.starts_with(
                "Bot Helper is running but degraded: channel telegram is failing (401: Unauthorized"
            ),
            "{}",
            p.message
        );
        assert!(!p.message.contains("slack"), "{}", p.message);
        assert!(!p.message.chars().any(char::is_control), "{:?}", p.message);
        assert!(p.message.chars().count() < 260, "{}", p.message);
        assert_eq!(p.health, Some(Health::Degraded));
    }

    #[test]
    fn the_payload_links_the_bots_page_under_the_public_url() {
        let alert = Alert {
            event: AlertEvent::Missing,
            bot_id: "b1".into(),
            observed: None,
            at: Utc::now(),
        };
        let p = AlertPayload::new(&alert, Some("Helper"), Some("https://bots.example.com/"));
        assert_eq!(p.url.as_deref(), Some("https://bots.example.com/bots/b1"));
        assert_eq!(p.bot_name, "Helper");
        assert!(p.message.contains("Helper"), "{}", p.message);
        let p = AlertPayload::new(&alert, None, None);
        assert_eq!(p.url, None);
        assert_eq!(p.bot_name, "b1");
        let json = serde_json::to_value(&p).unwrap();
        for key in [
            "event",
            "bot_id",
            "bot_name",
            "state",
            "health",
            "exit_code",
            "oom_killed",
            "restart_count",
            "at",
            "message",
            "url",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }
}
