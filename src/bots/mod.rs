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
    BotPaths, BotPolicy, BotService, DEFAULT_EXEC_TIMEOUT_SECS, EXEC_OUTPUT_CAP, ExecOutcome,
    LOCK_WAIT_TIMEOUT, LOG_READ_TIMEOUT, MAX_EXEC_ARGS, MAX_EXEC_ARGV_BYTES, MAX_EXEC_ENV,
    MAX_EXEC_TIMEOUT_SECS, MAX_EXEC_USER_LEN, MAX_EXEC_WORKDIR_LEN, Orphans, Recovered, Unsettled,
    check_exec, check_timeout,
};
pub use spec::{BotSpec, CreateBot, HttpProbe, LimitsSpec, PortSpec, UpdateBot};
pub use validate::FieldErrors;
pub use view::BotView;
