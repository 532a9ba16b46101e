//! Errors in the API's words (issue 11): a value of the wrong type or range names the field and
//! what it must be, never a Rust type (`expected u16`, `expected struct Persona`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::server::TestServer;

/// Words of serde's and Rust's that must not reach a user.
const INTERNALS: &[&str] = &[
    "expected struct",
    "invalid type",
    "invalid value",
    "u16",
    "u64",
    "i64",
    "f64",
    "at line",
    "Failed to deserialize",
];

fn assert_plain(v: &Value) {
    let text = v.to_string();
    for word in INTERNALS {
        assert!(!text.contains(word), "{word:?} in {text}");
    }
}

#[tokio::test]
async fn parse_errors_name_no_rust_types() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("plain");
    body["ports"] = json!([{ "container": 8080 }, { "container": 70000 }]);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_plain(&v);
    let msg = v["fields"]["ports[1].container"][0].as_str().unwrap();
    assert!(msg.contains("65535") && msg.contains("70000"), "{msg}");

    let mut body = s.bot_body("plain2");
    body["limits"] = json!({ "memory_mb": "lots" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_plain(&v);
    assert!(v["fields"]["limits.memory_mb"].is_array(), "{v}");

    // The openclaw settings, parsed after the body: `persona` is an object.
    let body = json!({
        "id": s.h.bot("plain3").to_string(),
        "template": "openclaw",
        "image": s.h.image,
        "settings": { "provider": "openai", "model": "gpt-4o", "channels": [], "persona": "helpful" },
    });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_plain(&v);
    let msg = v["fields"]["settings.persona"][0]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("must be an object"), "{v}");
}

/// Regression (issue 11, friction): a create reported one problem at a time: a port of the
/// wrong range hid the bad id, the memory limit and the missing image until it was fixed.
#[tokio::test]
async fn create_reports_every_problem_at_once() {
    let s = TestServer::start().await;
    let body = json!({
        "id": "Bad_ID",
        "ports": [{ "container": 8080 }, { "container": 99999 }],
        "limits": { "memory_mb": 1, "pids": "many" },
    });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "VALIDATION_FAILED", "{v}");
    assert_plain(&v);
    let fields: Vec<&str> = v["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "image",
            "limits.memory_mb",
            "limits.pids",
            "ports[1].container"
        ],
        "{v}"
    );
    let (_, list) = s.get("/api/bots").await;
    assert_eq!(list["bots"], json!([]), "nothing was created");
}
