//! The Kafka wire edge: framing, request headers, response frames and the
//! protocol error type. Knows nothing of partitions, Raft or storage.

pub mod error;
pub mod frame;
pub mod header;

pub use error::ProtocolError;
pub use header::Request;
