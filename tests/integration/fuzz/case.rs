//! One fuzz case: a request for one operation, valid or broken in one chosen way, and what
//! the schema says about it (whether it is valid, whether it still reaches the operation).

use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Method;
use serde_json::{Value, json};

use super::doc::{In, Op};
use super::values::{Breakage, Gen, NASTY, schema_ref};

/// How the request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The test's session token as `Authorization: Bearer`.
    Session,
    /// An API token (`bmt_`), when the worker has one.
    ApiToken,
    /// No credential at all.
    Nothing,
    /// A made-up bearer token.
    Forged,
    /// The session as the dashboard cookie, without the CSRF header.
    CookieNoCsrf,
}

/// A request to send, with what is known about it.
#[derive(Debug, Clone)]
pub struct Case {
    pub n: usize,
    pub method: Method,
    /// Path and query, percent-encoded as sent.
    pub target: String,
    pub body: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub auth: Auth,
    /// What was done to the request, for the report.
    pub note: String,
    /// Whether path, query and body are all valid for the operation's schemas. A 2xx answer
    /// to an invalid request means the document and the code disagree.
    pub valid: bool,
}

/// Secret names the cases use, so that deletes and puts meet existing secrets.
const SECRET_NAMES: &[&str] = &["FUZZ_A", "FUZZ_B", "OPENAI_API_KEY"];

/// Path parameter values that are not valid ids: case, length, separators, traversal,
/// percent-encodings that decode to nothing valid (or to nothing at all).
const BAD_SEGMENTS: &[&str] = &[
    "UPPER",
    "-lead",
    "trail-",
    "a_b",
    "a.b",
    "%2e%2e",
    "%2E",
    "..%2f..%2fetc",
    "a%2Fb",
    "%00",
    "a%00b",
    "%ff",
    "%C3%A9",
    "%F0%9F%A4%96",
    "%20",
    "a%20b",
    "%252e%252e",
    "%25",
    "..",
    ".",
    "",
];

impl Gen<'_, '_> {
    /// The case number `n` for `op`.
    pub fn case(&mut self, n: usize, op: &Op) -> Case {
        let mut note = Vec::new();
        let mut valid = true;

        // Path.
        let mut target = op.path.clone();
        for p in op.params.iter().filter(|p| p.location == In::Path) {
            let (segment, ok) = self.path_value(op, &p.schema);
            if !ok {
                note.push(format!("{}={segment:?}", p.name));
            }
            valid &= ok;
            target = target.replace(&format!("{{{}}}", p.name), &segment);
        }

        // Query.
        let query: Vec<_> = op
            .params
            .iter()
            .filter(|p| p.location == In::Query)
            .collect();
        if !query.is_empty() {
            let (q, ok) = self.query(&query);
            if !ok {
                note.push(format!("query {q:?}"));
            }
            valid &= ok;
            if !q.is_empty() {
                target = format!("{target}?{q}");
            }
        }

        // Body.
        let (body, content_type, body_ok, body_note) = self.body(op);
        valid &= body_ok;
        if !body_note.is_empty() {
            note.push(body_note);
        }

        // Credential.
        let auth = match self.rng.random_range(0..100) {
            0..3 => Auth::Nothing,
            3..6 => Auth::Forged,
            6..8 => Auth::CookieNoCsrf,
            8..12 => Auth::ApiToken,
            _ => Auth::Session,
        };
        if auth != Auth::Session {
            note.push(format!("auth {auth:?}"));
        }

        Case {
            n,
            method: op.method.clone(),
            target,
            body,
            content_type,
            auth,
            note: note.join("; "),
            valid,
        }
    }

