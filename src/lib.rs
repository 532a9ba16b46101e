//! botmaker: runs a fleet of AI chat bots on a Docker Engine, one container per bot, and keeps
//! each bot's credentials out of its environment.
//!
//! Data flows one way: HTTP/CLI → bots (domain) → [`docker`] / [`secrets`] / store.

pub mod bot_id;
pub mod docker;
pub mod secrets;

pub use bot_id::BotId;
