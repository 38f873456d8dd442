//! What every state machine persists beside its own state: the last applied
//! log id and the membership, and the snapshot built from that image.

use std::io::Cursor;

use openraft::{
    AnyError, BasicNode, LogId, RaftSnapshotBuilder, RaftTypeConfig, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::raft::types::NodeId;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// A storage or codec failure inside a state machine, as openraft wants it.
pub fn sm_err(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(e)).into()
}

impl Applied {
    /// Where an installed snapshot leaves the state machine.
    pub fn from_meta(meta: &SnapshotMeta<NodeId, openraft::BasicNode>) -> Self {
        Self { last_applied: meta.last_log_id, membership: meta.last_membership.clone() }
    }

    /// A snapshot whose data is `image`, taken at the last applied entry.
    pub fn snapshot<C>(&self, image: Vec<u8>) -> Snapshot<C>
    where
        C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode, SnapshotData = Cursor<Vec<u8>>>,
    {
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}", id.leader_id.term, id.index),
            None => "empty".to_string(),
        };
        Snapshot {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            snapshot: Box::new(Cursor::new(image)),
        }
    }
}

/// A snapshot of a state machine's image, taken when the builder was made.
pub struct ImageSnapshot {
    applied: Applied,
    image: Result<Vec<u8>, crate::codec::CodecError>,
}

impl ImageSnapshot {
    pub fn new(applied: Applied, image: Result<Vec<u8>, crate::codec::CodecError>) -> Self {
        Self { applied, image }
    }
}

impl<C> RaftSnapshotBuilder<C> for ImageSnapshot
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode, SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<NodeId>> {
        let image = match &self.image {
            Ok(bytes) => bytes.clone(),
            Err(e) => return Err(StorageIOError::read_state_machine(AnyError::new(e)).into()),
        };
        Ok(self.applied.snapshot(image))
    }
}
