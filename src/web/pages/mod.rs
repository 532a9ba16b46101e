//! The dashboard's pages. Each is a server-rendered shell: headings, forms, labelled controls
//! and empty regions that its script module fills from the JSON API and keeps current from
//! `GET /api/events`. Nothing here ever holds a secret value.

mod admin;
mod alerts;
mod audit;
mod bot;
mod console;
mod fleet;
mod llm;
mod new_bot;
mod nodes;

pub use admin::admin;
pub use alerts::alerts;
pub use audit::audit;
pub use bot::bot_detail;
pub use console::bot_console;
pub use fleet::fleet;
pub use llm::{bot_usage, providers, usage};
pub use new_bot::new_bot;
pub use nodes::nodes;

use axum::http::StatusCode;
use axum::response::Response;
use maud::Markup;

use super::assets::Script;
use super::layout::{Nav, Page, error_page};
use super::session::BrowserSession;
use crate::bots::BotError;
use crate::edge::AppState;

/// A logged-in page with no bot of its own, as a 200 response.
/// The 404 page for a bot page whose bot does not exist, or `None` to render the page. Docker or
/// the database being unwell is not a 404: the page still loads and says so when it asks.
async fn no_such_bot(state: &AppState, id: &str) -> Option<Response> {
    match state.bots.get(id).await {
        Err(BotError::NotFound(_) | BotError::Validation(_)) => Some(error_page(
            StatusCode::NOT_FOUND,
            "No such bot",
            &format!("There is no bot with the id '{id}'."),
        )),
        Ok(_) | Err(_) => None,
    }
}

fn page(title: &str, script: Script, nav: Nav, s: &BrowserSession, body: Markup) -> Response {
    Page {
        title,
        name: script.page(),
        script: Some(script),
        csrf: Some(&s.csrf),
        nav,
        bot_id: None,
        body,
    }
    .respond(StatusCode::OK)
}
