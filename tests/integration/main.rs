//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod api;
mod cli;
mod docker_lifecycle;
mod docker_observe;
mod lifecycle_policy;
mod openclaw_real;
mod serve_cli;
mod web;
