//! `providers list|add|rm` and `usage`: the LLM key proxy from the command line. A provider's
//! API key is read from a file or stdin, never from the command line, and never printed.

use reqwest::Method;
use serde_json::Value;

use super::args::{ProvidersCommand, UsageArgs};
use super::client::ApiClient;
use super::error::CliError;
use super::input;
use super::output::{Table, print_json};
use crate::api::ProviderList;
use crate::llm::{BotUsageReport, PriceTable, PutProvider, UsageReport, UsageTotals};

/// Runs a `providers` subcommand.
pub async fn providers(client: &ApiClient, cmd: ProvidersCommand) -> Result<(), CliError> {
    match cmd {
        ProvidersCommand::List(a) => {
            let v: Value = client.get("/api/providers").await?;
            if a.json {
                print_json(&v);
                return Ok(());
            }
            let list: ProviderList = client.decode(v)?;
            let mut t = Table::new(&["NAME", "KIND", "BASE URL", "KEY", "PRICED", "BOTS"]);
            for p in list.providers {
                t.row(vec![
                    p.name.to_string(),
                    p.kind.to_string(),
                    p.base_url,
                    if p.has_api_key { "set" } else { "none" }.into(),
                    p.prices.len().to_string(),
                    p.bots.len().to_string(),
                ]);
            }
            t.print();
            match (list.proxy.enabled, list.proxy.url, list.proxy.listen) {
                (true, Some(url), Some(listen)) => {
                    eprintln!("proxy: {url} for bots (listening on {listen})")
                }
                _ => eprintln!("proxy: off (bots hold provider keys themselves)"),
            }
        }
        ProvidersCommand::Add {
            name,
            kind,
            base_url,
            api_key_file,
            no_key,
            price,
        } => {
            let api_key = if no_key {
                None
            } else {
                let raw = match &api_key_file {
                    Some(path) => input::read_file(path)?,
                    None => input::read_stdin(&format!("API key of {name}"))?,
                };
                let key = String::from_utf8(input::strip_newline(raw))
                    .map_err(|_| CliError::usage("the API key is not UTF-8"))?;
                if key.trim().is_empty() {
                    return Err(CliError::usage(
                        "the API key is empty: pipe it on stdin or pass --api-key-file (or \
                         --no-key for a server that needs none)",
                    ));
                }
                Some(key)
            };
            let mut prices = PriceTable::new();
            for p in price {
                prices.insert(p.model, p.price);
            }
            let body = PutProvider {
                name: name.clone(),
                kind,
                base_url,
                api_key,
                prices: Some(prices),
            };
            let v: Value = client
                .call(Method::POST, "/api/providers", Some(&body))
                .await?;
            println!(
                "saved provider {name} ({}, {})",
                v["kind"].as_str().unwrap_or("?"),
                v["base_url"].as_str().unwrap_or("?")
            );
        }
        ProvidersCommand::Rm { name, force } => {
            let path = format!(
                "/api/providers/{name}{}",
                if force { "?force=true" } else { "" }
            );
            client.delete(&path).await?;
            println!("removed provider {name}");
        }
    }
    Ok(())
}

fn totals_cells(t: &UsageTotals) -> Vec<String> {
    vec![
        t.requests.to_string(),
        t.input_tokens.to_string(),
        t.output_tokens.to_string(),
        format!("{:.4}", t.cost),
    ]
}

/// `usage`: the fleet's, or one bot's.
pub async fn usage(client: &ApiClient, a: &UsageArgs) -> Result<(), CliError> {
    let query = a
        .since
        .as_ref()
        .map(|s| format!("?since={s}"))
        .unwrap_or_default();
    match &a.bot {
        None => {
            let v: Value = client.get(&format!("/api/usage{query}")).await?;
            if a.json {
                print_json(&v);
                return Ok(());
            }
            let r: UsageReport = client.decode(v)?;
            let mut t = Table::new(&["BOT", "REQUESTS", "INPUT", "OUTPUT", "COST"]);
            for b in &r.bots {
                let mut row = vec![b.bot.clone()];
                row.extend(totals_cells(&b.totals));
                t.row(row);
            }
            let mut total = vec!["(all)".to_string()];
            total.extend(totals_cells(&r.totals));
            t.row(total);
            t.print();
            eprintln!("since {} (UTC)", r.since);
        }
        Some(bot) => {
            let v: Value = client.get(&format!("/api/bots/{bot}/usage{query}")).await?;
            if a.json {
                print_json(&v);
                return Ok(());
            }
            let r: BotUsageReport = client.decode(v)?;
            let mut t = Table::new(&[
                "DAY", "PROVIDER", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "COST",
            ]);
            for row in &r.rows {
                let mut cells = vec![row.day.clone(), row.provider.clone(), row.model.clone()];
                cells.extend(totals_cells(&row.totals));
                t.row(cells);
            }
            let mut total = vec!["(all)".into(), String::new(), String::new()];
            total.extend(totals_cells(&r.totals));
            t.row(total);
            t.print();
            let limit = |l: Option<String>| l.unwrap_or_else(|| "unlimited".into());
            eprintln!(
                "since {} (UTC); today {} tokens (limit {}), this month {:.4} (limit {}), this \
                 minute {} requests (limit {})",
                r.since,
                r.current.tokens_today,
                limit(r.limits.llm_tokens_per_day.map(|v| v.to_string())),
                r.current.cost_this_month,
                limit(r.limits.llm_cost_per_month.map(|v| v.to_string())),
                r.current.requests_this_minute,
                limit(r.limits.llm_requests_per_minute.map(|v| v.to_string())),
            );
        }
    }
    Ok(())
}
