//! The document against the router it describes, the types it is derived from and the bounds
//! validation enforces; and a snapshot, so every change to the published API shows in review.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodFilter, on};
use serde_json::{Value, json};

use crate::api::{
    BotEvent, BotEventKind, BotState, BotStats, BotView, CreateBot, DEFAULT_LOG_TAIL, LogLine,
    LogStream, MAX_TOKEN_NAME_LEN, Observed, StatsSample, TOKEN_NAME_PATTERN, Token, UpdateBot,
};
use crate::bots::BotSpec;
use crate::bots::validate::{
    DEFAULT_MEMORY_MB, DEFAULT_PIDS, MAX_CPUS, MAX_MEMORY_MB, MAX_PIDS, MAX_PROBE_FAILURES,
    MAX_PROBE_SECS, MAX_SECRET_LEN, MIN_MEMORY_MB,
};
use crate::docker::Health;
use crate::edge::AppState;
use crate::store::{BotRow, DesiredState};

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

fn document() -> Value {
    serde_json::to_value(super::super::document()).expect("the document serializes")
}

/// The paths the router itself holds, from its own route table (its `Debug` output lists them
/// as `RouteId(n): "/path"`, the routes before the fallback's).
fn router_paths(router: &Router<AppState>) -> BTreeSet<String> {
    let table = format!("{router:?}");
    let routes = table.split("fallback_router").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let Some(path) = rest[digits..].strip_prefix("): \"") else {
            continue;
        };
        let end = path.find('"').expect("a closing quote");
        paths.insert(path[..end].to_string());
        rest = &path[end..];
    }
    paths
}

/// Whether `router` answers `method` at `path`: adding a second handler for the same method
/// and path is refused (axum panics), adding one for a new method is not.
fn routes_method(router: &Router<AppState>, method: &str, path: &str) -> bool {
    let filter = MethodFilter::try_from(
        Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method"),
    )
    .expect("a routable method");
    let router = router.clone();
    catch_unwind(AssertUnwindSafe(move || {
        let _ = router.route(path, on(filter, || async {}));
    }))
    .is_err()
}

fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let (router, doc) = super::super::unlayered();
    let doc = serde_json::to_value(doc).expect("serializes");
    let paths = router_paths(&router);
    assert!(paths.contains("/api/bots/{id}"), "{paths:?}");
    let mut routed = BTreeSet::new();
    for path in &paths {
        for method in METHODS {
            if routes_method(&router, method, path) {
                routed.insert((method.to_string(), path.clone()));
            }
        }
    }
    assert_eq!(routed, documented_operations(&doc));
    // The served router is the same list with its layers: the document it serves says so.
    assert_eq!(doc, document());

    // The dashboard, mounted beside the API, adds no API route.
    let dashboard = router_paths(&crate::web::router());
    assert!(!dashboard.is_empty());
    for path in dashboard {
        assert!(
            !path.starts_with("/api") && path != "/health",
            "the dashboard routes {path}, an API path the document does not cover"
        );
    }
}

#[test]
fn the_route_probe_tells_present_from_absent() {
    let router: Router<AppState> = Router::new().route("/x/{id}", axum::routing::get(|| async {}));
    assert_eq!(
        router_paths(&router),
        BTreeSet::from(["/x/{id}".to_string()])
    );
    assert!(routes_method(&router, "get", "/x/{id}"));
    assert!(!routes_method(&router, "post", "/x/{id}"));
}

#[test]
fn document_snapshot() {
    let mut doc = document();
    // The version changes with every release; everything else is the API.
    doc["info"]["version"] = json!("(version)");
    insta::assert_json_snapshot!("openapi", doc);
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{r} does not resolve"))
        }
        None => v,
    }
}

