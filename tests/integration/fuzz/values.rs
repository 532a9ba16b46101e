//! Values from JSON Schemas: valid ones (within bounds, on the bounds, matching patterns,
//! with unicode) and the ways to break them (wrong types, out-of-range numbers, huge or hostile
//! strings, missing and extra fields). A few fields get values chosen with the domain in mind
//! (`image` the fixture image, `id` one of the worker's bot ids, no random host port), so that
//! valid requests really create, change, start and stop bots.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Number, Value, json};

use super::doc::Api;

/// What the generator needs to know about the world.
pub struct World<'a> {
    /// The fixture image: the only image a create can succeed with.
    pub image: &'a str,
    /// Prefix of every bot id the fuzzer may create (unique to this run).
    pub prefix: &'a str,
    /// The bot ids this worker plays with.
    pub slots: &'a [String],
    /// A few more bot ids every worker may use (so workers also meet on one bot).
    pub shared: &'a [String],
    /// API token ids this worker created.
    pub tokens: &'a [String],
}

/// Strings that have broken parsers elsewhere: unicode of every width, controls, NUL, RTL,
/// combining marks, path and shell tricks, format strings.
pub const NASTY: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "a\u{0}b",
    "\t\r\n",
    "é",
    "日本語",
    "🤖🔥",
    "\u{202e}gnp.exe",
    "e\u{301}\u{301}\u{301}",
    "\u{feff}",
    "\u{ffff}",
    "\u{10ffff}",
    "..",
    "../../../../etc/passwd",
    "/etc/shadow",
    "a/b",
    "%2e%2e%2f",
    "$(id)",
    "`id`",
    "'; DROP TABLE bots; --",
    "%s%n%x",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "null",
    "true",
    "-1",
    "0x10",
    "NaN",
    "1e999",
    "🤖",
];

/// Characters for random strings, weighted toward the plain.
const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. /:";

/// Generates from schemas of `api` with `rng`.
pub struct Gen<'a, 'w> {
    pub api: &'a Api,
    pub rng: &'a mut StdRng,
    pub world: &'a World<'w>,
}

impl Gen<'_, '_> {
    /// A random string of `min..=max` characters, mostly plain, sometimes not.
    pub fn string(&mut self, min: usize, max: usize) -> String {
        let len = self.rng.random_range(min..=max.max(min));
        let unicode = self.rng.random_bool(0.15);
        (0..len)
            .map(|_| {
                if unicode && self.rng.random_bool(0.5) {
                    let nasty: Vec<char> = NASTY.iter().flat_map(|s| s.chars()).collect();
                    *nasty.choose(self.rng).unwrap()
                } else {
                    *PLAIN.choose(self.rng).unwrap() as char
                }
            })
            .collect()
    }

