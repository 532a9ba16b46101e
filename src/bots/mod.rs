//! The bot domain: what a bot is (spec, templates, validation), what it looks like from outside
//! (view, observed state), and every operation on bots ([`BotService`]).
//!
//! Sits between the HTTP/CLI edge and the docker, secrets and store modules; it is the only
//! layer that talks to all three.

pub mod cache;
mod error;
pub mod observed;
mod openclaw;
mod service;
pub mod spec;
pub mod template;
pub mod templates;
pub mod validate;
mod view;

pub use cache::BotCache;
pub use error::BotError;
pub use observed::{BotEvent, BotEventKind, BotState, CrashLoopPolicy, Fleet, Observed};
pub use openclaw::{Channel, OpenClaw, PROVIDERS, Provider};
pub use service::{
    BotPaths, BotPolicy, BotService, LOCK_WAIT_TIMEOUT, LOG_READ_TIMEOUT, Orphans, Recovered,
    Unsettled,
};
pub use spec::{BotSpec, CreateBot, HttpProbe, LimitsSpec, PortSpec, UpdateBot};
pub use validate::FieldErrors;
pub use view::BotView;
