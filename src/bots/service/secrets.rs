//! A bot's secrets by name: set (atomically, visible through the mount at once), list, delete.

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
        let (bot, row) = self.row(id).await?;
        let mut errors = FieldErrors::default();
        let name = SecretName::new(name.to_string())
            .map_err(|e| errors.add("name", e.to_string()))
            .ok();
        if value.expose().len() > validate::MAX_SECRET_LEN {
            errors.add(
                "value",
                format!("must be at most {} bytes", validate::MAX_SECRET_LEN),
            );
        }
        errors.into_result().map_err(BotError::Validation)?;
        let name = name.expect("validated");
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        let template = template::lookup(&row.template).unwrap_or(&template::Generic);
        let (store, b, n) = (self.secrets_for(template), bot.clone(), name.clone());
        blocking(move || Ok::<_, BotError>(store.set(&b, &n, &value)?)).await?;
        let mut names = row.secret_names.clone();
        if !names.iter().any(|x| x == name.as_str()) {
            names.push(name.to_string());
            names.sort();
            self.inner.store.set_secret_names(&bot, &names).await?;
        }
        drop(_g);
        self.after_secret_change(&bot, template).await
    }

    /// Deletes one secret; `false` if the bot had no such secret.
    pub async fn delete_secret(&self, id: &str, name: &str) -> Result<bool, BotError> {
        let (bot, row) = self.row(id).await?;
        let Ok(name) = SecretName::new(name.to_string()) else {
            return Ok(false);
        };
        self.refuse_required_secret(&row, &name)?;
        let lock = self.lock_for(&bot);
        let _g = lock.lock().await;
        let (store, b, n) = (self.inner.secrets.clone(), bot.clone(), name.clone());
        let existed = blocking(move || Ok::<_, BotError>(store.delete(&b, &n)?)).await?;
        let names: Vec<String> = row
            .secret_names
            .iter()
            .filter(|x| x.as_str() != name.as_str())
            .cloned()
            .collect();
        if names.len() != row.secret_names.len() {
            self.inner.store.set_secret_names(&bot, &names).await?;
        }
        Ok(existed)
    }
}
