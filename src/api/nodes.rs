//! `GET /api/nodes`: where the bots run.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::docker::NodeInfo;

/// The nodes of the engine backend botmaker runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// `docker` (one engine, shown as one node) or `swarm`.
    pub backend: String,
    /// Every node, by name.
    pub nodes: Vec<NodeInfo>,
}
