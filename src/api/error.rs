//! The body of every error answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bots::FieldErrors;

/// An error answer: `{"error": "...", "code": "..."}`, with `fields` on validation failures.
/// Also the data of the event that ends a stream (`unauthorized`, `shutdown`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// Stable machine-readable code (`NOT_FOUND`, `VALIDATION_FAILED`, `BOT_BUSY`...).
    pub code: String,
    /// Problems by field path, on a validation failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
}

impl ErrorBody {
    /// An error with this message and code.
    pub fn new(error: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            code: code.into(),
            fields: None,
        }
    }
}
