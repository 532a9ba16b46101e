//! `apply` (make the server match a fleet file, a bounded number of bots at a time, with a
//! progress bar and a summary) and `export` (the server's fleet in the same format).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use futures_util::{StreamExt, stream};
use reqwest::Method;

use super::args::{ApplyArgs, ExportArgs};
use super::client::ApiClient;
use super::error::{CliError, one_line};
use super::fleet;
use super::plan::{self, Step, Update};
use super::progress::Progress;
use super::secrets::read_from_dir;
use super::upgrade::{Upgraded, upgrade_one};
use crate::api::{BotList, BotView, SecretSet};
use crate::secrets::SecretName;

/// A step with the secret values it needs (read before anything is changed).
struct Prepared {
    step: Step,
    values: Result<BTreeMap<SecretName, Vec<u8>>, String>,
}

/// How one step ended.
enum Outcome {
    Created,
    Updated(String),
    Unchanged,
    Deleted,
    Failed(String),
}

/// Tally for the summary line.
#[derive(Default)]
struct Counts {
    created: usize,
    updated: usize,
    unchanged: usize,
    deleted: usize,
    failed: usize,
}

impl Counts {
    fn summary(&self) -> String {
        format!(
            "created {}, updated {}, unchanged {}, deleted {}, failed {}",
            self.created, self.updated, self.unchanged, self.deleted, self.failed
        )
    }
}

/// Runs `apply`.
pub async fn apply(client: &ApiClient, args: &ApplyArgs) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::ReadInput {
        path: args.file.clone(),
        source,
    })?;
    let fleet = fleet::parse(&args.file, &text)?;
    if args.prune && fleet.bots.is_empty() {
        return Err(CliError::usage(format!(
            "{} declares no bots, so --prune would delete every bot; refusing (remove bots \
             with `botmaker bots rm` instead)",
            args.file.display()
        )));
    }
    let current: BotList = client.get("/api/bots").await?;
    let plan = plan::plan(&fleet, &current.bots, args.prune);
    let dir = args.secrets_dir.as_deref();
    let prepared: Vec<Prepared> = plan
        .steps
        .into_iter()
        .map(|step| prepare(step, dir))
        .collect();
    if args.dry_run {
        return dry_run(&prepared, plan.left_alone);
    }
    let doomed: Vec<&str> = prepared
        .iter()
        .filter_map(|p| match &p.step {
            Step::Delete(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    if !doomed.is_empty() && !args.yes {
        confirm_prune(&args.file, &doomed)?;
    }

    let total = prepared
        .iter()
        .filter(|p| !matches!(p.step, Step::Unchanged(_)))
        .count();
    let mut progress = Progress::new(total);
    let mut counts = Counts::default();
    let mut results = stream::iter(prepared)
        .map(|p| async move {
            let id = p.step.id().to_string();
            (id, execute(client, p).await)
        })
        .buffer_unordered(usize::from(args.concurrency));
    while let Some((id, outcome)) = results.next().await {
        let (line, to_stderr) = match outcome {
            Outcome::Unchanged => {
                counts.unchanged += 1;
                continue;
            }
            Outcome::Created => {
                counts.created += 1;
                (format!("created {id}"), false)
            }
            Outcome::Updated(what) => {
                counts.updated += 1;
                (format!("updated {id} ({what})"), false)
            }
            Outcome::Deleted => {
                counts.deleted += 1;
                (format!("deleted {id}"), false)
            }
            Outcome::Failed(why) => {
                counts.failed += 1;
                (format!("botmaker: {id}: {why}"), true)
            }
        };
        progress.advance(&line, to_stderr);
    }
    progress.finish();
    println!("{}", counts.summary());
    if counts.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} of {} bot(s) could not be applied (see above)",
            counts.failed, total
        )));
    }
    Ok(())
}

/// Deleting is the one step of `apply` that loses data (a bot's secrets and workspace go with
/// it), so `--prune` asks first: on a terminal it lists the bots and waits for `y`; where
/// nobody can answer it refuses unless `--yes` was given. Nothing is changed before the
/// answer.
fn confirm_prune(file: &Path, doomed: &[&str]) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    let what = format!(
        "--prune would delete {} bot(s) that {} does not declare: {}",
        doomed.len(),
        file.display(),
        doomed.join(", ")
    );
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(CliError::usage(format!(
            "{what}; nothing was changed: pass --yes to delete them (review the plan with \
             --dry-run)"
        )));
    }
    eprint!("{what}\nDelete them (and their secrets and workspaces)? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Failed(
            "deletion not confirmed; nothing was changed".into(),
        )),
    }
}

