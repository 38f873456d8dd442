//! The Kafka wire edge: request headers, response frames and the protocol
//! error type (frames themselves are `net::frame`'s). Knows nothing of
//! partitions, Raft or storage.

pub mod error;
pub mod header;

pub use error::ProtocolError;
pub use header::Request;
