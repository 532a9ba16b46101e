//! Bots and the LLM key proxy: which of a bot's providers go through it (validated with the
//! rest of a create or update), its virtual keys (minted into its secrets when its container
//! is made, rotated and revoked on request), and the routes its template is rendered with.

use super::*;
use crate::bots::llm::{LlmApi, LlmRoute, LlmRoutes, LlmUse};
use crate::llm::{LlmError, LlmService, ProviderKind};

/// Whether a provider of `kind` serves `api`.
fn serves(kind: ProviderKind, api: LlmApi) -> bool {
    match api {
        LlmApi::Any => true,
        LlmApi::Anthropic => kind == ProviderKind::Anthropic,
        LlmApi::OpenAi => kind != ProviderKind::Anthropic,
        LlmApi::Other(_) => false,
    }
}

pub(super) fn bot_error(e: LlmError) -> BotError {
    match e {
        LlmError::Validation(f) => BotError::Validation(f),
        LlmError::BotNotFound(id) => BotError::NotFound(id),
        LlmError::Store(e) => BotError::from(e),
        LlmError::Secrets(e) => BotError::Secrets(e),
        other => {
            let mut f = FieldErrors::default();
            f.add("llm", other.to_string());
            BotError::Validation(f)
        }
    }
}

impl BotService {
    /// Gives the service the LLM proxy's state: bots then reach configured providers through
    /// the proxy. Call before the service is shared.
    pub fn with_llm(mut self, llm: LlmService) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_llm is called before the service is cloned")
            .llm = Some(llm);
        self
    }

    /// The LLM proxy's state, if this service has one.
    pub fn llm(&self) -> Option<&LlmService> {
        self.inner.llm.as_ref()
    }

    /// The uses of `spec` that go through the proxy: a provider of that name is configured and
    /// the proxy runs.
    fn proxied_uses(&self, template: &dyn Template, spec: &BotSpec) -> Vec<(LlmUse, ProviderKind)> {
        let Some(llm) = self.llm().filter(|l| l.endpoint().is_some()) else {
            return Vec::new();
        };
        template
            .llm_uses(spec)
            .into_iter()
            .filter_map(|u| llm.provider_kind(&u.provider).map(|k| (u, k)))
            .collect()
    }

    /// Checks how `spec` uses LLM providers and returns the secrets botmaker will fill with
    /// virtual keys (they count as the bot's secrets for the template's checks). `supplied`
    /// are the secrets the request itself sets: a real key where a virtual one goes is
    /// refused, since the point is that the bot never holds it.
    pub(super) fn check_llm_uses(
        &self,
        template: &dyn Template,
        spec: &BotSpec,
        supplied: &[SecretName],
        errors: &mut FieldErrors,
    ) -> Vec<SecretName> {
        let llm = self.llm();
        let proxy_on = llm.is_some_and(|l| l.endpoint().is_some());
        let mut virtual_keys = Vec::new();
        for u in template.llm_uses(spec) {
            let kind = llm.and_then(|l| l.provider_kind(&u.provider));
            match (kind, proxy_on) {
                (Some(kind), true) => {
                    if !serves(kind, u.api) {
                        let api = match u.api {
                            LlmApi::Other(name) => name,
                            LlmApi::Anthropic => "Anthropic's Messages API",
                            _ => "OpenAI's API",
                        };
                        errors.add(
                            u.field,
                            format!(
                                "botmaker's LLM provider '{}' is {kind}; the bot speaks {api} to \
                                 it, which that provider does not serve through the proxy",
                                u.provider
                            ),
                        );
                    }
                    if supplied.contains(&u.secret) {
                        errors.add(
                            format!("secrets.{}", u.secret),
                            format!(
                                "botmaker keeps the key of LLM provider '{}': the bot gets a \
                                 virtual key in this secret; do not send the real one",
                                u.provider
                            ),
                        );
                    }
                    if let Some(field) = u.conflicting_setting {
                        errors.add(
                            field,
                            format!(
                                "the bot reaches LLM provider '{}' through botmaker's proxy; set \
                                 the upstream URL on the provider (POST /api/providers) instead",
                                u.provider
                            ),
                        );
                    }
                    virtual_keys.push(u.secret);
                }
                (Some(_), false) if u.required => {
                    errors.add(u.field, LlmError::ProxyOff.to_string())
                }
                (None, _) if u.required => errors.add(
                    u.field,
                    format!(
                        "no LLM provider named '{}': add it first (POST /api/providers, or \
                         `botmaker providers add`)",
                        u.provider
                    ),
                ),
                _ => {}
            }
        }
        virtual_keys
    }

    /// Refuses to set or delete `name` when botmaker fills it with a virtual key for this bot:
    /// setting it would put a real key back in the bot, deleting it would cut the bot off.
    pub(super) fn refuse_virtual_key(
        &self,
        row: &BotRow,
        name: &SecretName,
    ) -> Result<(), BotError> {
        let Some(template) = crate::bots::templates::lookup(&row.template) else {
            return Ok(());
        };
        let spec = spec_of(row)?;
        match self
            .proxied_uses(template, &spec)
            .into_iter()
            .find(|(u, _)| &u.secret == name)
        {
            Some((u, _)) => {
                let mut f = FieldErrors::default();
                f.add(
                    "name",
                    format!(
                        "{name} holds the bot's virtual key for LLM provider '{}', managed by \
                         botmaker; rotate it with POST /api/bots/{}/llm-keys/rotate",
                        u.provider, row.id
                    ),
                );
                Err(BotError::Validation(f))
            }
            None => Ok(()),
        }
    }

    /// Makes sure the bot holds a live virtual key for each provider it reaches through the
    /// proxy (minting one into its secret file where the file holds none, a revoked one, or a
    /// real key from before the provider was configured), and returns the routes to render it
    /// with.
    pub(super) async fn llm_routes(
        &self,
        row: &BotRow,
        template: &dyn Template,
        spec: &BotSpec,
        secrets: &SecretsStore,
    ) -> Result<LlmRoutes, BotError> {
        let uses = self.proxied_uses(template, spec);
        let (Some(llm), false) = (self.llm(), uses.is_empty()) else {
            return Ok(LlmRoutes::default());
        };
        let endpoint = llm.endpoint().expect("proxied uses need a running proxy");
        let mut routes = LlmRoutes {
            routes: Vec::new(),
            extra_host: Some(endpoint.extra_host()),
        };
        for (u, kind) in uses {
            let (store, bot, name) = (secrets.clone(), row.id.clone(), u.secret.clone());
            let current = blocking(move || Ok(store.get(&bot, &name)?)).await?;
            let minted = match llm.ensure_key(&row.id, &u.provider, current.as_ref()).await {
                Ok(m) => m,
                // Deleted since validation: the bot renders without it.
                Err(LlmError::ProviderNotFound(_)) => continue,
                Err(e) => return Err(bot_error(e)),
            };
            if let Some(key) = minted {
                let (store, bot, name) = (secrets.clone(), row.id.clone(), u.secret.clone());
                blocking(move || Ok(store.set(&bot, &name, &key)?)).await?;
            }
            let base_url = match kind {
                ProviderKind::Anthropic => endpoint.base_url(),
                _ => format!("{}/v1", endpoint.base_url()),
            };
            routes.routes.push(LlmRoute {
                provider: u.provider,
                base_url,
                secret: u.secret,
            });
        }
        Ok(routes)
    }

    /// Gives the bot new virtual keys for every provider it reaches through the proxy (the old
    /// ones stop working at once) and returns those providers, with how the new keys reach the
    /// bot: the files change in place, and a template that reads its secrets at start only
    /// (openclaw) gets its running bot restarted, as for any other secret change.
    pub async fn rotate_llm_keys(
        &self,
        id: &str,
    ) -> Result<(Vec<String>, Option<SecretChange>), BotError> {
        self.with_bot(id, |s, row| async move {
            let template = crate::bots::templates::lookup(&row.template)
                .ok_or_else(|| BotError::Store(corrupt(&format!("template of bot {}", row.id))))?;
            let spec = spec_of(&row)?;
            let llm = s.llm().cloned();
            let secrets = s.secrets_for(template);
            let mut rotated = Vec::new();
            for (u, _) in s.proxied_uses(template, &spec) {
                let llm = llm.as_ref().expect("proxied uses need the LLM service");
                let key = llm
                    .mint_key(&row.id, &u.provider)
                    .await
                    .map_err(bot_error)?;
                let (store, bot, name) = (secrets.clone(), row.id.clone(), u.secret.clone());
                blocking(move || Ok(store.set(&bot, &name, &key)?)).await?;
                rotated.push(u.provider);
            }
            if rotated.is_empty() {
                return Ok((rotated, None));
            }
            let change = s.after_secret_change(&row, template).await?;
            Ok((rotated, Some(change)))
        })
        .await
    }

    /// Revokes every virtual key of the bot: its LLM requests get 401 until a rotation or its
    /// next apply mints new ones. Returns how many were revoked.
    pub async fn revoke_llm_keys(&self, id: &str) -> Result<usize, BotError> {
        self.with_bot(id, |s, row| async move {
            match s.llm() {
                Some(llm) => llm.revoke_keys(&row.id, None).await.map_err(bot_error),
                None => Ok(0),
            }
        })
        .await
    }
}
