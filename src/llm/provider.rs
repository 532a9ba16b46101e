//! Providers as users configure them: a name, the API they speak, where it lives, and what a
//! million tokens cost. Validation happens here, once, into [`ProviderSpec`]; the real API key
//! travels beside it as a [`SecretValue`] and is never part of anything serialized.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::BotId;
use crate::field_errors::FieldErrors;

/// Longest provider name.
pub const MAX_PROVIDER_NAME_LEN: usize = 32;
/// Longest base URL.
const MAX_BASE_URL_LEN: usize = 2048;
/// Most models a price table may list.
pub const MAX_PRICED_MODELS: usize = 1000;
/// Longest model name (in a price table, and as recorded in usage).
pub const MAX_MODEL_LEN: usize = 128;
/// Highest price per million tokens accepted: far above any real one, low enough that a cost
/// in billionths stays exact in 64 bits for any usage a bot can run up.
pub const MAX_PRICE_PER_MILLION: f64 = 100_000.0;
/// Longest real API key accepted.
pub const MAX_API_KEY_LEN: usize = 8 * 1024;

/// A provider's name: what bots and templates refer to it by (an OpenClaw provider id such as
/// `openai` or `anthropic`, or any name of your own for a generic bot). A DNS label of at most
/// [`MAX_PROVIDER_NAME_LEN`] characters, so it is safe as a directory name and in URLs.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ProviderName(#[serde(deserialize_with = "provider_name")] String);

fn provider_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    ProviderName::new(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

impl ProviderName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.chars().count() > MAX_PROVIDER_NAME_LEN {
            return Err(format!(
                "must be at most {MAX_PROVIDER_NAME_LEN} characters"
            ));
        }
        BotId::new(name)
            .map(|_| Self(name.to_string()))
            .map_err(|e| e.to_string().replace("bot id", "provider name").to_string())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which its real API key sits in the secrets store (the store is laid out
    /// by DNS-label directory names; a provider name is one).
    pub(crate) fn store_key(&self) -> BotId {
        BotId::new(self.0.as_str()).expect("a provider name is a valid DNS label")
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The API a provider speaks, which decides the routes the proxy opens to it, how the key is
/// sent upstream and the shape of error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI itself: chat completions, responses, embeddings, models; `Authorization: Bearer`.
    Openai,
    /// Anthropic's Messages API; `x-api-key`.
    Anthropic,
    /// Any server speaking OpenAI's chat completions (vLLM, Ollama, OpenRouter, Groq, ...).
    OpenaiCompatible,
}

impl ProviderKind {
    /// Every kind, for messages and forms.
    pub const ALL: &[ProviderKind] = &[
        ProviderKind::Openai,
        ProviderKind::Anthropic,
        ProviderKind::OpenaiCompatible,
    ];

    /// The stored and serialized form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::OpenaiCompatible => "openai-compatible",
        }
    }

    /// Parses [`ProviderKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The upstream base URL when none is given; `openai-compatible` has none.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::Openai => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com/v1"),
            Self::OpenaiCompatible => None,
        }
    }

    /// Whether it speaks Anthropic's wire format (routes, key header, error shape).
    pub fn is_anthropic(self) -> bool {
        self == Self::Anthropic
    }

    /// Whether it works without an API key (a local server may need none).
    pub fn key_optional(self) -> bool {
        self == Self::OpenaiCompatible
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a million tokens of one model cost, input and output, in the currency of your choice
/// (usage reports the sum in the same unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input (prompt) tokens.
    pub input: f64,
    /// Per million output (completion) tokens.
    pub output: f64,
}

/// Prices by model name; the key `*` prices every model not listed.
pub type PriceTable = BTreeMap<String, Price>;

/// Billionths of a currency unit: costs are summed as integers, so they add up exactly.
pub const NANOS_PER_UNIT: f64 = 1e9;

/// The price of `model` in `table`: its own entry, else `*`, else none.
pub fn price_of<'a>(table: &'a PriceTable, model: &str) -> Option<&'a Price> {
    table.get(model).or_else(|| table.get("*"))
}

/// The cost of a request in billionths of the price's unit.
pub fn cost_nanos(price: &Price, input_tokens: u64, output_tokens: u64) -> u64 {
    // price per million tokens = price × 1000 nanos per token; rounded once, per request.
    let nanos =
        price.input * 1000.0 * input_tokens as f64 + price.output * 1000.0 * output_tokens as f64;
    nanos.round().clamp(0.0, u64::MAX as f64) as u64
}

