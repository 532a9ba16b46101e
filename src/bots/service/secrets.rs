//! A bot's secrets by name: set (atomically, visible through the mount at once), list, delete.

use super::lifecycle::SecretsBackup;
use super::*;

impl BotService {
    /// The names of the bot's secrets (never the values).
    pub async fn secret_names(&self, id: &str) -> Result<Vec<String>, BotError> {
        Ok(self.row(id).await?.1.secret_names)
    }

    /// Sets (creates or rotates) one secret. The file is replaced atomically and shows up in
    /// the running container through its directory mount; templates whose bots read secrets
    /// at start only get a restart (see [`SecretChange`]).
    pub async fn set_secret(
        &self,
        id: &str,
        name: &str,
        value: SecretValue,
    ) -> Result<SecretChange, BotError> {
        let mut errors = FieldErrors::default();
        let name = SecretName::new(name.to_string())
            .map_err(|e| errors.add("name", e.to_string()))
            .ok();
        if value.expose().is_empty() {
            errors.add("value", "must not be empty");
        } else if value.expose().len() > validate::MAX_SECRET_LEN {
            errors.add(
                "value",
                format!("must be at most {} bytes", validate::MAX_SECRET_LEN),
            );
        }
        errors.into_result().map_err(BotError::Validation)?;
        let name = name.expect("validated");
        self.with_bot(id, |s, row| async move {
            s.refuse_virtual_key(&row, &name)?;
            let template = templates::lookup(&row.template).unwrap_or(&template::Generic);
            let bot = row.id.clone();
            let backup =
                SecretsBackup::write(s.secrets_for(template), &bot, vec![(name.clone(), value)])
                    .await?;
            if !row.secret_names.iter().any(|x| x == name.as_str()) {
                let mut names = row.secret_names.clone();
                names.push(name.to_string());
                names.sort();
                let saved = s.inner.store.set_secret_names(&bot, &names).await;
                if let Err(e) = saved
                    .map_err(BotError::from)
                    .and_then(|f| must_exist(f, &bot))
                {
                    backup.restore().await;
                    return Err(e);
                }
            }
            // Under the same lock, and in the same task that outlives the caller: a client
            // that goes away cannot leave a new value the bot never reads.
            s.after_secret_change(&row, template).await
        })
        .await
    }

    /// Deletes one secret; `false` if the bot had no such secret.
    pub async fn delete_secret(&self, id: &str, name: &str) -> Result<bool, BotError> {
        let Ok(name) = SecretName::new(name.to_string()) else {
            // No such secret can exist; still, an unknown bot is NOT_FOUND.
            self.row(id).await?;
            return Ok(false);
        };
        self.with_bot(id, |s, row| async move {
            s.refuse_virtual_key(&row, &name)?;
            s.refuse_required_secret(&row, &name)?;
            let bot = row.id.clone();
            let (store, b, n) = (s.inner.secrets.clone(), bot.clone(), name.clone());
            let existed = blocking(move || Ok::<_, BotError>(store.delete(&b, &n)?)).await?;
            let names: Vec<String> = row
                .secret_names
                .iter()
                .filter(|x| x.as_str() != name.as_str())
                .cloned()
                .collect();
            if names.len() != row.secret_names.len() {
                let found = s.inner.store.set_secret_names(&bot, &names).await?;
                must_exist(found, &bot)?;
            }
            if existed {
                // Swarm delivers a copy: it stops delivering one deleted here.
                s.inner.docker.secrets_changed(&bot).await?;
            }
            Ok(existed)
        })
        .await
    }
}
