//! Per-bot budgets and rate limits: `limits.llm_requests_per_minute`,
//! `limits.llm_tokens_per_day` and `limits.llm_cost_per_month`.
//!
//! Each counts in a fixed UTC window that resets on schedule: the calendar minute, the day
//! (midnight UTC) and the month (the 1st, 00:00 UTC). A request is refused once a window's
//! count has reached its limit; tokens and cost are known only when a request ends, so
//! requests in flight when a budget is reached all finish (a budget can be overshot by what
//! they use, never by a request that starts after). A limit of 0 refuses every request: the
//! way to cut a bot off from its LLM without touching its keys.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::provider::NANOS_PER_UNIT;

/// A bot's limits. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BotLimits {
    /// Requests per UTC minute.
    pub requests_per_minute: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Cost per UTC month, in billionths of the price tables' unit.
    pub cost_nanos_per_month: Option<u64>,
}

impl BotLimits {
    /// From the stored limits (cost in whole units).
    pub fn new(
        requests_per_minute: Option<u64>,
        tokens_per_day: Option<u64>,
        cost_per_month: Option<f64>,
    ) -> Self {
        Self {
            requests_per_minute,
            tokens_per_day,
            cost_nanos_per_month: cost_per_month
                .filter(|c| c.is_finite() && *c >= 0.0)
                .map(|c| (c * NANOS_PER_UNIT).round().min(u64::MAX as f64) as u64),
        }
    }
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `limits.llm_requests_per_minute`.
    LlmRequestsPerMinute,
    /// `limits.llm_tokens_per_day`.
    LlmTokensPerDay,
    /// `limits.llm_cost_per_month`.
    LlmCostPerMonth,
}

impl Limit {
    /// The field's name under `limits`.
    pub fn field(self) -> &'static str {
        match self {
            Self::LlmRequestsPerMinute => "llm_requests_per_minute",
            Self::LlmTokensPerDay => "llm_tokens_per_day",
            Self::LlmCostPerMonth => "llm_cost_per_month",
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// The limit reached.
    pub limit: Limit,
    /// Seconds until its window resets.
    pub retry_after: u64,
    /// Whether this is the first time in the window the limit is met (the moment to tell
    /// subscribers, once).
    pub first_in_window: bool,
}

/// A budget crossed by what a request used: reported once per window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossed {
    /// The limit crossed.
    pub limit: Limit,
    /// What was used in the window (tokens, or cost in units).
    pub used: f64,
    /// The limit (tokens, or cost in units).
    pub allowed: f64,
}

/// The counters of one bot in their current windows.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Its limits (replaced when the bot's config changes).
    pub limits: BotLimits,
    minute: i64,
    requests: u64,
    day: NaiveDate,
    tokens: u64,
    month: (i32, u32),
    cost_nanos: u64,
    told_day: Option<NaiveDate>,
    told_month: Option<(i32, u32)>,
}

/// A bot's counters as the API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BudgetState {
    /// Requests in the current UTC minute.
    pub requests_this_minute: u64,
    /// Tokens today (UTC).
    pub tokens_today: u64,
    /// Cost this month (UTC), in the price tables' unit.
    pub cost_this_month: f64,
}

fn minute_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(60)
}

fn month_of(now: DateTime<Utc>) -> (i32, u32) {
    (now.year(), now.month())
}

