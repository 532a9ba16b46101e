//! Problems found in a request, collected per field so a form (or a script) can show them all
//! at once: what every validating module (bots, the LLM providers) reports, and what the edge
//! turns into a 400 with `fields`. A leaf module, so any module may use it without depending on
//! another's domain.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Problems found in a request, by field path (`env.FOO`, `secrets.bad name`, `ports[0].host`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` if empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The problems, by field.
    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// One line naming every field and problem.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(f, ms)| format!("{f}: {}", ms.join("; ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}
