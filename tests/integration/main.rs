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
mod drift;
mod env_warnings;
mod exec;
mod exec_cli;
mod hardening;
mod hostile_bot;
mod non_root;
mod ops;
mod plain_errors;
mod ports;
mod serve_cli;
mod web;
