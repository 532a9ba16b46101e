//! Reading an archive back: [`verify`] checks everything before [`for_each`] hands out entries.
//!
//! Every entry name is checked before anything is done with it: only the names of the layout
//! (see the module above) are accepted, with valid bot ids and secret names and plain relative
//! workspace paths (no `..`, no root), and only regular files and directories: a link, device
//! or hard-link entry makes the whole archive unusable, so a crafted archive cannot write
//! outside the tree it restores into.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::BackupError;
use super::manifest::{
    BOT_RECORD, BackupKind, EntryKind, EntrySum, LLM_PROVIDERS, MANIFEST, Manifest,
    NOTIFICATION_SECRETS, REGISTRY,
};
use crate::BotId;
use crate::secrets::SecretName;

/// Largest manifest read into memory.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Where an archive entry belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The registry snapshot.
    Registry,
    /// A single-bot backup's record.
    BotRecord,
    /// A bot's secrets directory (`secrets/<id>`).
    SecretsDir(BotId),
    /// One secret value.
    Secret(BotId, SecretName),
    /// A bot's workspace itself (`rel` empty) or something in it.
    Workspace(BotId, PathBuf),
    /// An LLM provider's key directory (`llm-providers/<dir>`, full backups).
    LlmProviderDir(BotId),
    /// An LLM provider's key file.
    LlmProviderKey(BotId, SecretName),
    /// A notification channel's secrets directory (`notification-secrets/channel-<id>`).
    NotificationDir(BotId),
    /// A channel's signing secret or bot token.
    NotificationSecret(BotId, SecretName),
}

/// What [`for_each`] tells about an entry besides its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    /// File or directory.
    pub kind: EntryKind,
    /// Permission bits (`0o777` part).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
}

fn corrupt(what: impl Into<String>) -> BackupError {
    BackupError::Corrupt(what.into())
}

/// Reading the archive failed: it is damaged or cut short.
fn unreadable(e: io::Error) -> BackupError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt("it ends early (truncated)"),
        _ => corrupt(format!("it cannot be read ({e})")),
    }
}

/// Where the entry named `name` belongs, or why no entry may have that name.
pub fn classify(name: &str) -> Result<Target, BackupError> {
    let bad = || {
        corrupt(format!(
            "it holds an entry {name:?} that no botmaker backup has"
        ))
    };
    // Split by hand: `Path::components` would quietly drop a `.` in the middle.
    let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad());
    }
    let bot = |s: &str| BotId::new(s).map_err(|_| bad());
    match parts.as_slice() {
        [REGISTRY] => Ok(Target::Registry),
        [BOT_RECORD] => Ok(Target::BotRecord),
        ["secrets", id] => Ok(Target::SecretsDir(bot(id)?)),
        ["secrets", id, secret] => Ok(Target::Secret(
            bot(id)?,
            SecretName::new(*secret).map_err(|_| bad())?,
        )),
        ["workspaces", id, rest @ ..] => Ok(Target::Workspace(bot(id)?, rest.iter().collect())),
        [LLM_PROVIDERS, dir] => Ok(Target::LlmProviderDir(bot(dir)?)),
        [LLM_PROVIDERS, dir, key] => Ok(Target::LlmProviderKey(
            bot(dir)?,
            SecretName::new(*key).map_err(|_| bad())?,
        )),
        [NOTIFICATION_SECRETS, dir] => Ok(Target::NotificationDir(bot(dir)?)),
        [NOTIFICATION_SECRETS, dir, file] => Ok(Target::NotificationSecret(
            bot(dir)?,
            SecretName::new(*file).map_err(|_| bad())?,
        )),
        _ => Err(bad()),
    }
}

