//! `GET /admin`: orphans (left by a crash or by hand) and API tokens. The nodes have a page of
//! their own (`/nodes`).

use axum::response::Response;
use maud::{Markup, html};

use super::page;
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, error_id};
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

fn orphans() -> Markup {
    html! {
        section.card aria-labelledby="h-orphans" {
            h2 #h-orphans { "Orphans" }
            p.help {
                "Containers, secrets and workspace directories of this installation that belong \
                 to no bot (left by a crash or by hand). Cleaning up removes them for good."
            }
            div #orphans { p.muted { "Loading…" } }
            div.actions {
                button type="button" #orphans-refresh { "Look again" }
                " "
                button.danger type="button" #cleanup disabled { "Clean up…" }
            }
        }
    }
}

fn tokens() -> Markup {
    html! {
        section.card aria-labelledby="h-tokens" {
            h2 #h-tokens { "API tokens" }
            p.help {
                "For scripts and the CLI: send " code { "Authorization: Bearer <token>" }
                ". A token is shown once, when it is created."
            }
            form #token-form .inline-form novalidate {
                div.field {
                    label for="token-name" { "Name" }
                    input type="text" #token-name autocomplete="off" placeholder="ci, laptop…"
                        aria-describedby=(error_id("token.name"));
                    (ErrorSlot("token.name"))
                }
                button.primary type="submit" { "Create token" }
            }
            div #token-created .once role="alert" hidden {
                p { strong { "Copy this token now:" } " it will not be shown again." }
                div.copy-row {
                    label.sr-only for="token-value" { "New token" }
                    input type="text" #token-value readonly;
                    button type="button" #token-copy { "Copy" }
                    " "
                    button type="button" #token-dismiss { "Done" }
                }
            }
            div.table-wrap {
                table #tokens {
                    caption.sr-only { "API tokens" }
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Id" }
                            th scope="col" { "Created" }
                            th scope="col" { "Last used" }
                            th scope="col" { span.sr-only { "Actions" } }
                        }
                    }
                    tbody #token-rows {}
                }
            }
            p #tokens-empty .empty hidden { "No API tokens." }
        }
    }
}

/// `GET /admin`: orphans and API tokens.
pub async fn admin(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "Admin" }
        (orphans())
        (tokens())
    };
    page("Admin", Script::Admin, Nav::Admin, &s, body)
}
