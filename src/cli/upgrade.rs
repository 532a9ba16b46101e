//! `bots upgrade ID` and the fleet-wide rolling `upgrade`: the server's health-gated upgrade
//! (`POST /api/bots/{id}/upgrade`), one bot, or a bounded number of bots at a time with a
//! progress bar and a summary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde_json::json;

use super::args::{BotUpgradeArgs, UpgradeArgs};
use super::client::ApiClient;
use super::error::{CliError, one_line};
use super::output::print_json;
use super::progress::Progress;
use crate::api::{
    BotList, BotView, UPGRADE_ROLLED_BACK, UpgradeBot, UpgradeOutcome, UpgradeResult,
};
/// The server's default health deadline, used to bound the wait when none is given.
const DEFAULT_TIMEOUT_SECS: u64 = 300;
/// Time the server may take beyond the health deadline (stop, create, rollback), plus room.
const SLACK: Duration = Duration::from_secs(180);

/// How one bot's upgrade ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Upgraded {
    /// Replaced and healthy.
    Upgraded {
        /// The image before.
        from: String,
        /// The image now.
        to: String,
        /// Milliseconds without a running bot.
        downtime_ms: Option<u64>,
    },
    /// It already ran that image.
    Unchanged,
    /// The new container failed; the old one runs again.
    RolledBack(String),
}

/// Asks the server to upgrade `id` to `image` (or to what its reference names now). A
/// rollback is an outcome; any other refusal is an error.
pub async fn upgrade_one(
    client: &ApiClient,
    id: &str,
    image: Option<&str>,
    timeout_secs: Option<u64>,
) -> Result<Upgraded, CliError> {
    let body = UpgradeBot {
        image: image.map(str::to_string),
        timeout_secs,
    };
    let limit = Duration::from_secs(timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)) + SLACK;
    let path = format!("/api/bots/{id}/upgrade");
    match client
        .post_within::<UpgradeOutcome>(&path, &body, limit)
        .await
    {
        Ok(a) if a.result == UpgradeResult::Unchanged => Ok(Upgraded::Unchanged),
        Ok(a) => Ok(Upgraded::Upgraded {
            from: a.previous_image,
            to: a.image,
            downtime_ms: a.downtime_ms,
        }),
        Err(CliError::Api { code, message, .. }) if code == UPGRADE_ROLLED_BACK => {
            Ok(Upgraded::RolledBack(message))
        }
        Err(e) => Err(e),
    }
}

/// `bots upgrade ID`: one line, exit 1 when rolled back.
pub async fn upgrade_bot(client: &ApiClient, a: &BotUpgradeArgs) -> Result<(), CliError> {
    let outcome = upgrade_one(client, a.id.as_str(), a.image.as_deref(), a.timeout).await?;
    if a.json {
        let v: BotView = client.get(&format!("/api/bots/{}", a.id)).await?;
        print_json(&json!({ "result": describe_result(&outcome), "bot": v }));
    }
    match outcome {
        Upgraded::RolledBack(why) => Err(CliError::Failed(why)),
        other => {
            if !a.json {
                println!("{}", line(a.id.as_str(), &other));
            }
            Ok(())
        }
    }
}

fn describe_result(o: &Upgraded) -> &'static str {
    match o {
        Upgraded::Upgraded { .. } => "upgraded",
        Upgraded::Unchanged => "unchanged",
        Upgraded::RolledBack(_) => "rolled_back",
    }
}

