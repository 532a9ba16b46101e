//! Fleet-wide commands: `stats`, `nodes`, `orphans`, `cleanup`, and `tokens create|list|revoke`.

use reqwest::Method;
use serde_json::Value;

use super::args::{StatsArgs, TokensCommand};
use super::client::ApiClient;
use super::error::CliError;
use super::output::{Table, bytes, print_json, timestamp};
use crate::api::{
    Cleanup, CreateToken, NewToken, NodeList, OrphanLists, Orphans, StatsList, TokenList,
};

/// `stats`: a table of the latest sample of each running bot.
pub async fn stats(client: &ApiClient, args: &StatsArgs) -> Result<(), CliError> {
    let mut v: Value = client.get("/api/stats").await?;
    if !args.ids.is_empty() {
        if let Some(rows) = v["stats"].as_array_mut() {
            rows.retain(|s| args.ids.iter().any(|id| s["id"] == id.as_str()));
        }
    }
    if args.json {
        print_json(&v);
        return Ok(());
    }
    let list: StatsList = client.decode(v)?;
    let mut t = Table::new(&[
        "ID", "CPU %", "MEM", "MEM %", "LIMIT", "PIDS", "NET RX", "NET TX",
    ]);
    for row in &list.stats {
        let s = &row.sample;
        t.row(vec![
            row.id.clone(),
            format!("{:.1}", s.cpu_percent),
            bytes(s.memory_bytes),
            format!("{:.1}", s.memory_percent),
            bytes(s.memory_limit_bytes),
            s.pids.to_string(),
            bytes(s.network_rx_bytes),
            bytes(s.network_tx_bytes),
        ]);
    }
    t.print();
    Ok(())
}

/// `orphans`: managed containers, secrets directories and workspaces that belong to no bot in
/// the registry; listing them changes nothing.
pub async fn orphans(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let v: Value = client.get("/api/admin/orphans").await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let o: Orphans = client.decode(v)?;
    let lists = OrphanLists {
        containers: o.containers,
        secrets: o.secrets,
        workspaces: o.workspaces,
    };
    print_orphans(&lists, "orphan");
    if lists.total() == 0 {
        println!("no orphans");
    } else {
        println!("remove them with `botmaker cleanup`");
    }
    Ok(())
}

/// `nodes`: where the bots run.
pub async fn nodes(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let v: Value = client.get("/api/nodes").await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let list: NodeList = client.decode(v)?;
    let mut t = Table::new(&["NAME", "STATE", "AVAILABILITY", "ROLE", "BOTS", "MEMORY"]);
    for n in &list.nodes {
        t.row(vec![
            n.name.clone(),
            n.state.clone(),
            n.availability.clone(),
            n.role.clone(),
            n.bots.to_string(),
            bytes(u64::try_from(n.memory_bytes).unwrap_or(0)),
        ]);
    }
    t.print();
    Ok(())
}

/// `cleanup`: removes what `orphans` lists, found again while the server holds the registry so
/// that a bot being created is never taken for an orphan.
pub async fn cleanup(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let v: Value = client
        .call(Method::POST, "/api/admin/cleanup", None::<&()>)
        .await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let c: Cleanup = client.decode(v)?;
    print_orphans(&c.removed, "removed");
    println!("removed {} orphan(s)", c.removed.total());
    Ok(())
}

fn print_orphans(o: &OrphanLists, verb: &str) {
    for (kind, ids) in [
        ("container", &o.containers),
        ("secrets", &o.secrets),
        ("workspace", &o.workspaces),
    ] {
        for id in ids {
            println!("{verb} {kind} {id}");
        }
    }
}

/// `tokens ...`.
pub async fn tokens(client: &ApiClient, cmd: TokensCommand) -> Result<(), CliError> {
    match cmd {
        TokensCommand::Create { name } => {
            let t: NewToken = client
                .call(Method::POST, "/api/tokens", Some(&CreateToken { name }))
                .await?;
            // The token alone on stdout, so `$(botmaker tokens create ci)` captures it.
            println!("{}", t.token);
            eprintln!(
                "botmaker: token {} issued; it is shown only this once (revoke it with \
                 `botmaker tokens revoke {}`)",
                t.id, t.id
            );
        }
        TokensCommand::List(a) => {
            let v: Value = client.get("/api/tokens").await?;
            if a.json {
                print_json(&v);
                return Ok(());
            }
            let list: TokenList = client.decode(v)?;
            let mut t = Table::new(&["ID", "NAME", "CREATED", "LAST USED"]);
            for tok in list.tokens {
                t.row(vec![
                    tok.id,
                    tok.name,
                    timestamp(Some(tok.created_at)),
                    timestamp(tok.last_used_at),
                ]);
            }
            t.print();
        }
        TokensCommand::Revoke { id } => {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(CliError::usage(format!(
                    "{id:?} is not a token id (see `botmaker tokens list`)"
                )));
            }
            client.delete(&format!("/api/tokens/{id}")).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
