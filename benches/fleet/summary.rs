//! Repetitions reduced to median, min and max.

use std::time::Duration;

use serde::Serialize;

/// Median, min and max of the repetitions of one measurement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    /// Summarises `values` (at least one).
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "a summary of nothing");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        }
    }

    /// Summarises durations in milliseconds.
    pub fn ms(values: &[Duration]) -> Self {
        Self::of(
            &values
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    }
}

/// Collects the samples of several named series.
#[derive(Debug, Default)]
pub struct Samples {
    series: std::collections::BTreeMap<String, Vec<f64>>,
}

impl Samples {
    /// Adds a sample to `name`.
    pub fn push(&mut self, name: impl Into<String>, value: f64) {
        self.series.entry(name.into()).or_default().push(value);
    }

    /// Adds a duration sample (ms) to `name`.
    pub fn push_ms(&mut self, name: impl Into<String>, d: Duration) {
        self.push(name, d.as_secs_f64() * 1e3);
    }

    /// The samples of `name`, in the order they were taken.
    pub fn values(&self, name: &str) -> &[f64] {
        self.series.get(name).map_or(&[], Vec::as_slice)
    }

    /// The summary of `name`.
    pub fn get(&self, name: &str) -> Summary {
        Summary::of(
            self.series
                .get(name)
                .unwrap_or_else(|| panic!("no samples of {name}")),
        )
    }
}
