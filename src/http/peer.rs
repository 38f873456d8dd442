//! Talking to other nodes' admin APIs: a request that only one node can
//! answer (a partition's leader produces and reads; a group's coordinator
//! describes it) is forwarded there, and answers that need every node (the
//! groups they coordinate, their partitions' offsets) are gathered from them.
//! Topic writes do not come here: `MetadataHandle` forwards them over Raft.
//!
//! A forwarded request carries `FORWARDED`; a node that receives one and is
//! not the owner either answers 503 instead of forwarding again, so two nodes
//! with different views never bounce a request between them.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::http::error::{ApiError, ErrorBody};

pub const FORWARDED: &str = "x-raftka-forwarded";

/// How long a forwarded request may take (a produce waits for its commit).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(35);
/// How long a node waits for each other node when gathering.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer taken from another node (a REST read answers at most
/// 16 MiB of record bytes, base64 and JSON around them).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone)]
pub struct Peers {
    client: reqwest::Client,
}

impl Default for Peers {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

/// Whether this request was already forwarded by another node.
pub fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED)
}

impl Peers {
    /// Sends `method path` with a JSON `body` to the node at `http_addr`:
    /// its status and body.
    async fn send(
        &self,
        http_addr: &str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let mut req = self.client.request(method, format!("http://{http_addr}{path}")).header(FORWARDED, "1");
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.timeout(FORWARD_TIMEOUT).send().await.map_err(|e| {
            tracing::debug!(%http_addr, path, error = %e, "forward failed");
            ApiError::unavailable(format!("node at {http_addr} did not answer: {e}"))
        })?;
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let bytes = read_bounded(resp)
            .await
            .map_err(|e| ApiError::unavailable(format!("node at {http_addr} broke off its answer: {e}")))?;
        Ok((status, bytes))
    }

    /// Forwards a request and relays the answer (status and body) unchanged.
    pub async fn forward(
        &self,
        http_addr: &str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response, ApiError> {
        let (status, bytes) = self.send(http_addr, method, path, body).await?;
        Ok((status, [("content-type", "application/json")], Body::from(bytes)).into_response())
    }

    /// Forwards a request whose answer this node uses: the parsed body of a
    /// success, else the other node's error as this node's.
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        http_addr: &str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self.send(http_addr, method, path, body).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::unavailable(format!("node at {http_addr} answered badly: {e}")));
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        Err(ApiError::new(status, message))
    }

    /// `GET path` on the node at `http_addr`, as JSON; `None` if it does not
    /// answer 200 within `GATHER_TIMEOUT`.
    pub async fn get_json<T: DeserializeOwned>(&self, http_addr: &str, path: &str) -> Option<T> {
        self.get_json_within(http_addr, path, GATHER_TIMEOUT).await
    }

    /// `get_json`, waiting at most `timeout`.
    pub async fn get_json_within<T: DeserializeOwned>(
        &self,
        http_addr: &str,
        path: &str,
        timeout: Duration,
    ) -> Option<T> {
        let resp = self
            .client
            .get(format!("http://{http_addr}{path}"))
            .header(FORWARDED, "1")
            .timeout(timeout)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        serde_json::from_slice(&read_bounded(resp).await.ok()?).ok()
    }
}

/// A peer's answer body, refused past `MAX_ANSWER_BYTES` rather than held.
async fn read_bounded(mut resp: reqwest::Response) -> Result<Bytes, String> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
