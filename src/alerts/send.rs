//! One delivery attempt: the request each channel kind gets (a signed JSON payload for a
//! webhook, a readable message in Slack's, Discord's or Telegram's format), sent with a time
//! limit, and what came of it. No retries here: see `super::AlertService`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::channel::{ChannelKind, Deliverable};
use super::event::{AlertEvent, AlertPayload};

/// The header carrying a webhook's signature: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-botmaker-signature";
/// The header naming the event (so a receiver can route before parsing).
pub const EVENT_HEADER: &str = "x-botmaker-event";
/// Longest one attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most of a receiver's error answer kept in the delivery log.
const MAX_ERROR_BODY: usize = 300;
/// Discord refuses longer `content`.
const DISCORD_MAX_CONTENT: usize = 2000;

/// The secrets an attempt may need (read from the secrets store just before it).
#[derive(Default)]
pub struct ChannelSecrets {
    /// The webhook's signing key.
    pub signing_secret: Option<Vec<u8>>,
    /// Telegram's bot token.
    pub bot_token: Option<String>,
}

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why, for the delivery log (never a secret: request URLs are left out of errors, since
    /// Telegram's carries the token).
    pub error: String,
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` keyed with `secret`, as sent in
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One readable line (and a link), for chat channels.
pub fn readable(p: &AlertPayload) -> String {
    let title = match p.event {
        AlertEvent::Recovered => "✅ recovered",
        AlertEvent::Test => "🔔 test",
        AlertEvent::BudgetExceeded => "💸 budget exceeded",
        AlertEvent::CrashLoop => "🔴 crash loop",
        AlertEvent::OomKilled => "🔴 out of memory",
        AlertEvent::Exited => "🟠 exited",
        AlertEvent::Unhealthy => "🟠 unhealthy",
        AlertEvent::Degraded => "🟠 degraded",
        AlertEvent::Missing => "🔴 missing",
        AlertEvent::UpgradeFailed => "🟠 upgrade rolled back",
    };
    let mut text = format!("[botmaker] {title}: {}", p.message);
    let mut facts = Vec::new();
    if let Some(s) = p.state {
        facts.push(format!("state {}", s.as_str()));
    }
    if let Some(c) = p.exit_code.filter(|c| *c != 0) {
        facts.push(format!("exit code {c}"));
    }
    if p.restart_count > 0 {
        facts.push(format!("{} restarts", p.restart_count));
    }
    if !facts.is_empty() {
        text.push_str(&format!(" ({})", facts.join(", ")));
    }
    if let Some(url) = &p.url {
        text.push('\n');
        text.push_str(url);
    }
    text
}

/// `text` with Slack's three control characters escaped, as Slack asks: `<!channel>` or a
/// `<url|link>` in a bot's own words (a channel's error detail) stays plain text.
fn slack_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What is sent for one attempt.
#[derive(Debug)]
struct Outgoing {
    url: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

/// The request for `channel`.
fn request(
    target: &Deliverable,
    payload: &AlertPayload,
    secrets: &ChannelSecrets,
) -> Result<Outgoing, AttemptError> {
    let channel = &target.view;
    let mut headers = vec![(EVENT_HEADER, payload.event.as_str().to_string())];
    let (url, body) = match channel.kind {
        ChannelKind::Webhook => {
            let body = serde_json::to_vec(payload).expect("the payload serializes");
            match &secrets.signing_secret {
                Some(secret) => headers.push((SIGNATURE_HEADER, signature(secret, &body))),
                // Never sent unsigned to a receiver that was promised signatures.
                None if channel.signed => {
                    return Err(AttemptError {
                        status: None,
                        error: "the channel's signing secret is missing from the secrets store; \
                                delete and add the channel again"
                            .into(),
                    });
                }
                None => {}
            }
            (target.url.clone(), body)
        }
        ChannelKind::Slack => (
            target.url.clone(),
            serde_json::to_vec(&serde_json::json!({ "text": slack_escaped(&readable(payload)) }))
                .expect("json"),
        ),
        ChannelKind::Discord => {
            let content: String = readable(payload)
                .chars()
                .take(DISCORD_MAX_CONTENT)
                .collect();
            (
                target.url.clone(),
                // No mention is ever pinged: a bot's own words can be in the text.
                serde_json::to_vec(&serde_json::json!({
                    "content": content,
                    "allowed_mentions": { "parse": [] },
                }))
                .expect("json"),
            )
        }
        ChannelKind::Telegram => {
            let token = secrets.bot_token.as_deref().ok_or_else(|| AttemptError {
                status: None,
                error: "the channel's bot token is missing from the secrets store; delete and \
                        add the channel again"
                    .into(),
            })?;
            (
                format!(
                    "{}/bot{token}/sendMessage",
                    target.url.trim_end_matches('/')
                ),
                serde_json::to_vec(&serde_json::json!({
                    "chat_id": channel.chat_id,
                    "text": readable(payload),
                    "disable_web_page_preview": true,
                }))
                .expect("json"),
            )
        }
    };
    Ok(Outgoing { url, body, headers })
}

/// Sends `payload` to `channel` once; the receiver's status on success (2xx).
pub async fn attempt(
    client: &reqwest::Client,
    channel: &Deliverable,
    payload: &AlertPayload,
    secrets: &ChannelSecrets,
) -> Result<u16, AttemptError> {
    let Outgoing { url, body, headers } = request(channel, payload, secrets)?;
    let mut req = client
        .post(url)
        .timeout(ATTEMPT_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("botmaker/", env!("CARGO_PKG_VERSION")),
        )
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let res = req.send().await.map_err(|e| AttemptError {
        status: None,
        error: describe(e),
    })?;
    let status = res.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    // The receiver's words help (Slack says `invalid_payload`), bounded: it is their output.
    let text = tokio::time::timeout(ATTEMPT_TIMEOUT, res.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let text: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_BODY)
        .collect();
    Err(AttemptError {
        status: Some(status.as_u16()),
        error: if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        },
    })
}

/// A transport failure in words, with its causes, without the URL (Telegram's holds the bot
/// token).
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_BODY).collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::alerts::channel::ChannelView;
    use crate::alerts::event::Alert;

    /// The example in the README: a receiver checks the signature this way.
    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn channel(kind: ChannelKind, url: &str) -> Deliverable {
        Deliverable {
            view: ChannelView {
                id: 1,
                name: Some("c".into()),
                kind,
                url: "shown, never sent to".into(),
                chat_id: Some("-100".into()),
                events: AlertEvent::SUBSCRIBABLE.to_vec(),
                all_events: true,
                signed: false,
                created_at: Utc::now(),
            },
            url: url.into(),
        }
    }

    fn payload() -> AlertPayload {
        AlertPayload::new(
            &Alert {
                event: AlertEvent::CrashLoop,
                bot_id: "b1".into(),
                observed: None,
                at: Utc::now(),
            },
            Some("Helper"),
            Some("https://bots.example.com"),
        )
    }

    #[test]
    fn each_kind_gets_its_own_format() {
        let p = payload();
        let secrets = ChannelSecrets {
            signing_secret: Some(b"0123456789abcdef".to_vec()),
            bot_token: Some("1:tok".into()),
        };
        let Outgoing { url, body, headers } =
            request(&channel(ChannelKind::Webhook, "http://h/x"), &p, &secrets).unwrap();
        assert_eq!(url, "http://h/x");
        let back: AlertPayload = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, p);
        let sig = headers
            .iter()
            .find(|(n, _)| *n == SIGNATURE_HEADER)
            .unwrap();
        assert_eq!(sig.1, signature(b"0123456789abcdef", &body));

        let Outgoing { body, .. } =
            request(&channel(ChannelKind::Slack, "http://h/s"), &p, &secrets).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("Helper") && text.contains("https://bots.example.com/bots/b1"));

        let Outgoing { body, .. } =
            request(&channel(ChannelKind::Discord, "http://h/d"), &p, &secrets).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["content"].as_str().unwrap().contains("crash loop"));
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));

        // What a bot writes cannot ping a Slack channel or forge a link.
        let mut hostile = payload();
        hostile.message = "<!channel> see <http://evil|here> & more".into();
        let Outgoing { body, .. } = request(
            &channel(ChannelKind::Slack, "http://h/s"),
            &hostile,
            &secrets,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt; see &lt;http://evil|here&gt; &amp; more"),
            "{text}"
        );

        let Outgoing { url, body, .. } = request(
            &channel(ChannelKind::Telegram, "http://h/tg/"),
            &p,
            &secrets,
        )
        .unwrap();
        assert_eq!(url, "http://h/tg/bot1:tok/sendMessage");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["chat_id"], "-100");
        assert!(v["text"].as_str().unwrap().contains("Helper"));

        let none = ChannelSecrets::default();
        let err = request(&channel(ChannelKind::Telegram, "http://h"), &p, &none).unwrap_err();
        assert!(err.error.contains("bot token"), "{err:?}");
        let mut signed = channel(ChannelKind::Webhook, "http://h/x");
        signed.view.signed = true;
        let err = request(&signed, &p, &none).unwrap_err();
        assert!(
            err.error.contains("signing secret"),
            "never unsigned: {err:?}"
        );
    }
}