/// The entry's name as UTF-8, refusing kinds other than files and directories.
fn name_and_kind<R: Read>(entry: &tar::Entry<'_, R>) -> Result<(String, EntryKind), BackupError> {
    let raw = entry.path_bytes();
    let name = std::str::from_utf8(&raw)
        .map_err(|_| corrupt("it holds an entry whose name is not UTF-8"))?
        .to_string();
    let kind = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Dir,
        other => {
            return Err(corrupt(format!(
                "entry {name:?} is a {other:?}, not a file or directory"
            )));
        }
    };
    Ok((name.trim_end_matches('/').to_string(), kind))
}

fn mode_of<R: Read>(entry: &tar::Entry<'_, R>) -> u32 {
    entry.header().mode().unwrap_or(0o600) & 0o777
}

/// Reads the whole archive and checks it: every entry has an accepted name and kind and
/// exactly the size, mode and SHA-256 the manifest gives it; every entry of the manifest is
/// there, once; the manifest comes last, is of this botmaker's format and of kind `want`.
/// Returns the manifest. Writes nothing anywhere.
pub fn verify(input: impl Read, want: BackupKind) -> Result<Manifest, BackupError> {
    let mut gz = GzDecoder::new(input);
    let mut seen: BTreeMap<String, EntrySum> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    {
        let mut tar = tar::Archive::new(&mut gz);
        for entry in tar.entries().map_err(unreadable)? {
            let mut entry = entry.map_err(unreadable)?;
            let (name, kind) = name_and_kind(&entry)?;
            if manifest.is_some() {
                return Err(corrupt(format!("entry {name:?} follows the manifest")));
            }
            if name == MANIFEST {
                if kind != EntryKind::File || entry.size() > MAX_MANIFEST_BYTES {
                    return Err(corrupt("its manifest is not a file of sensible size"));
                }
                let mut json = Vec::new();
                entry.read_to_end(&mut json).map_err(unreadable)?;
                manifest = Some(
                    serde_json::from_slice(&json)
                        .map_err(|e| corrupt(format!("its manifest is not valid: {e}")))?,
                );
                continue;
            }
            classify(&name)?;
            let mode = mode_of(&entry);
            let sum = match kind {
                EntryKind::Dir => EntrySum {
                    kind,
                    mode,
                    size: 0,
                    sha256: None,
                },
                EntryKind::File => {
                    let mut hasher = Sha256::new();
                    let size =
                        io::copy(&mut entry, &mut HashWriter(&mut hasher)).map_err(unreadable)?;
                    EntrySum {
                        kind,
                        mode,
                        size,
                        sha256: Some(hex::encode(hasher.finalize())),
                    }
                }
            };
            if seen.insert(name.clone(), sum).is_some() {
                return Err(corrupt(format!("entry {name:?} appears twice")));
            }
        }
    }
    // The gzip trailer's CRC and length are checked only once the stream is read to its end.
    io::copy(&mut gz, &mut io::sink()).map_err(unreadable)?;
    let manifest = manifest
        .ok_or_else(|| corrupt("it has no manifest (it is truncated, or not a botmaker backup)"))?;
    manifest.check_header(want)?;
    check_entries(&manifest, &seen)?;
    Ok(manifest)
}

