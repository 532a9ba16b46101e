//! The audit log through the API: who (a session, a named token, nobody at a failed login),
//! what, which bot and how it ended; never a secret's value; filters and cursor paging.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server::TestServer;

async fn audit(s: &TestServer, query: &str) -> Value {
    let (status, v) = s.get(&format!("/api/audit{query}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn find<'a>(page: &'a Value, action: &str) -> Vec<&'a Value> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .collect()
}

#[tokio::test]
async fn audit_log_records_actor_action_bot_and_outcome_and_never_a_secret_value() {
    let s = TestServer::start().await;
    let (status, tok) = s.post("/api/tokens", json!({ "name": "deployer" })).await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let as_token = |method: Method, path: String, body: Option<Value>| {
        let (s, token) = (&s, token.clone());
        async move { s.call_as(Some(&token), method, &path, body).await }
    };

    // By the named token: a create, a secret set and deleted, a stop.
    let body = s.bot_body("audited");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, v) = as_token(Method::POST, "/api/bots".into(), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    const VALUE: &str = "never-in-the-audit-log-7f3a";
    let secret = format!("/api/bots/{id}/secrets/API_KEY");
    let (status, v) = as_token(Method::PUT, secret.clone(), Some(json!({ "value": VALUE }))).await;
    assert!(status.is_success(), "{status} {v}");
    let (status, v) = as_token(Method::DELETE, secret, None).await;
    assert!(status.is_success(), "{status} {v}");
    let (status, v) = as_token(
        Method::POST,
        format!("/api/bots/{id}/stop"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // By the session: a start, and a start of a bot that does not exist.
    let (status, v) = s.post(&format!("/api/bots/{id}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let missing = format!("{id}-none");
    let (status, _) = s
        .post(&format!("/api/bots/{missing}/start"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A failed login, from this test's address.
    let (status, _) = s
        .call_as(
            None,
            Method::POST,
            "/api/login",
            Some(json!({ "password": "wrong" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let page = audit(&s, &format!("?bot={id}")).await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["start", "stop", "secret_delete", "secret_set", "create"],
        "newest first: {page}"
    );
    for e in page["entries"].as_array().unwrap() {
        assert_eq!(e["bot"], id.as_str(), "{e}");
        assert_eq!(e["outcome"], "ok", "{e}");
    }
    let create = find(&page, "create")[0];
    assert_eq!(
        (&create["actor_kind"], &create["actor"]),
        (&json!("token"), &json!("deployer"))
    );
    assert_eq!(create["status"], 201);
    let set = find(&page, "secret_set")[0];
    assert_eq!(set["target"], "API_KEY", "{set}");
    let start = find(&page, "start")[0];
    assert_eq!(
        (&start["actor_kind"], &start["actor"]),
        (&json!("session"), &json!("admin"))
    );

    let failed = audit(&s, &format!("?bot={missing}")).await;
    let failed = find(&failed, "start");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (&failed[0]["outcome"], &failed[0]["status"]),
        (&json!("NOT_FOUND"), &json!(404))
    );

    let logins = audit(&s, "?action=login").await;
    let wrong = logins["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "INVALID_PASSWORD")
        .expect("the failed login is recorded");
    assert_eq!(wrong["client"], "127.0.0.1", "{wrong}");
    assert_eq!(wrong["actor_kind"], "anonymous");
    assert!(
        logins["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "ok"),
        "the harness's own login succeeded: {logins}"
    );
    let tokens = audit(&s, "?action=token_create").await;
    assert_eq!(tokens["entries"][0]["target"], "deployer", "{tokens}");

    // The value was sent, and is nowhere in the log.
    let everything = audit(&s, "?limit=1000").await;
    assert!(!everything.to_string().contains(VALUE), "{everything}");

    // Paging: one entry at a time walks the bot's entries in order, and ends.
    let mut seen = Vec::new();
    let mut query = format!("?bot={id}&limit=2");
    loop {
        let page = audit(&s, &query).await;
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["action"].as_str().unwrap().to_string());
        }
        match page["next_before"].as_i64() {
            Some(before) => query = format!("?bot={id}&limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, actions, "pages, in order, without repeats");
    let (status, v) = s.get("/api/audit?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}
