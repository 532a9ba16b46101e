//! The admin password: the length rule, argon2id hashing and verification, and generation of a
//! strong first-run password.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

use super::AuthError;

/// Shortest accepted password, in characters (Unicode scalar values, not bytes).
pub const MIN_PASSWORD_LEN: usize = 12;

/// Length of a password made by [`generate_password`], in characters.
pub const PASSWORD_GENERATED_LEN: usize = 24;

/// Characters [`generate_password`] draws from: ASCII letters and digits without the look-alikes
/// `0`, `O`, `1`, `l` and `I`, so a password read off a terminal can be typed back without
/// guessing. 57 symbols, so 24 of them carry about 140 bits of entropy.
pub const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Checks the password rule: at least [`MIN_PASSWORD_LEN`] characters.
///
/// Length is counted in `char`s, so a passphrase in any script gets the same rule as an ASCII
/// one (`"ééééééééééé"` is 11 characters, though 22 bytes). Call this where a password is *set*;
/// verification never needs it.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::PasswordTooShort {
            min: MIN_PASSWORD_LEN,
        });
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's default parameters) and a fresh random salt,
/// returning the PHC string (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`) to store.
///
/// The default parameters cost tens of milliseconds and ~19 MiB per call on purpose: that is what
/// makes a stolen hash expensive to brute-force. The PHC string records the parameters, so
/// [`verify_password`] keeps accepting old hashes if the defaults change. This does not apply
/// [`validate_password`]; do that first when the password comes from a user.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `candidate` is the password behind `phc`, a string made by [`hash_password`].
///
/// The comparison is argon2's own verifier, which recomputes the hash with the stored algorithm,
/// parameters and salt and compares outputs in constant time. A stored hash that does not parse
/// is a bug or corruption on our side, not a wrong password: it is logged at error level (without
/// the hash) and the answer is `false`, so nobody gets in on a broken record.
pub fn verify_password(candidate: &str, phc: &str) -> bool {
    let parsed = match PasswordHash::new(phc) {
        Ok(parsed) if parsed.hash.is_some() && parsed.salt.is_some() => parsed,
        Ok(_) => {
            tracing::error!("stored password hash has no salt or output; refusing the login");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is malformed; refusing the login");
            return false;
        }
    };
    match Argon2::default().verify_password(candidate.as_bytes(), &parsed) {
        Ok(()) => true,
        Err(password_hash::Error::Password) => false,
        Err(e) => {
            // Parsed but unusable: an unknown algorithm or out-of-range parameters.
            tracing::error!(error = %e, "stored password hash cannot be verified; refusing the login");
            false
        }
    }
}

/// A strong random password for a first run: [`PASSWORD_GENERATED_LEN`] characters drawn
/// uniformly from [`PASSWORD_ALPHABET`].
///
/// Uses `rand::rng()`, a ChaCha-based CSPRNG seeded from the operating system and reseeded
/// periodically; `random_range` samples without modulo bias.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    (0..PASSWORD_GENERATED_LEN)
        .map(|_| char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_chars_is_too_short() {
        let err = validate_password("abcdefghijk").unwrap_err();
        assert_eq!(err, AuthError::PasswordTooShort { min: 12 });
        assert_eq!(err.code(), "PASSWORD_TOO_SHORT");
    }

    #[test]
    fn twelve_chars_is_enough() {
        assert!(validate_password("abcdefghijkl").is_ok());
    }

    #[test]
    fn empty_password_is_too_short() {
        assert!(validate_password("").is_err());
    }

    #[test]
    fn length_is_counted_in_chars_not_bytes() {
        // 11 two-byte chars: 22 bytes, still too short.
        let eleven = "é".repeat(11);
        assert_eq!(eleven.len(), 22);
        assert!(validate_password(&eleven).is_err());
        // 12 four-byte chars: enough.
        assert!(validate_password(&"🔑".repeat(12)).is_ok());
    }

    #[test]
    fn hash_is_argon2id_phc_and_round_trips() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn same_password_hashes_differently_because_of_the_salt() {
        let a = hash_password("same password here").unwrap();
        let b = hash_password("same password here").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_stored_hash_is_false() {
        for bad in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$unknown$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(!verify_password("anything at all", bad), "{bad:?}");
        }
    }

    #[test]
    fn generated_passwords_are_long_from_the_alphabet_and_differ() {
        let a = generate_password();
        let b = generate_password();
        for p in [&a, &b] {
            assert_eq!(p.chars().count(), PASSWORD_GENERATED_LEN);
            assert!(p.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)), "{p}");
            assert!(validate_password(p).is_ok());
        }
        assert_ne!(a, b);
    }

    #[test]
    fn alphabet_has_no_look_alikes_or_duplicates() {
        for c in *b"0O1lI" {
            assert!(!PASSWORD_ALPHABET.contains(&c), "{}", char::from(c));
        }
        let mut sorted = PASSWORD_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PASSWORD_ALPHABET.len());
        assert_eq!(PASSWORD_ALPHABET.len(), 57);
    }
}
