//! The metadata group's log entries and their results. Commands carry every
//! decision already made (ids, uuids, replica sets) so that applying them is
//! deterministic on every replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::raft::types::{GroupId, NodeId};

/// A broker as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: NodeId,
    pub kafka_addr: String,
    pub http_addr: String,
    pub raft_addr: String,
}

impl BrokerInfo {
    /// The advertised Kafka host and port, as Kafka responses carry them.
    pub fn kafka_host_port(&self) -> Option<(&str, i32)> {
        let (host, port) = self.kafka_addr.rsplit_once(':')?;
        Some((host, port.parse().ok()?))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id if none is set yet.
    Init {
        cluster_id: String,
    },
    /// Adds or updates a broker's listeners.
    RegisterBroker(BrokerInfo),
    CreateTopic {
        name: String,
        id: Uuid,
        replicas: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Appends partitions with these replica sets.
    CreatePartitions {
        name: String,
        replicas: Vec<Vec<NodeId>>,
    },
    /// Sets `set` and removes `delete` from a topic's config overrides.
    AlterConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Reserves `count` producer ids.
    AllocateProducerIds {
        count: i64,
    },
    /// Partition leaders as their new leaders report themselves.
    ReportLeaders(Vec<LeaderReport>),
}

/// "`leader` leads partition group `group` in Raft term `term`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderReport {
    pub group: GroupId,
    pub leader: NodeId,
    pub term: u64,
}

/// Why the state machine refused a command. Serializable: it travels in the
/// Raft response to whichever node proposed the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("topic has {current} partitions; the new count must be larger, got {requested}")]
    PartitionsNotIncreasing { current: usize, requested: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataResponse {
    Done,
    /// First id of a reserved block of producer ids.
    ProducerIds {
        first: i64,
    },
    Rejected(Rejection),
}

openraft::declare_raft_types!(
    /// The metadata (controller) group's openraft types.
    pub MetaConfig:
        D = MetadataCommand,
        R = MetadataResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<MetaConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type MetaRaft = openraft::Raft<MetaConfig>;
