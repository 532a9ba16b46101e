//! Notification channels as the API sees them: the body that creates one, its validation into
//! a [`ChannelSpec`], and the views that are returned (never a secret).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::AlertEvent;
use crate::field_errors::FieldErrors;
use crate::store::{ChannelRow, DeliveryRow};

/// Longest channel name.
pub const MAX_CHANNEL_NAME_LEN: usize = 64;
/// Longest target URL.
pub const MAX_URL_LEN: usize = 2048;
/// Shortest and longest signing secret.
pub const SIGNING_SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;
/// Where Telegram's Bot API is, unless a channel says otherwise.
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// How a channel is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// JSON [`super::AlertPayload`] POSTed to `url`, signed when the channel has a secret.
    Webhook,
    /// A Slack incoming webhook (`{"text": ...}`).
    Slack,
    /// A Discord webhook (`{"content": ...}`).
    Discord,
    /// Telegram's Bot API `sendMessage` to `chat_id` (`url` is the API's base).
    Telegram,
}

impl ChannelKind {
    /// Every kind, as offered in forms.
    pub const ALL: &[ChannelKind] = &[
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::Telegram,
    ];

    /// Its name in JSON and in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Telegram => "telegram",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /api/notifications`. Unknown fields are refused (a typo must not silently do
/// nothing).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// A unique name (1-64 characters).
    pub name: String,
    /// `webhook`, `slack`, `discord` or `telegram`.
    pub kind: String,
    /// Where to send: the webhook URL (required for `webhook`, `slack`, `discord`); for
    /// `telegram` the Bot API's base URL (default `https://api.telegram.org`).
    #[serde(default)]
    pub url: Option<String>,
    /// Telegram only (required): the chat to post in (`-1001234567890` or `@channel`).
    #[serde(default)]
    pub chat_id: Option<String>,
    /// Telegram only (required): the bot token. Kept in botmaker's secrets store, never
    /// returned or logged.
    #[serde(default)]
    pub bot_token: Option<String>,
    /// Webhook only (optional): the key of the HMAC-SHA256 signature sent in
    /// `X-Botmaker-Signature` (16-256 characters). Write-only.
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// The events it wants; left out, every event (including ones added in later versions).
    #[serde(default)]
    #[schema(value_type = Option<Vec<AlertEvent>>)]
    pub events: Option<Vec<String>>,
}

impl fmt::Debug for NewChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = ChannelKind::parse(&self.kind).unwrap_or(ChannelKind::Webhook);
        f.debug_struct("NewChannel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_deref().map(|u| shown_url(kind, u)))
            .field("chat_id", &self.chat_id)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "***"),
            )
            .field("events", &self.events)
            .finish()
    }
}

/// A validated channel, before it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// `None` for the channels `serve --alert-webhook` keeps.
    pub name: Option<String>,
    /// The kind.
    pub kind: ChannelKind,
    /// The target (or Telegram's API base).
    pub url: String,
    /// Telegram's chat.
    pub chat_id: Option<String>,
    /// Telegram's bot token.
    pub bot_token: Option<String>,
    /// The signing key.
    pub signing_secret: Option<String>,
    /// `None`: every event.
    pub events: Option<BTreeSet<AlertEvent>>,
}

impl ChannelSpec {
    /// The registry's row for this channel as `id`, with the secrets in `kept` on file.
    pub fn row(&self, id: i64, kept: Kept, created_at: DateTime<Utc>) -> ChannelRow {
        ChannelRow {
            id,
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            url: self.url.clone(),
            chat_id: self.chat_id.clone(),
            events: self
                .events
                .as_ref()
                .map(|es| es.iter().map(|e| e.as_str().to_string()).collect()),
            has_signing_secret: self.signing_secret.is_some() || kept.signing_secret,
            has_bot_token: self.bot_token.is_some() || kept.bot_token,
            created_at,
        }
    }
}

impl fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &shown_url(self.kind, &self.url))
            .field("chat_id", &self.chat_id)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "***"),
            )
            .field("events", &self.events)
            .finish()
    }
}