/// Seconds from `now` to the end of its window for `limit` (at least 1).
fn until_reset(limit: Limit, now: DateTime<Utc>) -> u64 {
    let next = match limit {
        Limit::LlmRequestsPerMinute => {
            return (60 - u64::from(now.second())).max(1);
        }
        Limit::LlmTokensPerDay => (now.date_naive() + TimeDelta::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists"),
        Limit::LlmCostPerMonth => {
            let (y, m) = month_of(now);
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            NaiveDate::from_ymd_opt(y, m, 1)
                .expect("the 1st exists")
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
        }
    };
    let secs = (next.and_utc() - now).num_seconds();
    u64::try_from(secs).unwrap_or(0).max(1)
}

impl Budget {
    /// A budget at `now` starting from what the bot already used today and this month.
    pub fn new(limits: BotLimits, now: DateTime<Utc>, tokens_today: u64, cost_month: u64) -> Self {
        Self {
            limits,
            minute: minute_of(now),
            requests: 0,
            day: now.date_naive(),
            tokens: tokens_today,
            month: month_of(now),
            cost_nanos: cost_month,
            told_day: None,
            told_month: None,
        }
    }

    /// Starts new windows where `now` has left the old ones.
    fn roll(&mut self, now: DateTime<Utc>) {
        if minute_of(now) != self.minute {
            self.minute = minute_of(now);
            self.requests = 0;
        }
        if now.date_naive() != self.day {
            self.day = now.date_naive();
            self.tokens = 0;
        }
        if month_of(now) != self.month {
            self.month = month_of(now);
            self.cost_nanos = 0;
        }
    }

    /// Lets a request through (counting it against the minute), or says which limit refuses
    /// it. Budgets are checked before the rate, so a bot out of budget is told so.
    pub fn admit(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.roll(now);
        let refuse = |limit, first| Refusal {
            limit,
            retry_after: until_reset(limit, now),
            first_in_window: first,
        };
        if self.limits.tokens_per_day.is_some_and(|l| self.tokens >= l) {
            let first = self.told_day != Some(self.day);
            self.told_day = Some(self.day);
            return Err(refuse(Limit::LlmTokensPerDay, first));
        }
        if self
            .limits
            .cost_nanos_per_month
            .is_some_and(|l| self.cost_nanos >= l)
        {
            let first = self.told_month != Some(self.month);
            self.told_month = Some(self.month);
            return Err(refuse(Limit::LlmCostPerMonth, first));
        }
        if self
            .limits
            .requests_per_minute
            .is_some_and(|l| self.requests >= l)
        {
            return Err(refuse(Limit::LlmRequestsPerMinute, false));
        }
        self.requests += 1;
        Ok(())
    }

    /// Adds what a finished request used; returns the budgets it made the bot reach, each
    /// once per window.
    pub fn spend(&mut self, now: DateTime<Utc>, tokens: u64, cost_nanos: u64) -> Vec<Crossed> {
        self.roll(now);
        self.tokens = self.tokens.saturating_add(tokens);
        self.cost_nanos = self.cost_nanos.saturating_add(cost_nanos);
        let mut crossed = Vec::new();
        match self.limits.tokens_per_day {
            Some(l) if self.tokens >= l && self.told_day != Some(self.day) => {
                self.told_day = Some(self.day);
                crossed.push(Crossed {
                    limit: Limit::LlmTokensPerDay,
                    used: self.tokens as f64,
                    allowed: l as f64,
                });
            }
            _ => {}
        }
        match self.limits.cost_nanos_per_month {
            Some(l) if self.cost_nanos >= l && self.told_month != Some(self.month) => {
                self.told_month = Some(self.month);
                crossed.push(Crossed {
                    limit: Limit::LlmCostPerMonth,
                    used: self.cost_nanos as f64 / NANOS_PER_UNIT,
                    allowed: l as f64 / NANOS_PER_UNIT,
                });
            }
            _ => {}
        }
        crossed
    }

    /// The counters at `now`.
    pub fn state(&mut self, now: DateTime<Utc>) -> BudgetState {
        self.roll(now);
        BudgetState {
            requests_this_minute: self.requests,
            tokens_today: self.tokens,
            cost_this_month: self.cost_nanos as f64 / NANOS_PER_UNIT,
        }
    }
}

/// `YYYY-MM-DD` of `now` (UTC): the day usage is booked under.
pub fn day_of(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// `YYYY-MM-01` of `now` (UTC): the first day of the cost window.
pub fn month_start_of(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-01").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn the_rate_limit_counts_per_calendar_minute() {
        let t = at(2025, 3, 1, 10, 0, 50);
        let mut b = Budget::new(BotLimits::new(Some(2), None, None), t, 0, 0);
        assert!(b.admit(t).is_ok());
        assert!(b.admit(t).is_ok());
        let r = b.admit(t).unwrap_err();
        assert_eq!(r.limit, Limit::LlmRequestsPerMinute);
        assert_eq!(r.retry_after, 10);
        // The next minute starts afresh.
        assert!(b.admit(at(2025, 3, 1, 10, 1, 0)).is_ok());
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let t = at(2025, 3, 1, 10, 0, 0);
        let mut b = Budget::new(BotLimits::new(Some(0), None, None), t, 0, 0);
        assert!(b.admit(t).is_err());
    }

    #[test]
    fn token_budget_is_reached_once_and_resets_at_midnight_utc() {
        let t = at(2025, 3, 1, 23, 59, 0);
        let mut b = Budget::new(BotLimits::new(None, Some(100), None), t, 90, 0);
        assert!(b.admit(t).is_ok());
        let crossed = b.spend(t, 15, 0);
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].limit, Limit::LlmTokensPerDay);
        assert_eq!(crossed[0].used, 105.0);
        // Told once: the refusal that follows is not the first in its window.
        let r = b.admit(t).unwrap_err();
        assert_eq!(
            (r.limit, r.retry_after, r.first_in_window),
            (Limit::LlmTokensPerDay, 60, false)
        );
        assert!(b.spend(t, 5, 0).is_empty());
        let next_day = at(2025, 3, 2, 0, 0, 0);
        assert!(b.admit(next_day).is_ok());
        assert_eq!(b.state(next_day).tokens_today, 0);
    }

    #[test]
    fn a_budget_already_spent_at_start_refuses_and_tells_once() {
        let t = at(2025, 12, 31, 12, 0, 0);
        let mut b = Budget::new(BotLimits::new(None, None, Some(1.0)), t, 0, 1_000_000_000);
        let r = b.admit(t).unwrap_err();
        assert_eq!(r.limit, Limit::LlmCostPerMonth);
        assert!(r.first_in_window);
        assert_eq!(r.retry_after, 12 * 3600, "until 1 January 00:00 UTC");
        assert!(!b.admit(t).unwrap_err().first_in_window);
        assert!(b.admit(at(2026, 1, 1, 0, 0, 1)).is_ok());
    }

    #[test]
    fn cost_crossing_reports_units() {
        let t = at(2025, 3, 10, 0, 0, 0);
        let mut b = Budget::new(BotLimits::new(None, None, Some(0.01)), t, 0, 0);
        assert!(b.spend(t, 0, 5_000_000).is_empty());
        let c = b.spend(t, 0, 5_000_000);
        assert_eq!(c[0].limit, Limit::LlmCostPerMonth);
        assert!((c[0].used - 0.01).abs() < 1e-12 && (c[0].allowed - 0.01).abs() < 1e-12);
        assert_eq!(day_of(t), "2025-03-10");
        assert_eq!(month_start_of(t), "2025-03-01");
    }
}
