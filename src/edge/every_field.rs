//! Every wrong value of a JSON body at once, not only the first one serde stops at.
//!
//! serde stops at the first value of the wrong type: a body with a bad id, a port of 99999 and
//! a memory of 1 MB got one message (the port), and each fix revealed the next. Here the body
//! is read again and again, each wrong value taken out after it is reported, until the rest
//! reads; the handler can then run its domain checks on that rest and answer with every
//! problem in one `fields` map (see [`Refused::merge_checks`]).

use axum::extract::FromRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::error::{ApiBytes, ApiError, ApiJson, decode_json, is_json};
use super::strict_json::Strict;
use crate::bots::FieldErrors;

/// At most this many wrong values are reported (and re-readings made) per body.
const MAX_WRONG_VALUES: usize = 32;

/// A JSON body like [`ApiJson`], whose refusal keeps what can still be read.
pub struct ApiJsonEveryField<T>(pub Result<T, Refused<T>>);

/// A body that did not read, with everything that could be learnt from it.
pub struct Refused<T> {
    /// The answer if nothing more can be said (also the first problem found).
    pub error: ApiError,
    /// The wrong values (every one, by field) and the body without them, when the rest reads.
    pub rest: Option<(T, FieldErrors)>,
}

impl<T> Refused<T> {
    /// The answer: the wrong values, and `checks` (the domain's verdict on the rest) for the
    /// fields that were not taken out.
    pub fn merge_checks(self, checks: impl FnOnce(T) -> FieldErrors) -> ApiError {
        let Some((rest, wrong)) = self.rest else {
            return self.error;
        };
        let mut all = wrong.clone();
        for (path, messages) in checks(rest).fields() {
            // `image` taken out for its type is not also "required".
            if wrong.fields().keys().any(|w| related(w, path)) {
                continue;
            }
            for m in messages {
                all.add(path.clone(), m.clone());
            }
        }
        ApiError::validation(all)
    }
}

impl<T, S> FromRequest<S> for ApiJsonEveryField<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            // Media type, size and syntax problems answer as for ApiJson.
            let ApiJson(t) = ApiJson::<T>::from_request(req, state).await?;
            return Ok(Self(Ok(t)));
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        Ok(Self(decode_json::<T>(&bytes).map_err(|error| {
            let rest = (error.code == "VALIDATION_FAILED")
                .then(|| serde_json::from_slice::<Value>(&bytes).ok())
                .flatten()
                .and_then(every_wrong_value::<T>);
            Refused { error, rest }
        })))
    }
}

/// Reads `value` as `T`, taking out each value of the wrong type after reporting it, until
/// the rest reads. `None` when it never does (a required field is wrong, say).
fn every_wrong_value<T: DeserializeOwned>(mut value: Value) -> Option<(T, FieldErrors)> {
    let mut wrong = FieldErrors::default();
    for _ in 0..MAX_WRONG_VALUES {
        match serde_path_to_error::deserialize::<_, T>(Strict(&value)) {
            Ok(rest) => return Some((rest, wrong)),
            Err(e) => {
                let segments: Vec<Segment> = e.path().iter().cloned().collect();
                let path = e.path().to_string();
                let inner = e.into_inner();
                if segments.is_empty() || inner.classify() != serde_json::error::Category::Data {
                    return None;
                }
                // A struct left without the field just taken out reports it missing: that
                // is the same problem again.
                if !wrong.fields().keys().any(|w| related(w, &path)) {
                    wrong.add(path, crate::bots::plain_words::plain(&inner.to_string()));
                }
                if !take_out(&mut value, &segments) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the value at `path` from its object; a list element takes its whole list with it
/// (removing one would renumber the others' paths).
fn take_out(value: &mut Value, path: &[Segment]) -> bool {
    let keep = path
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))
        .map(|i| i + 1);
    let Some(len) = keep else {
        return false;
    };
    let (parent, last) = path[..len].split_at(len - 1);
    let Segment::Map { key } = &last[0] else {
        return false;
    };
    let mut at = value;
    for s in parent {
        at = match (s, at) {
            (Segment::Map { key }, Value::Object(m)) => match m.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(a)) => match a.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        Value::Object(m) => m.remove(key).is_some(),
        _ => false,
    }
}

/// Whether one field path is the other or lies under it (`ports` and `ports[1].container`).
fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| {
        x == y
            || x.strip_prefix(y)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    };
    under(a, b) || under(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Port {
        container: u16,
        #[serde(default)]
        host: Option<u16>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        #[serde(default)]
        memory_mb: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        id: String,
        #[serde(default)]
        image: Option<String>,
        #[serde(default)]
        ports: Vec<Port>,
        #[serde(default)]
        limits: Option<Limits>,
    }

    fn keys(f: &FieldErrors) -> Vec<&str> {
        f.fields().keys().map(String::as_str).collect()
    }

    /// Regression (issue 11, friction): the create form reported one problem at a time.
    #[test]
    fn every_wrong_value_is_reported_at_once() {
        let v = serde_json::json!({
            "id": "Bad_ID",
            "image": 7,
            "ports": [{"container": 80}, {"container": 99999}],
            "limits": {"memory_mb": -1},
        });
        let (rest, wrong) = every_wrong_value::<Body>(v).unwrap();
        assert_eq!(
            keys(&wrong),
            ["image", "limits.memory_mb", "ports[1].container"]
        );
        assert_eq!(
            rest.id, "Bad_ID",
            "the rest still reads, for the domain checks"
        );
        assert!(rest.ports.is_empty() && rest.image.is_none());
        for m in wrong.fields().values().flatten() {
            assert!(!m.contains("u16") && !m.contains("line "), "{m}");
        }
    }

    #[test]
    fn a_wrong_required_field_leaves_nothing_to_check() {
        let v = serde_json::json!({"id": 5, "ports": [{"container": 99999}]});
        assert!(every_wrong_value::<Body>(v).is_none());
    }

    #[test]
    fn domain_checks_skip_the_fields_taken_out() {
        let mut wrong = FieldErrors::default();
        wrong.add("image", "must be a string (got a whole number)");
        let refused = Refused {
            error: ApiError::validation(wrong.clone()),
            rest: Some((0u8, wrong)),
        };
        let e = refused.merge_checks(|_| {
            let mut f = FieldErrors::default();
            f.add("image", "required");
            f.add("id", "must be a DNS label");
            f
        });
        let f = e.fields.unwrap();
        assert_eq!(keys(&f), ["id", "image"]);
        assert_eq!(f.fields()["image"].len(), 1);
    }
}