/// Body of `PATCH /api/notifications/{id}`: only the fields given change. The kind cannot
/// change (delete and add instead). Unknown fields are refused.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// A new unique name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new target (telegram: the Bot API's base URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Telegram only: a new chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Telegram only: a new bot token (write-only; the old one is kept when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    /// Webhook only: a new signing secret (write-only; kept when absent); `null` stops
    /// signing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::bots::spec::present"
    )]
    #[schema(value_type = Option<String>)]
    pub signing_secret: Option<Option<String>>,
    /// The events it gets; `null` for every event, including ones added later.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::bots::spec::present"
    )]
    #[schema(value_type = Option<Vec<AlertEvent>>)]
    pub events: Option<Option<Vec<String>>>,
}

impl fmt::Debug for ChannelPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelPatch")
            .field("name", &self.name)
            .field(
                "url",
                &self
                    .url
                    .as_deref()
                    .map(|u| shown_url(ChannelKind::Slack, u)),
            )
            .field("chat_id", &self.chat_id)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "***"))
            .field(
                "signing_secret",
                &self
                    .signing_secret
                    .as_ref()
                    .map(|s| s.as_ref().map(|_| "***")),
            )
            .field("events", &self.events)
            .finish()
    }
}

impl ChannelPatch {
    /// The channel `row` would be with this patch, as a create body: secrets given here, or
    /// `None` where the stored one is kept (see [`Kept`]).
    pub fn over(&self, row: &ChannelRow) -> (NewChannel, Kept) {
        let kept = Kept {
            bot_token: self.bot_token.is_none() && row.has_bot_token,
            signing_secret: self.signing_secret.is_none() && row.has_signing_secret,
        };
        let body = NewChannel {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| row.name.clone().unwrap_or_default()),
            kind: row.kind.clone(),
            url: Some(self.url.clone().unwrap_or_else(|| row.url.clone())),
            chat_id: self.chat_id.clone().or_else(|| row.chat_id.clone()),
            bot_token: self.bot_token.clone(),
            signing_secret: self.signing_secret.clone().flatten(),
            events: match &self.events {
                Some(events) => events.clone(),
                None => row.events.clone(),
            },
        };
        (body, kept)
    }
}

/// Write-only secrets a change keeps from the stored channel: they count as given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    /// The Telegram bot token on file stays.
    pub bot_token: bool,
    /// The signing secret on file stays.
    pub signing_secret: bool,
}

impl NewChannel {
    /// Checks every field, recording each problem in `errors`; the spec when all is well.
    pub fn validate(&self, errors: &mut FieldErrors) -> Option<ChannelSpec> {
        self.validate_keeping(errors, Kept::default())
    }