/// Body of `POST /api/providers`: creates the provider, or replaces the one of that name.
/// Unknown fields are refused (a typo must not silently do nothing).
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProvider {
    /// The name bots refer to it by.
    pub name: String,
    /// `openai`, `anthropic` or `openai-compatible`.
    pub kind: String,
    /// Upstream base URL including the version prefix (`https://api.openai.com/v1`); defaults
    /// per kind, required for `openai-compatible`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The real API key: kept in botmaker's secrets store, never returned or logged. On a
    /// replace, leaving it out keeps the current key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Prices per million tokens by model (`*` for any other model).
    #[serde(default)]
    pub prices: Option<PriceTable>,
}

impl fmt::Debug for PutProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("prices", &self.prices)
            .finish()
    }
}

/// A validated provider, as stored (no key).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSpec {
    /// Its name.
    pub name: ProviderName,
    /// Its API.
    pub kind: ProviderKind,
    /// Upstream base URL, without a trailing slash.
    pub base_url: String,
    /// Prices per million tokens.
    pub prices: PriceTable,
}

impl PutProvider {
    /// Checks every field, reporting each problem under its name.
    pub fn validate(&self, errors: &mut FieldErrors) -> Option<ProviderSpec> {
        let name = ProviderName::new(&self.name)
            .map_err(|e| errors.add("name", e))
            .ok();
        let kind = ProviderKind::parse(&self.kind);
        if kind.is_none() {
            let kinds: Vec<_> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            errors.add("kind", format!("must be one of {}", kinds.join(", ")));
        }
        let base_url = match (
            &self.base_url,
            kind.and_then(ProviderKind::default_base_url),
        ) {
            (Some(url), _) => check_base_url(url, errors),
            (None, Some(default)) => Some(default.to_string()),
            (None, None) => {
                if kind.is_some() {
                    errors.add(
                        "base_url",
                        "an openai-compatible provider needs its base URL, e.g. \
                         http://vllm.internal:8000/v1",
                    );
                }
                None
            }
        };
        if let Some(key) = &self.api_key {
            if key.trim().is_empty() {
                errors.add(
                    "api_key",
                    "must not be empty (leave it out to keep the current key)",
                );
            } else if key.len() > MAX_API_KEY_LEN {
                errors.add(
                    "api_key",
                    format!("must be at most {MAX_API_KEY_LEN} bytes"),
                );
            } else if key.chars().any(|c| c.is_control() || c == ' ') {
                errors.add("api_key", "must not contain spaces or control characters");
            }
        }
        let prices = self.prices.clone().unwrap_or_default();
        check_prices(&prices, errors);
        Some(ProviderSpec {
            name: name?,
            kind: kind?,
            base_url: base_url?,
            prices,
        })
    }
}

fn check_base_url(url: &str, errors: &mut FieldErrors) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let ok = url.len() <= MAX_BASE_URL_LEN
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'));
    if ok && reqwest::Url::parse(trimmed).is_ok() {
        Some(trimmed.to_string())
    } else {
        errors.add(
            "base_url",
            "must be an http:// or https:// URL without spaces, query or fragment, e.g. \
             https://api.openai.com/v1",
        );
        None
    }
}

/// Whether `model` may be a model name: 1-128 of letters, digits and `._:/@-`.
pub fn is_valid_model(model: &str) -> bool {
    (1..=MAX_MODEL_LEN).contains(&model.len())
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@-".contains(&b))
}

fn check_prices(prices: &PriceTable, errors: &mut FieldErrors) {
    if prices.len() > MAX_PRICED_MODELS {
        errors.add(
            "prices",
            format!("at most {MAX_PRICED_MODELS} models may be priced"),
        );
    }
    for (model, price) in prices {
        if model != "*" && !is_valid_model(model) {
            errors.add(
                format!("prices.{model}"),
                format!(
                    "a model name is 1-{MAX_MODEL_LEN} letters, digits and ._:/@- (or * for \
                     every other model)"
                ),
            );
        }
        for (what, v) in [("input", price.input), ("output", price.output)] {
            if !(v.is_finite() && (0.0..=MAX_PRICE_PER_MILLION).contains(&v)) {
                errors.add(
                    format!("prices.{model}.{what}"),
                    format!("must be a price per million tokens from 0 to {MAX_PRICE_PER_MILLION}"),
                );
            }
        }
    }
}

