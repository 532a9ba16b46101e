//! `notifications list|add|edit|rm|test|deliveries`: alert channels from the command line. Secrets
//! (a signing secret, a Telegram bot token) come from a file or stdin, never from the command
//! line, and are never printed.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use super::args::NotificationsCommand;
use super::client::ApiClient;
use super::error::CliError;
use super::input;
use super::output::{Table, print_json, timestamp};
use crate::api::{
    ChannelList, ChannelPatch, ChannelView, DeliveryList, DeliveryResult, DeliveryView, NewChannel,
};

/// Runs a `notifications` subcommand.
pub async fn run(client: &ApiClient, cmd: NotificationsCommand) -> Result<(), CliError> {
    match cmd {
        NotificationsCommand::List(a) => {
            let v: Value = client.get("/api/notifications").await?;
            if a.json {
                print_json(&v);
                return Ok(());
            }
            let list: ChannelList = client.decode(v)?;
            let mut t = Table::new(&["ID", "NAME", "KIND", "URL", "EVENTS", "SIGNED"]);
            for c in list.channels {
                t.row(vec![
                    c.id.to_string(),
                    c.name.clone().unwrap_or_else(|| "(--alert-webhook)".into()),
                    c.kind.to_string(),
                    c.url.clone(),
                    events_cell(&c),
                    if c.signed { "yes" } else { "no" }.into(),
                ]);
            }
            t.print();
        }
        NotificationsCommand::Add {
            name,
            kind,
            url,
            chat_id,
            bot_token_file,
            signing_secret_file,
            signing_secret_stdin,
            events,
        } => {
            let bot_token = if kind == "telegram" {
                Some(secret(bot_token_file.as_deref(), "Telegram bot token")?)
            } else {
                None
            };
            let signing_secret = match (signing_secret_file, signing_secret_stdin) {
                (Some(path), _) => Some(secret(Some(&path), "signing secret")?),
                (None, true) => Some(secret(None, "signing secret")?),
                (None, false) => None,
            };
            let body = NewChannel {
                name,
                kind,
                url,
                chat_id,
                bot_token,
                signing_secret,
                events: (!events.is_empty()).then_some(events),
            };
            let c: ChannelView = client
                .call(Method::POST, "/api/notifications", Some(&body))
                .await?;
            println!(
                "added channel {} ({}, {}) for {}",
                c.id,
                c.kind,
                c.url,
                events_cell(&c)
            );
        }
        NotificationsCommand::Edit {
            id,
            name,
            url,
            chat_id,
            bot_token_file,
            signing_secret_file,
            signing_secret_stdin,
            unsigned,
            events,
            all_events,
        } => {
            let bot_token = match bot_token_file {
                Some(path) => Some(secret(Some(&path), "Telegram bot token")?),
                None => None,
            };
            let signing_secret = match (signing_secret_file, signing_secret_stdin, unsigned) {
                (Some(path), _, _) => Some(Some(secret(Some(&path), "signing secret")?)),
                (None, true, _) => Some(Some(secret(None, "signing secret")?)),
                (None, false, true) => Some(None),
                (None, false, false) => None,
            };
            let events = match (all_events, events.is_empty()) {
                (true, _) => Some(None),
                (false, false) => Some(Some(events)),
                (false, true) => None,
            };
            let body = ChannelPatch {
                name,
                url,
                chat_id,
                bot_token,
                signing_secret,
                events,
            };
            let c: ChannelView = client
                .call(
                    Method::PATCH,
                    &format!("/api/notifications/{id}"),
                    Some(&body),
                )
                .await?;
            println!(
                "changed channel {} ({}, {}{}) for {}",
                c.id,
                c.kind,
                c.url,
                if c.signed { ", signed" } else { "" },
                events_cell(&c)
            );
        }
        NotificationsCommand::Rm { id } => {
            client.delete(&format!("/api/notifications/{id}")).await?;
            println!("removed channel {id}");
        }
        NotificationsCommand::Test { id, json } => {
            let v: Value = client
                .post(&format!("/api/notifications/{id}/test"))
                .await?;
            if json {
                print_json(&v);
            }
            let d: DeliveryView = client.decode(v)?;
            if d.result != DeliveryResult::Ok {
                return Err(CliError::Failed(format!(
                    "the test message to channel {id} failed: {}",
                    d.error.as_deref().unwrap_or("no reason given")
                )));
            }
            if !json {
                println!(
                    "test message delivered to channel {id} (HTTP {})",
                    d.http_status.map_or("?".into(), |s| s.to_string())
                );
            }
        }
        NotificationsCommand::Deliveries { id, limit, json } => {
            let v: Value = client
                .get(&format!("/api/notifications/{id}/deliveries?limit={limit}"))
                .await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let list: DeliveryList = client.decode(v)?;
            let mut t = Table::new(&["AT", "EVENT", "BOT", "ATTEMPT", "RESULT", "STATUS", "ERROR"]);
            for d in list.deliveries {
                t.row(vec![
                    timestamp(Some(d.at)),
                    d.event,
                    d.bot_id.unwrap_or_else(|| "-".into()),
                    d.attempt.to_string(),
                    d.result.as_str().into(),
                    d.http_status.map_or("-".into(), |s| s.to_string()),
                    d.error.unwrap_or_default(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

fn events_cell(c: &ChannelView) -> String {
    if c.all_events {
        "all".into()
    } else {
        c.events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A secret from `file`, else from stdin; never empty.
fn secret(file: Option<&Path>, what: &str) -> Result<String, CliError> {
    let raw = match file {
        Some(path) => input::read_file(path)?,
        None => input::read_stdin(what)?,
    };
    let value = String::from_utf8(input::strip_newline(raw))
        .map_err(|_| CliError::usage(format!("the {what} is not UTF-8")))?;
    if value.trim().is_empty() {
        return Err(CliError::usage(format!(
            "the {what} is empty: pipe it on stdin or pass its file"
        )));
    }
    Ok(value)
}
