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
pub mod hints;
pub mod openapi;
pub mod peer;
pub mod records;
pub mod server;
pub mod status;
pub mod topics;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The documented routes, each registered once: the router and the OpenAPI
/// document are both made from this list (a handler's `utoipa::path` names
/// its method and path).
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(cluster::health))
        .routes(routes!(cluster::ready))
        .routes(routes!(cluster::describe))
        .routes(routes!(cluster::events))
        .routes(routes!(cluster::metrics))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::describe, topics::delete))
        .routes(routes!(topics::grow))
        .routes(routes!(topics::alter))
        .routes(routes!(records::produce))
        .routes(routes!(records::read))
        .routes(routes!(groups::list))
        .routes(routes!(groups::describe))
}

/// The OpenAPI document of the documented routes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

pub fn router(state: AppState) -> Router {
    let body_limit = DefaultBodyLimit::max(state.node.config.http_max_body_bytes);
    let (documented, _) = documented().split_for_parts();
    // Not in the document: the page, the document itself, and what nodes
    // ask each other.
    documented
        .route("/", get(cluster::page))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/internal/leading", get(status::leading))
        .route("/v1/internal/groups", get(groups::local_list))
        .route("/v1/internal/replicas/{topic}/{partition}", get(status::replica))
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
