//! `GET /`: the fleet table, its filters and the actions on a selection of bots.

use axum::response::Response;
use maud::html;

use super::page;
use crate::bots::BotState;
use crate::web::assets::Script;
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

/// The table's columns after the selection box: `data-col` and header. `fleet.js` makes one
/// cell per column, in this order, and fills it by its `data-col`.
const COLUMNS: &[(&str, &str)] = &[
    ("state", "State"),
    ("bot", "Bot"),
    ("health", "Health"),
    ("uptime", "Uptime"),
    ("restarts", "Restarts"),
    ("cpu", "CPU"),
    ("mem", "Memory"),
    ("ports", "Ports"),
    ("image", "Image"),
];

/// Actions on the selected bots: `data-bulk` (the lifecycle route `fleet.js` calls) and label.
const BULK_ACTIONS: &[(&str, &str)] =
    &[("start", "Start"), ("stop", "Stop"), ("restart", "Restart")];

/// `GET /`: the fleet.
pub async fn fleet(s: BrowserSession) -> Response {
    let body = html! {
        div.title-row {
            h1 { "Fleet" }
            a.button.primary href="/bots/new" { "New bot" }
        }
        div.toolbar role="search" {
            label {
                "Name "
                input type="search" #filter-name placeholder="filter by name or id" autocomplete="off";
            }
            label {
                "State "
                select #filter-state {
                    option value="" { "any" }
                    @for state in BotState::ALL {
                        option value=(state.as_str()) { (state.as_str()) }
                    }
                }
            }
        }
        div.toolbar role="group" aria-label="Actions on the selected bots" {
            span #selection-count aria-live="polite" { "0 selected" }
            @for (action, label) in BULK_ACTIONS {
                button type="button" data-bulk=(action) disabled { (label) }
            }
            // Asks first (naming the bots), then deletes them one by one.
            button.danger type="button" #bulk-delete data-bulk="delete" disabled { "Delete selected" }
        }
        // What the last action on the selection did, bot by bot.
        ul #bulk-results .bulk-results aria-live="polite" hidden {}
        div.table-wrap {
            table.fleet #fleet {
                caption.sr-only { "Bots, with their observed state and resource use" }
                thead {
                    tr {
                        th scope="col" data-col="select" {
                            input type="checkbox" #select-all aria-label="Select all shown bots";
                        }
                        @for (col, header) in COLUMNS {
                            th scope="col" data-col=(col) { (header) }
                        }
                    }
                }
                tbody #fleet-rows {}
            }
        }
        p #fleet-empty .empty hidden {
            "No bots yet. " a href="/bots/new" { "Create the first one" } "."
        }
        p #fleet-none-shown .empty hidden { "No bot matches the filter." }
        p #fleet-loading .empty { "Loading…" }
    };
    page("Fleet", Script::Fleet, Nav::Fleet, &s, body)
}
