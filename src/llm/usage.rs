//! Usage reports: what `GET /api/usage` and `GET /api/bots/{id}/usage` answer, and the CLI and
//! dashboard read. Built from the registry's daily rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::budget::{BotLimits, BudgetState};
use super::provider::{NANOS_PER_UNIT, ProviderName};
use crate::store::LlmUsageRow;

/// Sums over some usage rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageTotals {
    /// Requests answered.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in the price tables' unit (0 where no price is set).
    pub cost: f64,
}

impl UsageTotals {
    fn add(&mut self, r: &LlmUsageRow, nanos: &mut u64) {
        self.requests += r.requests;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        *nanos += r.cost_nanos;
        self.cost = *nanos as f64 / NANOS_PER_UNIT;
    }
}

/// One bot's, provider's and model's usage on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// The bot.
    pub bot: String,
    /// The provider.
    pub provider: String,
    /// The model the bot asked for.
    pub model: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Its counts.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// A bot's totals in a fleet report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BotTotals {
    /// The bot.
    pub bot: String,
    /// Its counts.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /api/usage`: the fleet's usage from a day on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// First day counted (UTC).
    pub since: NaiveDate,
    /// Everything.
    pub totals: UsageTotals,
    /// Per bot, most expensive first (then most tokens).
    pub bots: Vec<BotTotals>,
    /// Per bot, provider, model and day.
    pub rows: Vec<UsageRow>,
}

impl UsageReport {
    /// Sums `rows` (already filtered from `since`).
    pub fn from_rows(since: NaiveDate, rows: Vec<LlmUsageRow>) -> Self {
        let mut totals = UsageTotals::default();
        let mut nanos = 0;
        let mut per_bot: BTreeMap<String, (UsageTotals, u64)> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            totals.add(&r, &mut nanos);
            let (t, n) = per_bot.entry(r.bot_id.clone()).or_default();
            t.add(&r, n);
            let mut row_totals = UsageTotals::default();
            row_totals.add(&r, &mut 0);
            out.push(UsageRow {
                bot: r.bot_id,
                provider: r.provider,
                model: r.model,
                day: r.day,
                totals: row_totals,
            });
        }
        let mut bots: Vec<(BotTotals, u64)> = per_bot
            .into_iter()
            .map(|(bot, (totals, nanos))| (BotTotals { bot, totals }, nanos))
            .collect();
        bots.sort_by(|(a, an), (b, bn)| {
            bn.cmp(an).then_with(|| {
                (b.totals.input_tokens + b.totals.output_tokens)
                    .cmp(&(a.totals.input_tokens + a.totals.output_tokens))
            })
        });
        Self {
            since,
            totals,
            bots: bots.into_iter().map(|(b, _)| b).collect(),
            rows: out,
        }
    }
}

/// A bot's limits as the API shows them (`null`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitsView {
    /// `limits.llm_requests_per_minute`.
    pub llm_requests_per_minute: Option<u64>,
    /// `limits.llm_tokens_per_day`.
    pub llm_tokens_per_day: Option<u64>,
    /// `limits.llm_cost_per_month`.
    pub llm_cost_per_month: Option<f64>,
}

impl From<BotLimits> for LimitsView {
    fn from(l: BotLimits) -> Self {
        Self {
            llm_requests_per_minute: l.requests_per_minute,
            llm_tokens_per_day: l.tokens_per_day,
            llm_cost_per_month: l.cost_nanos_per_month.map(|n| n as f64 / NANOS_PER_UNIT),
        }
    }
}

/// `GET /api/bots/{id}/usage`: one bot's usage from a day on, its limits and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BotUsageReport {
    /// The bot.
    pub bot: String,
    /// First day counted (UTC).
    pub since: NaiveDate,
    /// Its totals.
    pub totals: UsageTotals,
    /// Per provider, model and day.
    pub rows: Vec<UsageRow>,
    /// Its LLM limits.
    pub limits: LimitsView,
    /// Its counters in the current windows.
    pub current: BudgetState,
    /// The providers it holds a live virtual key for.
    pub providers: Vec<ProviderName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bot: &str, model: &str, day: &str, t: (u64, u64), cost: u64) -> LlmUsageRow {
        LlmUsageRow {
            bot_id: bot.into(),
            provider: "p".into(),
            model: model.into(),
            day: day.into(),
            requests: 2,
            input_tokens: t.0,
            output_tokens: t.1,
            cost_nanos: cost,
        }
    }

    #[test]
    fn a_report_sums_per_bot_and_in_all_and_ranks_by_cost() {
        let since = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let r = UsageReport::from_rows(
            since,
            vec![
                row("a", "m", "2025-03-01", (10, 1), 1_500_000_000),
                row("b", "m", "2025-03-01", (100, 100), 3_000_000_000),
                row("a", "n", "2025-03-02", (5, 5), 1_000_000_000),
            ],
        );
        assert_eq!(r.totals.requests, 6);
        assert_eq!(r.totals.input_tokens, 115);
        assert!((r.totals.cost - 5.5).abs() < 1e-9);
        assert_eq!(r.bots[0].bot, "b");
        assert_eq!(r.bots[1].totals.input_tokens, 15);
        assert!((r.bots[1].totals.cost - 2.5).abs() < 1e-9);
        assert!((r.rows[0].totals.cost - 1.5).abs() < 1e-9);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["rows"][0]["input_tokens"], 10, "flattened");
        assert_eq!(json["since"], "2025-03-01");
    }
}
