//! [`LlmService`]: providers and their real keys, the bots' virtual keys, budgets and usage,
//! held in memory for the proxy's hot path and written through to the registry.
//!
//! What the proxy needs per request (whose key is this, which provider, may it go) is answered
//! from memory: the live keys and providers are loaded at start-up and changed only by this
//! service, budgets are loaded per bot on its first request. Usage is added up in memory and
//! written to the registry every [`FLUSH_INTERVAL`] (and before every usage read, and at
//! shutdown), so a busy fleet costs the registry one small transaction every few seconds.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::budget::{BotLimits, Budget, Limit, Refusal, day_of, month_start_of};
use super::error::LlmError;
use super::keys::{self, KeyIndex, KeyOwner};
use super::listen::ProxyEndpoint;
use super::meter::Tally;
use super::provider::{
    PriceTable, ProviderKind, ProviderName, ProviderSpec, ProviderView, PutProvider, cost_nanos,
    price_of,
};
use super::usage::{BotUsageReport, UsageReport};
use crate::BotId;
use crate::field_errors::FieldErrors;
use crate::secrets::{SecretName, SecretValue, SecretsStore};
use crate::store::{LlmProviderRow, LlmUsageRow, Store};

/// Longest silence within a provider's response body (the upstream client's read timeout).
pub const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often usage added up in memory is written to the registry.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// How often the in-memory key index is checked against the registry (a bot deleted by a path
/// that does not tell this service takes its keys with it in the registry; this bounds how long
/// the index may still know them).
pub const KEY_RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// The file, in a provider's directory of the key store, holding its real API key.
const API_KEY_FILE: &str = "API_KEY";

