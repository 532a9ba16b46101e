//! What templates say about LLM providers, and what they are told back: the bot domain's side
//! of the LLM key proxy (`crate::llm`).
//!
//! A template names the providers a bot talks to and the secret file each key goes in
//! ([`LlmUse`]). When botmaker has a provider of that name (and the proxy runs), the bot never
//! gets the real key: `BotService` mints a virtual key into that file and hands the template an
//! [`LlmRoutes`] saying where the proxy is, which the template writes into the bot's config
//! instead of the provider's own URL.

use crate::secrets::SecretName;

/// The API a bot speaks to a provider, which the provider's kind must serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmApi {
    /// OpenAI's (chat completions, responses, embeddings): `openai` and `openai-compatible`.
    OpenAi,
    /// Anthropic's Messages API: `anthropic`.
    Anthropic,
    /// Whatever the bot speaks (a generic bot): any kind.
    Any,
    /// An API the proxy does not carry (OpenClaw's `google-generative-ai`, say).
    Other(&'static str),
}

/// A provider a bot's template wants reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmUse {
    /// The provider's name in botmaker (`openai`, `anthropic`, or any name for generic bots).
    pub provider: String,
    /// The secret the bot reads the key from; it gets a virtual key when the proxy is used.
    pub secret: SecretName,
    /// The API it speaks.
    pub api: LlmApi,
    /// The bot cannot reach the provider without the proxy (it has no other way to get a key).
    pub required: bool,
    /// The request field naming the provider, for error messages (`settings.provider`).
    pub field: &'static str,
    /// A setting the user gave that the proxy would make meaningless (a base URL of their
    /// own): refused when the proxy is used, rather than silently ignored.
    pub conflicting_setting: Option<&'static str>,
}

/// Where a bot reaches a provider through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRoute {
    /// The provider's name.
    pub provider: String,
    /// The base URL an SDK of its API takes (`http://botmaker-llm:7101/v1` for OpenAI's,
    /// `http://botmaker-llm:7101` for Anthropic's, whose SDKs add `/v1/messages`).
    pub base_url: String,
    /// The secret holding the bot's virtual key for it.
    pub secret: SecretName,
}

/// Every provider a bot reaches through the proxy (none: it reaches none that way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmRoutes {
    /// One per provider.
    pub routes: Vec<LlmRoute>,
    /// The `/etc/hosts` entry that makes the proxy's name resolve in the container.
    pub extra_host: Option<String>,
}

impl LlmRoutes {
    /// No proxy.
    pub const NONE: LlmRoutes = LlmRoutes {
        routes: Vec::new(),
        extra_host: None,
    };

    /// The route to `provider`, if the bot reaches it through the proxy.
    pub fn get(&self, provider: &str) -> Option<&LlmRoute> {
        self.routes.iter().find(|r| r.provider == provider)
    }
}
