//! The labels that mark a container as botmaker's, and which installation owns it.
//!
//! Reserved labels are written last, so a caller's labels can add to them but never override
//! them: a bot cannot pretend to be another bot or another installation's.

use std::collections::{BTreeMap, HashMap};

use crate::BotId;

/// `botmaker.managed=true` on every container botmaker creates.
pub const LABEL_MANAGED: &str = "botmaker.managed";
/// `botmaker.bot-id=<id>`: which bot a container runs.
pub const LABEL_BOT_ID: &str = "botmaker.bot-id";
/// `botmaker.instance=<name>`: which botmaker installation owns the container, so several
/// installations (or parallel test runs) can share one daemon without seeing each other.
pub const LABEL_INSTANCE: &str = "botmaker.instance";

/// The labels a container for `bot_id` gets: the caller's, then the reserved ones on top.
pub fn container_labels(
    instance: &str,
    bot_id: &BotId,
    caller: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        caller.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_BOT_ID.into(), bot_id.to_string());
    labels.insert(LABEL_INSTANCE.into(), instance.into());
    labels
}

/// Docker label filters selecting every container of `instance`.
pub fn instance_filter(instance: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_INSTANCE}={instance}"),
        ],
    )])
}

/// Whether a container's labels say it belongs to `instance`.
pub fn is_owned_by(labels: Option<&HashMap<String, String>>, instance: &str) -> bool {
    labels.is_some_and(|l| {
        l.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && l.get(LABEL_INSTANCE).map(String::as_str) == Some(instance)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_cannot_override_reserved_labels() {
        let bot = BotId::new("real").unwrap();
        let caller = BTreeMap::from([
            (LABEL_MANAGED.to_string(), "false".to_string()),
            (LABEL_BOT_ID.to_string(), "other".to_string()),
            (LABEL_INSTANCE.to_string(), "theirs".to_string()),
            ("team".to_string(), "blue".to_string()),
        ]);
        let l = container_labels("ours", &bot, &caller);
        assert_eq!(l[LABEL_MANAGED], "true");
        assert_eq!(l[LABEL_BOT_ID], "real");
        assert_eq!(l[LABEL_INSTANCE], "ours");
        assert_eq!(l["team"], "blue");
        assert!(is_owned_by(Some(&l), "ours"));
        assert!(!is_owned_by(Some(&l), "theirs"));
        assert!(!is_owned_by(None, "ours"));
    }
}
