//! The Kafka data plane: the listener, per-connection pipelining, the routing
//! table, and one handler file per API family. Holds no broker state of its
//! own; handlers work on the node's services (`node::Node`).

pub mod api_versions;
pub mod configs;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod listener;
pub mod metadata;
pub mod produce;
pub mod producer_id;
pub mod topics;

use kafka_protocol::protocol::StrBytes;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
