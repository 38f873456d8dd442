//! Failures at the wire edge. Each closes the connection it happened on (the
//! Kafka broker does the same); none affects any other connection.

use crate::net::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("api key {key} version {version} is not supported")]
    UnsupportedVersion { key: i16, version: i16 },
    #[error("cannot encode response to api key {key} v{version}: {reason}")]
    Encode { key: i16, version: i16, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