fn prepare(step: Step, dir: Option<&Path>) -> Prepared {
    let values = match &step {
        Step::Create(b) => read_from_dir(dir, &b.id, &b.secrets),
        Step::Update(u) => read_from_dir(dir, &u.id, &u.missing_secrets),
        _ => Ok(BTreeMap::new()),
    }
    .map_err(|e| one_line(&e.to_string()));
    Prepared { step, values }
}

fn dry_run(prepared: &[Prepared], left_alone: usize) -> Result<(), CliError> {
    let mut counts = Counts::default();
    for p in prepared {
        let id = p.step.id();
        let problem = match (&p.step, &p.values) {
            (Step::Conflict { reason, .. }, _) => Some(reason.clone()),
            (_, Err(why)) => Some(why.clone()),
            _ => None,
        };
        if let Some(why) = problem {
            counts.failed += 1;
            println!("! fail      {id}: {why}");
            continue;
        }
        match &p.step {
            Step::Create(_) => {
                counts.created += 1;
                println!("+ create    {id}");
            }
            Step::Update(u) => {
                counts.updated += 1;
                println!("~ update    {id}: {}", u.summary());
            }
            Step::Unchanged(_) => {
                counts.unchanged += 1;
                println!("= unchanged {id}");
            }
            Step::Delete(_) => {
                counts.deleted += 1;
                println!("- delete    {id}");
            }
            Step::Conflict { .. } => unreachable!("reported above"),
        }
    }
    if left_alone > 0 {
        println!(
            "({left_alone} bot(s) on the server are not in the file and stay; --prune would \
             delete them)"
        );
    }
    println!("dry run, nothing changed: would have {}", counts.summary());
    if counts.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} bot(s) could not be applied (see above)",
            counts.failed
        )));
    }
    Ok(())
}

async fn execute(client: &ApiClient, p: Prepared) -> Outcome {
    let result = async {
        let values = p.values?;
        let err = |e: CliError| one_line(&e.to_string());
        match p.step {
            Step::Unchanged(_) => Ok(Outcome::Unchanged),
            Step::Conflict { reason, .. } => Err(reason),
            Step::Create(bot) => {
                let body = fleet::create_body(&bot, &values)?;
                client
                    .call::<BotView>(Method::POST, "/api/bots", Some(&body))
                    .await
                    .map_err(err)?;
                Ok(Outcome::Created)
            }
            Step::Update(u) => {
                update(client, &u, values).await.map_err(err)?;
                Ok(Outcome::Updated(u.summary()))
            }
            Step::Delete(id) => {
                client
                    .delete(&format!("/api/bots/{id}"))
                    .await
                    .map_err(err)?;
                Ok(Outcome::Deleted)
            }
        }
    };
    result.await.unwrap_or_else(Outcome::Failed)
}

/// Stops first (so a recreate does not start what should stay stopped), sets missing secrets
/// before the PATCH (a template may require them), and starts last. A new image goes through
/// the health-gated upgrade, after the other changes: a release that fails is rolled back and
/// reported, and the bot keeps running its old image with the rest of the file applied.
async fn update(
    client: &ApiClient,
    u: &Update,
    values: BTreeMap<SecretName, Vec<u8>>,
) -> Result<(), CliError> {
    let path = format!("/api/bots/{}", u.id);
    if u.run == Some(false) {
        client.post::<BotView>(&format!("{path}/stop")).await?;
    }
    for (name, value) in values {
        client
            .put_bytes::<SecretSet>(&format!("{path}/secrets/{name}"), value)
            .await?;
    }
    let (patch, image) = u.split_image();
    if let Some(patch) = patch {
        client
            .call::<BotView>(Method::PATCH, &path, Some(&patch))
            .await?;
    }
    if let Some(image) = image.as_deref() {
        match upgrade_one(client, u.id.as_str(), Some(image), None).await? {
            Upgraded::RolledBack(why) => return Err(CliError::Failed(why)),
            Upgraded::Upgraded { .. } | Upgraded::Unchanged => {}
        }
    }
    if u.run == Some(true) {
        client.post::<BotView>(&format!("{path}/start")).await?;
    }
    Ok(())
}

/// Runs `export`.
pub async fn export(client: &ApiClient, args: &ExportArgs) -> Result<(), CliError> {
    let mut list: BotList = client.get("/api/bots").await?;
    list.bots.sort_by(|a, b| a.id.cmp(&b.id));
    let decls = list.bots.iter().map(fleet::from_remote).collect();
    let body = fleet::to_toml(decls)
        .map_err(|e| CliError::Failed(format!("cannot write the fleet as TOML: {e}")))?;
    let text = format!(
        "# botmaker fleet exported from {} at {}.\n\
         # Secrets are listed by name only: `botmaker apply --secrets-dir DIR` reads the values\n\
         # of secrets a bot lacks from DIR/<bot-id>/<NAME>.\n\n{body}",
        client.server(),
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
    );
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Io {
            op: "write",
            path: path.clone(),
            source,
        }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
