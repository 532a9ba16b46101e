//! `GET /bots/{id}`: one bot. Each section is its own function, the way the page grows (a
//! structured configuration editor, a console): state, resources, configuration, secrets, logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::console::{BotTab, bot_tabs};
use crate::bots::BotError;
use crate::edge::AppState;
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, error_id};
use crate::web::layout::{Nav, Page, error_page};
use crate::web::session::BrowserSession;

/// Lifecycle buttons: `data-action` (the route `bot.js` calls), label, and a tooltip.
const ACTIONS: &[(&str, &str, Option<&str>)] = &[
    ("start", "Start", None),
    ("stop", "Stop", None),
    ("restart", "Restart", None),
    (
        "apply",
        "Apply changes",
        Some("Recreate the container from the current configuration"),
    ),
];

fn heading(id: &str) -> Markup {
    html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Fleet" } " › " span { (id) } }
        div.title-row {
            h1 {
                span.light #bot-light aria-hidden="true" {}
                " "
                span #bot-name { (id) }
            }
            span.badge #bot-state role="status" { "…" }
        }
        (bot_tabs(id, BotTab::Overview))
        div.actions role="group" aria-label="Bot actions" {
            @for (action, label, title) in ACTIONS {
                button type="button" data-action=(action) title=[title] { (label) }
            }
            button.danger type="button" data-action="delete" { "Delete…" }
        }
    }
}

fn state_and_resources() -> Markup {
    html! {
        div.columns {
            section.card aria-labelledby="h-state" {
                h2 #h-state { "Desired and observed state" }
                table.kv #state-table { tbody {} }
            }
            section.card aria-labelledby="h-resources" {
                h2 #h-resources { "CPU and memory" }
                p #stats-summary .muted { "No samples yet (a bot is sampled while it runs)." }
                figure {
                    figcaption { "CPU (% of one core)" }
                    svg #chart-cpu .chart viewBox="0 0 600 140" role="img"
                        aria-label="CPU use over the last minutes" {}
                }
                figure {
                    figcaption { "Memory (of its limit)" }
                    svg #chart-mem .chart viewBox="0 0 600 140" role="img"
                        aria-label="Memory use over the last minutes" {}
                }
            }
        }
    }
}

fn configuration() -> Markup {
    html! {
        section.card aria-labelledby="h-config" {
            h2 #h-config { "Configuration" }
            dl.config #config {}
            details #edit-config {
                summary { "Edit configuration" }
                form #config-form novalidate {
                    div.field {
                        label for="config-json" {
                            "Configuration (JSON: name, image, command, env, ports, limits, settings)"
                        }
                        textarea #config-json rows="14" spellcheck="false"
                            aria-describedby="config-help config-errors" {}
                        p.help #config-help {
                            "Saved changes take effect when the container is recreated: tick the \
                             box, or press " em { "Apply changes" } " later. Secrets are set \
                             below, not here."
                        }
                        div #config-errors .field-error role="alert" hidden {}
                    }
                    label.choice {
                        input type="checkbox" #config-apply checked;
                        " Apply now (recreates the container)"
                    }
                    div.actions { button.primary type="submit" { "Save configuration" } }
                }
            }
        }
    }
}

fn secrets() -> Markup {
    html! {
        section.card aria-labelledby="h-secrets" {
            h2 #h-secrets { "Secrets" }
            p.help {
                "Values are write-only: they are never shown, only replaced or deleted. A new \
                 value reaches the running container at once (its secrets directory is \
                 mounted), though the bot may read it only at start."
            }
            ul #secret-list .secret-list {}
            form #secret-form .inline-form novalidate {
                div.field {
                    label for="secret-name" { "Name" }
                    input type="text" #secret-name autocomplete="off" spellcheck="false"
                        autocapitalize="characters" aria-describedby=(error_id("name"));
                    (ErrorSlot("name"))
                }
                div.field {
                    label for="secret-value" { "Value" }
                    input type="password" #secret-value autocomplete="new-password"
                        aria-describedby=(error_id("value"));
                    (ErrorSlot("value"))
                }
                button.primary type="submit" #secret-submit { "Set secret" }
            }
        }
    }
}

fn logs() -> Markup {
    html! {
        section.card aria-labelledby="h-logs" {
            h2 #h-logs { "Logs" }
            div.toolbar {
                label {
                    "Last "
                    input type="number" #log-tail value="200" min="1" max="10000" .narrow;
                    " lines"
                }
                button type="button" #log-load { "Load" }
                label.choice { input type="checkbox" #log-follow checked; " Follow" }
                label {
                    "Filter "
                    input type="search" #log-filter placeholder="show lines containing…"
                        autocomplete="off";
                }
                button type="button" #log-download { "Download" }
            }
            p #log-status .muted role="status" {}
            div #log .log role="log" tabindex="0" aria-label="Log lines" aria-live="off" {}
            button #log-resume .resume type="button" hidden {
                "Paused while you read: jump to the latest lines"
            }
        }
    }
}

/// `GET /bots/{id}`: one bot.
pub async fn bot_detail(
    s: BrowserSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    match state.bots.get(&id).await {
        Ok(_) => {}
        Err(BotError::NotFound(_) | BotError::Validation(_)) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such bot",
                &format!("There is no bot with the id '{id}'."),
            );
        }
        // Docker or the database is unwell: the page still loads and says so when it asks.
        Err(_) => {}
    }
    Page {
        title: &id,
        name: Script::Bot.page(),
        script: Some(Script::Bot),
        csrf: Some(&s.csrf),
        nav: Nav::Fleet,
        bot_id: Some(&id),
        body: html! {
            (heading(&id))
            (state_and_resources())
            (configuration())
            (secrets())
            (logs())
        },
    }
    .respond(StatusCode::OK)
}