#[test]
fn document_is_well_formed() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        resolve(&doc, &json!({ "$ref": r }));
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for requirement in doc["security"].as_array().expect("global security") {
        for name in requirement.as_object().expect("a requirement").keys() {
            assert!(schemes.contains_key(name), "unknown security scheme {name}");
        }
    }
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["sessionCookie"]["in"], "cookie");

    let mut operation_ids = BTreeSet::new();
    let mut public = BTreeSet::new();
    for (method, path) in documented_operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let at = format!("{method} {path}");
        let id = op["operationId"].as_str().expect("an operationId");
        assert!(operation_ids.insert(id.to_string()), "{at}: duplicate {id}");
        assert!(op["summary"].is_string(), "{at}: no summary");
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{at}");
                p["name"].as_str().expect("a name").to_string()
            })
            .collect();
        let template: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().expect("closed").to_string())
            .collect();
        assert_eq!(declared, template, "{at}: path parameters");
        let responses = op["responses"].as_object().expect("responses");
        // A success: a 2xx, or 101 when the route switches to a WebSocket.
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "101"),
            "{at}: no success answer"
        );
        for (status, r) in responses {
            assert!(status.parse::<u16>().is_ok(), "{at}: status {status}");
            assert!(resolve(&doc, r)["description"].is_string(), "{at} {status}");
        }
        assert!(responses.contains_key("500"), "{at}: no 500");
        match op.get("security") {
            Some(s) => {
                assert_eq!(s, &json!([]), "{at}: only `[]` overrides the global");
                public.insert(at);
            }
            None => {
                assert!(responses.contains_key("401"), "{at}: no 401");
                let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options");
                // The terminal's WebSocket is a GET that changes things: it checks the CSRF
                // token itself, so it declares its own 403.
                let own_csrf_check = at == "get /api/bots/{id}/exec/ws";
                assert_eq!(
                    responses.contains_key("403"),
                    unsafe_method || own_csrf_check,
                    "{at}: 403"
                );
            }
        }
    }
    let expected: BTreeSet<String> = ["post /api/login", "get /health"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(public, expected, "the public operations");
    let login = &doc["paths"]["/api/login"]["post"]["responses"];
    assert_eq!(
        login["429"]["$ref"],
        "#/components/responses/TooManyRequests"
    );
    for name in ["TooManyRequests", "ServiceUnavailable"] {
        assert!(
            doc["components"]["responses"][name]["headers"]["Retry-After"].is_object(),
            "{name}"
        );
    }
    let unavailable = doc["components"]["responses"]["ServiceUnavailable"]["description"]
        .as_str()
        .expect("a description");
    for code in ["DOCKER_UNAVAILABLE", "BOT_BUSY", "TIMEOUT", "LOGIN_BUSY"] {
        assert!(unavailable.contains(code), "503 does not explain {code}");
    }
}

#[test]
fn bounds_are_the_constants_validation_enforces() {
    let doc = document();
    let s = &doc["components"]["schemas"];
    let limits = &s["Limits"]["properties"];
    assert_eq!(limits["memory_mb"]["minimum"], MIN_MEMORY_MB);
    assert_eq!(limits["memory_mb"]["maximum"], MAX_MEMORY_MB);
    assert_eq!(limits["memory_mb"]["default"], DEFAULT_MEMORY_MB);
    assert_eq!(limits["pids"]["maximum"], MAX_PIDS);
    assert_eq!(limits["pids"]["default"], DEFAULT_PIDS);
    assert_eq!(limits["cpus"]["maximum"], MAX_CPUS);
    let probe = &s["HealthCheck"]["properties"];
    assert_eq!(probe["interval_secs"]["maximum"], MAX_PROBE_SECS);
    assert_eq!(probe["failure_threshold"]["maximum"], MAX_PROBE_FAILURES);
    assert_eq!(probe["path"]["default"], "/healthz");
    for schema in ["CreateBot", "UpdateBot"] {
        let grace = &s[schema]["properties"]["stop_timeout_secs"];
        assert_eq!(grace["minimum"], 1, "{schema}");
        assert_eq!(
            grace["maximum"],
            crate::bots::spec::MAX_STOP_TIMEOUT_SECS,
            "{schema}"
        );
    }
    let secret = &s["SecretValue"]["properties"]["value"];
    assert_eq!(
        (secret["minLength"].clone(), secret["maxLength"].clone()),
        (json!(1), json!(MAX_SECRET_LEN))
    );
    assert_eq!(
        s["CreateBot"]["properties"]["secrets"]["additionalProperties"]["maxLength"],
        MAX_SECRET_LEN
    );
    let tail = doc["paths"]["/api/bots/{id}/logs"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "tail")
        .expect("tail");
    assert_eq!(tail["schema"]["default"], DEFAULT_LOG_TAIL);
    let template = &s["CreateBot"]["properties"]["template"]["enum"];
    assert_eq!(template, &json!(["generic", "openclaw", null]));
}

