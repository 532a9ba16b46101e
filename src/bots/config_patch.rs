//! A user's pass-through for a generated config file: a JSON merge patch (RFC 7386) laid over
//! what a template renders, with the keys the template must keep for itself refused.
//!
//! The patch is user input and ends up in a file the bot reads: it is bounded in size and
//! depth, and keys that carry credentials must not hold plain text (credentials are secrets,
//! mounted as files, never config values).

use serde_json::{Map, Value};

use super::validate::FieldErrors;

/// Largest patch, serialized.
pub const MAX_PATCH_BYTES: usize = 64 * 1024;
/// Deepest nesting a patch may have.
pub const MAX_PATCH_DEPTH: usize = 32;

/// Applies `patch` to `target` as RFC 7386 says: objects merge key by key, `null` removes a
/// key, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Checks a patch at `field` (`settings.config`): an object, bounded, touching none of
/// `owned` (dotted paths the template sets itself, each with why), and holding no plain-text
/// value under a key named in `credential_keys`.
pub fn check_patch(
    field: &str,
    patch: &Value,
    owned: &[(&str, &str)],
    credential_keys: &[&str],
    errors: &mut FieldErrors,
) {
    let Value::Object(_) = patch else {
        errors.add(
            field,
            "must be a JSON object (a merge patch over the generated config)",
        );
        return;
    };
    let size = serde_json::to_string(patch).map_or(usize::MAX, |s| s.len());
    if size > MAX_PATCH_BYTES {
        errors.add(field, format!("must be at most {MAX_PATCH_BYTES} bytes"));
        return;
    }
    if depth(patch) > MAX_PATCH_DEPTH {
        errors.add(field, format!("must nest at most {MAX_PATCH_DEPTH} levels"));
        return;
    }
    for (path, why) in owned {
        if lookup(patch, path).is_some() {
            errors.add(
                format!("{field}.{path}"),
                format!("is set by botmaker: {why}"),
            );
        }
    }
    let mut found = Vec::new();
    plain_credentials(patch, "", credential_keys, &mut found);
    for path in found {
        errors.add(
            format!("{field}{path}"),
            "looks like a credential in plain text: config files are readable and copied around; \
             store it in `secrets` (mounted under /run/secrets) instead",
        );
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The value at a dotted path, if the patch sets it.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, key| v.as_object()?.get(key))
}

fn plain_credentials(v: &Value, at: &str, keys: &[&str], out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let here = format!("{at}.{k}");
                if keys.contains(&k.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()) {
                    out.push(here);
                } else {
                    plain_credentials(v, &here, keys, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                plain_credentials(v, &format!("{at}[{i}]"), keys, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The RFC's own example.
        let mut target = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged"
        });
        merge_patch(
            &mut target,
            &json!({
                "title": "Hello!",
                "phoneNumber": "+01-123-456-7890",
                "author": {"familyName": null},
                "tags": ["example"]
            }),
        );
        assert_eq!(
            target,
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890"
            })
        );
        let mut scalar = json!(1);
        merge_patch(&mut scalar, &json!({"a": {"b": null, "c": 2}}));
        assert_eq!(scalar, json!({"a": {"c": 2}}));
    }

    #[test]
    fn patches_are_bounded_and_keep_off_owned_keys_and_plain_credentials() {
        let owned = [("gateway.auth", "the gateway token is a secret")];
        let creds = ["token", "apiKey"];
        let check = |patch: Value| {
            let mut e = FieldErrors::default();
            check_patch("settings.config", &patch, &owned, &creds, &mut e);
            e
        };
        assert!(check(json!({"agents": {"defaults": {"timeoutSeconds": 120}}})).is_empty());
        assert!(check(json!("x")).fields().contains_key("settings.config"));
        let e = check(json!({"gateway": {"auth": {"mode": "none"}}}));
        assert!(
            e.fields().contains_key("settings.config.gateway.auth"),
            "{e}"
        );
        let e = check(json!({"channels": {"x": {"accounts": [{"token": "abc"}]}}}));
        assert!(
            e.fields()
                .contains_key("settings.config.channels.x.accounts[0].token"),
            "{e}"
        );
        // A SecretRef object is not plain text.
        assert!(check(json!({"models": {"p": {"apiKey": {"source": "file"}}}})).is_empty());
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({ "a": deep });
        }
        assert!(check(deep).fields().contains_key("settings.config"));
        let big = json!({ "a": "x".repeat(MAX_PATCH_BYTES) });
        assert!(check(big).fields().contains_key("settings.config"));
    }
}