    /// A value valid for `schema`; `field` is the property it is for (domain hints).
    /// `None` only for a schema that admits nothing the generator can make.
    pub fn valid(&mut self, schema: &Value, field: &str) -> Value {
        if let Some(v) = self.domain(schema, field) {
            return v;
        }
        let api = self.api;
        let s = api.resolve(schema);
        if let Some(all) = s["allOf"].as_array() {
            let mut out = Map::new();
            for part in all {
                if let Value::Object(o) = self.valid(part, field) {
                    out.extend(o);
                }
            }
            return Value::Object(out);
        }
        if let Some(one) = s["oneOf"].as_array().or(s["anyOf"].as_array()) {
            // Prefer the non-null branch: deep values exercise more.
            let non_null: Vec<&Value> = one.iter().filter(|b| b["type"] != "null").collect();
            let pick = if !non_null.is_empty() && self.rng.random_bool(0.85) {
                *non_null.choose(self.rng).unwrap()
            } else {
                one.choose(self.rng).unwrap()
            };
            return self.valid(pick, field);
        }
        if let Some(values) = s["enum"].as_array() {
            return values.choose(self.rng).unwrap().clone();
        }
        let ty = match &s["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => {
                let non_null: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
                if non_null.is_empty() || self.rng.random_bool(0.1) {
                    "null".into()
                } else {
                    non_null
                        .choose(self.rng)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                }
            }
            // No type (template `settings`): anything JSON.
            _ => return [json!(null), json!({})].choose(self.rng).unwrap().clone(),
        };
        match ty.as_str() {
            "null" => Value::Null,
            "boolean" => Value::Bool(self.rng.random()),
            "integer" => {
                let (lo, hi) = int_bounds(s);
                let v = match self.rng.random_range(0..10) {
                    0 => lo,
                    1 => hi,
                    _ => self
                        .rng
                        .random_range(lo..=hi.min(lo.saturating_add(100_000))),
                };
                json!(v)
            }
            "number" => {
                let lo = s["minimum"]
                    .as_f64()
                    .or(s["exclusiveMinimum"].as_f64().map(|m| m + 0.01))
                    .unwrap_or(-1e6);
                let hi = s["maximum"].as_f64().unwrap_or(1e6);
                let v = if self.rng.random_bool(0.1) {
                    hi
                } else {
                    self.rng.random_range(lo..=hi)
                };
                json!(v)
            }
            "string" => Value::String(self.valid_string(s)),
            "array" => {
                let n = self.rng.random_range(0..=3);
                let items = &s["items"];
                Value::Array((0..n).map(|_| self.valid(items, field)).collect())
            }
            "object" => Value::Object(self.valid_object(s)),
            other => panic!("schema type {other} is not handled by the fuzzer"),
        }
    }

    fn valid_object(&mut self, s: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        let required: Vec<&str> = s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(props) = s["properties"].as_object() {
            for (name, prop) in props {
                // `image` is required in practice (by the generic template): without it
                // most creates would stop at validation.
                let p = if name == "image" { 0.95 } else { 0.5 };
                if required.contains(&name.as_str()) || self.rng.random_bool(p) {
                    let v = self.valid(prop, name);
                    out.insert(name.clone(), v);
                }
            }
        }
        if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
            let names = s.get("propertyNames").cloned().unwrap_or(json!({}));
            for _ in 0..self.rng.random_range(0..=2) {
                let name = self.valid_string(&names);
                let v = self.valid(extra, &name);
                out.insert(name, v);
            }
        }
        out
    }

    /// A string valid for the string schema `s`: from its pattern when it has one.
    pub fn valid_string(&mut self, s: &Value) -> String {
        let min = s["minLength"].as_u64().unwrap_or(0) as usize;
        let max = s["maxLength"].as_u64().map(|m| m as usize).unwrap_or(40);
        if s["format"] == "date-time" {
            return "2024-01-01T00:00:00Z".into();
        }
        let Some(pattern) = s["pattern"].as_str() else {
            return self.string(min, max.min(min + 40));
        };
        let full = regex::Regex::new(pattern).expect("a pattern the regex crate reads");
        let bare = pattern.trim_start_matches('^').trim_end_matches('$');
        let generator = rand_regex::Regex::compile(bare, 8).expect("a pattern rand_regex reads");
        for _ in 0..200 {
            let candidate: String = self.rng.sample(&generator);
            let chars = candidate.chars().count();
            if full.is_match(&candidate) && (min..=max).contains(&chars) {
                return candidate;
            }
        }
        panic!("no string for pattern {pattern} within {min}..={max}");
    }

    /// Values chosen for what a field means rather than its schema.
    fn domain(&mut self, schema: &Value, field: &str) -> Option<Value> {
        let r = self.rng.random_range(0..100);
        let w = self.world;
        let v = match field {
            "image" => match r {
                0..85 => json!(w.image),
                85..92 => json!("botmaker-fuzz-no-such-image:1"),
                _ => return None,
            },
            "id" if schema_ref(schema) == Some("BotId") => match r {
                0..90 => json!(w.slots.choose(self.rng).unwrap()),
                _ => json!(w.shared.choose(self.rng).unwrap()),
            },
            "network" => match r {
                0..40 => Value::Null,
                40..70 => json!("none"),
                70..85 => json!("bridge"),
                85..92 => json!("host"),
                _ => json!("botmaker-fuzz-no-such-net"),
            },
            "host_ip" => match r {
                0..60 => Value::Null,
                60..90 => json!("127.0.0.1"),
                _ => return None,
            },
            // A random host port could take one another test (or service) is about to bind.
            "host" => [Value::Null, json!(1), json!(65535)]
                .choose(self.rng)
                .unwrap()
                .clone(),
            "command" => match r {
                0..40 => Value::Null,
                40..55 => json!([]),
                55..70 => json!(["serve"]),
                70..80 => json!(["print", "fuzz"]),
                80..90 => json!(["exit", "3"]),
                _ => return None,
            },
            "template" => match r {
                0..70 => json!("generic"),
                70..85 => Value::Null,
                _ => json!("openclaw"),
            },
            // An exec command the fixture bot runs (it has no shell), or a program it lacks.
            "cmd" => match r {
                0..50 => json!(["/testbot", "print", "fuzz"]),
                50..65 => json!(["/testbot", "exit", "3"]),
                65..75 => json!(["/no/such/program"]),
                _ => return None,
            },
            "workdir" => match r {
                0..70 => Value::Null,
                70..85 => json!("/"),
                _ => return None,
            },
            "timeout_secs" => match r {
                0..50 => Value::Null,
                50..90 => json!(5),
                _ => return None,
            },
            // The probe path, where a random string is mostly refused (it must start with /).
            "path" => match r {
                0..60 => json!("/healthz"),
                60..80 => json!("/"),
                _ => return None,
            },
            "password" => match r {
                0..15 => json!(crate::support::server::PASSWORD),
                _ => return None,
            },
            _ => return None,
        };
        Some(v)
    }
}

/// The name of the component a schema refers to, if it is a plain `$ref`.
pub fn schema_ref(schema: &Value) -> Option<&str> {
    schema["$ref"].as_str()?.rsplit('/').next()
}

