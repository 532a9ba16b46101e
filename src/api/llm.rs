//! The bodies of the LLM key proxy's control plane (`/api/providers`, `/api/usage`, a bot's
//! usage and virtual keys) that are not domain types of their own.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::bots::SecretRotation;
use crate::llm::ProviderView;

/// Where the proxy is, as `GET /api/providers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProxyInfo {
    /// Whether it runs.
    pub enabled: bool,
    /// The address it listens on.
    pub listen: Option<String>,
    /// Its root as bots see it (`http://botmaker-llm:7101`).
    pub url: Option<String>,
}

/// `GET /api/providers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    /// The proxy.
    pub proxy: ProxyInfo,
    /// Every provider, by name.
    pub providers: Vec<ProviderView>,
}

/// What a rotation of virtual keys did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// The providers whose key was replaced.
    pub rotated: Vec<String>,
    /// The bot's template's rotation policy (`in_place`, or `restart` for templates that read
    /// their secrets at start only); absent when no key was rotated.
    pub rotation: Option<SecretRotation>,
    /// Whether botmaker restarted the bot so the new keys are in effect.
    pub restarted: bool,
    /// When the new keys take effect, in one sentence.
    pub effect: String,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRevocation {
    /// How many keys stopped working.
    pub revoked: usize,
}

/// `?since=` of the usage routes: a UTC day `YYYY-MM-DD` (or an RFC 3339 time, whose UTC day
/// is taken); the first day of the current month when absent.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// The first day counted: a UTC day `YYYY-MM-DD` or an RFC 3339 time (its UTC day); the
    /// first day of the current month when absent.
    #[serde(default)]
    pub since: Option<String>,
}

/// `?force=` of `DELETE /api/providers/{name}`.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteProviderQuery {
    /// Also revoke the virtual keys of bots still using the provider (otherwise 409
    /// `PROVIDER_IN_USE`).
    #[serde(default)]
    pub force: bool,
}

impl SinceQuery {
    /// The day, or why `since` is not one.
    pub fn day(&self, today: NaiveDate) -> Result<NaiveDate, String> {
        let Some(raw) = self
            .since
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(today.with_day0(0).expect("the 1st exists"));
        };
        if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            return Ok(d);
        }
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&chrono::Utc).date_naive())
            .map_err(|_| format!("{raw:?} is not a day (YYYY-MM-DD) or an RFC 3339 time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_day_a_time_or_the_start_of_the_month() {
        let today = NaiveDate::from_ymd_opt(2025, 3, 17).unwrap();
        let q = |s: Option<&str>| {
            SinceQuery {
                since: s.map(String::from),
            }
            .day(today)
        };
        assert_eq!(q(None), Ok(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()));
        assert_eq!(
            q(Some("2025-01-02")),
            Ok(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap())
        );
        assert_eq!(
            q(Some("2025-01-02T23:30:00-02:00")),
            Ok(NaiveDate::from_ymd_opt(2025, 1, 3).unwrap())
        );
        assert!(q(Some("yesterday")).is_err());
    }
}
