//! Integration tests against a real Docker Engine (see `scripts/test`, which provides one).

mod support;

mod docker_lifecycle;
mod docker_observe;
