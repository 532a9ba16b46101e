//! `GET /api/nodes`: the nodes the bots run on (the swarm's, or the one engine's).

use axum::Json;
use axum::extract::State;

use super::openapi::ServiceUnavailable;
use crate::api::NodeList;
use crate::bots::BotError;
use crate::edge::{ApiError, AppState};

/// Every node with its state, availability, memory and how many bots run there.
#[utoipa::path(
    get,
    path = "/api/nodes",
    tag = "observe",
    responses(
        (status = 200, description = "The nodes", body = NodeList),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list_nodes(State(s): State<AppState>) -> Result<Json<NodeList>, ApiError> {
    let docker = s.bots.docker();
    let nodes = docker.nodes().await.map_err(BotError::from)?;
    Ok(Json(NodeList {
        backend: docker.backend().to_string(),
        nodes,
    }))
}
