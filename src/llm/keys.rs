//! Virtual keys: what a bot holds instead of a provider's real key.
//!
//! A key is 32 random bytes, hex, behind a recognisable prefix (so secret scanners and humans
//! can tell it from a provider key). botmaker keeps only its SHA-256: the key itself exists in
//! the bot's secrets directory and nowhere else. Every live key is held in memory by hash, so
//! the proxy resolves a request's bot and provider without touching the database; the index
//! changes only through [`KeyIndex`]'s methods, called as keys are minted and revoked.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::provider::ProviderName;
use crate::BotId;
use crate::secrets::SecretValue;

/// Every virtual key starts with this.
pub const KEY_PREFIX: &str = "bmk-llm-";

/// A fresh virtual key.
pub fn mint() -> SecretValue {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretValue::from(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

/// The stored form of a key: SHA-256, hex. A key with leading or trailing whitespace (a file
/// written by hand with a newline) hashes as the key without it.
pub fn hash(key: &[u8]) -> String {
    hex::encode(Sha256::digest(key.trim_ascii()))
}

/// Whom a live key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The bot holding it.
    pub bot: BotId,
    /// The provider it opens.
    pub provider: ProviderName,
}

/// Live keys by hash.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_hash: RwLock<HashMap<String, KeyOwner>>,
}

impl KeyIndex {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, KeyOwner>> {
        self.by_hash.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, KeyOwner>> {
        self.by_hash.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole index (at start-up, and to resynchronize with the registry).
    pub fn replace(&self, keys: impl IntoIterator<Item = (String, KeyOwner)>) {
        *self.write() = keys.into_iter().collect();
    }

    /// Adds a minted key.
    pub fn insert(&self, hash: String, owner: KeyOwner) {
        self.write().insert(hash, owner);
    }

    /// Forgets revoked keys.
    pub fn remove(&self, hashes: &[String]) {
        let mut map = self.write();
        for h in hashes {
            map.remove(h);
        }
    }

    /// Forgets every key of a bot (deleted).
    pub fn remove_bot(&self, bot: &BotId) {
        self.write().retain(|_, o| &o.bot != bot);
    }

    /// Whom the presented key belongs to, if it is live.
    pub fn owner(&self, presented: &[u8]) -> Option<KeyOwner> {
        self.read().get(&hash(presented)).cloned()
    }

    /// Whether `hash` is a live key of `bot` for `provider`.
    pub fn is_live_for(&self, hash: &str, bot: &BotId, provider: &ProviderName) -> bool {
        self.read()
            .get(hash)
            .is_some_and(|o| &o.bot == bot && &o.provider == provider)
    }

    /// The bots holding a live key for `provider`, sorted.
    pub fn bots_of(&self, provider: &ProviderName) -> Vec<BotId> {
        let mut bots: Vec<BotId> = self
            .read()
            .values()
            .filter(|o| &o.provider == provider)
            .map(|o| o.bot.clone())
            .collect();
        bots.sort();
        bots.dedup();
        bots
    }

    /// The providers `bot` holds a live key for, sorted.
    pub fn providers_of(&self, bot: &BotId) -> Vec<ProviderName> {
        let mut providers: Vec<ProviderName> = self
            .read()
            .values()
            .filter(|o| &o.bot == bot)
            .map(|o| o.provider.clone())
            .collect();
        providers.sort();
        providers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(bot: &str, provider: &str) -> KeyOwner {
        KeyOwner {
            bot: BotId::new(bot).unwrap(),
            provider: ProviderName::new(provider).unwrap(),
        }
    }

    #[test]
    fn keys_are_fresh_prefixed_and_hash_without_surrounding_whitespace() {
        let (a, b) = (mint(), mint());
        let a = a.expose_str().unwrap();
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_ne!(a, b.expose_str().unwrap());
        assert_eq!(hash(a.as_bytes()), hash(format!("{a}\n").as_bytes()));
        assert_ne!(hash(a.as_bytes()), hash(b.expose()));
    }

    #[test]
    fn the_index_answers_only_for_live_keys() {
        let index = KeyIndex::default();
        let key = mint();
        let h = hash(key.expose());
        index.insert(h.clone(), owner("a", "openai"));
        index.insert("other".into(), owner("b", "openai"));
        assert_eq!(index.owner(key.expose()), Some(owner("a", "openai")));
        assert!(index.owner(b"bmk-llm-guess").is_none());
        let (a, openai) = (
            BotId::new("a").unwrap(),
            ProviderName::new("openai").unwrap(),
        );
        assert!(index.is_live_for(&h, &a, &openai));
        assert!(!index.is_live_for(&h, &a, &ProviderName::new("claude").unwrap()));
        assert_eq!(index.bots_of(&openai).len(), 2);
        index.remove(std::slice::from_ref(&h));
        assert!(index.owner(key.expose()).is_none());
        index.remove_bot(&BotId::new("b").unwrap());
        assert!(index.bots_of(&openai).is_empty());
    }
}
