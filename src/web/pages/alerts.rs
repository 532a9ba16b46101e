//! `GET /alerts`: notification channels in the dashboard. Channels are listed (never a signing
//! secret or bot token: the API has none to give), added or changed in one form (the secret
//! fields are write-only and cleared after each save; left empty on a change, the stored ones
//! stay), tested (the answer says how the receiver took it), their recent
//! deliveries shown, and removed. A shell its script module fills from the JSON API.

use axum::response::Response;
use maud::{Markup, html};

use super::page;
use crate::alerts::{AlertEvent, ChannelKind};
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, error_id};
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

fn channel_form() -> Markup {
    let field = |id: &str, field: &str, label: &str, input: Markup| {
        html! {
            div.field data-field=(field) {
                label for=(id) { (label) }
                (input)
                (ErrorSlot(field))
            }
        }
    };
    html! {
        section.card aria-labelledby="h-channel-form" {
            h2 #h-channel-form { "Add a channel" }
            p.help {
                "A webhook gets a JSON payload (signed with HMAC-SHA256 in X-Botmaker-Signature \
                 when it has a signing secret); Slack, Discord and Telegram get a readable \
                 message. Secrets are kept in botmaker and never shown again."
            }
            form #channel-form novalidate {
                (field("channel-name", "name", "Name", html! {
                    input type="text" #channel-name autocomplete="off" spellcheck="false"
                        placeholder="ops-pager" aria-describedby=(error_id("name"));
                }))
                (field("channel-kind", "kind", "Kind", html! {
                    select #channel-kind aria-describedby=(error_id("kind")) {
                        @for kind in ChannelKind::ALL {
                            option value=(kind.as_str()) { (kind.as_str()) }
                        }
                    }
                }))
                (field("channel-url", "url", "URL", html! {
                    input type="url" #channel-url autocomplete="off" spellcheck="false"
                        placeholder="https://hooks.example.com/botmaker (telegram: API base, optional)"
                        aria-describedby=(error_id("url"));
                }))
                (field("channel-chat-id", "chat_id", "Telegram chat id", html! {
                    input type="text" #channel-chat-id autocomplete="off" spellcheck="false"
                        placeholder="-1001234567890 or @channel" aria-describedby=(error_id("chat_id"));
                }))
                (field("channel-bot-token", "bot_token", "Telegram bot token", html! {
                    input type="password" #channel-bot-token autocomplete="off"
                        aria-describedby=(error_id("bot_token"));
                }))
                (field("channel-secret", "signing_secret", "Signing secret (webhook, optional)", html! {
                    input type="password" #channel-secret autocomplete="off"
                        aria-describedby=(error_id("signing_secret"));
                }))
                div.field #channel-unsigned-field hidden {
                    label.check {
                        input type="checkbox" #channel-unsigned;
                        " Stop signing (delete the signing secret)"
                    }
                }
                fieldset.field #channel-events aria-describedby=(error_id("events")) {
                    legend { "Events (none ticked: every event)" }
                    @for e in AlertEvent::SUBSCRIBABLE {
                        label.check {
                            input type="checkbox" name="events" value=(e.as_str());
                            " " (e.as_str())
                        }
                    }
                    (ErrorSlot("events"))
                }
                div.actions {
                    button.primary #channel-submit type="submit" { "Add channel" }
                    " "
                    button #channel-cancel type="button" hidden { "Cancel" }
                }
            }
        }
    }
}

/// `GET /alerts`.
pub async fn alerts(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "Alerts" }
        section.card aria-labelledby="h-channels" {
            h2 #h-channels { "Notification channels" }
            div.table-wrap {
                table #channels {
                    caption.sr-only { "Notification channels" }
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Kind" }
                            th scope="col" { "URL" }
                            th scope="col" { "Events" }
                            th scope="col" { "Signed" }
                            th scope="col" { span.sr-only { "Actions" } }
                        }
                    }
                    tbody #channel-rows {}
                }
            }
            p #channels-empty .empty hidden {
                "No channel yet: nobody is told when a bot goes down."
            }
        }
        section.card aria-labelledby="h-deliveries" #deliveries-card hidden {
            h2 #h-deliveries { "Recent deliveries" }
            div.table-wrap {
                table #deliveries {
                    caption.sr-only { "Recent delivery attempts" }
                    thead {
                        tr {
                            th scope="col" { "When" }
                            th scope="col" { "Event" }
                            th scope="col" { "Bot" }
                            th scope="col" { "Attempt" }
                            th scope="col" { "Result" }
                            th scope="col" { "Error" }
                        }
                    }
                    tbody #delivery-rows {}
                }
            }
        }
        (channel_form())
    };
    page("Alerts", Script::Alerts, Nav::Alerts, &s, body)
}
