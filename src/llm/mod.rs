//! The LLM key proxy: bots never hold a provider's real key.
//!
//! Each bot that uses a provider gets a virtual key of its own (a file in its `/run/secrets`);
//! the proxy, served by `botmaker serve` on an address only bot containers reach (see
//! [`listen`]), maps the key to its bot and provider, checks the bot's budget and rate limit,
//! swaps in the real key and forwards the request, streaming the answer back as it comes while
//! reading the provider's own `usage` counts out of it. Providers' real keys live in botmaker's
//! secrets store, never in a bot's container, its environment or its generated config.
//!
//! - [`provider`]: what users configure (name, kind, base URL, prices), validated.
//! - [`keys`]: virtual keys and the in-memory index of live ones.
//! - [`budget`]: per-bot windows for `limits.llm_*`.
//! - [`meter`]: reading usage from JSON bodies and SSE streams, asking for it in streams.
//! - [`proxy`]: the data plane (axum), [`wire`]: its answers in each provider's error format.
//! - [`service`]: [`LlmService`], the state all of the above share, written through to the
//!   registry; [`usage`]: the reports built from it.
//!
//! This module knows nothing of Docker or of bots beyond their ids: the bot domain asks it for
//! keys and routes and follows its events (`crate::bots`), HTTP for providers and usage
//! (`crate::http`).

pub mod budget;
mod error;
pub mod keys;
pub mod listen;
pub mod meter;
pub mod provider;
pub mod proxy;
mod service;
pub mod usage;
pub mod wire;

pub use budget::{BotLimits, BudgetState, Limit};
pub use error::LlmError;
pub use listen::{DEFAULT_PROXY_PORT, HOST_ALIAS, ProxyEndpoint, ProxyListen};
pub use provider::{Price, PriceTable, ProviderKind, ProviderName, ProviderView, PutProvider};
pub use service::{FLUSH_INTERVAL, LlmEvent, LlmMetrics, LlmService, Provider};
pub use usage::{BotUsageReport, UsageReport, UsageRow, UsageTotals};
