//! A bot's secrets as Swarm secrets.
//!
//! The host directory the secrets store keeps for the bot stays the source of truth (backups,
//! restores and the API read it as with the Docker backend). Swarm secrets are immutable, so
//! every distinct value is its own secret, named after a digest of (instance, bot, name,
//! value): the same value is the same secret, a new value a new version. Each is delivered at
//! `/run/secrets/<NAME>`, owned by the owner of the bot's secrets directory (the user the bot
//! runs as, set when botmaker hands the directory over), mode 0400.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;

use base64::Engine as _;
use bollard::models::{SecretSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets};
use sha2::{Digest, Sha256};

use super::super::labels::{LABEL_BOT_ID, LABEL_INSTANCE, LABEL_MANAGED};
use crate::BotId;
use crate::safe_fs::{Dir, Kind};
use crate::secrets::SecretName;

/// Label on a Swarm secret: the file name it is delivered as.
pub const LABEL_SECRET_NAME: &str = "botmaker.secret";
/// Mode of a delivered secret file: readable by its owner only.
const SECRET_MODE: u32 = 0o400;

/// One secret file of a bot, read from its host directory.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// File name under `/run/secrets`.
    pub name: String,
    /// Swarm secret name: `botmaker-` and a digest of instance, bot, name and value.
    pub swarm_name: String,
    value: Vec<u8>,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretFile")
            .field("name", &self.name)
            .field("swarm_name", &self.swarm_name)
            .field("value", &"***")
            .finish()
    }
}

/// The bot's secret files and the owner they are delivered to. A directory that does not
/// exist holds no secrets. Links and anything but regular files with a valid secret name (the
/// store's temp files) are skipped, never followed.
pub fn read_dir(
    instance: &str,
    bot_id: &BotId,
    dir: &Path,
) -> Result<(Vec<SecretFile>, (u32, u32)), String> {
    let Some(root) = Dir::open_root(dir).map_err(|e| e.to_string())? else {
        return Ok((Vec::new(), (0, 0)));
    };
    let owner = root.owner().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for entry in root.entries().map_err(|e| e.to_string())? {
        let Some(name) = entry.name.to_str() else {
            continue;
        };
        if entry.kind != Kind::File || SecretName::new(name.to_string()).is_err() {
            continue;
        }
        let Some(value) = root
            .read_file(Path::new(OsStr::new(name)))
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        files.push(SecretFile {
            swarm_name: swarm_name(instance, bot_id, name, &value),
            name: name.to_string(),
            value,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((files, owner))
}

fn swarm_name(instance: &str, bot_id: &BotId, name: &str, value: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        instance.as_bytes(),
        bot_id.as_str().as_bytes(),
        name.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(value);
    format!("botmaker-{}", &hex::encode(h.finalize())[..32])
}

/// The create request for one secret, labelled with its owner.
pub fn secret_spec(instance: &str, bot_id: &BotId, file: &SecretFile) -> SecretSpec {
    SecretSpec {
        name: Some(file.swarm_name.clone()),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), instance.to_string()),
            (LABEL_BOT_ID.to_string(), bot_id.to_string()),
            (LABEL_SECRET_NAME.to_string(), file.name.clone()),
        ])),
        data: Some(base64::engine::general_purpose::STANDARD.encode(&file.value)),
        ..Default::default()
    }
}

/// The service's references to `files`, whose Swarm ids are in `ids` (by Swarm name).
pub fn references(
    files: &[SecretFile],
    ids: &HashMap<String, String>,
    (uid, gid): (u32, u32),
) -> Vec<TaskSpecContainerSpecSecrets> {
    files
        .iter()
        .filter_map(|f| {
            Some(TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(f.name.clone()),
                    uid: Some(uid.to_string()),
                    gid: Some(gid.to_string()),
                    mode: Some(SECRET_MODE),
                }),
                secret_id: Some(ids.get(&f.swarm_name)?.clone()),
                secret_name: Some(f.swarm_name.clone()),
            })
        })
        .collect()
}

/// Label filters selecting the Swarm secrets of one bot.
pub fn bot_filter(instance: &str, bot_id: &BotId) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_INSTANCE}={instance}"),
            format!("{LABEL_BOT_ID}={bot_id}"),
        ],
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_value_is_a_new_secret_and_the_same_value_the_same() {
        let bot = BotId::new("alpha").unwrap();
        let a = swarm_name("i", &bot, "TOKEN", b"one");
        assert_eq!(a, swarm_name("i", &bot, "TOKEN", b"one"));
        assert_ne!(a, swarm_name("i", &bot, "TOKEN", b"two"));
        assert_ne!(a, swarm_name("j", &bot, "TOKEN", b"one"));
        assert_ne!(a, swarm_name("i", &bot, "OTHER", b"one"));
        assert!(a.len() <= 64, "Swarm names are at most 64 characters");
    }

    #[test]
    fn reads_regular_files_with_secret_names_and_skips_links_and_temp_files() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::TempDir::new().unwrap();
        std::fs::write(tmp.path().join("TOKEN"), "v1").unwrap();
        std::fs::write(tmp.path().join(".tmp-TOKEN"), "half").unwrap();
        std::fs::write(tmp.path().join("outside"), "x").unwrap();
        symlink(tmp.path().join("outside"), tmp.path().join("LINK")).unwrap();
        let bot = BotId::new("alpha").unwrap();
        let (files, _) = read_dir("i", &bot, tmp.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["TOKEN"]);
        assert!(!format!("{files:?}").contains("v1"), "values never printed");
        let (none, _) = read_dir("i", &bot, &tmp.path().join("missing")).unwrap();
        assert!(none.is_empty());
    }
}
