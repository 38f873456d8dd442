//! The cluster as a whole: health and readiness, nodes and the controller,
//! the live events stream, `/metrics`, and the read-only cluster page.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::Json;
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use crate::http::{status, AppState};
use crate::metrics::Live;
use crate::raft::types::NodeId;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Controller {
    /// The metadata group's leader; `null` during an election.
    pub node_id: Option<NodeId>,
    pub term: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub id: NodeId,
    pub kafka_addr: String,
    pub http_addr: String,
    pub raft_addr: String,
    /// Heard from lately by the node answering.
    pub alive: bool,
    /// A voter of the metadata (controller) group.
    pub is_controller_voter: bool,
    /// Partitions it leads.
    pub leader_count: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    pub cluster_id: Option<String>,
    pub controller: Controller,
    pub nodes: Vec<NodeView>,
}

#[utoipa::path(get, operation_id = "cluster_health", path = "/v1/health", tag = "cluster",
    responses((status = 200, description = "The node serves")))]
pub async fn health(State(api): State<AppState>) -> impl IntoResponse {
    Json(json!({"status": "ok", "node_id": api.node.node_id}))
}

/// 200 once this node knows the metadata leader, a leader for every
/// partition of the cluster, and its own replicas are caught up (this node is
/// in the ISR of every partition it replicates, as the leaders report it);
/// 503 with what is missing otherwise.
#[utoipa::path(get, path = "/v1/ready", operation_id = "cluster_ready", tag = "cluster",
    responses((status = 200, description = "Knows a controller and every partition's leader; its replicas are in sync"),
        (status = 503, description = "Not yet")))]
pub async fn ready(State(api): State<AppState>) -> impl IntoResponse {
    let ctx = &api.node;
    let controller = ctx.metadata.controller().0;
    let state = ctx.metadata.state();
    let leaderless = ctx.partitions.leaderless(&state);
    let mut hosted: Vec<(String, i32)> =
        state.replicas_on(ctx.node_id).map(|(t, p, _)| (t.to_string(), p)).collect();
    let mut topics: Vec<String> = hosted.iter().map(|(t, _)| t.clone()).collect();
    topics.dedup();
    let statuses = if hosted.is_empty() { Default::default() } else { status::gather(&api, &topics).await };
    hosted.retain(|key| {
        !statuses.get(key).and_then(|s| s.isr.as_ref()).is_some_and(|isr| isr.contains(&ctx.node_id))
    });
    let body = json!({"node_id": ctx.node_id, "controller": controller, "leaderless_partitions": leaderless,
        "stuck_partitions": api.events.stuck(), "lagging_replicas": hosted.len()});
    let ok = controller.is_some() && leaderless == 0 && hosted.is_empty();
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

#[utoipa::path(get, operation_id = "cluster_describe", path = "/v1/cluster", tag = "cluster", responses((status = 200, body = ClusterView)))]
pub async fn describe(State(api): State<AppState>) -> Json<ClusterView> {
    let ctx = &api.node;
    let state = ctx.metadata.state();
    let (controller, term) = ctx.metadata.controller();
    let voters: Vec<NodeId> = {
        let m = ctx.metadata.raft().metrics();
        let m = m.borrow();
        m.membership_config.membership().voter_ids().collect()
    };
    let mut leaders = std::collections::HashMap::<NodeId, usize>::new();
    for t in state.topics.values() {
        for p in 0..t.partitions.len() as i32 {
            if let Some((leader, _)) = ctx.routing.leader_of(&t.name, p) {
                *leaders.entry(leader).or_default() += 1;
            }
        }
    }
    let nodes = state
        .brokers
        .values()
        .map(|b| NodeView {
            id: b.id,
            kafka_addr: b.kafka_addr.clone(),
            http_addr: b.http_addr.clone(),
            raft_addr: b.raft_addr.clone(),
            alive: ctx.metadata.is_alive(b.id),
            is_controller_voter: voters.contains(&b.id),
            leader_count: leaders.get(&b.id).copied().unwrap_or(0),
        })
        .collect();
    Json(ClusterView {
        cluster_id: state.cluster_id.clone(),
        controller: Controller { node_id: controller.filter(|c| ctx.metadata.is_alive(*c)), term },
        nodes,
    })
}

/// The `hello` event's data: who is streaming.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: NodeId,
}

/// Server-sent events: `hello` once connected, then `leader` and `node`
/// events (`crate::events::Event`) as this node sees them happen.
#[utoipa::path(get, operation_id = "cluster_events", path = "/v1/cluster/events", tag = "cluster",
    responses((status = 200, description = "text/event-stream of leader and node events", body = crate::events::Event,
        content_type = "text/event-stream")))]
pub async fn events(State(api): State<AppState>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = api.events.subscribe();
    let hello = SseEvent::default()
        .event("hello")
        .data(serde_json::to_string(&Hello { node_id: api.node.node_id }).unwrap_or_default());
    let shutdown = api.shutdown.clone();
    let stream = futures::stream::unfold((Some(hello), rx), move |(first, mut rx)| {
        let shutdown = shutdown.clone();
        async move {
            if let Some(hello) = first {
                return Some((Ok(hello), (None, rx)));
            }
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    next = rx.recv() => next,
                };
                match next {
                    Ok(e) => {
                        let data = serde_json::to_string(&e).unwrap_or_default();
                        return Some((Ok(SseEvent::default().event(e.kind()).data(data)), (None, rx)));
                    }
                    Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "events listener fell behind"),
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

#[utoipa::path(get, operation_id = "cluster_metrics", path = "/metrics", tag = "cluster",
    responses((status = 200, description = "Prometheus (OpenMetrics) text", content_type = "text/plain")))]
pub async fn metrics(State(api): State<AppState>) -> impl IntoResponse {
    let live = Live {
        metadata: api.node.metadata.clone(),
        partitions: api.node.partitions.clone(),
        storage: api.storage.clone(),
        events: api.events.clone(),
    };
    let body = api.node.metrics.render(live);
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

/// The cluster page: static HTML and JS, no build step.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}
