//! The OpenAPI description of the LLM key proxy's control plane (`super::super::llm`): kept
//! beside the hand-written document until the routes carry their own annotations.

use serde_json::{Value, json};

use super::{
    PathItem, all_required, closed, json_body, json_response, param, responses, schema, success,
    timestamp,
};
use crate::llm::provider::{MAX_API_KEY_LEN, MAX_PRICE_PER_MILLION, MAX_PROVIDER_NAME_LEN};

/// The `since` query parameter of the usage routes.
fn since() -> Value {
    json!({
        "name": "since", "in": "query", "required": false,
        "description": "First UTC day counted: `YYYY-MM-DD`, or an RFC 3339 time (its UTC \
                        day); the first day of the current month when absent",
        "schema": { "type": "string" },
    })
}

pub(super) fn paths() -> Vec<PathItem> {
    vec![
        (
            "/api/providers",
            json!({
                "get": {
                    "tags": ["llm"],
                    "operationId": "listProviders",
                    "summary": "LLM providers and where the proxy listens (never a key)",
                    "responses": responses(
                        &[(200, json_response("The providers", schema("ProviderList")))],
                        &[401, 500],
                    ),
                },
                "post": {
                    "tags": ["llm"],
                    "operationId": "putProvider",
                    "summary": "Create a provider, or replace the one of that name",
                    "description": "`api_key` is write-only: kept in botmaker's secrets \
                                    store, never returned or logged. A new key takes effect at \
                                    the next request; bots change nothing. Without `api_key`, \
                                    a replace keeps the current key.",
                    "requestBody": json_body("The provider", schema("PutProvider")),
                    "responses": responses(
                        &[
                            (201, json_response("Created", schema("Provider"))),
                            (200, json_response("Replaced", schema("Provider"))),
                        ],
                        &[400, 401, 413, 415, 500],
                    ),
                },
            }),
        ),
        (
            "/api/providers/{name}",
            json!({
                "parameters": [{
                    "name": "name", "in": "path", "required": true,
                    "description": "Provider name", "schema": { "type": "string" },
                }],
                "delete": {
                    "tags": ["llm"],
                    "operationId": "deleteProvider",
                    "summary": "Delete a provider and its key",
                    "description": "Refused with 409 `PROVIDER_IN_USE` while bots hold keys for \
                                    it, unless `force=true`, which revokes them.",
                    "parameters": [{
                        "name": "force", "in": "query", "required": false,
                        "schema": { "type": "boolean", "default": false },
                    }],
                    "responses": responses(&[(200, success())], &[400, 401, 404, 409, 500]),
                },
            }),
        ),
        (
            "/api/usage",
            json!({
                "get": {
                    "tags": ["llm"],
                    "operationId": "fleetUsage",
                    "summary": "LLM tokens, requests and cost of the fleet, per bot, \
                                provider, model and day",
                    "parameters": [since()],
                    "responses": responses(
                        &[(200, json_response("Usage", schema("UsageReport")))],
                        &[400, 401, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/{id}/usage",
            json!({
                "parameters": [param("BotId")],
                "get": {
                    "tags": ["llm"],
                    "operationId": "botUsage",
                    "summary": "A bot's LLM usage, its limits and where it stands",
                    "parameters": [since()],
                    "responses": responses(
                        &[(200, json_response("Usage", schema("BotUsageReport")))],
                        &[400, 401, 404, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/{id}/llm-keys",
            json!({
                "parameters": [param("BotId")],
                "delete": {
                    "tags": ["llm"],
                    "operationId": "revokeLlmKeys",
                    "summary": "Revoke the bot's virtual LLM keys",
                    "description": "Its LLM requests get 401 until a rotation or its next \
                                    apply mints new ones. To cut a bot off for good, set \
                                    `limits.llm_requests_per_minute` to 0.",
                    "responses": responses(
                        &[(200, json_response("Revoked", schema("KeyRevocation")))],
                        &[401, 404, 503, 500],
                    ),
                },
            }),
        ),
        (
            "/api/bots/{id}/llm-keys/rotate",
            json!({
                "parameters": [param("BotId")],
                "post": {
                    "tags": ["llm"],
                    "operationId": "rotateLlmKeys",
                    "summary": "Give the bot new virtual LLM keys (the old ones stop working)",
                    "responses": responses(
                        &[(200, json_response("Rotated", schema("KeyRotation")))],
                        &[400, 401, 404, 503, 500],
                    ),
                },
            }),
        ),
    ]
}

fn totals() -> Value {
    json!({
        "requests": { "type": "integer", "minimum": 0, "description": "Requests answered (2xx)" },
        "input_tokens": { "type": "integer", "minimum": 0 },
        "output_tokens": { "type": "integer", "minimum": 0 },
        "cost": { "type": "number", "minimum": 0, "description": "In the price tables' unit" },
    })
}

fn with_totals(extra: Value) -> Value {
    let mut props = totals();
    for (k, v) in extra.as_object().expect("an object") {
        props[k] = v.clone();
    }
    all_required(props)
}

fn price_table() -> Value {
    json!({
        "type": "object",
        "description": "Price per million tokens by model; `*` prices every other model",
        "additionalProperties": closed(
            json!({
                "input": { "type": "number", "minimum": 0, "maximum": MAX_PRICE_PER_MILLION },
                "output": { "type": "number", "minimum": 0, "maximum": MAX_PRICE_PER_MILLION },
            }),
            &["input", "output"],
        ),
    })
}

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let kind = json!({ "type": "string", "enum": ["openai", "anthropic", "openai-compatible"] });
    vec![
        (
            "PutProvider",
            closed(
                json!({
                    "name": {
                        "type": "string", "minLength": 1, "maxLength": MAX_PROVIDER_NAME_LEN,
                        "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                        "description": "What bots and templates call it (an OpenClaw provider \
                                        id routes that provider's OpenClaw bots through the \
                                        proxy)",
                    },
                    "kind": kind,
                    "base_url": {
                        "type": ["string", "null"],
                        "description": "Upstream base URL with its version prefix; defaults \
                                        to https://api.openai.com/v1 or \
                                        https://api.anthropic.com/v1, required for \
                                        openai-compatible",
                    },
                    "api_key": {
                        "type": ["string", "null"], "minLength": 1, "maxLength": MAX_API_KEY_LEN,
                        "writeOnly": true,
                        "description": "The real key; never returned",
                    },
                    "prices": { "anyOf": [price_table(), { "type": "null" }] },
                }),
                &["name", "kind"],
            ),
        ),
        (
            "Provider",
            all_required(json!({
                "name": { "type": "string" },
                "kind": kind,
                "base_url": { "type": "string" },
                "has_api_key": { "type": "boolean" },
                "prices": price_table(),
                "bots": {
                    "type": "array", "items": { "type": "string" },
                    "description": "Bots holding a live virtual key for it",
                },
                "created_at": timestamp("When it was first configured"),
                "updated_at": timestamp("When it last changed"),
            })),
        ),
        (
            "ProviderList",
            all_required(json!({
                "proxy": all_required(json!({
                    "enabled": { "type": "boolean" },
                    "listen": { "type": ["string", "null"], "description": "Its address" },
                    "url": {
                        "type": ["string", "null"],
                        "description": "Its root as bots see it (http://botmaker-llm:PORT)",
                    },
                })),
                "providers": { "type": "array", "items": schema("Provider") },
            })),
        ),
        (
            "UsageRow",
            with_totals(json!({
                "bot": { "type": "string" },
                "provider": { "type": "string" },
                "model": { "type": "string" },
                "day": { "type": "string", "format": "date" },
            })),
        ),
        (
            "UsageReport",
            all_required(json!({
                "since": { "type": "string", "format": "date" },
                "totals": all_required(totals()),
                "bots": {
                    "type": "array",
                    "items": with_totals(json!({ "bot": { "type": "string" } })),
                    "description": "Most expensive first",
                },
                "rows": { "type": "array", "items": schema("UsageRow") },
            })),
        ),
        (
            "BotUsageReport",
            all_required(json!({
                "bot": { "type": "string" },
                "since": { "type": "string", "format": "date" },
                "totals": all_required(totals()),
                "rows": { "type": "array", "items": schema("UsageRow") },
                "limits": all_required(json!({
                    "llm_requests_per_minute": { "type": ["integer", "null"] },
                    "llm_tokens_per_day": { "type": ["integer", "null"] },
                    "llm_cost_per_month": { "type": ["number", "null"] },
                })),
                "current": all_required(json!({
                    "requests_this_minute": { "type": "integer" },
                    "tokens_today": { "type": "integer" },
                    "cost_this_month": { "type": "number" },
                })),
                "providers": {
                    "type": "array", "items": { "type": "string" },
                    "description": "Providers it holds a live virtual key for",
                },
            })),
        ),
        (
            "KeyRotation",
            all_required(json!({
                "rotated": { "type": "array", "items": { "type": "string" } },
                "effect": { "type": "string", "enum": ["in_place"] },
            })),
        ),
        (
            "KeyRevocation",
            all_required(json!({ "revoked": { "type": "integer", "minimum": 0 } })),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::llm::api::{KeyRevocation, KeyRotation, ProviderList, ProxyInfo};
    use crate::llm::usage::{LimitsView, UsageReport};
    use crate::llm::{BotUsageReport, BudgetState, ProviderKind, ProviderName, ProviderView};

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    /// What the server sends has exactly the properties the schema names.
    fn same_shape(schema: &Value, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap();
        assert_eq!(keys(&schema["properties"]), keys(&value), "{schema}");
    }

    #[test]
    fn schemas_match_what_the_server_sends() {
        let schemas: std::collections::BTreeMap<_, _> = schemas().into_iter().collect();
        let now = chrono::Utc::now();
        let provider = ProviderView {
            name: ProviderName::new("openai").unwrap(),
            kind: ProviderKind::Openai,
            base_url: "https://api.openai.com/v1".into(),
            has_api_key: true,
            prices: Default::default(),
            bots: vec![],
            created_at: now,
            updated_at: now,
        };
        same_shape(&schemas["Provider"], &provider);
        let list = ProviderList {
            proxy: ProxyInfo {
                enabled: true,
                listen: None,
                url: None,
            },
            providers: vec![provider],
        };
        same_shape(&schemas["ProviderList"], &list);
        same_shape(&schemas["ProviderList"]["properties"]["proxy"], &list.proxy);
        let day = now.date_naive();
        let report = UsageReport::from_rows(
            day,
            vec![crate::store::LlmUsageRow {
                bot_id: "b".into(),
                provider: "p".into(),
                model: "m".into(),
                day: "2025-01-01".into(),
                requests: 1,
                input_tokens: 1,
                output_tokens: 1,
                cost_nanos: 1,
            }],
        );
        same_shape(&schemas["UsageReport"], &report);
        same_shape(&schemas["UsageRow"], &report.rows[0]);
        same_shape(
            &schemas["UsageReport"]["properties"]["bots"]["items"],
            &report.bots[0],
        );
        let bot = BotUsageReport {
            bot: "b".into(),
            since: day,
            totals: report.totals,
            rows: vec![],
            limits: LimitsView::default(),
            current: BudgetState {
                requests_this_minute: 0,
                tokens_today: 0,
                cost_this_month: 0.0,
            },
            providers: vec![],
        };
        same_shape(&schemas["BotUsageReport"], &bot);
        same_shape(
            &schemas["BotUsageReport"]["properties"]["limits"],
            bot.limits,
        );
        same_shape(
            &schemas["BotUsageReport"]["properties"]["current"],
            bot.current,
        );
        same_shape(
            &schemas["KeyRotation"],
            KeyRotation {
                rotated: vec![],
                effect: "in_place".into(),
            },
        );
        same_shape(&schemas["KeyRevocation"], KeyRevocation { revoked: 0 });
        let put: BTreeSet<String> = ["name", "kind", "base_url", "api_key", "prices"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(keys(&schemas["PutProvider"]["properties"]), put);
    }
}
