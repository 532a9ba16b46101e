//! Bodies of `/api/notifications` not already defined by the alerts domain.

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// The query of `GET /api/notifications/{id}/deliveries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many attempts, newest first (1-200, default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<u32>,
}

impl DeliveriesQuery {
    /// Attempts listed when the query names no `limit`.
    pub const DEFAULT_LIMIT: u32 = 50;
}