    /// A path segment for parameter `name` (percent-encoded) and whether it is valid.
    fn path_value(&mut self, op: &Op, schema: &Value) -> (String, bool) {
        let r = self.rng.random_range(0..100);
        if r >= 85 {
            let bad = BAD_SEGMENTS.choose(self.rng).unwrap();
            // Some are valid for some parameters (`UPPER` is a fine secret name).
            let ok = decode(bad).is_some_and(|v| self.path_value_valid(schema, &v));
            return (bad.to_string(), ok);
        }
        let w = self.world;
        let value = match schema_ref(schema) {
            Some("BotId") => match r {
                0..70 => w.slots.choose(self.rng).unwrap().clone(),
                70..78 => w.shared.choose(self.rng).unwrap().clone(),
                _ => format!("{}-gone", w.prefix),
            },
            Some("SecretName") => match r {
                0..75 => SECRET_NAMES.choose(self.rng).unwrap().to_string(),
                _ => self.valid_string(&self.api.resolve(schema).clone()),
            },
            _ if op.path.starts_with("/api/tokens") => match w.tokens.choose(self.rng) {
                Some(t) if r < 60 => t.clone(),
                _ => self.string(1, 30),
            },
            _ => self.string(1, 30),
        };
        (encode(&value), self.path_value_valid(schema, &value))
    }

    /// Whether `value` (as decoded by the server) is valid for the parameter's schema.
    fn path_value_valid(&self, schema: &Value, value: &str) -> bool {
        !value.is_empty() && self.api.violations(schema, &json!(value)).is_empty()
    }

    /// A query string for `params` and whether it is valid.
    fn query(&mut self, params: &[&super::doc::Param]) -> (String, bool) {
        let mut parts: Vec<String> = Vec::new();
        for p in params {
            if !p.required && self.rng.random_bool(0.5) {
                continue;
            }
            let v = self.valid(&p.schema, &p.name);
            // `follow=true` streams: only a few cases, each closed at once.
            let v = if p.name == "follow" && self.rng.random_bool(0.7) {
                json!(false)
            } else if p.name == "since" {
                [json!("2024-01-01T00:00:00Z"), json!("1700000000"), v]
                    .choose(self.rng)
                    .unwrap()
                    .clone()
            } else {
                v
            };
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            parts.push(format!("{}={}", p.name, encode(&text)));
        }
        if self.rng.random_bool(0.25) {
            let bad = [
                "tail=-1",
                "tail=abc",
                "tail=1e3",
                "tail=1.5",
                "tail=99999999999999999999999",
                "tail=",
                "follow=maybe",
                "follow=",
                "unknown=1",
                "tail=1&tail=2",
                "since=yesterday",
                "since=-99999999999999",
                "since=%ff",
                "tail",
                "%ff=1",
                "tail=%00",
            ];
            parts.push(bad.choose(self.rng).unwrap().to_string());
            return (parts.join("&"), false);
        }
        (parts.join("&"), true)
    }

