//! The dashboard's pages. Each is a server-rendered shell: headings, forms, labelled controls
//! and empty regions that its script module fills from the JSON API and keeps current from
//! `GET /api/events`. Nothing here ever holds a secret value.

mod admin;
mod bot;
mod console;
mod fleet;
mod new_bot;

pub use admin::admin;
pub use bot::bot_detail;
pub use console::bot_console;
pub use fleet::fleet;
pub use new_bot::new_bot;

use axum::http::StatusCode;
use axum::response::Response;
use maud::Markup;

use super::assets::Script;
use super::layout::{Nav, Page};
use super::session::BrowserSession;

/// A logged-in page with no bot of its own, as a 200 response.
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
