//! The openraft type configurations, declared once per kind of group: the
//! metadata (controller) group and the partition groups. Both share the log
//! store, the transport and the node type; only the commands differ.

use std::io::Cursor;

use crate::metadata::command::{MetadataCommand, MetadataResponse};
use crate::partition::command::{PartitionCommand, PartitionResponse};

pub use crate::storage::GroupId;

/// A broker's id (Kafka's `broker.id`, the Raft node id).
pub type NodeId = u64;

/// The metadata group's id; partition groups are numbered from 1.
pub const METADATA_GROUP: GroupId = 0;

openraft::declare_raft_types!(
    /// The metadata (controller) group.
    pub MetaConfig:
        D = MetadataCommand,
        R = MetadataResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<MetaConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

openraft::declare_raft_types!(
    /// One partition's replica group.
    pub PartConfig:
        D = PartitionCommand,
        R = PartitionResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<PartConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type MetaRaft = openraft::Raft<MetaConfig>;
pub type PartRaft = openraft::Raft<PartConfig>;
