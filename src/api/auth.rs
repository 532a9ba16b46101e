//! Bodies of login, logout and API tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::ApiTokenRow;

/// Longest API token name.
pub const MAX_TOKEN_NAME_LEN: usize = 64;
/// What `POST /api/tokens` accepts as a token name: no control character (Unicode `Cc`,
/// what Rust's `char::is_control` refuses) and at least one that is not a space.
pub const TOKEN_NAME_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
     [^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// Whether `name` (already trimmed) is acceptable as a token name: what
/// [`TOKEN_NAME_PATTERN`] and [`MAX_TOKEN_NAME_LEN`] state.
pub fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_TOKEN_NAME_LEN
        && !name.chars().any(char::is_control)
}

/// `POST /api/login`: the admin password.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Login)]
pub struct LoginRequest {
    /// The admin password (missing, `null` or empty is a validation error).
    #[schema(required = true, min_length = 1)]
    pub password: Option<String>,
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/tokens`: issued API tokens, never their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// The tokens.
    pub tokens: Vec<ApiTokenRow>,
}

/// `POST /api/tokens`: a label for a new API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label ("ci", "laptop"...): 1-64 printable characters (no control characters, not
    /// only spaces; surrounding spaces are trimmed).
    pub name: String,
}

/// A newly issued API token: the only time its value is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    /// Public id, used to revoke it.
    pub id: String,
    /// Its label.
    pub name: String,
    /// The token: shown this once only (only its hash is stored).
    pub token: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}