    /// A body for `op`: (bytes, content type, valid, note).
    fn body(&mut self, op: &Op) -> (Option<Vec<u8>>, Option<String>, bool, String) {
        if op.body.is_empty() {
            if self.rng.random_bool(0.03) {
                return (
                    Some(b"{\"unexpected\": true}".to_vec()),
                    Some("application/json".into()),
                    true,
                    "a body where none is taken".into(),
                );
            }
            return (None, None, true, String::new());
        }
        let bt = op.body.choose(self.rng).unwrap().clone();
        if bt.media != "application/json" {
            // Raw secret values: any bytes, not empty, at most the SecretValue bound.
            return match self.rng.random_range(0..10) {
                0 => (
                    Some(Vec::new()),
                    Some(bt.media),
                    false,
                    "empty raw body".into(),
                ),
                1 => (
                    Some(vec![b'x'; 65 * 1024]),
                    Some(bt.media),
                    false,
                    "raw body over the secret bound".into(),
                ),
                2 => (
                    Some(vec![0xff, 0xfe, 0x00, 0x80]),
                    Some(bt.media),
                    true,
                    "raw non-UTF-8 bytes".into(),
                ),
                _ => {
                    let s = self.string(1, 60);
                    let ok = !s.is_empty();
                    (Some(s.into_bytes()), Some(bt.media), ok, String::new())
                }
            };
        }
        let schema = bt.schema.clone().expect("a JSON body has a schema");
        let mut value = self.valid(&schema, "");
        let ct = Some("application/json".to_string());
        let r = self.rng.random_range(0..100);
        let how = match r {
            0..55 => None,
            55..60 => Some(Breakage::WrongType),
            60..65 => Some(Breakage::Boundary),
            65..68 => Some(Breakage::HugeString),
            68..73 => Some(Breakage::Nasty),
            73..78 => Some(Breakage::Remove),
            78..82 => Some(Breakage::Extra),
            82..87 => return self.bad_syntax(&value),
            87..92 => {
                let bytes = serde_json::to_vec(&value).unwrap();
                let ct = [
                    None,
                    Some("text/plain"),
                    Some("application/x-www-form-urlencoded"),
                    Some("application/json; charset=utf-8"),
                    Some("application/vnd.fuzz+json"),
                    Some("APPLICATION/JSON"),
                    Some("application/jsonx"),
                    Some("multipart/form-data; boundary=x"),
                ]
                .choose(self.rng)
                .unwrap()
                .map(str::to_string);
                let note = format!("content type {ct:?}");
                // Only JSON types carry the (valid) body to the handler.
                let json_type = ct.as_deref().is_some_and(|c| {
                    let c = c.to_ascii_lowercase();
                    c.starts_with("application/json") && !c.starts_with("application/jsonx")
                        || c.starts_with("application/vnd.fuzz+json")
                });
                // An operation that also takes raw bodies takes any other type as raw.
                let raw = op.body.iter().any(|b| b.media != "application/json");
                let ok = if json_type {
                    self.api.violations(&schema, &value).is_empty()
                } else {
                    raw && !bytes.is_empty()
                };
                return (Some(bytes), ct, ok, note);
            }
            92..95 => {
                return (
                    Some(vec![b' '; 1024 * 1024 + 10]),
                    ct,
                    false,
                    "body over 1 MiB".into(),
                );
            }
            // Valid only where the document says the body may be left out.
            95..97 => return (None, ct, !op.body_required, "no body".into()),
            _ => {
                let v = [json!([]), json!("x"), json!(1), json!(null), json!([value])]
                    .choose(self.rng)
                    .unwrap()
                    .clone();
                return (
                    Some(serde_json::to_vec(&v).unwrap()),
                    ct,
                    false,
                    "not an object".into(),
                );
            }
        };
        let note = match how {
            Some(how) => self.break_value(&mut value, &schema, how),
            None => String::new(),
        };
        let violations = self.api.violations(&schema, &value);
        (
            Some(serde_json::to_vec(&value).unwrap()),
            ct,
            violations.is_empty(),
            note,
        )
    }

    fn bad_syntax(&mut self, value: &Value) -> (Option<Vec<u8>>, Option<String>, bool, String) {
        let text = value.to_string();
        let cut = self.rng.random_range(0..text.len().max(1));
        let options: Vec<Vec<u8>> = vec![
            text.as_bytes()[..cut].to_vec(),
            format!("{text}}}").into_bytes(),
            format!("{text} {text}").into_bytes(),
            b"{".to_vec(),
            b"{\"id\": \"a\",}".to_vec(),
            b"{'id': 'a'}".to_vec(),
            b"{\"id\": \"\\ud800\"}".to_vec(),
            b"{\"id\": NaN}".to_vec(),
            b"\xef\xbb\xbf{}".to_vec(),
            b"{\"id\": \"\xff\xfe\"}".to_vec(),
            [b"[".repeat(5000), b"]".repeat(5000)].concat(),
            format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes(),
            Vec::new(),
            b"\x00".to_vec(),
            NASTY.choose(self.rng).unwrap().as_bytes().to_vec(),
        ];
        let body = options.choose(self.rng).unwrap().clone();
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        (
            Some(body),
            Some("application/json".into()),
            false,
            format!("bad JSON {shown:?}"),
        )
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes `s`; `None` when the result is not UTF-8 or an escape is malformed.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
