//! The served OpenAPI document as the fuzzer reads it: every operation with its parameters,
//! request body and documented answers, `$ref`s resolved, and one JSON Schema validator per
//! documented answer body (refs into `#/components/schemas` resolve against the document).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// One parameter of an operation.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: In,
    pub required: bool,
    pub schema: Value,
}

/// One content type a request body may be sent as, with its schema if it has one.
#[derive(Debug, Clone)]
pub struct BodyType {
    pub media: String,
    pub schema: Option<Value>,
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: Method,
    /// The path template, `{name}` for a parameter.
    pub path: String,
    pub id: String,
    pub params: Vec<Param>,
    pub body: Vec<BodyType>,
    /// The body must be sent (`requestBody.required`; OpenAPI's default is optional).
    pub body_required: bool,
    /// Documented statuses → content type → schema of the body (None: no schema).
    pub responses: BTreeMap<u16, BTreeMap<String, Option<Value>>>,
    /// Needs no credential.
    pub public: bool,
}

/// The document and what the fuzzer derives from it.
pub struct Api {
    pub doc: Value,
    pub ops: Vec<Op>,
    validators: std::sync::Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Api {
    /// Reads `doc` (the served `/api/openapi.json`).
    pub fn new(doc: Value) -> Self {
        let mut ops = Vec::new();
        let paths = doc["paths"].as_object().expect("the document has paths");
        for (path, item) in paths {
            let item = item.as_object().expect("a path item is an object");
            for (method, op) in item {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                ops.push(read_op(&doc, method, path, op));
            }
        }
        Self {
            doc,
            ops,
            validators: Default::default(),
        }
    }

    /// The validator of `schema`, built once (refs resolve against the document's components).
    pub fn validator(&self, schema: &Value) -> Arc<jsonschema::Validator> {
        let key = schema.to_string();
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(&key) {
            return v.clone();
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"));
        let v = Arc::new(v);
        cache.insert(key, v.clone());
        v
    }

    /// Problems of `value` against `schema`, empty when it is valid.
    pub fn violations(&self, schema: &Value, value: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(value)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// `schema` with its `$ref` (if any) followed, repeatedly.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        resolve(&self.doc, schema)
    }
}

/// Follows `$ref`s of the form `#/a/b` within `doc`.
pub fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r.strip_prefix('#').expect("only local refs");
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    panic!("$ref chain too long");
}

fn read_op(doc: &Value, method: Method, path: &str, op: &Value) -> Op {
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let p = resolve(doc, p);
            Param {
                name: p["name"].as_str().unwrap().to_string(),
                location: match p["in"].as_str() {
                    Some("path") => In::Path,
                    Some("query") => In::Query,
                    other => panic!("parameter in {other:?} is not handled by the fuzzer"),
                },
                required: p["required"].as_bool().unwrap_or(false),
                schema: p["schema"].clone(),
            }
        })
        .collect();
    let request = op.get("requestBody").map(|b| resolve(doc, b));
    let body_required = request.is_some_and(|b| b["required"].as_bool().unwrap_or(false));
    let body = request
        .and_then(|b| b["content"].as_object())
        .into_iter()
        .flatten()
        .map(|(media, c)| BodyType {
            media: media.clone(),
            schema: c.get("schema").cloned(),
        })
        .collect();
    let responses = op["responses"]
        .as_object()
        .expect("an operation has responses")
        .iter()
        .map(|(status, r)| {
            let r = resolve(doc, r);
            let content = r["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(media, c)| (media.clone(), c.get("schema").cloned()))
                .collect();
            (status.parse::<u16>().expect("a numeric status"), content)
        })
        .collect();
    let public = op["security"].as_array().is_some_and(|s| s.is_empty());
    Op {
        method,
        path: path.to_string(),
        body_required,
        id: op["operationId"].as_str().unwrap_or(path).to_string(),
        params,
        body,
        responses,
        public,
    }
}