fn check_entries(
    manifest: &Manifest,
    seen: &BTreeMap<String, EntrySum>,
) -> Result<(), BackupError> {
    for (name, sum) in seen {
        match manifest.entries.get(name) {
            None => return Err(corrupt(format!("entry {name:?} is not in its manifest"))),
            Some(want) if want != sum => {
                return Err(corrupt(format!(
                    "entry {name:?} does not match its checksum in the manifest (altered or \
                     damaged)"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(missing) = manifest.entries.keys().find(|k| !seen.contains_key(*k)) {
        return Err(corrupt(format!(
            "entry {missing:?} of its manifest is missing (truncated?)"
        )));
    }
    let bots: BTreeSet<&str> = manifest.bots.iter().map(|b| b.id.as_str()).collect();
    for name in seen.keys() {
        let bot = match classify(name)? {
            Target::SecretsDir(b) | Target::Secret(b, _) | Target::Workspace(b, _) => b,
            Target::Registry
            | Target::BotRecord
            | Target::LlmProviderDir(_)
            | Target::LlmProviderKey(..)
            | Target::NotificationDir(_)
            | Target::NotificationSecret(..) => continue,
        };
        if !bots.contains(bot.as_str()) {
            return Err(corrupt(format!(
                "entry {name:?} belongs to no bot of the manifest"
            )));
        }
    }
    let needed = match manifest.kind {
        BackupKind::Full => REGISTRY,
        BackupKind::Bot => BOT_RECORD,
    };
    if !seen.contains_key(needed) {
        return Err(corrupt(format!("it has no {needed}")));
    }
    if manifest.kind == BackupKind::Bot && manifest.bots.len() != 1 {
        return Err(corrupt("a single-bot backup must name exactly one bot"));
    }
    Ok(())
}

/// Hands every entry but the manifest, in archive order, to `f`. Call [`verify`] on the same
/// bytes first: this pass trusts what that one checked.
pub fn for_each(
    input: impl Read,
    mut f: impl FnMut(Target, EntryInfo, &mut dyn Read) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut tar = tar::Archive::new(GzDecoder::new(input));
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let (name, kind) = name_and_kind(&entry)?;
        if name == MANIFEST {
            continue;
        }
        let info = EntryInfo {
            kind,
            mode: mode_of(&entry),
            size: entry.size(),
        };
        f(classify(&name)?, info, &mut entry)?;
    }
    Ok(())
}

/// Feeds what is written into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::{BotEntry, FORMAT, VERSION};
    use crate::backup::writer::ArchiveWriter;

    fn manifest(kind: BackupKind) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            kind,
            botmaker_version: "test".into(),
            schema_version: 1,
            created_at: chrono::Utc::now(),
            bots: vec![BotEntry {
                id: "a".into(),
                template: "generic".into(),
                image: "img".into(),
                desired_state: "running".into(),
                secrets: vec!["KEY".into()],
            }],
            skipped: vec![],
            entries: BTreeMap::new(),
        }
    }

    fn archive() -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new());
        w.add_bytes(REGISTRY, b"sqlite bytes", 0o600).unwrap();
        w.add_dir("secrets/a", 0o700).unwrap();
        w.add_bytes("secrets/a/KEY", b"sk-123", 0o600).unwrap();
        w.add_dir("workspaces/a", 0o700).unwrap();
        w.add_bytes("workspaces/a/notes/today.md", &vec![b'x'; 100_000], 0o644)
            .unwrap();
        w.add_dir("llm-providers/openai", 0o700).unwrap();
        w.add_bytes("llm-providers/openai/API_KEY", b"sk-real", 0o600)
            .unwrap();
        w.add_dir("notification-secrets/channel-3", 0o700).unwrap();
        w.add_bytes(
            "notification-secrets/channel-3/SIGNING_SECRET",
            b"0123456789abcdef",
            0o600,
        )
        .unwrap();
        w.finish(manifest(BackupKind::Full)).unwrap().1
    }

    #[test]
    fn a_whole_archive_verifies_and_reads_back() {
        let bytes = archive();
        let m = verify(bytes.as_slice(), BackupKind::Full).unwrap();
        assert_eq!(m.entries.len(), 9);
        let mut got = Vec::new();
        for_each(bytes.as_slice(), |t, info, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            got.push((t, info.kind, v.len()));
            Ok(())
        })
        .unwrap();
        let a = BotId::new("a").unwrap();
        assert_eq!(
            got[2].0,
            Target::Secret(a.clone(), SecretName::new("KEY").unwrap())
        );
        assert_eq!(
            got[4],
            (
                Target::Workspace(a, "notes/today.md".into()),
                EntryKind::File,
                100_000
            )
        );
        let openai = BotId::new("openai").unwrap();
        assert_eq!(
            got[6],
            (
                Target::LlmProviderKey(openai, SecretName::new("API_KEY").unwrap()),
                EntryKind::File,
                7
            )
        );
        let channel = BotId::new("channel-3").unwrap();
        assert_eq!(
            got[8],
            (
                Target::NotificationSecret(channel, SecretName::new("SIGNING_SECRET").unwrap()),
                EntryKind::File,
                16
            )
        );
    }

    #[test]
    fn a_truncated_archive_is_refused_wherever_it_is_cut() {
        let bytes = archive();
        for cut in [
            10,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 30,
            bytes.len() - 1,
        ] {
            let err = verify(&bytes[..cut], BackupKind::Full).unwrap_err();
            assert!(
                matches!(err, BackupError::Corrupt(_)),
                "cut at {cut}: {err}"
            );
        }
    }

    /// A tar.gz of `files` (name, content) followed by `manifest`, written by hand.
    fn raw_archive(files: &[(&str, &[u8])], manifest: &Manifest) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let json = serde_json::to_vec(manifest).unwrap();
        for (name, data) in files.iter().chain([&(MANIFEST, json.as_slice())]) {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            tar.append_data(&mut h, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn an_altered_or_extra_entry_is_refused() {
        let mut w = ArchiveWriter::new(Vec::new());
        w.add_bytes(REGISTRY, b"sqlite bytes", 0o600).unwrap();
        w.add_bytes("secrets/a/KEY", b"sk-123", 0o600).unwrap();
        let (m, _) = w.finish(manifest(BackupKind::Full)).unwrap();
        let good: &[(&str, &[u8])] = &[(REGISTRY, b"sqlite bytes"), ("secrets/a/KEY", b"sk-123")];
        verify(raw_archive(good, &m).as_slice(), BackupKind::Full).unwrap();

        // One secret's value rewritten, the manifest left as it was.
        let altered: &[(&str, &[u8])] =
            &[(REGISTRY, b"sqlite bytes"), ("secrets/a/KEY", b"sk-EVIL")];
        let err = verify(raw_archive(altered, &m).as_slice(), BackupKind::Full).unwrap_err();
        assert!(err.to_string().contains("secrets/a/KEY"), "{err}");
        assert_eq!(err.code(), "BACKUP_CORRUPT");

        // An entry slipped in.
        let extra: &[(&str, &[u8])] = &[
            (REGISTRY, b"sqlite bytes"),
            ("secrets/a/KEY", b"sk-123"),
            ("secrets/a/EXTRA", b"x"),
        ];
        let err = verify(raw_archive(extra, &m).as_slice(), BackupKind::Full).unwrap_err();
        assert!(err.to_string().contains("not in its manifest"), "{err}");

        // One left out.
        let missing: &[(&str, &[u8])] = &[(REGISTRY, b"sqlite bytes")];
        let err = verify(raw_archive(missing, &m).as_slice(), BackupKind::Full).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn names_outside_the_layout_are_refused() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "workspaces/a/../../x",
            "workspaces/Not_A_Bot/x",
            "secrets/a/lower",
            "secrets/a/KEY/deeper",
            "other.txt",
            "workspaces/a/./x",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        assert_eq!(
            classify("workspaces/a/").unwrap(),
            Target::Workspace(BotId::new("a").unwrap(), PathBuf::new())
        );
    }

    #[test]
    fn a_link_entry_makes_the_archive_unusable() {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "workspaces/a/evil", "/etc/shadow")
            .unwrap();
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        let err = verify(bytes.as_slice(), BackupKind::Full).unwrap_err();
        assert!(err.to_string().contains("Symlink"), "{err}");
    }

    #[test]
    fn the_wrong_kind_says_what_to_do_instead() {
        let bytes = archive();
        let err = verify(bytes.as_slice(), BackupKind::Bot).unwrap_err();
        assert!(err.to_string().contains("botmaker restore"), "{err}");
    }
}
