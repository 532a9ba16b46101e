//! botmaker: runs a fleet of AI chat bots on a Docker Engine, one container per bot, and keeps
//! each bot's credentials out of its environment.
//!
//! Data flows one way: HTTP/CLI → bots (domain) → [`docker`] / [`secrets`] / store. The
//! composition root [`app`] builds the state and mounts the REST API ([`http`]) and the
//! dashboard ([`web`]) side by side; both reach the domain through [`edge`] and [`access`] and
//! speak in [`api`] types, which the command-line client ([`cli`]) reads too.

pub mod access;
pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bot_id;
pub mod bots;
pub mod cli;
pub mod config;
pub mod docker;
pub mod edge;
pub mod field_errors;
pub mod http;
pub mod llm;
pub mod logging;
pub mod malloc_tuning;
pub mod metrics;
pub mod reconcile;
pub mod safe_fs;
pub mod sampler;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod web;

#[cfg(test)]
mod layering;

pub use bot_id::BotId;
