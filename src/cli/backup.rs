//! `backup -o FILE` (a full backup from the server), `bots backup ID -o FILE` and
//! `bots import FILE`. Encryption happens here, on the client: a passphrase never travels to
//! the server. Every archive written is read back and verified before it takes its name.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;

use super::args::{BackupArgs, BotBackupArgs, BotImportArgs};
use super::client::ApiClient;
use super::error::CliError;
use super::output::bytes;
use crate::api::BotView;
use crate::backup::file::PendingFile;
use crate::backup::manifest::BackupKind;
use crate::backup::{BackupError, Passphrase, crypt, reader};

/// How long an import may take (the server verifies, writes and starts the bot).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

impl From<BackupError> for CliError {
    fn from(e: BackupError) -> Self {
        if e.is_bad_archive() {
            Self::Usage(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

fn passphrase(file: Option<&Path>) -> Result<Option<Passphrase>, CliError> {
    Ok(file.map(Passphrase::from_file).transpose()?)
}

/// Downloads `path` into `output` (encrypted if asked), verifies it and reports.
async fn download(
    client: &ApiClient,
    path: &str,
    output: &Path,
    pass: Option<&Passphrase>,
    kind: BackupKind,
) -> Result<(), CliError> {
    let res = client.download(path).await?;
    let mut file = PendingFile::create(output, pass)?;
    let mut body = res.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            CliError::Failed(format!(
                "the backup stopped before its end ({}); nothing was written to {}",
                client.transport(e),
                output.display()
            ))
        })?;
        size += chunk.len() as u64;
        std::io::Write::write_all(file.sink(), &chunk)
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", output.display())))?;
    }
    let pass_owned = pass.cloned();
    let manifest =
        tokio::task::spawn_blocking(move || file.commit(Some((kind, pass_owned.as_ref()))))
            .await
            .map_err(|e| CliError::Failed(format!("checking the archive failed: {e}")))??
            .expect("verified");
    println!(
        "backed up {} bot(s) to {} ({}{})",
        manifest.bots.len(),
        output.display(),
        bytes(size),
        if pass.is_some() { ", encrypted" } else { "" }
    );
    if !manifest.skipped.is_empty() {
        eprintln!(
            "botmaker: {} workspace entr(ies) not archived (links, fifos or sockets a bot \
             made): {}",
            manifest.skipped.len(),
            manifest.skipped.join(", ")
        );
    }
    Ok(())
}

/// `backup -o FILE`.
pub async fn backup(client: &ApiClient, a: &BackupArgs) -> Result<(), CliError> {
    let pass = passphrase(a.passphrase_file.as_deref())?;
    download(
        client,
        "/api/admin/backup",
        &a.output,
        pass.as_ref(),
        BackupKind::Full,
    )
    .await
}

/// `bots backup ID -o FILE`.
pub async fn backup_bot(client: &ApiClient, a: &BotBackupArgs) -> Result<(), CliError> {
    let pass = passphrase(a.passphrase_file.as_deref())?;
    download(
        client,
        &format!("/api/bots/{}/backup", a.id),
        &a.output,
        pass.as_ref(),
        BackupKind::Bot,
    )
    .await
}

/// `bots import FILE`: verified (and decrypted) here, then sent as is.
pub async fn import(client: &ApiClient, a: &BotImportArgs) -> Result<(), CliError> {
    let pass = passphrase(a.passphrase_file.as_deref())?;
    let raw = std::fs::read(&a.file).map_err(|source| CliError::ReadInput {
        path: a.file.clone(),
        source,
    })?;
    let plain = tokio::task::spawn_blocking(move || {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut crypt::open(raw.as_slice(), pass.as_ref())?, &mut plain)
            .map_err(|e| BackupError::Corrupt(format!("it cannot be read ({e})")))?;
        reader::verify(plain.as_slice(), BackupKind::Bot)?;
        Ok::<_, BackupError>(plain)
    })
    .await
    .map_err(|e| CliError::Failed(format!("checking the archive failed: {e}")))??;
    let b: BotView = client
        .post_bytes("/api/bots/import", plain, IMPORT_TIMEOUT)
        .await?;
    println!("imported {} ({})", b.id, b.observed.state.as_str());
    Ok(())
}
