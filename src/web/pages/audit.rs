//! `GET /audit`: the audit log in the dashboard, newest first, filtered by bot and action and
//! paged with "Older entries". A shell its script module (`audit.js`) fills from
//! `GET /api/audit`.

use axum::response::Response;
use maud::html;

use super::page;
use crate::web::assets::Script;
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

/// Actions offered by the filter (any other can be typed in the API's `action=`).
const ACTIONS: &[&str] = &[
    "create",
    "update",
    "start",
    "stop",
    "restart",
    "apply",
    "delete",
    "upgrade",
    "import",
    "backup",
    "secret_set",
    "secret_delete",
    "token_create",
    "token_revoke",
    "login",
    "logout",
    "cleanup",
    "exec",
    "provider_set",
    "provider_delete",
];

/// `GET /audit`.
pub async fn audit(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "Audit log" }
        form.toolbar #audit-filters {
            label {
                "Bot "
                input type="text" #audit-bot autocomplete="off" spellcheck="false"
                    autocapitalize="none" placeholder="any";
            }
            label {
                "Action "
                select #audit-action {
                    option value="" { "any" }
                    @for a in ACTIONS {
                        option value=(a) { (a) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        section.card aria-labelledby="h-audit" {
            h2 #h-audit { "Changes, newest first" }
            div.table-wrap {
                table #audit {
                    caption.sr-only { "Audit log entries" }
                    thead {
                        tr {
                            th scope="col" { "When (UTC)" }
                            th scope="col" { "Who" }
                            th scope="col" { "Action" }
                            th scope="col" { "Bot" }
                            th scope="col" { "Target" }
                            th scope="col" { "Outcome" }
                            th scope="col" { "Client" }
                        }
                    }
                    tbody #audit-rows {}
                }
            }
            p #audit-empty .empty hidden { "No entry matches." }
            div.actions { button #audit-older type="button" hidden { "Older entries" } }
        }
    };
    page("Audit log", Script::Audit, Nav::Audit, &s, body)
}
