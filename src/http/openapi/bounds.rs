//! The bounds the server enforces, written into the document from the very constants
//! validation uses, so the two cannot disagree. (utoipa's `minimum`/`pattern` attributes take
//! literals only; stating the numbers once, here, beats copying them onto the fields.) A field
//! named here that is renamed or removed panics when the document is built, which every test
//! of the document does.

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, RefOr};

use crate::api::{DEFAULT_LOG_TAIL, MAX_TOKEN_NAME_LEN, TOKEN_NAME_PATTERN};
use crate::bots::HttpProbe;
use crate::bots::spec::{DEFAULT_TEMPLATE, MAX_STOP_TIMEOUT_SECS};
use crate::bots::template::TEMPLATE_NAMES;
use crate::bots::upgrade::{DEFAULT_UPGRADE_TIMEOUT, MAX_UPGRADE_TIMEOUT};
use crate::bots::validate::{
    DEFAULT_MEMORY_MB, DEFAULT_PIDS, MAX_CPUS, MAX_LLM_COST_PER_MONTH, MAX_LLM_REQUESTS_PER_MINUTE,
    MAX_LLM_TOKENS_PER_DAY, MAX_MEMORY_MB, MAX_NAME_LEN, MAX_PIDS, MAX_PROBE_FAILURES,
    MAX_PROBE_SECS, MAX_SECRET_LEN, MIN_MEMORY_MB,
};
use crate::secrets::{MAX_SECRET_NAME_LEN, SECRET_NAME_PATTERN};

/// What an environment variable name may look like (`validate::check_env`).
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// What a Docker network name may look like (`validate::check_network`).
pub const NETWORK_PATTERN: &str = "^[A-Za-z0-9_.-]{1,128}$";

/// Writes the enforced bounds, defaults and patterns into the schemas of the finished
/// document.
pub struct Bounds;

impl Modify for Bounds {
    fn modify(&self, doc: &mut OpenApi) {
        let probe: HttpProbe =
            serde_json::from_value(json!({ "port": 1 })).expect("a port is all a probe needs");
        let s = &mut doc
            .components
            .as_mut()
            .expect("the document has components")
            .schemas;
        let mut at = |schema: &str, field: &str, set: &dyn Fn(&mut Object)| {
            set(property(s, schema, field));
        };

        for schema in ["Port", "HealthCheck"] {
            let field = if schema == "Port" {
                "container"
            } else {
                "port"
            };
            at(schema, field, &|o| range(o, 1, 65535));
        }
        at("Port", "host", &|o| range(o, 1, 65535));

        at("Limits", "memory_mb", &|o| {
            range(o, MIN_MEMORY_MB, MAX_MEMORY_MB);
            o.default = Some(json!(DEFAULT_MEMORY_MB));
        });
        at("Limits", "cpus", &|o| {
            o.exclusive_minimum = Some(0.into());
            o.maximum = Some(MAX_CPUS.into());
        });
        at("Limits", "pids", &|o| {
            range(o, 1, MAX_PIDS as u64);
            o.default = Some(json!(DEFAULT_PIDS));
        });

        at("Limits", "llm_tokens_per_day", &|o| {
            range(o, 0, MAX_LLM_TOKENS_PER_DAY)
        });
        at("Limits", "llm_requests_per_minute", &|o| {
            range(o, 0, MAX_LLM_REQUESTS_PER_MINUTE)
        });
        at("Limits", "llm_cost_per_month", &|o| {
            o.minimum = Some(0.into());
            o.maximum = Some(MAX_LLM_COST_PER_MONTH.into());
        });
        at("UpgradeBot", "timeout_secs", &|o| {
            range(o, 1, MAX_UPGRADE_TIMEOUT.as_secs());
            o.default = Some(json!(DEFAULT_UPGRADE_TIMEOUT.as_secs()));
        });

        at("HealthCheck", "path", &|o| {
            o.default = Some(json!(probe.path));
        });
        at("HealthCheck", "interval_secs", &|o| {
            range(o, 1, MAX_PROBE_SECS);
            o.default = Some(json!(probe.interval_secs));
        });
        at("HealthCheck", "start_period_secs", &|o| {
            range(o, 0, MAX_PROBE_SECS);
            o.default = Some(json!(probe.start_period_secs));
        });
        at("HealthCheck", "failure_threshold", &|o| {
            range(o, 1, u64::from(MAX_PROBE_FAILURES));
            o.default = Some(json!(probe.failure_threshold));
        });

        for schema in ["CreateBot", "UpdateBot"] {
            at(schema, "name", &|o| {
                o.min_length = Some(1);
                o.max_length = Some(MAX_NAME_LEN);
            });
            at(schema, "env", &|o| {
                o.property_names = Some(Box::new(pattern(ENV_NAME_PATTERN, None)));
            });
            at(schema, "secrets", &|o| {
                o.property_names = Some(Box::new(pattern(
                    SECRET_NAME_PATTERN,
                    Some(MAX_SECRET_NAME_LEN),
                )));
                o.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
                    secret_value(),
                ))));
            });
            at(schema, "network", &|o| {
                o.pattern = Some(NETWORK_PATTERN.into());
            });
        }
        for schema in ["CreateBot", "UpdateBot"] {
            at(schema, "stop_timeout_secs", &|o| {
                range(o, 1, MAX_STOP_TIMEOUT_SECS)
            });
        }
        at("CreateBot", "template", &|o| {
            let mut names: Vec<Value> = TEMPLATE_NAMES.iter().map(|t| json!(t)).collect();
            names.push(Value::Null);
            o.enum_values = Some(names);
            o.default = Some(json!(DEFAULT_TEMPLATE));
        });

        at("SecretValue", "value", &|o| {
            o.min_length = Some(1);
            o.max_length = Some(MAX_SECRET_LEN);
        });
        at("CreateToken", "name", &|o| {
            o.min_length = Some(1);
            o.max_length = Some(MAX_TOKEN_NAME_LEN);
            o.pattern = Some(TOKEN_NAME_PATTERN.into());
        });

        let logs = doc
            .paths
            .paths
            .get_mut("/api/bots/{id}/logs")
            .and_then(|item| item.get.as_mut())
            .expect("the logs operation");
        let tail = logs
            .parameters
            .iter_mut()
            .flatten()
            .find(|p| p.name == "tail")
            .expect("the tail parameter");
        if let Some(RefOr::T(Schema::Object(o))) = tail.schema.as_mut() {
            o.default = Some(json!(DEFAULT_LOG_TAIL));
        }
    }
}

fn range(o: &mut Object, min: u64, max: u64) {
    o.minimum = Some(min.into());
    o.maximum = Some(max.into());
}

fn pattern(pattern: &str, max_length: Option<usize>) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .max_length(max_length)
            .build(),
    )
}

fn secret_value() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_SECRET_LEN))
            .build(),
    )
}

/// The schema of `field` in component `schema`; panics when either is gone (a rename that
/// must be followed here).
fn property<'a>(
    schemas: &'a mut std::collections::BTreeMap<String, RefOr<Schema>>,
    schema: &str,
    field: &str,
) -> &'a mut Object {
    let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema) else {
        panic!("no object schema {schema}");
    };
    match object.properties.get_mut(field) {
        Some(RefOr::T(Schema::Object(o))) => o,
        _ => panic!("{schema} has no plain property {field}"),
    }
}
