//! botmaker: runs a fleet of AI chat bots on a Docker Engine, one container per bot, and keeps
//! each bot's credentials out of its environment.
//!
//! Data flows one way: HTTP/CLI → bots (domain) → [`docker`] / [`secrets`] / store.

pub mod auth;
pub mod backup;
pub mod bot_id;
pub mod bots;
pub mod cli;
pub mod config;
pub mod docker;
pub mod http;
pub mod logging;
pub mod reconcile;
pub mod safe_fs;
pub mod sampler;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod web;

pub use bot_id::BotId;
