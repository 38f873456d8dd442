//! The CLI's HTTP client: one call to a node's admin API, with the API's
//! `{"error": ...}` answers and connection failures turned into `CliError`.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::http::error::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The API refused the request (its status and message).
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{server} closed the events stream")]
    StreamClosed { server: String },
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Client {
    server: String,
    http: reqwest::Client,
}

impl Client {
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn new(server: &str) -> Self {
        let server = server.trim_end_matches('/');
        let server = if server.contains("://") { server.to_string() } else { format!("http://{server}") };
        let http =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Self { server, http }
    }

    fn unreachable(&self, e: reqwest::Error) -> CliError {
        CliError::Unreachable { server: self.server.clone(), reason: e.to_string() }
    }

    /// Sends a request; an answer of 2xx parses into `T` (`()` for none).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CliError> {
        let mut req =
            self.http.request(method, format!("{}{path}", self.server)).timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(CliError::Api { status: status.as_u16(), message });
        }
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| CliError::Api {
            status: status.as_u16(),
            message: format!("unexpected answer from {}: {e}", self.server),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// A streaming GET (server-sent events).
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response, CliError> {
        let resp =
            self.http.get(format!("{}{path}", self.server)).send().await.map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            return Err(CliError::Api {
                status: resp.status().as_u16(),
                message: "cannot open the stream".into(),
            });
        }
        Ok(resp)
    }
}
