//! Handing a bot's secrets and workspace to the user its container runs as, so a non-root
//! image can read `/run/secrets` (files 0600, directory 0700, owned by that user).

use super::image_facts::ImageFacts;
use super::*;
use crate::bots::run_as::{self, RunAs};

/// Longest `/etc/passwd` read from a bot's image.
const MAX_PASSWD_BYTES: usize = 1 << 20;

impl BotService {
    /// Who a container made from `spec` runs as, as far as it is known before the container
    /// exists: the bot's `user`, else the template's user, else the image's `USER`.
    pub(super) async fn run_as(
        &self,
        template: &dyn Template,
        spec: &BotSpec,
        image: &ImageFacts<'_>,
    ) -> Result<RunAs, BotError> {
        if let Some(user) = &spec.user {
            return Ok(run_as::parse_user(user));
        }
        if let Some((uid, gid)) = template.owner() {
            return Ok(RunAs::Ids(uid, gid));
        }
        // A missing image fails the create that follows, with its own error.
        let user = image.user(&spec.image).await?;
        Ok(run_as::parse_user(user.as_deref().unwrap_or_default()))
    }

    /// Hands the bot's secrets directory, its files and its workspace directory to the user
    /// the bot's (created) container runs as. A user name is looked up in the container's
    /// `/etc/passwd`; one that is not there (or an image without the file, `FROM scratch`)
    /// leaves them to botmaker, with a warning: the fix is a numeric `user` on the bot.
    pub(super) async fn hand_over(
        &self,
        id: &BotId,
        run_as: RunAs,
        workspace: &Path,
    ) -> Result<(), BotError> {
        let owner = match run_as {
            RunAs::Named(name) => {
                let passwd = self
                    .inner
                    .docker
                    .read_container_file(id, "/etc/passwd", MAX_PASSWD_BYTES)
                    .await?;
                let ids = passwd
                    .as_deref()
                    .and_then(|p| run_as::lookup_passwd(&String::from_utf8_lossy(p), &name));
                if ids.is_none() {
                    tracing::warn!(
                        bot = %id, user = %name,
                        "the image's USER is not in its /etc/passwd: its secrets stay readable \
                         by root only; set a numeric `user` on the bot"
                    );
                }
                ids.and_then(|(uid, gid)| RunAs::Ids(uid, gid).owner())
            }
            other => other.owner(),
        };
        let (store, bot) = (self.inner.secrets.clone(), id.clone());
        blocking(move || Ok::<_, BotError>(store.reown(&bot, owner)?)).await?;
        if owner.is_some() {
            write_workspace(workspace, &[], owner).await?;
        }
        Ok(())
    }
}
