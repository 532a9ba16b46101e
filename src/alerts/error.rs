//! What can go wrong managing notification channels, with a stable code each; the HTTP
//! statuses are chosen in `crate::edge::error`.

use crate::field_errors::FieldErrors;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// A failed notification-channel operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The request is invalid; nothing was changed.
    #[error("invalid notification channel: {0}")]
    Validation(FieldErrors),
    /// No channel has that id.
    #[error("no notification channel {0}")]
    NotFound(String),
    /// Another channel has that name.
    #[error("a notification channel named {0:?} already exists")]
    AlreadyExists(String),
    /// The registry failed.
    #[error(transparent)]
    Store(StoreError),
    /// The secrets store (signing secrets, bot tokens) failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl AlertError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Store(e) => e.code(),
            Self::Secrets(e) => e.code(),
        }
    }
}

impl From<StoreError> for AlertError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { id } => Self::AlreadyExists(id),
            e => Self::Store(e),
        }
    }
}
