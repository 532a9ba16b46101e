//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod adversarial;
mod alerts;
mod api;
mod audit;
mod auth_hardening;
mod backup;
mod cli;
mod crash_history;
mod docker_api_version;
mod docker_lifecycle;
mod docker_observe;
mod docker_stats_sources;
mod drift;
mod env_warnings;
mod exec;
mod exec_cli;
mod fuzz;
mod hardening;
mod hostile_bot;
mod lifecycle_policy;
mod llm_proxy;
mod measure;
mod metrics;
mod non_root;
mod openclaw_real;
mod ops;
mod plain_errors;
mod ports;
mod serve_cli;
mod upgrade;
mod upgrade_cli;
mod upgrade_kill;
mod watch_cache;
mod web;
