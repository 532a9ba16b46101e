//! `GET /api/openapi.json`: the API described as OpenAPI 3.1.
//!
//! The document is written by hand, one function per resource, with the limits it states taken
//! from the constants the server enforces. A unit test reads the router sources and checks that
//! every `/api` route and `/health` is documented, and that nothing else is.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::observe::DEFAULT_LOG_TAIL;
use super::{AppState, CSRF_HEADER, MAX_BODY_BYTES, REQUEST_TIMEOUT, SESSION_COOKIE};
use crate::auth::{API_TOKEN_PREFIX, SESSION_TOKEN_PREFIX};
use crate::bot_id::MAX_BOT_ID_LEN;
use crate::bots::HttpProbe;
use crate::bots::template::TEMPLATE_NAMES;
use crate::bots::validate::{
    DEFAULT_MEMORY_MB, DEFAULT_PIDS, MAX_CPUS, MAX_MEMORY_MB, MAX_NAME_LEN, MAX_PIDS,
    MAX_PROBE_FAILURES, MAX_PROBE_SECS, MAX_SECRET_LEN, MIN_MEMORY_MB,
};
use crate::bots::{LOCK_WAIT_TIMEOUT, LOG_READ_TIMEOUT};
use crate::secrets::MAX_SECRET_NAME_LEN;

/// The document's route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let groups = [
        health_paths(),
        auth_paths(),
        token_paths(),
        bot_paths(),
        action_paths(),
        secret_paths(),
        observe_paths(),
        admin_paths(),
        meta_paths(),
        upgrade_paths(),
        backup_paths(),
    ];
    for (path, mut item) in groups.into_iter().flatten() {
        add_csrf_rejection(&mut item);
        let previous = paths.insert(path.to_string(), item);
        assert!(previous.is_none(), "{path} is documented twice");
    }
    json!({
        "openapi": "3.1.0",
        "info": info(),
        "servers": [{ "url": "/" }],
        "tags": tags(),
        // Every operation needs a session or API token unless it says `security: []`.
        "security": [{ "bearerAuth": [] }, { "sessionCookie": [] }],
        "paths": paths,
        "components": components(),
    })
}

/// A cookie-authenticated request with an unsafe method must carry the session's CSRF token, so
/// every such authenticated operation may answer 403.
fn add_csrf_rejection(item: &mut Value) {
    let Some(item) = item.as_object_mut() else {
        return;
    };
    for (method, op) in item.iter_mut() {
        let unsafe_method = matches!(method.as_str(), "post" | "put" | "patch" | "delete");
        if unsafe_method && op.get("security").is_none() {
            op["responses"]["403"] = json!({ "$ref": "#/components/responses/Forbidden" });
        }
    }
}

fn info() -> Value {
    json!({
        "title": "botmaker",
        "version": env!("CARGO_PKG_VERSION"),
        "description": format!(
            "Manages AI chat bots, one Docker container per bot.\n\n\
             **Authentication.** `POST /api/login` exchanges the admin password for a session \
             token (`{SESSION_TOKEN_PREFIX}...`); `POST /api/tokens` issues long-lived API tokens \
             (`{API_TOKEN_PREFIX}...`). Send either as `Authorization: Bearer <token>`; the \
             dashboard's `{SESSION_COOKIE}` cookie works too. Only `POST /api/login` and \
             `GET /health` are public.\n\n\
             **Errors** are JSON: `{{\"error\": \"message\", \"code\": \"STABLE_CODE\"}}`, with \
             `fields` (problems by field) on validation failures. Request bodies are limited to \
             {MAX_BODY_BYTES} bytes, and non-streaming requests to {} s (then 503 `TIMEOUT`).\n\n\
             **Consistency.** Calls that change a bot are serialized per bot, each acting on what \
             the previous one left; one that waits more than {} s for the bot gives up with 503 \
             `BOT_BUSY`, having done nothing. A call records a new `desired_state`, config or \
             secret only when it succeeds: one that fails (503 `DOCKER_UNAVAILABLE` included) \
             leaves the bot as it was, and the reconciler brings its container back to the \
             recorded state once Docker answers. A PATCH is all or nothing, secrets included. \
             Log reads give up after {} s with 503.",
            REQUEST_TIMEOUT.as_secs(),
            LOCK_WAIT_TIMEOUT.as_secs(),
            LOG_READ_TIMEOUT.as_secs(),
        ),
        "license": { "name": "MIT", "identifier": "MIT" },
    })
}

fn tags() -> Value {
    json!([
        { "name": "health", "description": "Liveness of botmaker and its dependencies" },
        { "name": "auth", "description": "Login, logout and API tokens" },
        { "name": "bots", "description": "The bot registry and bot lifecycle" },
        { "name": "secrets", "description": "Bot secrets (values are write-only)" },
        { "name": "observe", "description": "Logs, stats and live events" },
        { "name": "admin", "description": "Housekeeping" },
        { "name": "meta", "description": "This document" },
    ])
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A path and its path item.
type PathItem = (&'static str, Value);

/// The shared error answers: status, component name, description.
const ERROR_RESPONSES: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "The request is invalid: `VALIDATION_FAILED` (with `fields`, also for a value of the \
         wrong type at a known field of the body or query string), `INVALID_JSON`, \
         `INVALID_QUERY`, `INVALID_PATH`, `IMAGE_NOT_FOUND`, `INVALID_CONFIG`, \
         `NOT_A_SESSION`...",
    ),
    (
        401,
        "Unauthorized",
        "`UNAUTHORIZED`: missing, invalid or expired token (`INVALID_PASSWORD` on login).",
    ),
    (
        403,
        "Forbidden",
        "`CSRF`: the request was authenticated by the session cookie but lacks the session's \
         CSRF token (header `X-CSRF-Token`); scripts should send `Authorization: Bearer` \
         instead.",
    ),
    (
        404,
        "NotFound",
        "`NOT_FOUND`: no such bot, secret or token.",
    ),
    (
        409,
        "Conflict",
        "`ALREADY_EXISTS`, `CONTAINER_NAME_TAKEN` (a container botmaker does not manage holds \
         the name) or `LEFTOVER_FILES` (run `POST /api/admin/cleanup`).",
    ),
    (
        413,
        "PayloadTooLarge",
        "`PAYLOAD_TOO_LARGE`: the body exceeds the request size limit.",
    ),
    (
        415,
        "UnsupportedMediaType",
        "`UNSUPPORTED_MEDIA_TYPE`: the body must be sent as `application/json`.",
    ),
    (
        422,
        "StartFailed",
        "`START_FAILED`: the request was fine, but the bot's container would not start with its \
         configuration.",
    ),
    (
        429,
        "TooManyRequests",
        "`RATE_LIMITED`: too many failed logins from this address; retry after `Retry-After` \
         seconds.",
    ),
    (
        500,
        "InternalError",
        "`INTERNAL`: an unexpected failure (details are in the server log).",
    ),
    (
        503,
        "ServiceUnavailable",
        "Retry later. `DOCKER_UNAVAILABLE`: the Docker Engine is unreachable or did not \
         answer in time; nothing was recorded (a lifecycle call changes `desired_state`, the \
         config or the secrets only when it succeeds, and the reconciler settles the bot when \
         Docker is back). `BOT_BUSY`: another operation on the bot did not finish in time; \
         nothing was done. `TIMEOUT`: no answer within the request time limit; an operation \
         that had begun still completes, so check the bot before retrying. `SHUTTING_DOWN`. `LOGIN_BUSY` \
         (login only): too many logins are being checked at once; retry after `Retry-After` \
         seconds.",
    ),
];

