//! `audit`: the server's audit log, newest first, one page at a time.

use serde_json::Value;

use super::args::AuditArgs;
use super::client::ApiClient;
use super::error::CliError;
use super::output::{Table, print_json};
use crate::api::{AuditPage, AuditQuery};

/// Prints a page of the audit log; the cursor of the next page goes to stderr.
pub async fn audit(client: &ApiClient, a: &AuditArgs) -> Result<(), CliError> {
    let query = AuditQuery {
        bot: a.bot.as_ref().map(ToString::to_string),
        action: a.action.clone(),
        limit: a.limit,
        before: a.before,
    };
    let query = serde_urlencoded::to_string(&query)
        .map_err(|e| CliError::usage(format!("bad filter: {e}")))?;
    let path = if query.is_empty() {
        "/api/audit".to_string()
    } else {
        format!("/api/audit?{query}")
    };
    let v: Value = client.get(&path).await?;
    if a.json {
        print_json(&v);
        return Ok(());
    }
    let page: AuditPage = client.decode(v)?;
    let mut t = Table::new(&[
        "SEQ", "AT", "ACTOR", "ACTION", "BOT", "TARGET", "OUTCOME", "CLIENT",
    ]);
    for e in page.entries {
        let dash = || "-".to_string();
        t.row(vec![
            e.seq.to_string(),
            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!("{}:{}", e.actor_kind, e.actor),
            e.action,
            e.bot.unwrap_or_else(dash),
            e.target.unwrap_or_else(dash),
            e.outcome,
            e.client.unwrap_or_else(dash),
        ]);
    }
    t.print();
    if let Some(before) = page.next_before {
        eprintln!("older entries: --before {before}");
    }
    Ok(())
}
