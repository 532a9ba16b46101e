//! Local images: what a reference (a tag, or a digest pin) resolves to on the engine right now.

use super::DockerService;
use super::error::{ContainerError, Op};

impl DockerService {
    /// The id (`sha256:...`) of the local image `reference` names, or `None` if the engine has
    /// no such image. botmaker never pulls: this is what a new container would run.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, ContainerError> {
        Ok(self
            .local_image(reference)
            .await?
            .and_then(|image| image.id.filter(|id| !id.is_empty())))
    }
}

impl DockerService {
    /// A stream that yields once for every change to the engine's images (a tag moved or
    /// removed, an image loaded, pulled, built or deleted), from now on. It ends or errors when
    /// the daemon goes away; the caller reconnects.
    pub fn image_events(
        &self,
    ) -> futures_util::stream::BoxStream<'static, Result<(), ContainerError>> {
        use futures_util::StreamExt;
        let filters = std::collections::HashMap::from([
            ("type".to_string(), vec!["image".to_string()]),
            (
                "event".to_string(),
                ["tag", "untag", "delete", "load", "pull", "import"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        let options = bollard::query_parameters::EventsOptionsBuilder::new()
            .filters(&filters)
            .build();
        let host = self.host.clone();
        self.docker
            .events(Some(options))
            .map(move |r| {
                r.map(drop)
                    .map_err(|e| super::error::classify(&host, Op::Events, "", e))
            })
            .boxed()
    }
}
