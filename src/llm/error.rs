//! `LlmError`: what the LLM control plane (providers, virtual keys, usage) can fail with, each
//! with a stable code. HTTP statuses for them are decided in `crate::http::error`, like every
//! other error; the data plane answers bots in their provider's own format instead (see
//! [`super::wire`]).

use crate::field_errors::FieldErrors;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// A failed providers, keys or usage operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The request is invalid, field by field.
    #[error("invalid request: {0}")]
    Validation(FieldErrors),
    /// No provider of that name.
    #[error("no LLM provider named '{0}'")]
    ProviderNotFound(String),
    /// The provider still has bots holding live keys for it.
    #[error(
        "LLM provider '{name}' is used by {}; delete or change those bots first, or delete \
         with ?force=true, which revokes their keys (their LLM calls then fail with 401)",
        bots.join(", ")
    )]
    ProviderInUse {
        /// The provider.
        name: String,
        /// Bots holding live keys for it.
        bots: Vec<String>,
    },
    /// No such bot.
    #[error("no bot '{0}'")]
    BotNotFound(String),
    /// The proxy is not running, so no bot can be routed through it.
    #[error(
        "the LLM proxy is off (--llm-proxy-listen off, or no address bots can reach was found \
         at start-up; see the server log)"
    )]
    ProxyOff,
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provider key file could not be read or written.
    #[error("provider key store: {0}")]
    Secrets(#[from] SecretsError),
}

impl LlmError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::ProviderNotFound(_) | Self::BotNotFound(_) => "NOT_FOUND",
            Self::ProviderInUse { .. } => "PROVIDER_IN_USE",
            Self::ProxyOff => "LLM_PROXY_OFF",
            Self::Store(e) => e.code(),
            Self::Secrets(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(LlmError::ProviderNotFound("x".into()).code(), "NOT_FOUND");
        assert_eq!(LlmError::ProxyOff.code(), "LLM_PROXY_OFF");
        let e = LlmError::ProviderInUse {
            name: "openai".into(),
            bots: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.code(), "PROVIDER_IN_USE");
        assert!(e.to_string().contains("a, b"), "{e}");
    }
}
