//! `GET /providers` and `GET /usage`: the LLM key proxy in the dashboard. Providers are listed
//! (never a key: the API has none to give), added or replaced (the key field is write-only and
//! cleared after each save) and removed; usage shows the fleet's tokens and cost per bot and
//! per day. Both pages are shells their script modules fill from the JSON API.

use axum::response::Response;
use maud::{Markup, html};

use super::page;
use crate::llm::ProviderKind;
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, error_id};
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

fn provider_form() -> Markup {
    let field = |id: &str, field: &str, label: &str, input: Markup| {
        html! {
            div.field {
                label for=(id) { (label) }
                (input)
                (ErrorSlot(field))
            }
        }
    };
    html! {
        section.card aria-labelledby="h-provider-form" {
            h2 #h-provider-form { "Add or replace a provider" }
            p.help {
                "Saving a name that exists replaces that provider; leave the key empty to keep \
                 its current key. A new key is used from the next request on: bots change \
                 nothing. Bots never see a provider's key: each gets a virtual key of its own."
            }
            form #provider-form novalidate {
                (field("provider-name", "name", "Name", html! {
                    input type="text" #provider-name autocomplete="off" spellcheck="false"
                        autocapitalize="none" placeholder="openai, anthropic, local-vllm…"
                        aria-describedby=(error_id("name"));
                }))
                (field("provider-kind", "kind", "Kind", html! {
                    select #provider-kind aria-describedby=(error_id("kind")) {
                        @for kind in ProviderKind::ALL {
                            option value=(kind.as_str()) { (kind.as_str()) }
                        }
                    }
                }))
                (field("provider-base-url", "base_url", "Base URL", html! {
                    input type="url" #provider-base-url autocomplete="off" spellcheck="false"
                        placeholder="default for openai and anthropic; e.g. http://vllm:8000/v1"
                        aria-describedby=(error_id("base_url"));
                }))
                (field("provider-key", "api_key", "API key", html! {
                    input type="password" #provider-key autocomplete="off" spellcheck="false"
                        aria-describedby=(error_id("api_key"));
                }))
                (field("provider-prices", "prices", "Prices per million tokens (JSON)", html! {
                    textarea #provider-prices rows="3" spellcheck="false"
                        placeholder=r#"{"gpt-4o": {"input": 2.5, "output": 10}, "*": {"input": 1, "output": 2}}"#
                        aria-describedby=(error_id("prices")) {}
                }))
                div.actions { button.primary type="submit" { "Save provider" } }
            }
        }
    }
}

/// `GET /providers`.
pub async fn providers(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "LLM providers" }
        section.card aria-labelledby="h-proxy" {
            h2 #h-proxy { "Key proxy" }
            p #proxy-info role="status" { "Loading…" }
        }
        section.card aria-labelledby="h-providers" {
            h2 #h-providers { "Providers" }
            div.table-wrap {
                table #providers {
                    caption.sr-only { "LLM providers" }
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Kind" }
                            th scope="col" { "Base URL" }
                            th scope="col" { "Key" }
                            th scope="col" { "Priced models" }
                            th scope="col" { "Bots" }
                            th scope="col" { span.sr-only { "Actions" } }
                        }
                    }
                    tbody #provider-rows {}
                }
            }
            p #providers-empty .empty hidden { "No provider yet: bots keep their own keys." }
        }
        (provider_form())
    };
    page("LLM providers", Script::Providers, Nav::Providers, &s, body)
}

/// `GET /usage`.
pub async fn usage(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "LLM usage" }
        div.toolbar {
            label {
                "Since (UTC) "
                input type="date" #usage-since;
            }
        }
        section.card aria-labelledby="h-usage-totals" {
            h2 #h-usage-totals { "Fleet" }
            p #usage-totals role="status" { "Loading…" }
            div.table-wrap {
                table #usage-bots {
                    caption.sr-only { "Usage per bot" }
                    thead {
                        tr {
                            th scope="col" { "Bot" }
                            th scope="col" { "Requests" }
                            th scope="col" { "Input tokens" }
                            th scope="col" { "Output tokens" }
                            th scope="col" { "Cost" }
                        }
                    }
                    tbody #usage-bot-rows {}
                }
            }
            p #usage-empty .empty hidden { "No LLM requests in this period." }
        }
        section.card aria-labelledby="h-usage-days" {
            h2 #h-usage-days { "Per day, provider and model" }
            div.table-wrap {
                table #usage-days {
                    caption.sr-only { "Usage per day, bot, provider and model" }
                    thead {
                        tr {
                            th scope="col" { "Day" }
                            th scope="col" { "Bot" }
                            th scope="col" { "Provider" }
                            th scope="col" { "Model" }
                            th scope="col" { "Requests" }
                            th scope="col" { "Input" }
                            th scope="col" { "Output" }
                            th scope="col" { "Cost" }
                        }
                    }
                    tbody #usage-day-rows {}
                }
            }
        }
    };
    page("LLM usage", Script::Usage, Nav::Usage, &s, body)
}

/// The bot page's LLM section, filled by `llm.js`.
pub fn bot_usage() -> Markup {
    html! {
        section.card aria-labelledby="h-llm" {
            h2 #h-llm { "LLM usage" }
            p #llm-usage .muted { "Loading…" }
            p { a #llm-usage-link href="/usage" { "Fleet usage" } }
        }
    }
}
