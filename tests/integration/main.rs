//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod adversarial;
mod api;
mod auth_hardening;
mod cli;
mod docker_api_version;
mod docker_lifecycle;
mod docker_observe;
mod docker_stats_sources;
mod exec;
mod exec_cli;
mod hardening;
mod hostile_bot;
mod ops;
mod serve_cli;
mod watch_cache;
mod web;