/// A provider as the proxy uses it: its spec and its real key.
pub struct Provider {
    /// What it is.
    pub spec: ProviderSpec,
    /// Its real API key, if it has one.
    pub(crate) api_key: Option<SecretValue>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("spec", &self.spec)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Something subscribers (alerts, the event stream) want to know.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LlmEvent {
    /// A bot reached one of its LLM budgets: its requests are refused until the window resets.
    /// Sent once per bot, limit and window.
    BudgetExceeded {
        /// The bot whose requests are refused.
        bot: BotId,
        /// Which limit.
        limit: Limit,
        /// What it used in the window (tokens, or cost in units).
        used: f64,
        /// The limit.
        allowed: f64,
        /// When the refused request came (the window's reset follows from it).
        at: DateTime<Utc>,
    },
}

/// Counters since start-up, served at `GET /metrics` (see `crate::metrics`) in Prometheus' text
/// format, one counter family per map, labels from the key:
///
/// - `botmaker_llm_requests_total{bot,provider,status}` ← [`LlmMetrics::requests`]
/// - `botmaker_llm_tokens_total{bot,provider,direction="input"|"output"}` ← [`LlmMetrics::tokens`]
/// - `botmaker_llm_cost_total{bot,provider}` ← [`LlmMetrics::cost_nanos`] / 1e9
/// - `botmaker_llm_refused_total{bot,reason}` ← [`LlmMetrics::refused`]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LlmMetrics {
    /// Forwarded requests by bot, provider and upstream status.
    pub requests: BTreeMap<(String, String, u16), u64>,
    /// Tokens by bot, provider and direction.
    pub tokens: BTreeMap<(String, String, &'static str), u64>,
    /// Cost in billionths by bot and provider.
    pub cost_nanos: BTreeMap<(String, String), u64>,
    /// Requests the proxy refused, by bot (`-` when unknown) and reason.
    pub refused: BTreeMap<(String, &'static str), u64>,
}

/// A bot's budget and whether its limits are current.
struct Slot {
    budget: Budget,
    limits_current: bool,
}

/// Usage rows not yet written, by (bot, provider, model, day).
type Pending = HashMap<(String, String, String, String), LlmUsageRow>;

/// The LLM proxy's state. Cheap to clone.
#[derive(Clone)]
pub struct LlmService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    key_store: SecretsStore,
    endpoint: Option<ProxyEndpoint>,
    providers: RwLock<HashMap<ProviderName, Arc<Provider>>>,
    keys: KeyIndex,
    budgets: Mutex<HashMap<BotId, Slot>>,
    pending: Mutex<Pending>,
    metrics: Mutex<LlmMetrics>,
    events: broadcast::Sender<LlmEvent>,
    /// Serializes usage writes, so rows taken from `pending` reach the registry in order.
    flushing: tokio::sync::Mutex<()>,
    client: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn api_key_name() -> SecretName {
    SecretName::new(API_KEY_FILE).expect("a valid secret name")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LlmError> + Send + 'static,
) -> Result<T, LlmError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

impl LlmService {
    /// Every provider's real API key, by the directory it is kept in (for full backups: the
    /// keys live in files beside the registry, not in it).
    pub async fn provider_keys(&self) -> Result<Vec<(BotId, SecretName, SecretValue)>, LlmError> {
        let dirs: Vec<BotId> = {
            let providers = self
                .inner
                .providers
                .read()
                .unwrap_or_else(|e| e.into_inner());
            providers.keys().map(ProviderName::store_key).collect()
        };
        let ks = self.inner.key_store.clone();
        blocking(move || {
            let mut keys = Vec::new();
            for dir in dirs {
                if let Some(v) = ks.get(&dir, &api_key_name())? {
                    keys.push((dir, api_key_name(), v));
                }
            }
            Ok(keys)
        })
        .await
    }

    /// Loads providers (with their keys from `key_root`) and live virtual keys. `endpoint` is
    /// where the running proxy is reached, `None` when it is off.
    pub async fn open(
        store: Store,
        key_root: PathBuf,
        endpoint: Option<ProxyEndpoint>,
    ) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(UPSTREAM_IDLE_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            // A redirect would take a bot's request (and the real key) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| LlmError::Store(crate::store::StoreError::corrupt(e.to_string())))?;
        let service = Self {
            inner: Arc::new(Inner {
                store,
                key_store: SecretsStore::new(key_root),
                endpoint,
                providers: RwLock::default(),
                keys: KeyIndex::default(),
                budgets: Mutex::default(),
                pending: Mutex::default(),
                metrics: Mutex::default(),
                events: broadcast::channel(256).0,
                flushing: tokio::sync::Mutex::new(()),
                client,
            }),
        };
        service.load_providers().await?;
        service.reload_keys().await?;
        Ok(service)
    }

    /// Where bots reach the proxy, if it runs.
    pub fn endpoint(&self) -> Option<&ProxyEndpoint> {
        self.inner.endpoint.as_ref()
    }

    /// Subscribes to [`LlmEvent`]s.
    pub fn subscribe(&self) -> broadcast::Receiver<LlmEvent> {
        self.inner.events.subscribe()
    }

    /// The HTTP client requests go upstream with.
    pub(super) fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    /// Counters since start-up (see [`LlmMetrics`]).
    pub fn metrics(&self) -> LlmMetrics {
        lock(&self.inner.metrics).clone()
    }

    // ---------------------------------------------------------------- providers

    async fn load_providers(&self) -> Result<(), LlmError> {
        let rows = self.inner.store.llm_providers().await?;
        let mut map = HashMap::new();
        for row in rows {
            let provider = self.provider_from_row(row).await?;
            map.insert(provider.spec.name.clone(), Arc::new(provider));
        }
        *self
            .inner
            .providers
            .write()
            .unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    async fn provider_from_row(&self, row: LlmProviderRow) -> Result<Provider, LlmError> {
        let corrupt = |what: String| LlmError::Store(crate::store::StoreError::corrupt(what));
        let name = ProviderName::new(&row.name)
            .map_err(|e| corrupt(format!("llm_providers.name {:?}: {e}", row.name)))?;
        let kind = ProviderKind::parse(&row.kind)
            .ok_or_else(|| corrupt(format!("llm_providers.kind of '{name}'")))?;
        let prices: PriceTable = serde_json::from_str(&row.prices)
            .map_err(|e| corrupt(format!("llm_providers.prices of '{name}': {e}")))?;
        let api_key = if row.has_api_key {
            let (ks, key) = (self.inner.key_store.clone(), name.store_key());
            let value = blocking(move || Ok(ks.get(&key, &api_key_name())?)).await?;
            if value.is_none() {
                tracing::warn!(provider = %name, "the API key file of this LLM provider is missing; requests go upstream without a key");
            }
            value
        } else {
            None
        };
        Ok(Provider {
            spec: ProviderSpec {
                name,
                kind,
                base_url: row.base_url,
                prices,
            },
            api_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The provider named `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<Arc<Provider>> {
        let name = ProviderName::new(name).ok()?;
        self.inner
            .providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()
    }

    /// The kind of the provider named `name`, if configured.
    pub fn provider_kind(&self, name: &str) -> Option<ProviderKind> {
        self.provider(name).map(|p| p.spec.kind)
    }

    fn view(&self, p: &Provider) -> ProviderView {
        ProviderView {
            name: p.spec.name.clone(),
            kind: p.spec.kind,
            base_url: p.spec.base_url.clone(),
            has_api_key: p.api_key.is_some(),
            prices: p.spec.prices.clone(),
            bots: self
                .inner
                .keys
                .bots_of(&p.spec.name)
                .iter()
                .map(ToString::to_string)
                .collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }

    /// Every provider, by name.
    pub fn list_providers(&self) -> Vec<ProviderView> {
        let map = self
            .inner
            .providers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut views: Vec<ProviderView> = map.values().map(|p| self.view(p)).collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// Creates a provider, or replaces the one of that name (a new `api_key` rotates the real
    /// key at once: the next request goes upstream with it; bots change nothing). Returns the
    /// provider and whether it was created.
    pub async fn put_provider(&self, req: PutProvider) -> Result<(ProviderView, bool), LlmError> {
        let mut errors = FieldErrors::default();
        let spec = req.validate(&mut errors);
        let existing = ProviderName::new(&req.name)
            .ok()
            .and_then(|n| self.provider(n.as_str()));
        if let Some(spec) = &spec {
            let has_key =
                req.api_key.is_some() || existing.as_ref().is_some_and(|e| e.api_key.is_some());
            if !has_key && !spec.kind.key_optional() {
                errors.add(
                    "api_key",
                    format!("a {} provider needs its API key", spec.kind),
                );
            }
        }
        errors.into_result().map_err(LlmError::Validation)?;
        let spec = spec.expect("validated");
        let now = Utc::now();

        // The key file first: if the registry then fails, the previous key is put back.
        let new_key = req.api_key.map(SecretValue::from);
        let (ks, key) = (self.inner.key_store.clone(), spec.name.store_key());
        let previous = match &new_key {
            Some(value) => {
                let value = SecretValue::new(value.expose().to_vec());
                let (ks, key) = (ks.clone(), key.clone());
                Some(
                    blocking(move || {
                        let prev = ks.get(&key, &api_key_name())?;
                        ks.set(&key, &api_key_name(), &value)?;
                        Ok(prev)
                    })
                    .await?,
                )
            }
            None => None,
        };
        let api_key = match new_key {
            Some(v) => Some(v),
            None => existing
                .as_ref()
                .and_then(|e| e.api_key.as_ref())
                .map(|v| SecretValue::new(v.expose().to_vec())),
        };
        let row = LlmProviderRow {
            name: spec.name.to_string(),
            kind: spec.kind.as_str().into(),
            base_url: spec.base_url.clone(),
            has_api_key: api_key.is_some(),
            prices: serde_json::to_string(&spec.prices).expect("prices serialize"),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        let created = match self.inner.store.put_llm_provider(&row).await {
            Ok(created) => created,
            Err(e) => {
                if let Some(prev) = previous {
                    let _ = blocking(move || {
                        match prev {
                            Some(v) => ks.set(&key, &api_key_name(), &v)?,
                            None => drop(ks.delete(&key, &api_key_name())?),
                        }
                        Ok(())
                    })
                    .await;
                }
                return Err(e.into());
            }
        };
        let provider = Provider {
            spec,
            api_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        let view = self.view(&provider);
        self.inner
            .providers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider.spec.name.clone(), Arc::new(provider));
        tracing::debug!(provider = %view.name, kind = %view.kind, created, "LLM provider saved");
        Ok((view, created))
    }

    /// Deletes a provider: its real key, and (with `force`, or when no bot uses it) every
    /// virtual key for it.
    pub async fn delete_provider(&self, name: &str, force: bool) -> Result<(), LlmError> {
        let provider = self
            .provider(name)
            .ok_or_else(|| LlmError::ProviderNotFound(name.to_string()))?;
        let name = provider.spec.name.clone();
        let bots = self.inner.keys.bots_of(&name);
        if !bots.is_empty() && !force {
            return Err(LlmError::ProviderInUse {
                name: name.to_string(),
                bots: bots.iter().map(ToString::to_string).collect(),
            });
        }
        let revoked = self
            .inner
            .store
            .delete_llm_provider(name.as_str(), Utc::now())
            .await?
            .ok_or_else(|| LlmError::ProviderNotFound(name.to_string()))?;
        self.inner.keys.remove(&revoked);
        self.inner
            .providers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        let (ks, key) = (self.inner.key_store.clone(), name.store_key());
        blocking(move || Ok(ks.delete_all(&key).map(drop)?)).await?;
        tracing::debug!(provider = %name, revoked_keys = revoked.len(), "LLM provider deleted");
        Ok(())
    }

    // ---------------------------------------------------------------- virtual keys

    /// Reloads the live keys from the registry.
    pub async fn reload_keys(&self) -> Result<(), LlmError> {
        let rows = self.inner.store.llm_live_keys().await?;
        self.inner.keys.replace(rows.into_iter().filter_map(|r| {
            let provider = ProviderName::new(&r.provider).ok()?;
            Some((
                r.key_hash,
                KeyOwner {
                    bot: r.bot_id,
                    provider,
                },
            ))
        }));
        Ok(())
    }

    /// Makes sure `bot` has a live key for `provider`: `None` if `current` (the value in its
    /// secret file) is one, else a freshly minted key to write there (the bot's previous keys
    /// for the provider are revoked).
    pub async fn ensure_key(
        &self,
        bot: &BotId,
        provider: &str,
        current: Option<&SecretValue>,
    ) -> Result<Option<SecretValue>, LlmError> {
        let name = ProviderName::new(provider)
            .map_err(|_| LlmError::ProviderNotFound(provider.to_string()))?;
        if current.is_some_and(|v| {
            self.inner
                .keys
                .is_live_for(&keys::hash(v.expose()), bot, &name)
        }) {
            return Ok(None);
        }
        self.mint_key(bot, provider).await.map(Some)
    }

    /// Mints a new key for `bot` and `provider`, revoking its previous ones for that provider.
    pub async fn mint_key(&self, bot: &BotId, provider: &str) -> Result<SecretValue, LlmError> {
        let provider = self
            .provider(provider)
            .ok_or_else(|| LlmError::ProviderNotFound(provider.to_string()))?;
        let name = provider.spec.name.clone();
        let key = keys::mint();
        let hash = keys::hash(key.expose());
        let revoked = self
            .inner
            .store
            .insert_llm_key(&hash, bot, name.as_str(), Utc::now())
            .await?
            .ok_or_else(|| LlmError::BotNotFound(bot.to_string()))?;
        self.inner.keys.remove(&revoked);
        self.inner.keys.insert(
            hash,
            KeyOwner {
                bot: bot.clone(),
                provider: name.clone(),
            },
        );
        tracing::info!(bot = %bot, provider = %name, revoked = revoked.len(), "virtual LLM key minted");
        Ok(key)
    }

    /// Revokes the bot's keys (for one provider, or all); returns how many. Its requests are
    /// refused (401) from now on, until a new key is minted (a rotation, or the next apply).
    pub async fn revoke_keys(
        &self,
        bot: &BotId,
        provider: Option<&str>,
    ) -> Result<usize, LlmError> {
        let revoked = self
            .inner
            .store
            .revoke_llm_keys(bot, provider, Utc::now())
            .await?;
        self.inner.keys.remove(&revoked);
        if !revoked.is_empty() {
            tracing::info!(bot = %bot, provider = provider.unwrap_or("*"), revoked = revoked.len(), "virtual LLM keys revoked");
        }
        Ok(revoked.len())
    }

    /// The providers `bot` holds a live key for.
    pub fn providers_of(&self, bot: &BotId) -> Vec<ProviderName> {
        self.inner.keys.providers_of(bot)
    }

    /// Whom a presented key belongs to, with its provider, if both are live.
    pub(super) fn authorize(&self, presented: &[u8]) -> Option<(KeyOwner, Arc<Provider>)> {
        let owner = self.inner.keys.owner(presented)?;
        let provider = self.provider(owner.provider.as_str())?;
        Some((owner, provider))
    }

    // ---------------------------------------------------------------- bots' lifecycles

    /// The bot's configuration changed: its limits are read again on its next request.
    pub fn bot_changed(&self, bot: &str) {
        let Ok(bot) = BotId::new(bot) else { return };
        if let Some(slot) = lock(&self.inner.budgets).get_mut(&bot) {
            slot.limits_current = false;
        }
    }

    /// The bot is gone: its keys (already gone from the registry) and counters go too. Its
    /// usage stays in the registry.
    pub fn bot_deleted(&self, bot: &str) {
        let Ok(bot) = BotId::new(bot) else { return };
        self.inner.keys.remove_bot(&bot);
        lock(&self.inner.budgets).remove(&bot);
    }

    /// Events were missed: every bot's limits are read again on its next request, and the key
    /// index is reloaded.
    pub async fn resync(&self) {
        for slot in lock(&self.inner.budgets).values_mut() {
            slot.limits_current = false;
        }
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "could not reload the LLM key index");
        }
    }

    // ---------------------------------------------------------------- budgets and usage

    async fn load_limits(&self, bot: &BotId) -> BotLimits {
        match self.inner.store.llm_limits(bot).await {
            Ok(Some(l)) => {
                BotLimits::new(l.requests_per_minute, l.tokens_per_day, l.cost_per_month)
            }
            Ok(None) => BotLimits::default(),
            Err(e) => {
                tracing::warn!(bot = %bot, error = %e, "could not read the bot's LLM limits; not enforcing them for this request");
                BotLimits::default()
            }
        }
    }

    /// Lets one of `bot`'s requests through, or says which limit refuses it.
    pub(super) async fn admit(&self, bot: &BotId) -> Result<(), Refusal> {
        {
            let mut budgets = lock(&self.inner.budgets);
            if let Some(slot) = budgets.get_mut(bot).filter(|s| s.limits_current) {
                return self.admitted(bot, slot.budget.admit(Utc::now()));
            }
        }
        let limits = self.load_limits(bot).await;
        let known = lock(&self.inner.budgets).contains_key(bot);
        let spent = if known {
            None
        } else {
            // Counters start from the registry: write what is pending first.
            let now = Utc::now();
            let _ = self.flush().await;
            match self
                .inner
                .store
                .llm_spent(bot, &day_of(now), &month_start_of(now))
                .await
            {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(bot = %bot, error = %e, "could not read the bot's LLM usage; its budget starts at zero");
                    Some((0, 0))
                }
            }
        };
        let now = Utc::now();
        let mut budgets = lock(&self.inner.budgets);
        let slot = budgets.entry(bot.clone()).or_insert_with(|| {
            let (tokens, cost) = spent.unwrap_or((0, 0));
            Slot {
                budget: Budget::new(limits, now, tokens, cost),
                limits_current: true,
            }
        });
        slot.budget.limits = limits;
        slot.limits_current = true;
        let verdict = slot.budget.admit(now);
        drop(budgets);
        self.admitted(bot, verdict)
    }

    fn admitted(&self, bot: &BotId, verdict: Result<(), Refusal>) -> Result<(), Refusal> {
        if let Err(r) = &verdict {
            self.count_refusal(bot.as_str(), r.limit.field());
            if r.first_in_window {
                // A budget already spent when the window began (a restart, a lowered limit).
                let (used, allowed) = self.usage_against(bot, r.limit);
                self.emit(LlmEvent::BudgetExceeded {
                    bot: bot.clone(),
                    limit: r.limit,
                    used,
                    allowed,
                    at: Utc::now(),
                });
            }
        }
        verdict
    }

    fn usage_against(&self, bot: &BotId, limit: Limit) -> (f64, f64) {
        let mut budgets = lock(&self.inner.budgets);
        let Some(slot) = budgets.get_mut(bot) else {
            return (0.0, 0.0);
        };
        let state = slot.budget.state(Utc::now());
        let limits = super::usage::LimitsView::from(slot.budget.limits);
        match limit {
            Limit::LlmTokensPerDay => (
                state.tokens_today as f64,
                limits.llm_tokens_per_day.unwrap_or(0) as f64,
            ),
            Limit::LlmCostPerMonth => (
                state.cost_this_month,
                limits.llm_cost_per_month.unwrap_or(0.0),
            ),
            Limit::LlmRequestsPerMinute => (
                state.requests_this_minute as f64,
                limits.llm_requests_per_minute.unwrap_or(0) as f64,
            ),
        }
    }

    fn emit(&self, event: LlmEvent) {
        let LlmEvent::BudgetExceeded {
            bot,
            limit,
            used,
            allowed,
            ..
        } = &event;
        tracing::warn!(bot = %bot, limit = limit.field(), used, allowed, "LLM budget exceeded: requests are refused until it resets");
        let _ = self.inner.events.send(event);
    }

    /// Counts a request the proxy refused (`bot` is `-` when the key was unknown).
    pub(super) fn count_refusal(&self, bot: &str, reason: &'static str) {
        *lock(&self.inner.metrics)
            .refused
            .entry((bot.to_string(), reason))
            .or_default() += 1;
    }

    /// Books a request the provider answered: every status counts in the metrics, a 2xx one
    /// also in usage (tokens from its `usage`, cost from the price table) and the bot's budget.
    pub(super) fn record(&self, owner: &KeyOwner, model: &str, status: u16, tally: Tally) {
        let now = Utc::now();
        let (bot, provider) = (owner.bot.as_str(), owner.provider.as_str());
        let ok = (200..300).contains(&status);
        let cost = if ok {
            self.provider(provider)
                .and_then(|p| {
                    price_of(&p.spec.prices, model)
                        .map(|pr| cost_nanos(pr, tally.input, tally.output))
                })
                .unwrap_or(0)
        } else {
            0
        };
        {
            let mut m = lock(&self.inner.metrics);
            *m.requests
                .entry((bot.into(), provider.into(), status))
                .or_default() += 1;
            if ok {
                *m.tokens
                    .entry((bot.into(), provider.into(), "input"))
                    .or_default() += tally.input;
                *m.tokens
                    .entry((bot.into(), provider.into(), "output"))
                    .or_default() += tally.output;
                *m.cost_nanos
                    .entry((bot.into(), provider.into()))
                    .or_default() += cost;
            }
        }
        if !ok {
            return;
        }
        let day = day_of(now);
        {
            let mut pending = lock(&self.inner.pending);
            let row = pending
                .entry((bot.into(), provider.into(), model.into(), day.clone()))
                .or_insert_with(|| LlmUsageRow {
                    bot_id: bot.into(),
                    provider: provider.into(),
                    model: model.into(),
                    day,
                    requests: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost_nanos: 0,
                });
            row.requests += 1;
            row.input_tokens += tally.input;
            row.output_tokens += tally.output;
            row.cost_nanos += cost;
        }
        let crossed = lock(&self.inner.budgets)
            .get_mut(&owner.bot)
            .map(|s| s.budget.spend(now, tally.input + tally.output, cost))
            .unwrap_or_default();
        for c in crossed {
            self.emit(LlmEvent::BudgetExceeded {
                bot: owner.bot.clone(),
                limit: c.limit,
                used: c.used,
                allowed: c.allowed,
                at: now,
            });
        }
    }

    /// Writes the usage added up in memory to the registry. On failure it stays pending.
    pub async fn flush(&self) -> Result<(), LlmError> {
        let _one_at_a_time = self.inner.flushing.lock().await;
        let rows: Vec<LlmUsageRow> = lock(&self.inner.pending).drain().map(|(_, r)| r).collect();
        if rows.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.inner.store.add_llm_usage(rows.clone()).await {
            let mut pending = lock(&self.inner.pending);
            for r in rows {
                let k = (
                    r.bot_id.clone(),
                    r.provider.clone(),
                    r.model.clone(),
                    r.day.clone(),
                );
                let row = pending.entry(k).or_insert_with(|| LlmUsageRow {
                    requests: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost_nanos: 0,
                    ..r.clone()
                });
                row.requests += r.requests;
                row.input_tokens += r.input_tokens;
                row.output_tokens += r.output_tokens;
                row.cost_nanos += r.cost_nanos;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Writes usage every [`FLUSH_INTERVAL`] and checks the key index every
    /// [`KEY_RESYNC_INTERVAL`] until `stop`, then writes what is left.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        let mut resync = tokio::time::interval(KEY_RESYNC_INTERVAL);
        resync.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = flush.tick() => {
                    if let Err(e) = self.flush().await {
                        tracing::warn!(error = %e, "could not write LLM usage; will retry");
                    }
                }
                _ = resync.tick() => {
                    if let Err(e) = self.reload_keys().await {
                        tracing::warn!(error = %e, "could not reload the LLM key index");
                    }
                }
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "could not write the last LLM usage at shutdown");
        }
    }

    /// The fleet's usage from `since` on.
    pub async fn usage(&self, since: NaiveDate) -> Result<UsageReport, LlmError> {
        self.flush().await?;
        let rows = self
            .inner
            .store
            .llm_usage(&since.format("%Y-%m-%d").to_string(), None)
            .await?;
        Ok(UsageReport::from_rows(since, rows))
    }

    /// One bot's usage from `since` on, its limits and counters.
    pub async fn bot_usage(
        &self,
        bot: &BotId,
        since: NaiveDate,
    ) -> Result<BotUsageReport, LlmError> {
        self.flush().await?;
        let limits = self
            .inner
            .store
            .llm_limits(bot)
            .await?
            .ok_or_else(|| LlmError::BotNotFound(bot.to_string()))?;
        let limits = BotLimits::new(
            limits.requests_per_minute,
            limits.tokens_per_day,
            limits.cost_per_month,
        );
        let rows = self
            .inner
            .store
            .llm_usage(&since.format("%Y-%m-%d").to_string(), Some(bot))
            .await?;
        let report = UsageReport::from_rows(since, rows);
        let now = Utc::now();
        let known = lock(&self.inner.budgets)
            .get_mut(bot)
            .map(|slot| slot.budget.state(now));
        let current = match known {
            Some(state) => state,
            None => {
                let (tokens, cost) = self
                    .inner
                    .store
                    .llm_spent(bot, &day_of(now), &month_start_of(now))
                    .await?;
                Budget::new(limits, now, tokens, cost).state(now)
            }
        };
        Ok(BotUsageReport {
            bot: bot.to_string(),
            since,
            totals: report.totals,
            rows: report.rows,
            limits: limits.into(),
            current,
            providers: self.providers_of(bot),
        })
    }
}