#[test]
fn token_name_rule_is_in_the_schema() {
    let doc = document();
    let name = &doc["components"]["schemas"]["CreateToken"]["properties"]["name"];
    assert_eq!(name["minLength"], 1);
    assert_eq!(name["maxLength"], MAX_TOKEN_NAME_LEN);
    assert_eq!(name["pattern"], TOKEN_NAME_PATTERN);
    // Every control character `char::is_control` refuses is outside the pattern's classes.
    assert!(TOKEN_NAME_PATTERN.starts_with("^[^\\u0000-\\u001f\\u007f-\\u009f]*"));
    assert!(
        TOKEN_NAME_PATTERN.contains("[^\\s"),
        "a blank name is refused too"
    );
    for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{9f}'] {
        assert!(c.is_control());
    }
    assert!(crate::api::valid_token_name("ci runner"));
    assert!(!crate::api::valid_token_name(
        &"x".repeat(MAX_TOKEN_NAME_LEN + 1)
    ));
    assert!(!crate::api::valid_token_name("tab\there"));
}

/// The property names of component `name`, through `allOf` (a flattened field).
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    let mut out = BTreeSet::new();
    let parts: Vec<&Value> = match schema["allOf"].as_array() {
        Some(all) => all.iter().map(|p| resolve(doc, p)).collect(),
        None => vec![schema],
    };
    for part in parts {
        out.extend(
            part["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has no properties"))
                .keys()
                .cloned(),
        );
    }
    out
}

/// `value` (what the server sends) has exactly the properties of schema `name`.
fn assert_shape(doc: &Value, name: &str, value: impl serde::Serialize) {
    let value = serde_json::to_value(value).expect("serializable");
    let keys: BTreeSet<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(properties(doc, name), keys, "schema {name}");
}

#[test]
fn examples_are_accepted_and_show_every_field() {
    let doc = document();
    for name in ["CreateBot", "UpdateBot"] {
        let example = &doc["components"]["schemas"][name]["examples"][0];
        assert_shape(&doc, name, example);
    }
    let create = &doc["components"]["schemas"]["CreateBot"]["examples"][0];
    serde_json::from_value::<CreateBot>(create.clone()).expect("CreateBot");
    let update = &doc["components"]["schemas"]["UpdateBot"]["examples"][0];
    serde_json::from_value::<UpdateBot>(update.clone()).expect("UpdateBot");
}

#[test]
fn response_schemas_match_what_the_server_sends() {
    let doc = document();
    let now = chrono::Utc::now();
    let observed = Observed {
        state: BotState::Running,
        health: Health::Healthy,
        exit_code: None,
        restart_count: 0,
        oom_killed: false,
        container_id: Some("c0ffee".into()),
        image_id: None,
        started_at: Some(now),
        channels: Some(vec![crate::bots::ChannelStatus {
            id: "telegram".into(),
            state: crate::bots::ChannelState::Running,
            detail: None,
        }]),
        node: Some("worker-1".into()),
        node_state: Some("ready".into()),
    };
    let row = BotRow {
        id: crate::BotId::new("b").expect("an id"),
        name: "b".into(),
        template: "generic".into(),
        spec: json!({}),
        secret_names: vec!["TOKEN".into()],
        desired_state: DesiredState::Running,
        container_id: None,
        image_id: None,
        created_at: now,
        updated_at: now,
    };
    // As a create answers it: `warnings` is there only when there is one.
    let mut created = BotView::new(
        &row,
        BotSpec {
            stop_timeout_secs: Some(90),
            ..BotSpec::default()
        },
        observed.clone(),
    );
    created.warnings = vec!["env API_KEY looks like a secret".into()];
    assert_shape(&doc, "Bot", created);
    assert_shape(&doc, "Observed", &observed);
    assert_shape(
        &doc,
        "BotEvent",
        BotEvent {
            id: "b".into(),
            kind: BotEventKind::State,
            observed: Some(observed),
            at: now,
        },
    );
    assert_shape(
        &doc,
        "LogLine",
        LogLine {
            stream: LogStream::Stderr,
            timestamp: Some(now),
            message: "hi".into(),
        },
    );
    assert_shape(&doc, "Stats", StatsSample::default());
    assert_shape(
        &doc,
        "BotStats",
        BotStats {
            id: "b".into(),
            sample: StatsSample::default(),
        },
    );
    assert_shape(
        &doc,
        "SecretSet",
        crate::api::SecretSet {
            success: true,
            name: "TOKEN".into(),
            rotation: crate::bots::SecretRotation::Restart,
            restarted: true,
            effect: "the bot was restarted and runs with the new value".into(),
        },
    );
    assert_shape(
        &doc,
        "Token",
        Token {
            id: "t".into(),
            name: "ci".into(),
            created_at: now,
            last_used_at: None,
        },
    );
}
