//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod adversarial;
mod api;
mod auth_hardening;
mod cli;
mod docker_lifecycle;
mod docker_observe;
mod hardening;
mod hostile_bot;
mod serve_cli;
mod upgrade;
mod upgrade_cli;
mod upgrade_kill;
mod web;
