//! `secrets set|list|rm`, and reading declared secret values from a secrets directory
//! (`DIR/<bot-id>/<NAME>`) for `apply` and `bots create`. Values travel only from a file or
//! stdin to the request body; they are never printed.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::args::SecretsCommand;
use super::client::ApiClient;
use super::error::CliError;
use super::input;
use super::output::print_json;
use crate::BotId;
use crate::api::{SecretNames, SecretSet};
use crate::secrets::SecretName;

/// Runs a `secrets` subcommand.
pub async fn run(client: &ApiClient, cmd: SecretsCommand) -> Result<(), CliError> {
    match cmd {
        SecretsCommand::Set {
            id,
            name,
            file,
            raw,
        } => {
            let value = match &file {
                Some(path) => input::read_file(path)?,
                None => input::read_stdin(&format!("value of {name} for {id}"))?,
            };
            let value = if raw {
                value
            } else {
                input::strip_newline(value)
            };
            if value.is_empty() {
                return Err(CliError::usage(format!(
                    "the value of {name} is empty: pipe it on stdin or pass --file"
                )));
            }
            let set: SecretSet = client
                .put_bytes(&format!("/api/bots/{id}/secrets/{name}"), value)
                .await?;
            println!("{}", set_line(&id, &set));
        }
        SecretsCommand::List { id, json } => {
            let answer: SecretNames = client.get(&format!("/api/bots/{id}/secrets")).await?;
            if json {
                print_json(&json!({ "secrets": answer.secrets }));
            } else {
                for name in answer.secrets {
                    println!("{name}");
                }
            }
        }
        SecretsCommand::Rm { id, name } => {
            client
                .delete(&format!("/api/bots/{id}/secrets/{name}"))
                .await?;
            println!("removed secret {name} of {id}");
        }
    }
    Ok(())
}

/// What `secrets set` prints: the secret, and when the bot gets the new value (the
/// template's rotation policy decides: a file changed in place, or a restart).
fn set_line(id: &BotId, set: &SecretSet) -> String {
    format!("set secret {} of {id}: {}", set.name, set.effect)
}

/// The values of `names` for bot `id`: `dir/<id>/<NAME>`, one trailing newline dropped.
/// Fails on the first missing or unreadable file, naming it.
pub fn read_from_dir(
    dir: Option<&Path>,
    id: &BotId,
    names: &[SecretName],
) -> Result<BTreeMap<SecretName, Vec<u8>>, CliError> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let Some(dir) = dir else {
        let list: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        return Err(CliError::usage(format!(
            "bot '{id}' needs the secret(s) {}: pass --secrets-dir DIR holding DIR/{id}/<NAME>",
            list.join(", ")
        )));
    };
    names
        .iter()
        .map(|name| {
            let path = dir.join(id.as_str()).join(name.as_str());
            let value = input::strip_newline(input::read_file(&path)?);
            if value.is_empty() {
                return Err(CliError::usage(format!(
                    "secret file {} is empty",
                    path.display()
                )));
            }
            Ok((name.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_dir_slash_bot_slash_name() {
        let tmp = tempfile::tempdir().unwrap();
        let id = BotId::new("a").unwrap();
        let key = SecretName::new("KEY").unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::fs::write(tmp.path().join("a/KEY"), "v\n").unwrap();
        let got = read_from_dir(Some(tmp.path()), &id, std::slice::from_ref(&key)).unwrap();
        assert_eq!(got[&key], b"v");

        let other = SecretName::new("OTHER").unwrap();
        let e = read_from_dir(Some(tmp.path()), &id, std::slice::from_ref(&other)).unwrap_err();
        assert!(e.to_string().contains("a/OTHER"), "{e}");
        let e = read_from_dir(None, &id, &[other]).unwrap_err();
        assert!(e.to_string().contains("--secrets-dir"), "{e}");
        assert!(read_from_dir(None, &id, &[]).unwrap().is_empty());
    }

    #[test]
    fn secrets_set_says_when_the_new_value_takes_effect() {
        let set = SecretSet {
            success: true,
            name: "OPENCLAW_GATEWAY_TOKEN".into(),
            rotation: crate::bots::SecretRotation::Restart,
            restarted: true,
            effect: "the bot was restarted and runs with the new value".into(),
        };
        let id = BotId::new("oc").unwrap();
        assert_eq!(
            set_line(&id, &set),
            "set secret OPENCLAW_GATEWAY_TOKEN of oc: the bot was restarted and runs with the \
             new value"
        );
    }
}
