//! The results: one row per figure, beside its floor and target, written as a markdown table
//! and as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use super::summary::Summary;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    /// No target: shown for context.
    Info,
}

/// One figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which item of the issue (1-6).
    pub section: u8,
    pub name: String,
    pub unit: &'static str,
    pub value: Summary,
    /// What the figure is compared with, measured in the same run.
    pub floor_name: Option<String>,
    pub floor: Option<Summary>,
    /// botmaker's cost ÷ the floor's (times, CPU, memory; for rates the inverse ratio of
    /// rates, so above 1 always means botmaker costs more).
    pub ratio: Option<f64>,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    /// A figure with no floor and no target.
    pub fn info(section: u8, name: impl Into<String>, unit: &'static str, value: Summary) -> Self {
        Self {
            section,
            name: name.into(),
            unit,
            value,
            floor_name: None,
            floor: None,
            ratio: None,
            target: String::new(),
            verdict: Verdict::Info,
        }
    }

    /// Beside `floor`; the ratio is of medians.
    pub fn vs(mut self, floor_name: impl Into<String>, floor: Summary) -> Self {
        self.ratio = Some(if self.unit == "bots/s" {
            floor.median / self.value.median
        } else {
            self.value.median / floor.median
        });
        self.floor_name = Some(floor_name.into());
        self.floor = Some(floor);
        self
    }

    /// With a target and whether it is met.
    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = target.into();
        self.verdict = if met { Verdict::Met } else { Verdict::Missed };
        self
    }

    /// With a target on the ratio: met when it is at most `max`.
    pub fn within(self, target: impl Into<String>, max: f64) -> Self {
        let met = self.ratio.is_some_and(|r| r <= max);
        self.target(target, met)
    }

    /// With a target text but no verdict (context only).
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.target = text.into();
        self
    }
}

fn num(v: f64, unit: &str) -> String {
    let digits = match unit {
        "ms" if v < 10.0 => 2,
        "ms" if v < 100.0 => 1,
        "%" | "% core" if v < 10.0 => 2,
        "%" | "% core" => 1,
        "MB" | "s" => 1,
        "bots/s" => 1,
        "ms/bot" | "µs/bot" => 1,
        _ => 0,
    };
    format!("{v:.digits$}")
}

/// `median unit (min–max)`, or the bare value for a single repetition.
pub fn cell(s: &Summary, unit: &str) -> String {
    if s.n == 1 {
        format!("{} {unit}", num(s.median, unit))
    } else {
        format!(
            "{} {unit} ({}–{})",
            num(s.median, unit),
            num(s.min, unit),
            num(s.max, unit)
        )
    }
}

/// The markdown table.
pub fn markdown(rows: &[Row], meta: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} on {} ({} cores), Docker Engine {} (API {}), mode `{}`, {} reps, concurrency {}.\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["host"].as_str().unwrap_or("?"),
        meta["cores"],
        meta["engine_version"].as_str().unwrap_or("?"),
        meta["api_version"].as_str().unwrap_or("?"),
        meta["mode"].as_str().unwrap_or("?"),
        meta["reps"],
        meta["concurrency"],
    );
    out.push_str(
        "| § | measurement | botmaker: median (min–max) | floor (same run) | floor: median (min–max) | ratio | target | verdict |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let floor = r
            .floor
            .as_ref()
            .map(|f| cell(f, r.unit))
            .unwrap_or_else(|| "—".into());
        let ratio = r
            .ratio
            .map(|x| {
                if x >= 0.1 {
                    format!("{x:.2}x")
                } else {
                    // Two significant digits however small (a cache against the engine).
                    let digits = (-x.log10()).ceil() as usize + 1;
                    format!("{x:.digits$}x")
                }
            })
            .unwrap_or_else(|| "—".into());
        let verdict = match r.verdict {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.section,
            r.name,
            cell(&r.value, r.unit),
            r.floor_name.as_deref().unwrap_or("—"),
            floor,
            ratio,
            if r.target.is_empty() {
                "—"
            } else {
                &r.target
            },
            verdict
        );
    }
    out.push_str(
        "\nratio = botmaker ÷ floor, of medians (for bots/s: floor rate ÷ botmaker rate), so \
         above 1 always means botmaker costs more.\n",
    );
    out
}

/// Writes `results.md` and `results.json` into `dir`.
pub fn write(dir: &Path, rows: &[Row], meta: &Value) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let md = markdown(rows, meta);
    let json = json!({ "meta": meta, "rows": rows });
    std::fs::write(dir.join("results.md"), &md).map_err(|e| format!("writing results.md: {e}"))?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json).expect("serializable") + "\n",
    )
    .map_err(|e| format!("writing results.json: {e}"))?;
    Ok(md)
}
