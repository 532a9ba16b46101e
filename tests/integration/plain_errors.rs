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
