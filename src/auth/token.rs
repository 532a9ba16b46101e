//! Bearer tokens (sessions and API tokens): generation, the hash that is stored, and
//! constant-time comparison.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of a browser session token.
pub const SESSION_TOKEN_PREFIX: &str = "bms_";

/// Prefix of an API token.
pub const API_TOKEN_PREFIX: &str = "bmt_";

/// Random bytes in a token: 256 bits, beyond any brute force.
const TOKEN_BYTES: usize = 32;

/// Random bytes in an id from [`new_id`].
const ID_BYTES: usize = 16;

/// A bearer secret: a prefix naming its kind followed by 64 lowercase hex characters (32 random
/// bytes).
///
/// The prefix (such as [`SESSION_TOKEN_PREFIX`] or [`API_TOKEN_PREFIX`]) lets a human, or a
/// secret scanner, tell what a leaked string is; it adds no secrecy. The value is shown to the
/// client once; the server keeps only [`hash_token`] of it. `Debug` prints `Token(***)` and there
/// is no `Display`, so a token cannot end up in a log by accident: reading it takes an explicit
/// [`Token::as_str`].
pub struct Token(String);

impl Token {
    /// A fresh token: `prefix` followed by 64 hex characters from the OS-seeded CSPRNG
    /// (`rand::rng()`).
    pub fn generate(prefix: &str) -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let mut value = String::with_capacity(prefix.len() + 2 * TOKEN_BYTES);
        value.push_str(prefix);
        value.push_str(&hex::encode(bytes));
        Token(value)
    }

    /// The full token, prefix included: what the client sends back as its bearer credential.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The form of a token to store and look up: lowercase hex SHA-256 of the whole token string,
/// prefix included (64 characters).
///
/// A fast, unsalted hash is the right tool here, unlike for passwords. A token carries 256 bits
/// of randomness, so nobody can guess their way from a hash back to the token, however fast the
/// hash is; salting and argon2's cost exist to protect *low*-entropy secrets. A database thief
/// therefore gets hashes that are useless as credentials, and the server can find a session by
/// hashing the presented token and looking the result up by equality, one cheap hash per request.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `a` and `b` are equal, in time that depends on their length but not on where they
/// first differ, so comparing a secret leaks nothing through timing.
///
/// Lengths are not secret (a token's length is fixed by its format), so slices of different
/// lengths return `false` at once.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A fresh random identifier: 16 random bytes as 32 lowercase hex characters. For naming a
/// token or session in lists and revocation without revealing the token itself.
pub fn new_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_lower_hex(s: &str) -> bool {
        s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn token_is_prefix_plus_64_hex() {
        for prefix in [SESSION_TOKEN_PREFIX, API_TOKEN_PREFIX, ""] {
            let token = Token::generate(prefix);
            let rest = token.as_str().strip_prefix(prefix).unwrap();
            assert_eq!(rest.len(), 64);
            assert!(is_lower_hex(rest), "{rest}");
        }
    }

    #[test]
    fn tokens_differ() {
        let a = Token::generate(SESSION_TOKEN_PREFIX);
        let b = Token::generate(SESSION_TOKEN_PREFIX);
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn debug_redacts_the_token() {
        let token = Token::generate(API_TOKEN_PREFIX);
        let shown = format!("{token:?} {:?}", Some(&token));
        assert_eq!(shown, "Token(***) Some(Token(***))");
        assert!(!shown.contains(&token.as_str()[4..]));
    }

    #[test]
    fn hash_is_64_hex_and_stable() {
        let token = Token::generate(SESSION_TOKEN_PREFIX);
        let h = hash_token(token.as_str());
        assert_eq!(h.len(), 64);
        assert!(is_lower_hex(&h));
        assert_eq!(h, hash_token(token.as_str()));
        assert_ne!(
            h,
            hash_token(Token::generate(SESSION_TOKEN_PREFIX).as_str())
        );
    }

    #[test]
    fn hash_is_plain_sha256_hex() {
        // Known vector, so a stored hash stays verifiable across refactors.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_contents_and_length() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"Secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn ids_are_32_hex_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(is_lower_hex(&a));
        assert_ne!(a, b);
    }
}
