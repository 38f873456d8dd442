//! Failures at the wire edge. Each closes the connection it happened on (the
//! Kafka broker does the same); none affects any other connection.

use crate::net::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("request shorter than its header")]
    Truncated,
    /// The request's header or body does not decode (kafka-protocol's error).
    #[error("malformed request: {0}")]
    Malformed(Box<dyn std::error::Error + Send + Sync>),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("api key {key} version {version} is not supported")]
    UnsupportedVersion { key: i16, version: i16 },
    #[error("cannot encode response to api key {key} v{version}: {source}")]
    Encode { key: i16, version: i16, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
