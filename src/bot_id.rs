//! `BotId`: the one identity every layer uses for a bot.
//!
//! A bot id is also the container's hostname, part of the container name and the name of the
//! bot's secrets directory, so it is validated once, here, as a DNS label. Everything downstream
//! takes a `BotId` and can therefore build names and paths from it without re-checking.

use std::fmt;
use std::str::FromStr;

/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_BOT_ID_LEN: usize = 63;
/// What [`BotId::new`] accepts, as a regular expression (for the OpenAPI document).
pub const BOT_ID_PATTERN: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";

/// A validated bot identifier: 1-63 of `a-z`, `0-9` and `-`, no leading or trailing hyphen.
///
/// Because it can only hold such a string, it is safe to use as a file name and inside Docker
/// names and label values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct BotId(String);

impl utoipa::PartialSchema for BotId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_BOT_ID_LEN))
            .pattern(Some(BOT_ID_PATTERN))
            .description(Some(
                "A DNS label: lowercase letters, digits and '-', not at either end; also the \
                 container's hostname",
            ))
            .into()
    }
}

impl utoipa::ToSchema for BotId {}

/// Why a string is not a valid [`BotId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotIdError {
    /// The id is the empty string.
    #[error("bot id must not be empty")]
    Empty,
    /// Longer than a DNS label allows.
    #[error("bot id must be at most {MAX_BOT_ID_LEN} characters (got {0})")]
    TooLong(usize),
    /// A character outside `a-z0-9-`.
    #[error("bot id may only contain lowercase letters a-z, digits and '-' (found {0:?})")]
    InvalidChar(char),
    /// Starts or ends with `-`.
    #[error("bot id must not start or end with '-'")]
    EdgeHyphen,
}

impl BotId {
    /// Validates `s` as a bot id.
    pub fn new(s: impl Into<String>) -> Result<Self, BotIdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(BotIdError::Empty);
        }
        // Count chars, not bytes, so the message reports what the user typed.
        let len = s.chars().count();
        if len > MAX_BOT_ID_LEN {
            return Err(BotIdError::TooLong(len));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(BotIdError::InvalidChar(c));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(BotIdError::EdgeHyphen);
        }
        Ok(Self(s))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for BotId {
    type Err = BotIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for BotId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for BotId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BotId::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "bot-1", "0", "a-b-c", &"x".repeat(63)] {
            assert_eq!(BotId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(BotId::new(""), Err(BotIdError::Empty));
        assert_eq!(BotId::new("x".repeat(64)), Err(BotIdError::TooLong(64)));
        assert_eq!(BotId::new("-a"), Err(BotIdError::EdgeHyphen));
        assert_eq!(BotId::new("a-"), Err(BotIdError::EdgeHyphen));
        assert_eq!(BotId::new("Bot"), Err(BotIdError::InvalidChar('B')));
        assert_eq!(BotId::new("a/b"), Err(BotIdError::InvalidChar('/')));
        assert_eq!(BotId::new(".."), Err(BotIdError::InvalidChar('.')));
        assert_eq!(BotId::new("a\0b"), Err(BotIdError::InvalidChar('\0')));
        assert_eq!(BotId::new("a_b"), Err(BotIdError::InvalidChar('_')));
        // Cyrillic 'а' (U+0430) looks like Latin 'a'.
        assert_eq!(
            BotId::new("\u{430}"),
            Err(BotIdError::InvalidChar('\u{430}'))
        );
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<BotId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<BotId>("\"../x\"").is_err());
    }
}
