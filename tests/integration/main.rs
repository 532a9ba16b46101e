//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod api;
mod cli;
mod docker_api_version;
mod docker_lifecycle;
mod docker_observe;
mod docker_stats_sources;
mod serve_cli;
mod web;
