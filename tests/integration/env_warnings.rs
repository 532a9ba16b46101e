//! A secret-looking environment variable (issue 11: `env: {"API_KEY": "sk-…"}` was accepted
//! silently) is stored, but the create and PATCH answers warn about it.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::server::TestServer;

#[tokio::test]
async fn a_secret_looking_env_key_gets_a_warning_in_the_create_and_patch_answers() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("envwarn");
    body["env"] = json!({ "API_KEY": "sk-plain", "LOG_LEVEL": "info" });
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let warnings = v["warnings"].as_array().expect("warnings").clone();
    assert_eq!(warnings.len(), 1, "{v}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.contains("API_KEY") && w.contains("secrets"), "{w}");
    assert!(
        !w.contains("sk-plain"),
        "a warning never repeats the value: {w}"
    );

    // Only the answer to the change carries it.
    let (_, v) = s.get(&format!("/api/bots/{id}")).await;
    assert!(v.get("warnings").is_none(), "{v}");

    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "GITHUB_TOKEN": "ghp-x" }, "apply": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["warnings"][0].as_str().unwrap().contains("GITHUB_TOKEN"),
        "{v}"
    );
    let (status, v) = s
        .call(
            reqwest::Method::PATCH,
            &format!("/api/bots/{id}"),
            Some(json!({ "env": { "LOG_LEVEL": "debug" }, "apply": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v.get("warnings").is_none(), "{v}");
}
