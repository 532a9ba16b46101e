//! What making a container reads from its image: the `USER` it runs as (whom its secrets are
//! handed to) and its `ENTRYPOINT` (whether it brings its own init). One inspect per container
//! made, however many steps ask.

use tokio::sync::OnceCell;

use crate::docker::{ContainerError, DockerService};

/// The image config of one reference, inspected on first use and kept for the rest of one
/// container's making (not longer: a tag may move between two creates).
pub(super) struct ImageFacts<'a> {
    docker: &'a DockerService,
    image: &'a str,
    config: OnceCell<Option<bollard::models::ImageConfig>>,
}

impl<'a> ImageFacts<'a> {
    pub(super) fn new(docker: &'a DockerService, image: &'a str) -> Self {
        Self {
            docker,
            image,
            config: OnceCell::new(),
        }
    }

    /// The config of `image`, `None` if the engine has no such image. A reference other than
    /// the one this was made for (a template that renders its own image) is inspected apart.
    async fn config(
        &self,
        image: &str,
    ) -> Result<Option<bollard::models::ImageConfig>, ContainerError> {
        if image != self.image {
            return self.docker.image_config(image).await;
        }
        self.config
            .get_or_try_init(|| self.docker.image_config(self.image))
            .await
            .cloned()
    }

    /// The `USER` `image` runs as (empty for root), `None` if the image is not there.
    pub(super) async fn user(&self, image: &str) -> Result<Option<String>, ContainerError> {
        Ok(self
            .config(image)
            .await?
            .map(|c| c.user.unwrap_or_default()))
    }

    /// The `ENTRYPOINT` of `image` (empty when it has none), `None` if the image is not there.
    pub(super) async fn entrypoint(
        &self,
        image: &str,
    ) -> Result<Option<Vec<String>>, ContainerError> {
        Ok(self
            .config(image)
            .await?
            .map(|c| c.entrypoint.unwrap_or_default()))
    }
}
