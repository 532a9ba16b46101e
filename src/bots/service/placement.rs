//! Placement (`placement: {node, labels}`): whether the backend has a node for it, asked at
//! create and PATCH time so a bot is never made to wait for a node that does not exist; and
//! what a placed bot's workspace means for host-side operations.

use super::*;
use crate::docker::Placement;

impl BotService {
    /// Records in `errors` why no node of the backend can run a bot placed by `placement`
    /// (one nodes list on Swarm, the engine's info on Docker). A placement with syntax
    /// errors is not sent to the engine: those are reported by validation.
    pub(super) async fn check_placement_fits(
        &self,
        placement: Option<&Placement>,
        errors: &mut FieldErrors,
    ) -> Result<(), BotError> {
        let Some(p) = placement.filter(|p| !p.is_empty() && p.syntax_problems().is_empty()) else {
            return Ok(());
        };
        if let Some((field, message)) = self.inner.docker.placement_problem(p).await? {
            errors.add(field, message);
        }
        Ok(())
    }

    /// Whether the bot's workspace is the host directory under the workspaces root (not a
    /// volume on another node): what backups and template files need.
    pub(super) fn workspace_on_host(&self, spec: &BotSpec) -> bool {
        self.inner.docker.workspace_on_host(spec.placement.as_ref())
    }

    /// Refuses a host-side operation on the workspace of a bot whose workspace is not on this
    /// host: an empty directory there would pass for the bot's data.
    pub(super) fn require_workspace_on_host(
        &self,
        spec: &BotSpec,
        operation: &'static str,
    ) -> Result<(), BotError> {
        if self.workspace_on_host(spec) {
            Ok(())
        } else {
            Err(BotError::Docker(ContainerError::Unsupported {
                operation,
                backend: "swarm",
            }))
        }
    }
}
