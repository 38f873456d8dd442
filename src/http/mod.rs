//! The admin HTTP API (axum) on every node: cluster status, topics, groups, a
//! small REST produce/read proxy, the live events stream, `/metrics`, the
//! OpenAPI document and a read-only cluster page. Any node answers every
//! request: topic writes go to the metadata leader through `MetadataHandle`,
//! requests only a partition leader or group coordinator can answer are
//! forwarded to it (`peer`). JSON in and out; errors are `{"error": "..."}`
//! with the status `error` maps them to, unknown routes included.

pub mod cluster;
pub mod error;
pub mod groups;
pub mod openapi;
pub mod peer;
pub mod records;
pub mod server;
pub mod status;
pub mod topics;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use tokio_util::sync::CancellationToken;

use crate::events::Events;
use crate::http::error::ApiError;
use crate::http::peer::Peers;
use crate::node::Node;
use crate::storage::Storage;

/// What every handler may use.
pub struct Api {
    pub node: Arc<Node>,
    pub peers: Peers,
    pub events: Arc<Events>,
    pub storage: Arc<Storage>,
    /// Ends open event streams when the broker shuts down.
    pub shutdown: CancellationToken,
    /// Where the REST proxy puts the next request's unkeyed records.
    pub next_partition: AtomicU32,
}

pub type AppState = Arc<Api>;

pub fn router(state: AppState) -> Router {
    let body_limit = DefaultBodyLimit::max(state.node.config.http_max_body_bytes);
    Router::new()
        .route("/", get(cluster::page))
        .route("/metrics", get(cluster::metrics))
        .route("/v1/health", get(cluster::health))
        .route("/v1/ready", get(cluster::ready))
        .route("/v1/cluster", get(cluster::describe))
        .route("/v1/cluster/events", get(cluster::events))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/topics", get(topics::list).post(topics::create))
        .route("/v1/topics/{name}", get(topics::describe).delete(topics::delete))
        .route("/v1/topics/{name}/partitions", post(topics::grow))
        .route("/v1/topics/{name}/configs", axum::routing::patch(topics::alter))
        .route("/v1/topics/{name}/records", post(records::produce))
        .route("/v1/topics/{name}/partitions/{partition}/records", get(records::read))
        .route("/v1/groups", get(groups::list))
        .route("/v1/groups/{id}", get(groups::describe))
        .route("/v1/internal/leading", get(status::leading))
        .route("/v1/internal/groups", get(groups::local_list))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}
