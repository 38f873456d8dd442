//! The admin HTTP API (axum). For now it answers `GET /v1/health` and
//! `GET /v1/ready`; the full
//! `/v1/...` API is issue 5. Errors are JSON `{"error": "..."}`, unknown
//! routes included.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::metadata::handle::MetadataHandle;
use crate::partition::manager::PartitionManager;
use crate::raft::types::NodeId;

#[derive(Clone)]
pub struct HttpState {
    pub node_id: NodeId,
    pub metadata: MetadataHandle,
    pub partitions: Arc<PartitionManager>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ready", get(ready))
        .fallback(not_found)
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    Json(json!({"status": "ok", "node_id": s.node_id}))
}

/// 200 once this node knows the metadata leader and a leader for every
/// partition of the cluster; 503 with what is missing otherwise.
async fn ready(State(s): State<HttpState>) -> impl IntoResponse {
    let controller = s.metadata.controller().0;
    let leaderless = s.partitions.leaderless(&s.metadata.state());
    let body = json!({"node_id": s.node_id, "controller": controller, "leaderless_partitions": leaderless});
    if controller.is_some() && leaderless == 0 {
        (StatusCode::OK, Json(body))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, Json(json!({"error": "no such route"})))
}