fn int_bounds(s: &Value) -> (i64, i64) {
    let lo = s["minimum"].as_i64().unwrap_or(-1000);
    let hi = s["maximum"].as_i64().unwrap_or(lo.saturating_add(10_000));
    (lo, hi)
}

/// How a valid value gets broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    WrongType,
    Boundary,
    HugeString,
    Nasty,
    Remove,
    Extra,
}

impl Gen<'_, '_> {
    /// Breaks `value` (valid for `schema`) at one randomly chosen place, in a way `how`.
    /// Returns what was done, for the report.
    pub fn break_value(&mut self, value: &mut Value, schema: &Value, how: Breakage) -> String {
        let mut spots = Vec::new();
        collect(value, String::new(), &mut spots);
        let spot = spots.choose(self.rng).cloned().unwrap_or_default();
        let target_schema = self.schema_at(schema, &spot);
        let target = value.pointer_mut(&spot).expect("a spot that exists");
        match how {
            Breakage::WrongType => {
                *target = self.wrong_type(target);
                format!("wrong type at {spot:?}")
            }
            Breakage::Boundary => {
                *target = self.boundary(target_schema.as_ref());
                format!("boundary {} at {spot:?}", target)
            }
            Breakage::HugeString => {
                let n = *[70_000usize, 300_000, 1_100_000].choose(self.rng).unwrap();
                *target = Value::String("x".repeat(n));
                format!("{n}-char string at {spot:?}")
            }
            Breakage::Nasty => {
                *target = json!(NASTY.choose(self.rng).unwrap());
                format!("nasty string at {spot:?}")
            }
            Breakage::Remove => {
                if let Some((parent, key)) = spot.rsplit_once('/') {
                    if let Some(Value::Object(o)) = value.pointer_mut(parent) {
                        o.remove(&unescape(key));
                    }
                    format!("removed {spot:?}")
                } else {
                    *value = Value::Null;
                    "body is null".into()
                }
            }
            Breakage::Extra => {
                let name = self.string(1, 12);
                let objects: Vec<String> = spots
                    .iter()
                    .filter(|p| value.pointer(p).is_some_and(Value::is_object))
                    .cloned()
                    .collect();
                let at = objects.choose(self.rng).cloned().unwrap_or_default();
                match value.pointer_mut(&at) {
                    Some(Value::Object(o)) => {
                        o.insert(name.clone(), json!(1));
                        format!("extra field {name:?} at {at:?}")
                    }
                    _ => "no object for an extra field".into(),
                }
            }
        }
    }

    fn wrong_type(&mut self, v: &Value) -> Value {
        let options = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!("string"),
            json!([]),
            json!([1, "a"]),
            json!({}),
            json!({"a": 1}),
        ];
        loop {
            let o = options.choose(self.rng).unwrap();
            if std::mem::discriminant(o) != std::mem::discriminant(v) {
                return o.clone();
            }
        }
    }

    fn boundary(&mut self, schema: Option<&Value>) -> Value {
        let s = schema
            .map(|s| self.api.resolve(s).clone())
            .unwrap_or_default();
        let mut options = vec![
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1e308),
            json!(-0.0),
            json!(0.5),
            // u64::MAX + 1 and beyond: not representable as an integer.
            Value::Number(Number::from_f64(18446744073709551616.0).unwrap()),
        ];
        for key in [
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "minLength",
            "maxLength",
        ] {
            if let Some(n) = s[key].as_i64() {
                options.extend([json!(n - 1), json!(n), json!(n + 1)]);
                if key.ends_with("Length") {
                    let len = usize::try_from(n).unwrap_or(0);
                    options.extend([
                        json!("a".repeat(len.saturating_sub(1))),
                        json!("a".repeat(len)),
                        json!("a".repeat(len + 1)),
                    ]);
                }
            }
        }
        options.choose(self.rng).unwrap().clone()
    }

    /// The schema of the value at JSON pointer `spot` in a value of `schema`, when easy to
    /// tell (properties and items; not through branches).
    fn schema_at(&self, schema: &Value, spot: &str) -> Option<Value> {
        let mut s = self.api.resolve(schema).clone();
        for key in spot.split('/').skip(1) {
            let key = unescape(key);
            s = self.non_null_branch(&s);
            let next = if let Some(p) = s["properties"].get(&key) {
                p.clone()
            } else if key.parse::<usize>().is_ok() && s["items"].is_object() {
                s["items"].clone()
            } else if s["additionalProperties"].is_object() {
                s["additionalProperties"].clone()
            } else {
                return None;
            };
            s = self.api.resolve(&next).clone();
        }
        Some(self.non_null_branch(&s))
    }

    fn non_null_branch(&self, s: &Value) -> Value {
        match s["oneOf"].as_array() {
            Some(branches) => branches
                .iter()
                .find(|b| b["type"] != "null")
                .map(|b| self.api.resolve(b).clone())
                .unwrap_or_else(|| s.clone()),
            None => s.clone(),
        }
    }
}

/// Every JSON pointer in `v` (the root as "").
fn collect(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                collect(child, format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}
