//! The bot domain: what a bot is (spec, templates, validation), what it looks like from outside
//! (view, observed state), and every operation on bots ([`BotService`]).
//!
//! Sits between the HTTP/CLI edge and the docker, secrets and store modules; it is the only
//! layer that talks to all three.

pub mod cache;
pub mod config_patch;
mod error;
pub mod images;
pub mod llm;
mod llm_follow;
pub mod observed;
mod openclaw;
mod openclaw_status;
pub mod plain_words;
pub mod run_as;
pub mod run_watch;
mod service;
pub mod spec;
pub mod template;
pub mod templates;
pub mod upgrade;
pub mod validate;
mod view;

pub use cache::BotCache;
pub use error::BotError;
pub use llm_follow::follow_llm;
pub use observed::{
    BotEvent, BotEventKind, BotState, ChannelState, ChannelStatus, CrashLoopPolicy, Death,
    EngineWatch, Fleet, Observed, ObservedBot, ProbeResult, RunKey,
};
pub use openclaw::{Channel, OpenClaw, OpenClawSettings, PROVIDERS, Persona, Provider};
pub use run_watch::{NextRun, RunWatch};
pub use service::is_current as is_current_container;
pub use service::{
    BotPaths, BotPolicy, BotService, DEFAULT_EXEC_TIMEOUT_SECS, EXEC_OUTPUT_CAP, ExecOutcome,
    LOCK_WAIT_TIMEOUT, LOG_READ_TIMEOUT, MAX_EXEC_ARGS, MAX_EXEC_ARGV_BYTES, MAX_EXEC_ENV,
    MAX_EXEC_TIMEOUT_SECS, MAX_EXEC_USER_LEN, MAX_EXEC_WORKDIR_LEN, MAX_IMPORT_BYTES, Orphans,
    Recovered, SecretChange, Unsettled, check_exec, check_timeout,
};
pub use spec::{BotSpec, CreateBot, HttpProbe, LimitsSpec, PortSpec, UpdateBot};
pub use template::SecretRotation;
pub use upgrade::{UpgradeBot, UpgradeOutcome, UpgradeResult};
pub use validate::FieldErrors;
pub use view::{BotView, PortView};
