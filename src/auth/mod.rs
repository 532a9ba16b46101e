//! Authentication primitives: password hashing, bearer tokens and a failed-login limiter.
//!
//! This module owns the cryptographic decisions behind `botmaker serve`'s login, and only those:
//! which hash protects the admin password ([`hash_password`], argon2id), what a session or API
//! token looks like ([`Token`]) and how it is stored ([`hash_token`], SHA-256), and how fast a
//! client may guess ([`LoginLimiter`]) and how many guesses are checked at once
//! ([`VerifyQueue`]). It knows nothing of HTTP, cookies or the database: callers
//! store the strings these functions return and hand them back for verification. Keeping it pure
//! means every rule here is unit-tested without a server, and the HTTP layer cannot get the
//! cryptography subtly wrong because it never touches it.
//!
//! Nothing here logs or formats a password or a token: [`Token`]'s `Debug` prints `Token(***)`,
//! and [`AuthError`] never carries the secret it rejected.

mod password;
mod rate_limit;
mod token;
mod verify_queue;

pub use password::{
    MIN_PASSWORD_LEN, PASSWORD_ALPHABET, PASSWORD_GENERATED_LEN, generate_password, hash_password,
    hash_password_async, validate_password, verify_password, verify_password_async,
};
pub use rate_limit::{
    DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, LoginAttempt, LoginLimiter, MAX_TRACKED_CLIENTS,
    RetryAfter,
};
pub use token::{
    API_TOKEN_PREFIX, SESSION_TOKEN_PREFIX, Token, constant_time_eq, hash_token, new_id,
};
pub use verify_queue::{BUSY_RETRY_AFTER, DEFAULT_VERIFY_QUEUE, VerifyBusy, VerifyQueue};

/// A password that cannot be accepted or hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The password has fewer than `min` characters.
    #[error("password must be at least {min} characters long")]
    PasswordTooShort {
        /// The minimum length, in characters ([`MIN_PASSWORD_LEN`]).
        min: usize,
    },
    /// argon2 failed to hash. Not caused by the password's content; the cause is for the log,
    /// not for the client.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl AuthError {
    /// Stable machine-readable code, for API error bodies and tests.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::PasswordTooShort { .. } => "PASSWORD_TOO_SHORT",
            AuthError::Hash(_) => "HASH_FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            AuthError::PasswordTooShort { min: 12 }.code(),
            "PASSWORD_TOO_SHORT"
        );
        assert_eq!(AuthError::Hash("x".into()).code(), "HASH_FAILED");
    }

    #[test]
    fn too_short_message_names_the_minimum() {
        let msg = AuthError::PasswordTooShort { min: 12 }.to_string();
        assert_eq!(msg, "password must be at least 12 characters long");
    }
}
