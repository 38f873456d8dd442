//! The admin HTTP API (axum). For now it answers `GET /v1/health`; the full
//! `/v1/...` API is issue 5. Errors are JSON `{"error": "..."}`, unknown
//! routes included.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::raft::types::NodeId;

#[derive(Clone)]
pub struct HttpState {
    pub node_id: NodeId,
}

pub fn router(state: HttpState) -> Router {
    Router::new().route("/v1/health", get(health)).fallback(not_found).with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    Json(json!({"status": "ok", "node_id": s.node_id}))
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, Json(json!({"error": "no such route"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_is_ok_and_unknown_routes_are_json_404() {
        let app = router(HttpState { node_id: 7 });
        let resp =
            app.clone().oneshot(Request::get("/v1/health").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = app.oneshot(Request::get("/nope").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].is_string());
    }
}
