//! The templates botmaker knows, by name. Kept apart from [`super::template`] (what a template
//! is), which every template imports: a list of them there would make each template and its
//! trait depend on each other.

use super::openclaw::OpenClaw;
use super::template::{Generic, Template};

/// Looks a template up by name.
pub fn lookup(name: &str) -> Option<&'static dyn Template> {
    match name {
        "generic" => Some(&Generic),
        "openclaw" => Some(&OpenClaw),
        _ => None,
    }
}

/// The uid/gid the containers of template `name` run as, if not root: what a restore makes
/// their secrets and workspace belong to.
pub fn owner_of(name: &str) -> Option<(u32, u32)> {
    lookup(name).and_then(|t| t.owner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::template::TEMPLATE_NAMES;

    #[test]
    fn every_listed_name_finds_its_template() {
        for name in TEMPLATE_NAMES {
            assert_eq!(lookup(name).map(|t| t.name()), Some(*name));
        }
        assert!(lookup("nope").is_none());
    }
}
