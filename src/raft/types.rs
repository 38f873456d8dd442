//! The ids every Raft group shares: node ids and group ids. Each kind of
//! group declares its own openraft type config beside its commands
//! (`metadata::command::MetaConfig`, `partition::command::PartConfig`).

pub use crate::storage::GroupId;

/// A broker's id (Kafka's `broker.id`, the Raft node id).
pub type NodeId = u64;

/// The metadata group's id; partition groups are numbered from 1.
pub const METADATA_GROUP: GroupId = 0;
