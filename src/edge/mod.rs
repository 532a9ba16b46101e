//! What the two HTTP front ends, the REST API (`http`) and the dashboard (`web`), share: the
//! state every handler reaches ([`AppState`]), the limits every request has, the one error type
//! and its mapping from every module's failures to HTTP ([`ApiError`]), and the client address
//! of a request ([`ClientIp`]).
//!
//! The front ends are siblings: neither imports the other, both import this. The composition
//! root (`app`) builds the state and mounts both.

mod client_ip;
pub mod error;
mod every_field;
mod strict_json;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use client_ip::ClientIp;
pub use error::{
    ApiBytes, ApiError, ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery, ErrorCode, decode_json,
};
pub use every_field::{ApiJsonEveryField, Refused};

use crate::access::Auth;
use crate::alerts::AlertService;
use crate::audit::AuditLog;
use crate::bots::BotService;
use crate::llm::LlmService;
use crate::metrics::Metrics;
use crate::sampler::Sampler;
use crate::store::Store;

/// Largest request body: bots are configured with small JSON documents.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The Content Security Policy of every answer that sets none of its own: nothing inline, nothing
/// from elsewhere. (The dashboard's console allows inline style, and only that: see
/// `web/assets/vendor/README.md`.)
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";
/// Longest a non-streaming request may take (a stop waits out the bot's grace period).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Bot operations.
    pub bots: BotService,
    /// The database (sessions, tokens).
    pub store: Store,
    /// Login and token checks.
    pub auth: Arc<Auth>,
    /// Cached stats.
    pub sampler: Sampler,
    /// LLM providers, virtual keys and usage.
    pub llm: LlmService,
    /// Notification channels and alert delivery.
    pub alerts: AlertService,
    /// The audit log.
    pub audit: AuditLog,
    /// The Prometheus metrics (`GET /metrics`), and the HTTP counters every answer adds to.
    pub metrics: Metrics,
    /// Tasks a request starts that outlive it (a log stream's Docker reader): owned by the
    /// server, which waits for them when it shuts down.
    pub tasks: TaskTracker,
}