/// What `POST /api/tokens` accepts as a token name: no control character (Unicode `Cc`,
/// what Rust's `char::is_control` refuses) and at least one that is not a space.
const TOKEN_NAME_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
     [^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// A reference to a schema component.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A reference to a parameter component.
fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// `schema` or `null`.
fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// A JSON response.
fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// A required JSON request body.
fn json_body(description: &str, schema: Value) -> Value {
    json!({
        "required": true,
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// A Server-Sent Events stream; `events` maps each event name to what its data holds.
fn event_stream(description: &str, events: Value) -> Value {
    json!({
        "schema": { "type": "string", "description": description },
        "x-events": events,
    })
}

/// An operation's responses: its successes, then the shared error answer for each status.
fn responses(success: &[(u16, Value)], errors: &[u16]) -> Value {
    let mut map = Map::new();
    for (status, response) in success {
        map.insert(status.to_string(), response.clone());
    }
    for status in errors {
        let (_, name, _) = ERROR_RESPONSES
            .iter()
            .find(|(s, _, _)| s == status)
            .unwrap_or_else(|| panic!("no shared error response for status {status}"));
        map.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    }
    Value::Object(map)
}

/// `{"success": true}`.
fn success() -> Value {
    json_response("Done", schema("Success"))
}

/// An object with these properties, all of which are always present.
fn all_required(properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .expect("properties are an object")
        .keys()
        .collect();
    json!({ "type": "object", "required": required, "properties": properties })
}

/// A request object: these properties, `required` among them, and nothing else.
fn closed(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// A port number.
fn port_number(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": 65535, "description": description })
}

fn timestamp(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": description })
}

fn nullable_timestamp(description: &str) -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "description": description })
}

fn string_list(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

fn health_paths() -> Vec<PathItem> {
    vec![(
        "/health",
        json!({ "get": {
            "tags": ["health"],
            "operationId": "health",
            "summary": "Health of botmaker, its database and the Docker Engine",
            "security": [],
            "responses": responses(
                &[
                    (200, json_response("Everything works", schema("Health"))),
                    (503, json_response(
                        "Degraded: the database or Docker is unavailable",
                        schema("Health"),
                    )),
                ],
                &[],
            ),
        }}),
    )]
}

fn auth_paths() -> Vec<PathItem> {
    vec![
        (
            "/api/login",
            json!({ "post": {
                "tags": ["auth"],
                "operationId": "login",
                "summary": "Exchange the admin password for a session token",
                "description": "Failed logins are rate-limited per client address (429; the \
                                attempt counts before the password is checked); at most a few \
                                logins are checked at once (503 `LOGIN_BUSY` beyond that).",
                "security": [],
                "requestBody": json_body("The admin password", schema("Login")),
                "responses": responses(
                    &[(200, json_response("Logged in", schema("Session")))],
                    &[400, 401, 413, 415, 429, 500, 503],
                ),
            }}),
        ),
        (
            "/api/logout",
            json!({ "post": {
                "tags": ["auth"],
                "operationId": "logout",
                "summary": "End the session whose token authenticates this request",
                "description": "An API token cannot log out (400 `NOT_A_SESSION`): revoke it \
                                with `DELETE /api/tokens/{id}`.",
                "responses": responses(&[(200, success())], &[400, 401, 500]),
            }}),
        ),
    ]
}

fn token_paths() -> Vec<PathItem> {
    vec![
        (
            "/api/tokens",
            json!({
                "get": {
                    "tags": ["auth"],
                    "operationId": "listTokens",
                    "summary": "List API tokens (never their values)",
                    "responses": responses(
                        &[(200, json_response("The tokens", schema("TokenList")))],
                        &[401, 500],
                    ),
                },
                "post": {
                    "tags": ["auth"],
                    "operationId": "createToken",
                    "summary": "Issue an API token",
                    "description": "The token is shown once, in this answer; only its hash is \
                                    stored.",
                    "requestBody": json_body("A label for the token", schema("CreateToken")),
                    "responses": responses(
                        &[(201, json_response("Issued", schema("NewToken")))],
                        &[400, 401, 413, 415, 500],
                    ),
                },
            }),
        ),
        (
            "/api/tokens/{id}",
            json!({
                "parameters": [param("TokenId")],
                "delete": {
                    "tags": ["auth"],
                    "operationId": "revokeToken",
                    "summary": "Revoke an API token",
                    "responses": responses(&[(200, success())], &[401, 404, 500]),
                },
            }),
        ),
    ]
}

fn bot_paths() -> Vec<PathItem> {
    vec![
        (
            "/api/bots",
            json!({
                "get": {
                    "tags": ["bots"],
                    "operationId": "listBots",
                    "summary": "List bots with their observed state",
                    "responses": responses(
                        &[(200, json_response("The bots", schema("BotList")))],
                        &[401, 503, 500],
                    ),
                },
                "post": {
                    "tags": ["bots"],
                    "operationId": "createBot",
                    "summary": "Create a bot (and start it unless `start` is false)",
                    "requestBody": json_body("The bot", schema("CreateBot")),
                    "responses": responses(
                        &[(201, json_response("Created", schema("Bot")))],
                        &[400, 401, 409, 413, 415, 422, 503, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/{id}",
            json!({
                "parameters": [param("BotId")],
                "get": {
                    "tags": ["bots"],
                    "operationId": "getBot",
                    "summary": "A bot with its observed state",
                    "responses": responses(
                        &[(200, json_response("The bot", schema("Bot")))],
                        &[401, 404, 503, 500],
                    ),
                },
                "patch": {
                    "tags": ["bots"],
                    "operationId": "updateBot",
                    "summary": "Change a bot's configuration",
                    "description": "Present fields replace the stored ones. Unless `apply` is \
                                    false the container is recreated so the change takes effect.",
                    "requestBody": json_body("The changes", schema("UpdateBot")),
                    "responses": responses(
                        &[(200, json_response("The updated bot", schema("Bot")))],
                        &[400, 401, 404, 409, 413, 415, 422, 503, 500],
                    ),
                },
                "delete": {
                    "tags": ["bots"],
                    "operationId": "deleteBot",
                    "summary": "Delete a bot, its container, secrets and workspace",
                    "responses": responses(&[(200, success())], &[401, 404, 503, 500]),
                },
            }),
        ),
    ]
}

/// One lifecycle action on a bot.
fn bot_action(operation_id: &str, summary: &str, errors: &[u16]) -> Value {
    json!({
        "parameters": [param("BotId")],
        "post": {
            "tags": ["bots"],
            "operationId": operation_id,
            "summary": summary,
            "responses": responses(
                &[(200, json_response("The bot afterwards", schema("Bot")))],
                errors,
            ),
        },
    })
}

fn action_paths() -> Vec<PathItem> {
    let may_recreate = &[400, 401, 404, 409, 422, 503, 500];
    vec![
        (
            "/api/bots/{id}/start",
            bot_action(
                "startBot",
                "Start a bot (recreating a missing container)",
                may_recreate,
            ),
        ),
        (
            "/api/bots/{id}/stop",
            bot_action("stopBot", "Stop a bot", &[401, 404, 503, 500]),
        ),
        (
            "/api/bots/{id}/restart",
            bot_action("restartBot", "Restart a bot", may_recreate),
        ),
        (
            "/api/bots/{id}/apply",
            bot_action(
                "applyBot",
                "Recreate a bot's container from its stored configuration",
                may_recreate,
            ),
        ),
    ]
}

fn secret_paths() -> Vec<PathItem> {
    vec![
        (
            "/api/bots/{id}/secrets",
            json!({
                "parameters": [param("BotId")],
                "get": {
                    "tags": ["secrets"],
                    "operationId": "listSecrets",
                    "summary": "Names of a bot's secrets (never the values)",
                    "responses": responses(
                        &[(200, json_response("The names", schema("SecretNames")))],
                        &[401, 404, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/{id}/secrets/{name}",
            json!({
                "parameters": [param("BotId"), param("SecretName")],
                "put": {
                    "tags": ["secrets"],
                    "operationId": "putSecret",
                    "summary": "Set or rotate a secret",
                    "description": "The file is replaced atomically and the running container \
                                    sees it at once, without a restart.",
                    "requestBody": secret_body(),
                    "responses": responses(
                        &[(200, json_response("Stored", schema("SecretSet")))],
                        &[400, 401, 404, 413, 503, 500],
                    ),
                },
                "delete": {
                    "tags": ["secrets"],
                    "operationId": "deleteSecret",
                    "summary": "Delete a secret",
                    "responses": responses(&[(200, success())], &[401, 404, 503, 500]),
                },
            }),
        ),
    ]
}

fn secret_body() -> Value {
    let raw = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_SECRET_LEN,
        "description": "The value, exactly as sent (not empty)",
    });
    json!({
        "required": true,
        "description": format!(
            "The value: the raw body (any content type but JSON), or `{{\"value\": \"...\"}}` \
             sent as `application/json`. 1 to {MAX_SECRET_LEN} bytes: an empty value is \
             refused."
        ),
        "content": {
            "text/plain": { "schema": raw },
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": "The value, exactly as sent",
                },
            },
            "application/json": { "schema": schema("SecretValue") },
        },
    })
}

fn observe_paths() -> Vec<PathItem> {
    vec![
        ("/api/bots/{id}/logs", logs_path()),
        (
            "/api/bots/{id}/stats",
            json!({
                "parameters": [param("BotId")],
                "get": {
                    "tags": ["observe"],
                    "operationId": "botStats",
                    "summary": "A bot's latest resource usage and recent history",
                    "responses": responses(
                        &[(200, json_response("Its stats", schema("BotStatsHistory")))],
                        &[401, 404, 503, 500],
                    ),
                },
            }),
        ),
        (
            "/api/stats",
            json!({ "get": {
                "tags": ["observe"],
                "operationId": "allStats",
                "summary": "Latest resource usage of every running bot (from the sampler's cache)",
                "responses": responses(
                    &[(200, json_response("The samples", schema("StatsList")))],
                    &[401],
                ),
            }}),
        ),
        (
            "/api/events",
            json!({ "get": {
                "tags": ["observe"],
                "operationId": "events",
                "summary": "Live bot changes as Server-Sent Events",
                "responses": responses(
                    &[(200, json!({
                        "description": "An endless event stream",
                        "content": { "text/event-stream": event_stream(
                            "`bot` events carry a BotEvent as JSON; `resync` (data: how many \
                             events were missed) tells a slow client to re-read the bot list. \
                             `unauthorized` (the credential was revoked, logged out or expired; \
                             checked every 2 s) and `shutdown` end the stream.",
                            json!({
                                "bot": schema("BotEvent"),
                                "resync": { "type": "integer", "minimum": 1 },
                                "unauthorized": schema("Error"),
                                "shutdown": schema("Error"),
                            }),
                        )},
                    }))],
                    &[401],
                ),
            }}),
        ),
    ]
}

fn logs_path() -> Value {
    let stream = event_stream(
        "With `follow=true`: `line` events carry a LogLine as JSON; `detached` when the \
         container stops, `attached` when it runs again, `gone` when it was removed (the stream \
         then ends). `unauthorized` (the credential was revoked, logged out or expired; checked \
         every 2 s) and `shutdown` also end it.",
        json!({
            "line": schema("LogLine"),
            "detached": { "type": "string" },
            "attached": { "type": "string" },
            "gone": { "type": "string" },
            "unauthorized": schema("Error"),
            "shutdown": schema("Error"),
        }),
    );
    json!({
        "parameters": [param("BotId")],
        "get": {
            "tags": ["observe"],
            "operationId": "botLogs",
            "summary": "A bot's log lines, or a live stream of them",
            "parameters": [
                {
                    "name": "tail", "in": "query", "required": false,
                    "description": "Only the last this many lines",
                    "schema": { "type": "integer", "minimum": 0, "default": DEFAULT_LOG_TAIL },
                },
                {
                    "name": "since", "in": "query", "required": false,
                    "description": "Only lines at or after this time: Unix seconds or RFC 3339",
                    "schema": { "type": "string", "examples": ["1700000000", "2024-01-01T00:00:00Z"] },
                },
                {
                    "name": "follow", "in": "query", "required": false,
                    "description": "Stream new lines as Server-Sent Events until the client \
                                    leaves, re-attaching when the container restarts",
                    "schema": { "type": "boolean", "default": false },
                },
            ],
            "responses": responses(
                &[(200, json!({
                    "description": "The lines (JSON), or with `follow=true` an event stream",
                    "content": {
                        "application/json": { "schema": schema("LogLines") },
                        "text/event-stream": stream,
                    },
                }))],
                &[400, 401, 404, 503, 500],
            ),
        },
    })
}

fn admin_paths() -> Vec<PathItem> {
    vec![
        (
            "/api/admin/orphans",
            json!({ "get": {
                "tags": ["admin"],
                "operationId": "listOrphans",
                "summary": "Containers, secrets and workspaces left by deleted bots",
                "responses": responses(
                    &[(200, json_response("What is left over", schema("Orphans")))],
                    &[401, 503, 500],
                ),
            }}),
        ),
        (
            "/api/admin/cleanup",
            json!({ "post": {
                "tags": ["admin"],
                "operationId": "cleanup",
                "summary": "Remove everything orphaned",
                "responses": responses(
                    &[(200, json_response("What was removed", schema("Cleanup")))],
                    &[401, 503, 500],
                ),
            }}),
        ),
    ]
}

fn meta_paths() -> Vec<PathItem> {
    vec![(
        "/api/openapi.json",
        json!({ "get": {
            "tags": ["meta"],
            "operationId": "openapi",
            "summary": "This OpenAPI document",
            "responses": responses(
                &[(200, json_response("The document", json!({ "type": "object" })))],
                &[401],
            ),
        }}),
    )]
}

fn upgrade_paths() -> Vec<PathItem> {
    vec![(
        "/api/bots/{id}/upgrade",
        json!({
            "parameters": [param("BotId")],
            "post": {
                "tags": ["bots"],
                "operationId": "upgradeBot",
                "summary": "Replace a bot's container by one of a new image, kept only if healthy",
                "description": "Stops the old container (kept, renamed), starts a new one from the \
                                stored config with the new image and waits until its probe \
                                answers (or, without a probe, until it has kept running 10 s). \
                                If it fails, it is removed and the old container runs again: \
                                409 with `result: rolled_back` and the reason. Not bound by the \
                                60 s request timeout: by `timeout_secs` plus 120 s.",
                "requestBody": {
                    "required": false,
                    "content": { "application/json": { "schema": schema("UpgradeBot") } },
                },
                "responses": responses(
                    &[
                        (200, json_response("Upgraded, or already running that image", schema("UpgradeOutcome"))),
                        (409, json_response("Rolled back (or another conflict: see `code`)", schema("UpgradeOutcome"))),
                    ],
                    &[400, 401, 404, 503, 500],
                ),
            },
        }),
    )]
}

/// A gzip-compressed tar archive (see the README's "Backups").
fn archive_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/gzip": { "schema": { "type": "string", "format": "binary" } } },
    })
}

fn backup_paths() -> Vec<PathItem> {
    let same_as_bot = |verb: &str| {
        format!(
            "The bot whose id is `import` ({verb}): `/api/bots/import` is also the import route, \
             so its own operations are answered here too."
        )
    };
    vec![
        (
            "/api/admin/backup",
            json!({ "get": {
                "tags": ["admin"],
                "operationId": "backup",
                "summary": "A full backup, streamed as it is written",
                "description": "The registry (a consistent SQLite snapshot), every bot's secrets \
                                and workspace (links are not followed) and a manifest with the \
                                SHA-256 of every entry, last. Restore it with `botmaker restore`. \
                                Not bound by the request timeout; an error half-way cuts the \
                                transfer.",
                "responses": responses(&[(200, archive_response("The archive"))], &[401, 503, 500]),
            }}),
        ),
        (
            "/api/bots/{id}/backup",
            json!({
                "parameters": [param("BotId")],
                "get": {
                    "tags": ["bots"],
                    "operationId": "backupBot",
                    "summary": "One bot's record, secrets and workspace, to import elsewhere",
                    "responses": responses(
                        &[(200, archive_response("The archive"))],
                        &[401, 404, 503, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/import",
            json!({
                "post": {
                    "tags": ["bots"],
                    "operationId": "importBot",
                    "summary": "Create a bot from a single-bot backup",
                    "description": format!(
                        "The body is the archive of `GET /api/bots/{{id}}/backup` (at most {} \
                         MiB, unencrypted: the CLI decrypts). It is verified whole before \
                         anything is written; a damaged or altered archive is 400 \
                         `BACKUP_CORRUPT`, an id in use 409.",
                        crate::bots::MAX_IMPORT_BYTES >> 20
                    ),
                    "requestBody": {
                        "required": true,
                        "content": { "application/octet-stream": {
                            "schema": { "type": "string", "format": "binary" },
                        }},
                    },
                    "responses": responses(
                        &[(201, json_response("Created", schema("Bot")))],
                        &[400, 401, 409, 413, 422, 503, 500],
                    ),
                },
                "get": {
                    "tags": ["bots"],
                    "operationId": "getBotNamedImport",
                    "summary": "The bot named `import`",
                    "description": same_as_bot("GET"),
                    "responses": responses(
                        &[(200, json_response("The bot", schema("Bot")))],
                        &[401, 404, 503, 500],
                    ),
                },
                "patch": {
                    "tags": ["bots"],
                    "operationId": "updateBotNamedImport",
                    "summary": "Change the bot named `import`",
                    "description": same_as_bot("PATCH"),
                    "requestBody": json_body("The changes", schema("UpdateBot")),
                    "responses": responses(
                        &[(200, json_response("The updated bot", schema("Bot")))],
                        &[400, 401, 404, 409, 413, 415, 422, 503, 500],
                    ),
                },
                "delete": {
                    "tags": ["bots"],
                    "operationId": "deleteBotNamedImport",
                    "summary": "Delete the bot named `import`",
                    "description": same_as_bot("DELETE"),
                    "responses": responses(&[(200, success())], &[401, 404, 503, 500]),
                },
            }),
        ),
    ]
}

fn upgrade_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "UpgradeBot",
            closed(
                json!({
                    "image": {
                        "type": "string",
                        "description": "A local image: a tag or a digest pin. Absent: the \
                                        configured reference again (a moved tag)",
                    },
                    "timeout_secs": {
                        "type": "integer", "minimum": 1, "maximum": 3600, "default": 300,
                        "description": "Seconds the new container has to become healthy",
                    },
                }),
                &[],
            ),
        ),
        (
            "UpgradeOutcome",
            json!({
                "type": "object",
                "required": ["result", "previous_image", "image", "bot"],
                "properties": {
                    "result": { "type": "string", "enum": ["upgraded", "rolled_back", "unchanged"] },
                    "reason": { "type": "string", "description": "Why it was rolled back" },
                    "previous_image": { "type": "string" },
                    "image": { "type": "string", "description": "The bot's image reference now" },
                    "downtime_ms": {
                        "type": "integer",
                        "description": "From stopping the old container to the new one healthy \
                                        (or the old one back)",
                    },
                    "bot": schema("Bot"),
                    "error": { "type": "string", "description": "With a rollback (409)" },
                    "code": { "type": "string", "description": "`UPGRADE_ROLLED_BACK` with a rollback" },
                },
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Components
// ---------------------------------------------------------------------------------------------

fn components() -> Value {
    let mut schemas = Map::new();
    for group in [
        bot_schemas(),
        config_schemas(),
        auth_schemas(),
        observe_schemas(),
        misc_schemas(),
        upgrade_schemas(),
    ] {
        for (name, s) in group {
            let previous = schemas.insert(name.to_string(), s);
            assert!(previous.is_none(), "schema {name} is defined twice");
        }
    }
    let error_responses: Map<String, Value> = ERROR_RESPONSES
        .iter()
        .map(|(status, name, description)| {
            let mut r = json_response(description, schema("Error"));
            if *status == 429 || *status == 503 {
                r["headers"] = json!({ "Retry-After": {
                    "description": "Seconds to wait before trying again",
                    "schema": { "type": "integer", "minimum": 0 },
                }});
            }
            (name.to_string(), r)
        })
        .collect();
    json!({
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": format!(
                    "A session token from `POST /api/login` (`{SESSION_TOKEN_PREFIX}...`) or an \
                     API token from `POST /api/tokens` (`{API_TOKEN_PREFIX}...`)"
                ),
            },
            "sessionCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": format!(
                    "The dashboard's session cookie (a session token). POST, PUT, PATCH and \
                     DELETE requests authenticated by it must also send the session's CSRF \
                     token in the `{CSRF_HEADER}` header (403 otherwise)."
                ),
            },
        },
        "parameters": parameters(),
        "responses": error_responses,
        "schemas": schemas,
    })
}

fn parameters() -> Value {
    json!({
        "BotId": {
            "name": "id", "in": "path", "required": true,
            "description": "Bot id",
            "schema": schema("BotId"),
        },
        "SecretName": {
            "name": "name", "in": "path", "required": true,
            "description": "Secret name",
            "schema": schema("SecretName"),
        },
        "TokenId": {
            "name": "id", "in": "path", "required": true,
            "description": "API token id",
            "schema": { "type": "string" },
        },
    })
}

/// `Observed`: what Docker and botmaker see of a bot (also flattened into `Bot`).
fn observed_properties() -> Value {
    json!({
        "state": {
            "type": "string",
            "enum": ["created", "running", "stopped", "error", "crash_loop", "missing"],
            "description": "Derived state; `missing` when the bot has no container",
        },
        "health": {
            "type": "string",
            "enum": ["none", "starting", "healthy", "unhealthy"],
            "description": "botmaker's HTTP probe when configured, else Docker's HEALTHCHECK",
        },
        "exit_code": { "type": ["integer", "null"], "description": "Exit code of the last run" },
        "restart_count": { "type": "integer", "description": "Restarts by Docker's policy" },
        "oom_killed": { "type": "boolean", "description": "The OOM killer ended the last run" },
        "container_id": { "type": ["string", "null"] },
        "image_id": { "type": ["string", "null"], "description": "Image actually running" },
        "started_at": nullable_timestamp("When the current run started"),
    })
}

fn bot_schemas() -> Vec<(&'static str, Value)> {
    let mut bot = json!({
        "id": schema("BotId"),
        "name": { "type": "string", "description": "Display name" },
        "template": { "type": "string", "description": "Template it was made from" },
        "image": { "type": "string", "description": "Image reference" },
        "command": {
            "type": ["array", "null"],
            "items": { "type": "string" },
            "description": "Command override (exec form)",
        },
        "env": { "type": "object", "additionalProperties": { "type": "string" } },
        "secrets": string_list("Names of its secrets (values are never returned)"),
        "ports": { "type": "array", "items": schema("Port") },
        "limits": schema("Limits"),
        "network": {
            "type": ["string", "null"],
            "description": "Docker network, when not the default bridge",
        },
        "health_check": nullable(schema("HealthCheck")),
        "settings": { "description": "Template settings" },
        "desired_state": {
            "type": "string",
            "enum": ["running", "stopped"],
            "description": "What the user wants; the reconciler makes Docker match it",
        },
        "created_at": timestamp("When the bot was created"),
        "updated_at": timestamp("When its configuration last changed"),
        "image_drift": {
            "type": "boolean",
            "description": "The configured image reference now names another local image than \
                            the container runs: an upgrade would replace it",
        },
    });
    if let (Some(b), Value::Object(o)) = (bot.as_object_mut(), observed_properties()) {
        b.extend(o);
    }
    vec![
        ("Bot", all_required(bot)),
        ("Observed", all_required(observed_properties())),
        (
            "BotList",
            all_required(json!({ "bots": { "type": "array", "items": schema("Bot") } })),
        ),
        (
            "BotEvent",
            json!({
                "type": "object",
                "required": ["id", "kind", "at"],
                "properties": {
                    "id": schema("BotId"),
                    "kind": { "type": "string", "enum": ["state", "created", "updated", "deleted"] },
                    "observed": {
                        "allOf": [schema("Observed")],
                        "description": "Observed state after the change (absent for `deleted`)",
                    },
                    "at": timestamp("When botmaker noticed"),
                },
            }),
        ),
        (
            "BotId",
            json!({
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_BOT_ID_LEN,
                "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                "description": "A DNS label: lowercase letters, digits and '-', not at either \
                                end; also the container's hostname",
            }),
        ),
        (
            "SecretName",
            json!({
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_SECRET_NAME_LEN,
                "pattern": "^[A-Z][A-Z0-9_]*$",
            }),
        ),
    ]
}

fn config_schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("CreateBot", create_bot_schema()),
        ("UpdateBot", update_bot_schema()),
        (
            "Port",
            closed(
                json!({
                    "container": port_number("Port inside the container"),
                    "host": {
                        "type": ["integer", "null"], "minimum": 1, "maximum": 65535,
                        "description": "Host port; Docker picks one when absent",
                    },
                    "host_ip": {
                        "type": ["string", "null"],
                        "description": "Host address (IP); `127.0.0.1` when absent",
                    },
                    "protocol": { "type": "string", "enum": ["tcp", "udp"], "default": "tcp" },
                }),
                &["container"],
            ),
        ),
        (
            "Limits",
            closed(
                json!({
                    "memory_mb": {
                        "type": ["integer", "null"], "minimum": MIN_MEMORY_MB,
                        "maximum": MAX_MEMORY_MB, "default": DEFAULT_MEMORY_MB,
                        "description": format!(
                            "Memory limit in MiB (swap capped alike); {DEFAULT_MEMORY_MB} when \
                             unset, unless the template sets its own"
                        ),
                    },
                    "cpus": {
                        "type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_CPUS,
                        "description": "CPU limit in cores; none when unset",
                    },
                    "pids": {
                        "type": ["integer", "null"], "minimum": 1, "maximum": MAX_PIDS,
                        "default": DEFAULT_PIDS,
                        "description": format!(
                            "Process (and thread) limit; {DEFAULT_PIDS} when unset"
                        ),
                    },
                }),
                &[],
            ),
        ),
        ("HealthCheck", health_check_schema()),
    ]
}

/// The probe's defaults, read from the type itself so they cannot drift.
fn health_check_schema() -> Value {
    let d: HttpProbe =
        serde_json::from_value(json!({ "port": 1 })).expect("a port is all a probe needs");
    let mut s = closed(
        json!({
            "port": port_number("Container port serving the endpoint"),
            "path": { "type": "string", "default": d.path, "description": "Path to GET" },
            "interval_secs": {
                "type": "integer", "minimum": 1, "maximum": MAX_PROBE_SECS,
                "default": d.interval_secs,
                "description": "Seconds between probes",
            },
            "start_period_secs": {
                "type": "integer", "minimum": 0, "maximum": MAX_PROBE_SECS,
                "default": d.start_period_secs,
                "description": "Seconds after start before failures count",
            },
            "failure_threshold": {
                "type": "integer", "minimum": 1, "maximum": MAX_PROBE_FAILURES,
                "default": d.failure_threshold,
                "description": "Consecutive failures before the bot is `unhealthy`",
            },
        }),
        &["port"],
    );
    s["description"] = json!(
        "An HTTP probe botmaker runs against the bot; any 2xx answer is healthy. Cheaper for \
         the daemon than a Docker HEALTHCHECK."
    );
    s
}

fn display_name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN })
}

fn env_map() -> Value {
    json!({
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": "string" },
        "description": "Non-secret environment",
    })
}

fn secret_map() -> Value {
    json!({
        "type": "object",
        "propertyNames": schema("SecretName"),
        "additionalProperties": { "type": "string", "minLength": 1, "maxLength": MAX_SECRET_LEN },
        "description": format!(
            "Secrets, name → value (1 to {MAX_SECRET_LEN} bytes each): written to files in \
             the bot's secrets directory, never to its environment or the database"
        ),
    })
}

fn network() -> Value {
    json!({
        "type": ["string", "null"],
        "pattern": "^[A-Za-z0-9_.-]{1,128}$",
        "description": "Docker network to attach to: the default bridge when absent, `none` for \
                        no network. `host` is refused unless the server runs with \
                        `--allow-host-network`: it would give the bot the host's network \
                        stack, botmaker's own API on 127.0.0.1 included.",
    })
}

fn command() -> Value {
    json!({ "type": ["array", "null"], "items": { "type": "string" } })
}

fn create_bot_schema() -> Value {
    let mut s = closed(
        json!({
            "id": schema("BotId"),
            "name": { "anyOf": [display_name(), { "type": "null" }], "description": "Defaults to the id" },
            "template": {
                "type": ["string", "null"],
                "enum": TEMPLATE_NAMES.iter().map(|t| json!(t)).chain([Value::Null]).collect::<Vec<_>>(),
                "default": crate::bots::spec::DEFAULT_TEMPLATE,
            },
            "image": {
                "type": ["string", "null"],
                "description": "Image reference, already present on the engine (botmaker never pulls)",
            },
            "command": command(),
            "env": env_map(),
            "secrets": secret_map(),
            "ports": { "type": "array", "items": schema("Port") },
            "limits": schema("Limits"),
            "network": network(),
            "health_check": nullable(schema("HealthCheck")),
            "settings": { "description": "Template-specific settings (for `openclaw`: provider, model, channels, persona...)" },
            "start": { "type": "boolean", "default": true, "description": "Start the bot once created" },
        }),
        &["id"],
    );
    s["description"] = json!("A new bot. Unknown fields are rejected.");
    s["examples"] = json!([{
        "id": "support-bot",
        "name": "Support bot",
        "template": "generic",
        "image": "mybot:1.0",
        "command": ["python", "bot.py"],
        "env": { "LOG_LEVEL": "info" },
        "secrets": { "OPENAI_API_KEY": "sk-..." },
        "ports": [{ "container": 8080, "host": 18080, "host_ip": "127.0.0.1", "protocol": "tcp" }],
        "limits": { "memory_mb": 512, "cpus": 1.5, "pids": 256 },
        "network": "bots",
        "health_check": {
            "port": 8080, "path": "/healthz", "interval_secs": 30,
            "start_period_secs": 180, "failure_threshold": 3,
        },
        "settings": {},
        "start": true,
    }]);
    s
}

fn update_bot_schema() -> Value {
    let mut s = closed(
        json!({
            "name": { "anyOf": [display_name(), { "type": "null" }] },
            "image": { "type": ["string", "null"] },
            "command": {
                "type": ["array", "null"],
                "items": { "type": "string" },
                "description": "`[]` clears it (the image's default)",
            },
            "env": { "anyOf": [env_map(), { "type": "null" }], "description": "Replaces the whole environment" },
            "secrets": { "anyOf": [secret_map(), { "type": "null" }], "description": "Secrets to set; others are kept" },
            "ports": { "type": ["array", "null"], "items": schema("Port"), "description": "Replaces the ports" },
            "limits": nullable(schema("Limits")),
            "settings": { "description": "Replaces the template settings" },
            "apply": {
                "type": "boolean", "default": true,
                "description": "Recreate the container now so the change takes effect",
            },
        }),
        &[],
    );
    s["description"] = json!(
        "Changes to a bot: every field is optional and a present one replaces the stored value. \
         Unknown fields are rejected."
    );
    s["examples"] = json!([{
        "name": "Support bot v2",
        "image": "mybot:1.1",
        "command": [],
        "env": { "LOG_LEVEL": "debug" },
        "secrets": { "OPENAI_API_KEY": "sk-..." },
        "ports": [{ "container": 8080 }],
        "limits": { "memory_mb": 1024 },
        "settings": {},
        "apply": true,
    }]);
    s
}

fn auth_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Login",
            closed(
                json!({ "password": { "type": "string", "minLength": 1 } }),
                &["password"],
            ),
        ),
        (
            "Session",
            all_required(json!({
                "token": { "type": "string", "description": "Send as `Authorization: Bearer <token>`" },
                "expires_at": timestamp("When the session ends"),
            })),
        ),
        (
            "Token",
            all_required(json!({
                "id": { "type": "string", "description": "Public id, used to revoke it" },
                "name": { "type": "string" },
                "created_at": timestamp("When it was issued"),
                "last_used_at": nullable_timestamp("When it last authenticated a request"),
            })),
        ),
        (
            "TokenList",
            all_required(json!({ "tokens": { "type": "array", "items": schema("Token") } })),
        ),
        (
            "CreateToken",
            closed(
                json!({ "name": {
                    "type": "string", "minLength": 1, "maxLength": 64,
                    "pattern": TOKEN_NAME_PATTERN,
                    "description": "A label (\"ci\", \"laptop\"...): 1-64 printable characters \
                                    (no control characters, not only spaces; surrounding spaces \
                                    are trimmed)",
                }}),
                &["name"],
            ),
        ),
        (
            "NewToken",
            all_required(json!({
                "id": { "type": "string" },
                "name": { "type": "string" },
                "token": { "type": "string", "description": "The token: shown this once only" },
                "created_at": timestamp("When it was issued"),
            })),
        ),
    ]
}

fn stats_properties() -> Value {
    json!({
        "read": nullable_timestamp("When the later of the two readings was taken"),
        "cpu_percent": { "type": "number", "description": "Percent of one core (200 = two busy cores)" },
        "memory_bytes": { "type": "integer", "description": "Memory in use, page cache excluded" },
        "memory_limit_bytes": { "type": "integer" },
        "memory_percent": { "type": "number" },
        "network_rx_bytes": { "type": "integer" },
        "network_tx_bytes": { "type": "integer" },
        "pids": { "type": "integer", "description": "Processes in the container" },
    })
}

fn observe_schemas() -> Vec<(&'static str, Value)> {
    let mut bot_stats = all_required(stats_properties());
    bot_stats["properties"]["id"] = schema("BotId");
    bot_stats["required"]
        .as_array_mut()
        .expect("a list")
        .push(json!("id"));
    vec![
        (
            "LogLine",
            all_required(json!({
                "stream": { "type": "string", "enum": ["stdout", "stderr"] },
                "timestamp": nullable_timestamp("When Docker received the line"),
                "message": { "type": "string", "description": "The text, without its newline" },
            })),
        ),
        (
            "LogLines",
            all_required(json!({ "lines": { "type": "array", "items": schema("LogLine") } })),
        ),
        ("Stats", all_required(stats_properties())),
        ("BotStats", bot_stats),
        (
            "StatsList",
            all_required(json!({ "stats": { "type": "array", "items": schema("BotStats") } })),
        ),
        (
            "BotStatsHistory",
            all_required(json!({
                "id": schema("BotId"),
                "latest": nullable(schema("Stats")),
                "history": {
                    "type": "array", "items": schema("Stats"),
                    "description": "Recent samples, oldest first",
                },
                "memory_limit_bytes": {
                    "type": ["integer", "null"],
                    "description": "The bot's configured memory limit",
                },
            })),
        ),
        (
            "Health",
            all_required(json!({
                "status": { "type": "string", "enum": ["ok", "degraded"] },
                "database": { "type": "string", "enum": ["ok", "unavailable"] },
                "docker": { "type": "string", "enum": ["ok", "unavailable"] },
                "stats": {
                    "type": "object",
                    "description": "Where the stats sampler reads: `source` is `cgroupfs` (engine on \
                                    this host) or `docker_api`, with `cgroup_version`, \
                                    `fallback_reason` and the bots each covered last round",
                },
                "version": { "type": "string" },
                "timestamp": timestamp("When the check ran"),
            })),
        ),
    ]
}

fn orphan_lists() -> Value {
    json!({
        "containers": string_list("Bot ids of managed containers with no bot"),
        "secrets": string_list("Secrets directories with no bot"),
        "workspaces": string_list("Workspace directories with no bot"),
    })
}

fn misc_schemas() -> Vec<(&'static str, Value)> {
    let mut orphans = orphan_lists();
    orphans["total"] = json!({ "type": "integer", "minimum": 0 });
    vec![
        (
            "Error",
            json!({
                "type": "object",
                "required": ["error", "code"],
                "properties": {
                    "error": { "type": "string", "description": "What went wrong, for humans" },
                    "code": { "type": "string", "description": "Stable machine-readable code" },
                    "fields": schema("FieldErrors"),
                },
            }),
        ),
        (
            "FieldErrors",
            json!({
                "type": "object",
                "additionalProperties": { "type": "array", "items": { "type": "string" } },
                "description": "Problems by field path (`env.FOO`, `ports[0].host`...)",
            }),
        ),
        (
            "Success",
            all_required(json!({ "success": { "type": "boolean", "const": true } })),
        ),
        (
            "SecretNames",
            all_required(json!({ "secrets": string_list("Secret names, sorted") })),
        ),
        (
            "SecretValue",
            closed(
                json!({ "value": { "type": "string", "minLength": 1, "maxLength": MAX_SECRET_LEN } }),
                &["value"],
            ),
        ),
        (
            "SecretSet",
            all_required(json!({
                "success": { "type": "boolean", "const": true },
                "name": { "type": "string" },
            })),
        ),
        ("Orphans", all_required(orphans)),
        (
            "Cleanup",
            all_required(json!({
                "removed": all_required(orphan_lists()),
                "total": { "type": "integer", "minimum": 0 },
            })),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::*;

    const METHODS: &[&str] = &[
        "get", "post", "put", "patch", "delete", "head", "options", "trace",
    ];

    /// Calls chained on a method router that add no method.
    const NEUTRAL_CALLS: &[&str] = &["layer", "route_layer", "with_state", "fallback"];

    /// A token of Rust source, as far as finding routes needs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Tok {
        Ident(String),
        Str(String),
        Punct(char),
    }

    /// Splits Rust source into identifiers, string literals and punctuation, dropping comments,
    /// whitespace and character literals.
    fn tokenize(src: &str) -> Vec<Tok> {
        let c: Vec<char> = src.chars().collect();
        let at = |i: usize| c.get(i).copied().unwrap_or('\0');
        let mut out = Vec::new();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch.is_whitespace() {
                i += 1;
            } else if ch == '/' && at(i + 1) == '/' {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            } else if ch == '/' && at(i + 1) == '*' {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            } else if ch == '"' {
                let (s, next) = string_at(&c, i + 1);
                out.push(Tok::Str(s));
                i = next;
            } else if ch == '\'' {
                if at(i + 1) == '\\' {
                    // An escaped character literal: up to its closing quote.
                    i += 3;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    // A lifetime: its name follows as an identifier.
                    i += 1;
                }
            } else if ch.is_alphanumeric() || ch == '_' {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                let ident: String = c[start..i].iter().collect();
                let raw = matches!(ident.as_str(), "r" | "br" | "cr");
                if raw && (at(i) == '"' || at(i) == '#') {
                    let mut hashes = 0;
                    while at(i + hashes) == '#' {
                        hashes += 1;
                    }
                    if at(i + hashes) == '"' {
                        let (s, next) = raw_string_at(&c, i + hashes + 1, hashes);
                        out.push(Tok::Str(s));
                        i = next;
                    } else {
                        // A raw identifier (`r#type`): read on as an identifier.
                        i += hashes;
                    }
                } else if matches!(ident.as_str(), "b" | "c") && at(i) == '"' {
                    let (s, next) = string_at(&c, i + 1);
                    out.push(Tok::Str(s));
                    i = next;
                } else if ident == "b" && at(i) == '\'' {
                    // A byte literal: the character-literal branch skips it.
                } else {
                    out.push(Tok::Ident(ident));
                }
            } else {
                out.push(Tok::Punct(ch));
                i += 1;
            }
        }
        out
    }

    /// The string whose contents start at `i`, and the index after its closing quote.
    fn string_at(c: &[char], mut i: usize) -> (String, usize) {
        let mut s = String::new();
        while i < c.len() && c[i] != '"' {
            if c[i] == '\\' {
                i += 1;
            }
            if let Some(&ch) = c.get(i) {
                s.push(ch);
            }
            i += 1;
        }
        (s, i + 1)
    }

    /// The raw string (closed by `"` and `hashes` `#`) whose contents start at `i`.
    fn raw_string_at(c: &[char], mut i: usize, hashes: usize) -> (String, usize) {
        let start = i;
        while i < c.len() {
            if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                return (c[start..i].iter().collect(), i + 1 + hashes);
            }
            i += 1;
        }
        (c[start..].iter().collect(), c.len())
    }

    /// The index after the group that opens at `open` (any bracket kind).
    fn skip_group(t: &[Tok], open: usize) -> usize {
        let mut depth = 0usize;
        for (k, tok) in t.iter().enumerate().skip(open) {
            match tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
        }
        t.len()
    }

    /// Drops every item marked `#[cfg(test)]` (test routers are not the API).
    fn strip_test_items(t: Vec<Tok>) -> Vec<Tok> {
        let marker: Vec<Tok> = tokenize("#[cfg(test)]");
        let mut out = Vec::new();
        let mut i = 0;
        while i < t.len() {
            if !t[i..].starts_with(&marker) {
                out.push(t[i].clone());
                i += 1;
                continue;
            }
            i += marker.len();
            while i < t.len() {
                match t[i] {
                    Tok::Punct('{') => {
                        i = skip_group(&t, i);
                        break;
                    }
                    Tok::Punct(';') => {
                        i += 1;
                        break;
                    }
                    Tok::Punct('(' | '[') => i = skip_group(&t, i),
                    _ => i += 1,
                }
            }
        }
        out
    }

    fn is_documented_path(path: &str) -> bool {
        path == "/health" || path == "/api" || path.starts_with("/api/")
    }

    /// axum's `{*rest}` is OpenAPI's `{rest}`; `{id}` is the same in both.
    fn openapi_path(axum_path: &str) -> String {
        axum_path.replace("{*", "{")
    }

    /// The methods of the method router starting at `k` (`get(h).post(h2)`, possibly
    /// `axum::routing::get(h)`), checking that the `.route(` call ends right after it.
    fn method_chain(t: &[Tok], mut k: usize) -> Result<Vec<String>, String> {
        while let (Some(Tok::Ident(_)), Some(Tok::Punct(':')), Some(Tok::Punct(':'))) =
            (t.get(k), t.get(k + 1), t.get(k + 2))
        {
            k += 3;
        }
        let mut methods = Vec::new();
        let mut first = true;
        loop {
            let (Some(Tok::Ident(name)), Some(Tok::Punct('('))) = (t.get(k), t.get(k + 1)) else {
                return Err(format!(
                    "expected a method router such as `get(handler)`, found {:?}",
                    t.get(k)
                ));
            };
            let method = name.strip_suffix("_service").unwrap_or(name);
            if METHODS.contains(&method) {
                methods.push(method.to_string());
            } else if first || !NEUTRAL_CALLS.contains(&name.as_str()) {
                return Err(format!(
                    "`{name}(...)` does not name one HTTP method: extend the route check"
                ));
            }
            k = skip_group(t, k + 1);
            first = false;
            match (t.get(k), t.get(k + 1)) {
                (Some(Tok::Punct('.')), Some(Tok::Ident(_))) => k += 1,
                _ => break,
            }
        }
        match (t.get(k), t.get(k + 1)) {
            (Some(Tok::Punct(')')), _) | (Some(Tok::Punct(',')), Some(Tok::Punct(')'))) => {
                Ok(methods)
            }
            other => Err(format!("unexpected {other:?} after the method router")),
        }
    }

    /// Every `(path, method)` that `.route("PATH", get(h).post(h2)...)` calls in `src` register
    /// (outside `#[cfg(test)]` items), for the paths the document must describe.
    fn routes_in(file: &str, src: &str) -> Vec<(String, String)> {
        let t = strip_test_items(tokenize(src));
        let mut out = Vec::new();
        let mut i = 0;
        while i + 2 < t.len() {
            let (Tok::Punct('.'), Tok::Ident(call), Tok::Punct('(')) =
                (&t[i], &t[i + 1], &t[i + 2])
            else {
                i += 1;
                continue;
            };
            let path = match t.get(i + 3) {
                Some(Tok::Str(p)) => Some(p.as_str()),
                _ => None,
            };
            match call.as_str() {
                "route" => {
                    let path = path.unwrap_or_else(|| {
                        panic!("{file}: a `.route(` whose path is not a string literal")
                    });
                    if is_documented_path(path) {
                        assert_eq!(t.get(i + 4), Some(&Tok::Punct(',')), "{file}: route {path}");
                        let methods = method_chain(&t, i + 5)
                            .unwrap_or_else(|e| panic!("{file}: route {path}: {e}"));
                        out.extend(methods.into_iter().map(|m| (openapi_path(path), m)));
                    }
                    i = skip_group(&t, i + 2);
                }
                "nest" | "nest_service" | "route_service" => {
                    if let Some(p) = path.filter(|p| is_documented_path(p)) {
                        panic!(
                            "{file}: `.{call}(\"{p}\", ...)`: the route check cannot see through it"
                        );
                    }
                    i += 3;
                }
                _ => i += 1,
            }
        }
        out
    }

    /// The router sources: the known files (so a change to them rebuilds this test), plus any
    /// other `.rs` file under `src/http` found at test time.
    fn router_sources() -> BTreeMap<String, String> {
        let mut files: BTreeMap<String, String> = [
            ("auth.rs", include_str!("auth.rs")),
            ("bots.rs", include_str!("bots.rs")),
            ("error.rs", include_str!("error.rs")),
            ("mod.rs", include_str!("mod.rs")),
            ("observe.rs", include_str!("observe.rs")),
            ("openapi.rs", include_str!("openapi.rs")),
        ]
        .into_iter()
        .map(|(name, src)| (name.to_string(), src.to_string()))
        .collect();
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http"));
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let name = path
                    .strip_prefix(root)
                    .expect("under src/http")
                    .to_string_lossy()
                    .into_owned();
                files.entry(name).or_insert_with(|| {
                    std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
                });
            }
        }
        files
    }

    fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("a path item");
                item.keys()
                    .filter(|k| METHODS.contains(&k.as_str()))
                    .map(move |m| (path.clone(), m.clone()))
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented() {
        let mut in_source = BTreeSet::new();
        for (file, src) in router_sources() {
            for route in routes_in(&file, &src) {
                assert!(in_source.insert(route.clone()), "{route:?} is routed twice");
            }
        }
        // The scanner works at all: the routes of this very file and of `/health` are found.
        assert!(in_source.contains(&("/api/openapi.json".into(), "get".into())));
        assert!(in_source.contains(&("/health".into(), "get".into())));
        assert!(in_source.contains(&("/api/bots/{id}".into(), "patch".into())));

        let documented = documented_operations(&document());
        let undocumented: Vec<_> = in_source.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&in_source).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the OpenAPI document: {undocumented:?}"
        );
        assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
    }

    /// Every `{"$ref": "#/..."}` in `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// `v`, or what it refers to.
    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{r} does not resolve")),
            None => v,
        }
    }

    /// The `{name}`s of a path template.
    fn template_params(path: &str) -> BTreeSet<String> {
        path.split('{')
            .skip(1)
            .map(|s| s.split('}').next().expect("closed").to_string())
            .collect()
    }

    #[test]
    fn document_is_well_formed() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in &all {
            assert!(
                r.starts_with("#/components/"),
                "{r} is not a local component"
            );
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
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );

        let mut operation_ids = BTreeSet::new();
        let mut public = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with('/'), "{path}");
            let shared: Vec<&Value> = item["parameters"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            for (method, op) in item.as_object().expect("a path item") {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let at = format!("{method} {path}");
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(operation_ids.insert(id.to_string()), "{at}: duplicate {id}");
                assert!(op["summary"].is_string(), "{at}: no summary");

                // Path parameters match the template exactly, and are required.
                let own: Vec<&Value> = op["parameters"]
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let mut declared = BTreeSet::new();
                for p in shared.iter().chain(&own) {
                    let p = resolve(&doc, p);
                    let name = p["name"].as_str().expect("a parameter name");
                    assert!(
                        p["schema"].is_object(),
                        "{at}: parameter {name} has no schema"
                    );
                    if p["in"] == "path" {
                        assert_eq!(p["required"], true, "{at}: path parameter {name}");
                        declared.insert(name.to_string());
                    }
                }
                assert_eq!(declared, template_params(path), "{at}: path parameters");

                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{at}: no success response"
                );
                for (status, r) in responses {
                    assert!(status.parse::<u16>().is_ok(), "{at}: status {status}");
                    assert!(
                        resolve(&doc, r)["description"].is_string(),
                        "{at} {status}: no description"
                    );
                }

                match op.get("security") {
                    Some(s) => {
                        assert_eq!(s, &json!([]), "{at}: only `[]` overrides the global");
                        public.insert(at);
                    }
                    None => {
                        assert!(responses.contains_key("401"), "{at}: no 401");
                        let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options");
                        assert_eq!(
                            responses.contains_key("403"),
                            unsafe_method,
                            "{at}: 403 (CSRF)"
                        );
                    }
                }
            }
        }
        let expected: BTreeSet<String> = ["post /api/login", "get /health"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(public, expected, "the public operations");
        assert_eq!(
            doc["paths"]["/api/login"]["post"]["responses"]["429"]["$ref"],
            "#/components/responses/TooManyRequests"
        );
        assert!(
            doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object()
        );
        for name in [
            "Bot",
            "CreateBot",
            "UpdateBot",
            "Port",
            "Limits",
            "HealthCheck",
            "LogLine",
            "Stats",
            "Token",
            "Error",
            "Orphans",
            "Cleanup",
        ] {
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "schema {name} is missing"
            );
        }
    }

    /// The `pub` fields of `struct name` in `src`.
    fn struct_fields(src: &str, name: &str) -> BTreeSet<String> {
        let t = tokenize(src);
        let start = t
            .windows(2)
            .position(|w| w[0] == Tok::Ident("struct".into()) && w[1] == Tok::Ident(name.into()))
            .unwrap_or_else(|| panic!("no struct {name}"));
        let open = start
            + t[start..]
                .iter()
                .position(|x| *x == Tok::Punct('{'))
                .expect("a struct body");
        let end = skip_group(&t, open);
        let mut fields = BTreeSet::new();
        let mut k = open + 1;
        while k + 2 < end {
            match (&t[k], &t[k + 1], &t[k + 2]) {
                (Tok::Punct('#'), Tok::Punct('['), _) => k = skip_group(&t, k + 1),
                (Tok::Ident(p), Tok::Ident(f), Tok::Punct(':')) if p == "pub" => {
                    fields.insert(f.clone());
                    k += 3;
                }
                _ => k += 1,
            }
        }
        fields
    }

    fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    /// `value` (what the server sends) has exactly the properties of `schema`, and every
    /// required one.
    fn assert_shape(doc: &Value, schema: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).expect("serializable");
        let keys: BTreeSet<String> = value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(properties(doc, schema), keys, "schema {schema}");
        for r in doc["components"]["schemas"][schema]["required"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(keys.contains(r.as_str().expect("a name")), "{schema}: {r}");
        }
    }

    #[test]
    fn token_name_rule_is_in_the_schema() {
        let doc = document();
        let name = &doc["components"]["schemas"]["CreateToken"]["properties"]["name"];
        assert_eq!(name["minLength"], 1);
        assert_eq!(name["maxLength"], 64);
        let pattern = name["pattern"].as_str().expect("a pattern");
        // Every control character `char::is_control` refuses is outside the pattern's classes.
        assert!(
            pattern.starts_with("^[^\\u0000-\\u001f\\u007f-\\u009f]*"),
            "{pattern}"
        );
        assert!(
            pattern.contains("[^\\s"),
            "a blank name is refused too: {pattern}"
        );
        assert!(pattern.ends_with("]*$"), "{pattern}");
        for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{9f}'] {
            assert!(c.is_control());
        }
    }

    #[test]
    fn limits_state_the_bounds_and_defaults_the_server_enforces() {
        let doc = document();
        let limits = &doc["components"]["schemas"]["Limits"]["properties"];
        assert_eq!(limits["memory_mb"]["minimum"], MIN_MEMORY_MB);
        assert_eq!(limits["memory_mb"]["maximum"], MAX_MEMORY_MB);
        assert_eq!(limits["memory_mb"]["default"], DEFAULT_MEMORY_MB);
        assert_eq!(limits["pids"]["maximum"], MAX_PIDS);
        assert_eq!(limits["pids"]["default"], DEFAULT_PIDS);
        assert_eq!(limits["cpus"]["maximum"], MAX_CPUS);
        let probe = &doc["components"]["schemas"]["HealthCheck"]["properties"];
        assert_eq!(probe["interval_secs"]["maximum"], MAX_PROBE_SECS);
        assert_eq!(probe["failure_threshold"]["maximum"], MAX_PROBE_FAILURES);
        let secret = &doc["components"]["schemas"]["SecretValue"]["properties"]["value"];
        assert_eq!(secret["minLength"], 1);
    }

    #[test]
    fn request_schemas_match_the_types() {
        let doc = document();
        let spec = include_str!("../bots/spec.rs");
        for (schema, rust) in [
            ("CreateBot", "CreateBot"),
            ("UpdateBot", "UpdateBot"),
            ("Port", "PortSpec"),
            ("Limits", "LimitsSpec"),
            ("HealthCheck", "HttpProbe"),
        ] {
            assert_eq!(
                properties(&doc, schema),
                struct_fields(spec, rust),
                "schema {schema} vs struct {rust}"
            );
        }
        // The examples are accepted, and show every field.
        let create = &doc["components"]["schemas"]["CreateBot"]["examples"][0];
        serde_json::from_value::<crate::bots::CreateBot>(create.clone()).expect("CreateBot");
        let update = &doc["components"]["schemas"]["UpdateBot"]["examples"][0];
        serde_json::from_value::<crate::bots::UpdateBot>(update.clone()).expect("UpdateBot");
        for (schema, example) in [("CreateBot", create), ("UpdateBot", update)] {
            let keys: BTreeSet<String> = example
                .as_object()
                .expect("an object")
                .keys()
                .cloned()
                .collect();
            assert_eq!(properties(&doc, schema), keys, "{schema} example");
        }
    }

    #[test]
    fn response_schemas_match_what_the_server_sends() {
        use crate::bots::{
            BotEvent, BotSpec, BotState, BotView, HttpProbe, LimitsSpec, Observed, PortSpec,
        };
        use crate::docker::{Health, LogLine, LogStream, Protocol, StatsSample};
        use crate::store::{ApiTokenRow, BotRow, DesiredState};

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
        assert_shape(
            &doc,
            "Bot",
            BotView::new(&row, BotSpec::default(), observed.clone()),
        );
        assert_shape(&doc, "Observed", &observed);
        assert_shape(
            &doc,
            "BotEvent",
            BotEvent {
                id: "b".into(),
                kind: "state",
                observed: Some(observed),
                at: now,
            },
        );
        assert_shape(
            &doc,
            "Port",
            PortSpec {
                container: 80,
                host: None,
                host_ip: None,
                protocol: Protocol::Tcp,
            },
        );
        assert_shape(&doc, "Limits", LimitsSpec::default());
        let probe: HttpProbe = serde_json::from_value(json!({ "port": 80 })).expect("a probe");
        assert_shape(&doc, "HealthCheck", probe);
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
            crate::sampler::BotStats {
                id: "b".into(),
                sample: StatsSample::default(),
            },
        );
        assert_shape(
            &doc,
            "Token",
            ApiTokenRow {
                id: "t".into(),
                name: "ci".into(),
                created_at: now,
                last_used_at: None,
            },
        );
    }

    #[test]
    fn route_scanner_reads_rustfmt_layouts() {
        let src = r##"
            // .route("/api/commented", get(x))
            /* .route("/api/block", get(x)) */
            pub fn router() -> Router<AppState> {
                let s = ".route(\"/api/in-a-string\", get(x))";
                let c = '"';
                Router::new()
                    .route("/api/a", get(a).post(b))
                    .route(
                        "/api/b/{id}",
                        axum::routing::get(|| async { Json(json!({ "x": (1) })) })
                            .delete(del)
                            .layer(SomeLayer::new()),
                    )
                    .route("/api/files/{*rest}", put_service(svc),)
                    .route("/dashboard", get(page))
                    .merge(other())
            }
            #[cfg(test)]
            mod tests {
                fn t() { Router::new().route("/api/test-only", get(x)); }
            }
        "##;
        let found: BTreeSet<(String, String)> = routes_in("fixture.rs", src).into_iter().collect();
        let expected: BTreeSet<(String, String)> = [
            ("/api/a", "get"),
            ("/api/a", "post"),
            ("/api/b/{id}", "get"),
            ("/api/b/{id}", "delete"),
            ("/api/files/{rest}", "put"),
        ]
        .into_iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    #[should_panic(expected = "does not name one HTTP method")]
    fn route_scanner_refuses_what_it_cannot_read() {
        routes_in(
            "fixture.rs",
            r#"Router::new().route("/api/x", any(handler))"#,
        );
    }
}