    /// As [`Self::validate`], where the secrets in `kept` are on file already (a change).
    pub fn validate_keeping(&self, errors: &mut FieldErrors, kept: Kept) -> Option<ChannelSpec> {
        let before = errors.fields().len();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_CHANNEL_NAME_LEN {
            errors.add(
                "name",
                format!("give a name of 1-{MAX_CHANNEL_NAME_LEN} characters"),
            );
        } else if name.chars().any(char::is_control) {
            errors.add("name", "must not contain control characters");
        }
        let kind = ChannelKind::parse(&self.kind);
        if kind.is_none() {
            errors.add(
                "kind",
                format!(
                    "{:?} is not a channel kind; use webhook, slack, discord or telegram",
                    self.kind
                ),
            );
        }
        let url = match (kind, self.url.as_deref()) {
            (Some(ChannelKind::Telegram), None) => Some(DEFAULT_TELEGRAM_API.to_string()),
            (_, Some(url)) => check_url(url, errors),
            (Some(_), None) => {
                errors.add("url", "required: the webhook URL to send alerts to");
                None
            }
            (None, None) => None,
        };
        let telegram = kind == Some(ChannelKind::Telegram);
        let chat_id = self.chat_id.as_deref().map(str::trim);
        match (telegram, chat_id) {
            (true, None) => errors.add("chat_id", "required for a telegram channel"),
            (true, Some(c)) if !valid_chat_id(c) => errors.add(
                "chat_id",
                "a chat id is a number (-1001234567890) or @channel_name",
            ),
            (false, Some(_)) if kind.is_some() => {
                errors.add("chat_id", "only a telegram channel has a chat_id")
            }
            _ => {}
        }
        let token = self.bot_token.as_deref().map(str::trim);
        match (telegram, token) {
            (true, None) if !kept.bot_token => {
                errors.add("bot_token", "required for a telegram channel")
            }
            (true, Some(t)) if !valid_bot_token(t) => errors.add(
                "bot_token",
                "a Telegram bot token looks like 123456789:AAE... (digits, a colon, then \
                 letters, digits, - and _)",
            ),
            (false, Some(_)) if kind.is_some() => {
                errors.add("bot_token", "only a telegram channel has a bot_token")
            }
            _ => {}
        }
        if let Some(secret) = &self.signing_secret {
            if kind.is_some() && kind != Some(ChannelKind::Webhook) {
                errors.add(
                    "signing_secret",
                    "only a webhook channel is signed (Slack, Discord and Telegram do not check \
                     signatures)",
                );
            } else if !SIGNING_SECRET_LEN.contains(&secret.chars().count())
                || secret.chars().any(char::is_control)
            {
                errors.add(
                    "signing_secret",
                    format!(
                        "give {}-{} characters, no control characters",
                        SIGNING_SECRET_LEN.start(),
                        SIGNING_SECRET_LEN.end()
                    ),
                );
            }
        }
        let events = self.events.as_ref().map(|names| {
            if names.is_empty() {
                errors.add(
                    "events",
                    "name at least one event, or leave events out for all of them",
                );
            }
            let mut set = BTreeSet::new();
            for (i, n) in names.iter().enumerate() {
                match AlertEvent::parse(n).filter(|e| *e != AlertEvent::Test) {
                    Some(e) => {
                        set.insert(e);
                    }
                    None => errors.add(
                        format!("events[{i}]"),
                        format!(
                            "{n:?} is not an event; use {}",
                            AlertEvent::SUBSCRIBABLE
                                .iter()
                                .map(|e| e.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
            set
        });
        if errors.fields().len() != before {
            return None;
        }
        Some(ChannelSpec {
            name: Some(name.to_string()),
            kind: kind?,
            url: url?,
            chat_id: chat_id.filter(|_| telegram).map(str::to_string),
            bot_token: token.filter(|_| telegram).map(str::to_string),
            signing_secret: self.signing_secret.clone(),
            events,
        })
    }
}

/// Accepts an absolute `http(s)://` URL with a host, of at most [`MAX_URL_LEN`].
pub fn check_url(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    let url = raw.trim();
    let parsed = reqwest::Url::parse(url).ok();
    let ok = url.len() <= MAX_URL_LEN
        && parsed.as_ref().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
    if ok {
        Some(url.to_string())
    } else {
        errors.add(
            "url",
            format!("give an absolute http:// or https:// URL with a host, at most {MAX_URL_LEN} characters"),
        );
        None
    }
}

fn valid_chat_id(c: &str) -> bool {
    let digits = c.strip_prefix('-').unwrap_or(c);
    let numeric =
        !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    let handle = c.strip_prefix('@').is_some_and(|h| {
        (5..=32).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    numeric || handle
}

/// `url` as views, logs and `Debug` show it. A Slack or Discord webhook URL is itself the
/// credential (whoever holds it can post to the channel, and both services tell users to keep
/// it secret), so only its scheme, host and first path segment are shown; a generic webhook
/// keeps its path (often the only thing telling two receivers apart) but not a query or a
/// password, where tokens usually ride. An unparsable URL is shown as `…` whole.
pub fn shown_url(kind: ChannelKind, raw: &str) -> String {
    const HIDDEN: &str = "…";
    let Ok(mut u) = reqwest::Url::parse(raw) else {
        return HIDDEN.into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(HIDDEN));
    }
    match kind {
        ChannelKind::Slack | ChannelKind::Discord => {
            let first = u
                .path_segments()
                .and_then(|mut s| s.next())
                .unwrap_or("")
                .to_string();
            let hidden_rest =
                u.path().trim_start_matches('/').len() > first.len() || u.query().is_some();
            u.set_query(None);
            u.set_path(&first);
            let mut shown = u.to_string();
            if hidden_rest {
                shown.push_str(if first.is_empty() { HIDDEN } else { "/…" });
            }
            shown
        }
        ChannelKind::Webhook | ChannelKind::Telegram => {
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            let mut shown = u.to_string();
            if had_query {
                shown.push_str("?…");
            }
            shown
        }
    }
}

fn valid_bot_token(t: &str) -> bool {
    let Some((id, key)) = t.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && (20..=100).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A channel as the API returns it: no signing secret, no bot token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    /// Its id.
    pub id: i64,
    /// Its name; `null` for a channel `serve --alert-webhook` keeps.
    pub name: Option<String>,
    /// How it is reached.
    pub kind: ChannelKind,
    /// Where it sends, with what would let a reader post to it left out (`…`): the path of a
    /// Slack or Discord webhook (it is the credential), a generic webhook's query and password.
    /// For telegram, the Bot API's base URL (the token is never shown).
    pub url: String,
    /// Telegram's chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// The events it gets (every event when `all_events`).
    pub events: Vec<AlertEvent>,
    /// Whether it gets every event, including ones added later.
    pub all_events: bool,
    /// Whether its webhooks are signed (`X-Botmaker-Signature`).
    pub signed: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl ChannelView {
    /// The view of a stored channel (unknown event names, from a newer botmaker, are skipped).
    pub fn of(row: &ChannelRow) -> Option<Self> {
        let kind = ChannelKind::parse(&row.kind)?;
        let (events, all_events) = match &row.events {
            None => (AlertEvent::SUBSCRIBABLE.to_vec(), true),
            Some(names) => (
                names.iter().filter_map(|n| AlertEvent::parse(n)).collect(),
                false,
            ),
        };
        Some(Self {
            id: row.id,
            name: row.name.clone(),
            kind,
            url: shown_url(kind, &row.url),
            chat_id: row.chat_id.clone(),
            events,
            all_events,
            signed: row.has_signing_secret,
            created_at: row.created_at,
        })
    }

    /// Whether it wants `event` (a test goes to every channel asked).
    pub fn wants(&self, event: AlertEvent) -> bool {
        event == AlertEvent::Test || self.events.contains(&event)
    }
}

/// A channel as delivery needs it: what the API shows, and the full URL to send to (which the
/// view leaves partly out, see [`shown_url`]). Never returned or logged.
#[derive(Clone)]
pub struct Deliverable {
    /// The channel as the API shows it.
    pub view: ChannelView,
    /// Where to send, whole.
    pub url: String,
}

impl Deliverable {
    /// The deliverable form of a stored channel (`None` for a kind from a newer botmaker).
    pub fn of(row: &ChannelRow) -> Option<Self> {
        Some(Self {
            view: ChannelView::of(row)?,
            url: row.url.clone(),
        })
    }
}

/// Body of `GET /api/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelList {
    /// Every channel, oldest first.
    pub channels: Vec<ChannelView>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Ok,
    /// It failed and another attempt will follow.
    Retrying,
    /// It failed and botmaker gave up (the last attempt, or a test).
    Failed,
}

impl DeliveryResult {
    /// Its name in JSON and in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Ok => "ok",
            DeliveryResult::Retrying => "retrying",
            DeliveryResult::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "ok" => DeliveryResult::Ok,
            "retrying" => DeliveryResult::Retrying,
            _ => DeliveryResult::Failed,
        }
    }
}

/// One attempt to deliver one alert to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// Its id (later attempts have larger ids).
    pub id: i64,
    /// The event sent.
    pub event: String,
    /// The bot it was about (`null` for a test).
    pub bot_id: Option<String>,
    /// 1 for the first attempt at this alert.
    pub attempt: u32,
    /// How it ended.
    pub result: DeliveryResult,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it ended.
    pub at: DateTime<Utc>,
}

impl DeliveryView {
    /// The view of a stored attempt.
    pub fn of(row: &DeliveryRow) -> Self {
        Self {
            id: row.id,
            event: row.event.clone(),
            bot_id: row.bot_id.clone(),
            attempt: row.attempt,
            result: DeliveryResult::parse(&row.result),
            http_status: row.http_status,
            error: row.error.clone(),
            at: row.at,
        }
    }
}

/// Body of `GET /api/notifications/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The most recent attempts, newest first.
    pub deliveries: Vec<DeliveryView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: serde_json::Value) -> Result<ChannelSpec, FieldErrors> {
        let req: NewChannel = serde_json::from_value(body).unwrap();
        let mut errors = FieldErrors::default();
        req.validate(&mut errors).ok_or(errors)
    }

    const TOKEN: &str = "123456789:AAEhBP0av28hBbHwWd4GqqSg1wTqW0Hx5kM";

    #[test]
    fn a_slack_or_discord_webhook_url_was_returned_whole_though_it_is_the_credential() {
        let slack = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX";
        let discord = "https://discord.com/api/webhooks/123/tokenSECRET";
        assert_eq!(
            shown_url(ChannelKind::Slack, slack),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            shown_url(ChannelKind::Discord, discord),
            "https://discord.com/api/…"
        );
        let hook = "https://user:pw@example.com/hooks/ops?token=abc#x";
        let shown = shown_url(ChannelKind::Webhook, hook);
        assert_eq!(shown, "https://user:%E2%80%A6@example.com/hooks/ops?…");
        assert_eq!(
            shown_url(ChannelKind::Webhook, "http://127.0.0.1:9/a/b"),
            "http://127.0.0.1:9/a/b"
        );
        assert_eq!(shown_url(ChannelKind::Webhook, "not a url"), "…");

        let spec = check(serde_json::json!({"name": "s", "kind": "slack", "url": slack})).unwrap();
        assert!(!format!("{spec:?}").contains("XXXXsecretXXXX"), "{spec:?}");
        let req: NewChannel = serde_json::from_value(
            serde_json::json!({"name": "d", "kind": "discord", "url": discord}),
        )
        .unwrap();
        assert!(!format!("{req:?}").contains("tokenSECRET"), "{req:?}");
        let row = ChannelRow {
            id: 1,
            name: Some("s".into()),
            kind: "slack".into(),
            url: slack.into(),
            chat_id: None,
            events: None,
            has_signing_secret: false,
            has_bot_token: false,
            created_at: Utc::now(),
        };
        let view = ChannelView::of(&row).unwrap();
        assert!(
            !serde_json::to_string(&view)
                .unwrap()
                .contains("XXXXsecretXXXX")
        );
    }

    #[test]
    fn a_good_channel_of_each_kind_validates() {
        let spec = check(serde_json::json!({
            "name": "ops", "kind": "webhook", "url": "https://example.com/hook",
            "signing_secret": "0123456789abcdef", "events": ["crash_loop", "recovered", "crash_loop"],
        }))
        .unwrap();
        assert_eq!(spec.kind, ChannelKind::Webhook);
        assert_eq!(spec.events.unwrap().len(), 2, "duplicates fold");
        for kind in ["slack", "discord"] {
            let spec = check(serde_json::json!({"name": "x", "kind": kind, "url": "https://h/x"}))
                .unwrap();
            assert!(spec.events.is_none(), "every event by default");
        }
        let spec = check(serde_json::json!({
            "name": "tg", "kind": "telegram", "chat_id": "-1001234567890", "bot_token": TOKEN,
        }))
        .unwrap();
        assert_eq!(spec.url, DEFAULT_TELEGRAM_API);
        assert_eq!(spec.bot_token.as_deref(), Some(TOKEN));
    }

    #[test]
    fn each_bad_field_is_named() {
        let errors = check(serde_json::json!({
            "name": "", "kind": "pager", "url": "ftp://x", "events": ["crashed"],
        }))
        .unwrap_err();
        for field in ["name", "kind", "url", "events[0]"] {
            assert!(errors.fields().contains_key(field), "{field}: {errors}");
        }
        let errors = check(serde_json::json!({
            "name": "tg", "kind": "telegram", "chat_id": "not a chat", "bot_token": "nope",
            "signing_secret": "0123456789abcdef",
        }))
        .unwrap_err();
        for field in ["chat_id", "bot_token", "signing_secret"] {
            assert!(errors.fields().contains_key(field), "{field}: {errors}");
        }
        let errors = check(serde_json::json!({
            "name": "w", "kind": "webhook", "chat_id": "1", "bot_token": TOKEN,
            "signing_secret": "short", "events": [],
        }))
        .unwrap_err();
        for field in ["url", "chat_id", "bot_token", "signing_secret", "events"] {
            assert!(errors.fields().contains_key(field), "{field}: {errors}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let req = NewChannel {
            bot_token: Some(TOKEN.into()),
            signing_secret: Some("very secret value".into()),
            ..NewChannel::default()
        };
        let text = format!("{req:?}");
        assert!(
            !text.contains("AAEh") && !text.contains("very secret"),
            "{text}"
        );
    }
}