/// The line printed for one bot.
pub fn line(id: &str, o: &Upgraded) -> String {
    match o {
        Upgraded::Upgraded {
            from,
            to,
            downtime_ms,
        } => {
            let down = downtime_ms
                .map(|ms| format!(", down {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            format!("upgraded {id}: {from} -> {to}{down}")
        }
        Upgraded::Unchanged => format!("unchanged {id}: already runs that image"),
        Upgraded::RolledBack(why) => format!("botmaker: {id}: rolled back: {why}"),
    }
}

/// Tally for the summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replaced and healthy.
    pub upgraded: usize,
    /// Rolled back by the server.
    pub rolled_back: usize,
    /// Already on that image.
    pub unchanged: usize,
    /// Refused, or the server could not be asked.
    pub failed: usize,
    /// Not tried because `--stop-on-failure` stopped the rollout.
    pub skipped: usize,
}

impl Tally {
    /// `upgraded N, rolled back N, unchanged N, failed N, skipped N`.
    pub fn summary(&self) -> String {
        format!(
            "upgraded {}, rolled back {}, unchanged {}, failed {}, skipped {}",
            self.upgraded, self.rolled_back, self.unchanged, self.failed, self.skipped
        )
    }
}

/// The bots `args` selects, or a usage error naming a bot that does not exist.
pub fn select<'a>(args: &UpgradeArgs, bots: &'a [BotView]) -> Result<Vec<&'a BotView>, CliError> {
    if let Some(ids) = &args.bots {
        return ids
            .iter()
            .map(|id| {
                bots.iter()
                    .find(|b| b.id == id.as_str())
                    .ok_or_else(|| CliError::usage(format!("there is no bot {id}")))
            })
            .collect();
    }
    Ok(bots
        .iter()
        .filter(|b| args.template.as_deref().is_none_or(|t| b.template == t))
        .collect())
}

/// `upgrade`: a rolling upgrade, at most `--max-unavailable` bots down at once.
pub async fn rolling(client: &ApiClient, args: &UpgradeArgs) -> Result<(), CliError> {
    let list: BotList = client.get("/api/bots").await?;
    let selected = select(args, &list.bots)?;
    // Without --image only bots whose tag moved have anything to pick up.
    let (todo, current): (Vec<&BotView>, Vec<&BotView>) = selected
        .into_iter()
        .partition(|b| args.image.is_some() || b.image_drift);
    let mut tally = Tally {
        unchanged: current.len(),
        ..Tally::default()
    };
    if todo.is_empty() {
        println!(
            "nothing to upgrade ({} bot(s) already current)",
            current.len()
        );
        println!("{}", tally.summary());
        return Ok(());
    }
    let stop = AtomicBool::new(false);
    let mut progress = Progress::new(todo.len());
    let mut results = stream::iter(todo)
        .map(|b| {
            let stop = &stop;
            async move {
                if stop.load(Ordering::SeqCst) {
                    return (b.id.clone(), None);
                }
                let r = upgrade_one(client, &b.id, args.image.as_deref(), args.timeout).await;
                let failed = !matches!(r, Ok(Upgraded::Upgraded { .. } | Upgraded::Unchanged));
                if failed && args.stop_on_failure {
                    stop.store(true, Ordering::SeqCst);
                }
                (b.id.clone(), Some(r))
            }
        })
        .buffer_unordered(usize::from(args.max_unavailable));
    while let Some((id, r)) = results.next().await {
        let (text, to_stderr) = match r {
            None => {
                tally.skipped += 1;
                (format!("skipped {id}: stopped after a failure"), true)
            }
            Some(Ok(o)) => {
                match &o {
                    Upgraded::Upgraded { .. } => tally.upgraded += 1,
                    Upgraded::Unchanged => tally.unchanged += 1,
                    Upgraded::RolledBack(_) => tally.rolled_back += 1,
                }
                (line(&id, &o), matches!(o, Upgraded::RolledBack(_)))
            }
            Some(Err(e)) => {
                tally.failed += 1;
                (
                    format!("botmaker: {id}: {}", one_line(&e.to_string())),
                    true,
                )
            }
        };
        progress.advance(&text, to_stderr);
    }
    progress.finish();
    println!("{}", tally.summary());
    let bad = tally.rolled_back + tally.failed;
    if bad > 0 {
        return Err(CliError::Failed(format!(
            "{bad} bot(s) could not be upgraded (see above){}",
            if tally.skipped > 0 {
                format!("; {} not tried", tally.skipped)
            } else {
                String::new()
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary_say_what_happened() {
        let o = Upgraded::Upgraded {
            from: "a:1".into(),
            to: "a:2".into(),
            downtime_ms: Some(1500),
        };
        assert_eq!(line("x", &o), "upgraded x: a:1 -> a:2, down 1.5 s");
        assert_eq!(
            line("x", &Upgraded::RolledBack("crashed".into())),
            "botmaker: x: rolled back: crashed"
        );
        let t = Tally {
            upgraded: 2,
            rolled_back: 1,
            skipped: 3,
            ..Tally::default()
        };
        assert_eq!(
            t.summary(),
            "upgraded 2, rolled back 1, unchanged 0, failed 0, skipped 3"
        );
    }
}
