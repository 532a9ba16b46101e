//! The admin password: the length rule, argon2id hashing and verification, and generation of a
//! strong first-run password.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHash, SaltString};
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
    let fail = |e: &dyn std::fmt::Display| AuthError::Hash(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let argon2 = hasher();
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    with_blocks(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(|e| fail(&e))?;
    let output = password_hash::Output::new(&out).map_err(|e| fail(&e))?;
    let params = password_hash::ParamsString::try_from(argon2.params()).map_err(|e| fail(&e))?;
    Ok(PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Runs `f` with a zeroed argon2 memory of `count` blocks (7 MiB with [`hasher`]'s
/// parameters), freed again when `f` returns.
///
/// Not kept for the next hash: one buffer kept per thread stayed resident for the life of the
/// process after the first login (heaptrack at 10,000 simulated bots: 7.3 MB of the server's
/// 50 MB of live heap, issue #16). A freed buffer is no longer stranded in the C allocator's
/// arena either: the trimmer of `malloc_tuning` hands free pages back every 2 s.
fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    let mut blocks = vec![argon2::Block::default(); count];
    f(&mut blocks)
}

/// Runs `job` on the one thread that does all argon2 work, and waits for it without blocking
/// the async runtime.
///
/// One thread, not the runtime's blocking pool: the C allocator keeps a freed argon2 buffer in
/// the memory arena of the thread that used it, so hashing on whichever pool thread is free
/// leaves one buffer per thread behind. It also runs bursts one at a time instead of all at
/// once; how many logins may wait here is bounded by [`super::VerifyQueue`].
pub(super) async fn on_hasher_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> T {
    type Job = Box<dyn FnOnce() + Send>;
    static HASHER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let sender = HASHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("argon2".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawning the argon2 thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(job());
    });
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .expect("the argon2 thread never exits");
    answer.await.expect("the argon2 thread answers every job")
}

/// [`hash_password`] off the async runtime.
pub async fn hash_password_async(password: String) -> Result<String, AuthError> {
    on_hasher_thread(move || hash_password(&password)).await
}

/// [`verify_password`] off the async runtime, unqueued: for start-up checks. Logins go
/// through a [`super::VerifyQueue`], which bounds how many wait.
pub async fn verify_password_async(candidate: String, phc: String) -> bool {
    on_hasher_thread(move || verify_password(&candidate, &phc)).await
}

/// argon2id with 7 MiB of memory and 5 passes, one of OWASP's equivalent recommended settings
/// (the default, 19 MiB x 2, is another). The smaller memory matters to a server that aims to
/// stay under 30 MB: a login holds a buffer of this size while it hashes. Hashes record their
/// parameters, so older hashes still verify.
fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
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
    match verify_in_blocks(candidate, &parsed) {
        Ok(ok) => ok,
        Err(e) => {
            // Parsed but unusable: an unknown algorithm or out-of-range parameters.
            tracing::error!(error = %e, "stored password hash cannot be verified; refusing the login");
            false
        }
    }
}

/// argon2's verification (same algorithm, version, parameters and salt as the stored hash,
/// outputs compared in constant time), computed in the memory of [`with_blocks`].
fn verify_in_blocks(candidate: &str, hash: &PasswordHash<'_>) -> password_hash::Result<bool> {
    let algorithm = argon2::Algorithm::try_from(hash.algorithm)?;
    let version = hash
        .version
        .map(argon2::Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = argon2::Params::try_from(hash)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(password_hash::Error::PhcStringField);
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    with_blocks(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(candidate.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(password_hash::Error::from)?;
    Ok(super::constant_time_eq(&out, expected.as_bytes()))
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
    fn hashes_interoperate_with_the_argon2_crates_own_api() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verifies with argon2's verifier...
        let ours = hash_password("interop password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"interop password", &parsed)
                .is_ok()
        );
        assert!(ours.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{ours}");
        // ...and a hash made by argon2's own API (default parameters) verifies with ours.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"older password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("older password", &theirs));
        assert!(!verify_password("older passworD", &theirs));
    }

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