/// A provider as the API shows it: never the key, only whether there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// Its name.
    pub name: ProviderName,
    /// Its API.
    pub kind: ProviderKind,
    /// Upstream base URL.
    pub base_url: String,
    /// Whether botmaker holds an API key for it.
    pub has_api_key: bool,
    /// Prices per million tokens.
    pub prices: PriceTable,
    /// Bots holding a live virtual key for it.
    pub bots: Vec<String>,
    /// When it was first configured.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str, kind: &str) -> PutProvider {
        PutProvider {
            name: name.into(),
            kind: kind.into(),
            ..PutProvider::default()
        }
    }

    fn check(p: &PutProvider) -> Result<ProviderSpec, FieldErrors> {
        let mut errors = FieldErrors::default();
        let spec = p.validate(&mut errors);
        errors.into_result().map(|()| spec.expect("valid"))
    }

    #[test]
    fn kinds_default_their_base_url_and_openai_compatible_needs_one() {
        let s = check(&put("openai", "openai")).unwrap();
        assert_eq!(s.base_url, "https://api.openai.com/v1");
        let s = check(&put("claude", "anthropic")).unwrap();
        assert_eq!(s.base_url, "https://api.anthropic.com/v1");
        let e = check(&put("vllm", "openai-compatible")).unwrap_err();
        assert!(e.fields().contains_key("base_url"), "{e}");
        let mut p = put("vllm", "openai-compatible");
        p.base_url = Some("http://10.0.0.5:8000/v1/".into());
        assert_eq!(check(&p).unwrap().base_url, "http://10.0.0.5:8000/v1");
    }

    #[test]
    fn bad_names_kinds_urls_keys_and_prices_are_field_errors() {
        let mut p = put("Open AI", "gemini");
        p.base_url = Some("ftp://x".into());
        p.api_key = Some(" ".into());
        p.prices = Some(PriceTable::from([
            (
                "gpt 4".to_string(),
                Price {
                    input: 1.0,
                    output: 2.0,
                },
            ),
            (
                "m".to_string(),
                Price {
                    input: -1.0,
                    output: f64::NAN,
                },
            ),
        ]));
        let e = check(&p).unwrap_err();
        for field in [
            "name",
            "kind",
            "base_url",
            "api_key",
            "prices.gpt 4",
            "prices.m.input",
            "prices.m.output",
        ] {
            assert!(e.fields().contains_key(field), "{field}: {e}");
        }
        assert!(ProviderName::new(&"a".repeat(33)).is_err());
        assert!(ProviderName::new("-x").is_err());
        for url in ["https://h/v1?x=1", "https://", "http:///x", "https://a b"] {
            let mut p = put("x", "openai");
            p.base_url = Some(url.into());
            assert!(check(&p).is_err(), "{url}");
        }
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let mut p = put("openai", "openai");
        p.api_key = Some("sk-very-secret".into());
        assert!(!format!("{p:?}").contains("very-secret"));
    }

    #[test]
    fn prices_fall_back_to_star_and_cost_is_exact_nanos() {
        let table = PriceTable::from([
            (
                "gpt-4o".to_string(),
                Price {
                    input: 2.5,
                    output: 10.0,
                },
            ),
            (
                "*".to_string(),
                Price {
                    input: 1.0,
                    output: 1.0,
                },
            ),
        ]);
        assert_eq!(price_of(&table, "gpt-4o").unwrap().input, 2.5);
        assert_eq!(price_of(&table, "other").unwrap().input, 1.0);
        assert!(price_of(&PriceTable::new(), "x").is_none());
        // 1000 input tokens at 2.5/M = 0.0025 = 2_500_000 nanos; 500 output at 10/M = 5_000_000.
        let p = price_of(&table, "gpt-4o").unwrap();
        assert_eq!(cost_nanos(p, 1000, 500), 7_500_000);
    }

    #[test]
    fn model_names() {
        assert!(is_valid_model("claude-opus-4-5@2025:x/y.z_w"));
        assert!(!is_valid_model(""));
        assert!(!is_valid_model("a b"));
        assert!(!is_valid_model(&"a".repeat(129)));
    }
}
