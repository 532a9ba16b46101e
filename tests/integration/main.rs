//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod adversarial;
mod api;
mod audit;
mod auth_hardening;
mod backup;
mod cli;
mod docker_api_version;
mod docker_lifecycle;
mod docker_observe;
mod docker_stats_sources;
mod exec;
mod exec_cli;
mod fuzz;
mod hardening;
mod hostile_bot;
mod lifecycle_policy;
mod llm_proxy;
mod measure;
mod metrics;
mod openclaw_real;
mod ops;
mod serve_cli;
mod upgrade;
mod upgrade_cli;
mod upgrade_kill;
mod web;
