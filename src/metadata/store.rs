//! The metadata group's Raft state machine: applies `MetadataCommand`s to the
//! in-memory `MetadataState`, persists the whole state with the last applied
//! log id in one RocksDB write per apply call (metadata is small and changes
//! rarely), and publishes every new state on a `watch` channel that the
//! partition manager, the handlers and the HTTP API read.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::codec;
use crate::metadata::command::MetaConfig;
use crate::metadata::command::MetadataResponse;
use crate::metadata::state::MetadataState;
use crate::raft::applied::{sm_err, Applied, ImageSnapshot};
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::storage::{self, keys, Batch, Cf, Storage};

const TAG_IMAGE: u8 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Image {
    applied: Applied,
    state: MetadataState,
}

pub struct MetadataStore {
    storage: Arc<Storage>,
    image: Image,
    tx: watch::Sender<Arc<MetadataState>>,
}

impl MetadataStore {
    pub fn open(
        storage: Arc<Storage>,
    ) -> Result<(Self, watch::Receiver<Arc<MetadataState>>), storage::StorageError> {
        let image: Image = match storage.get(Cf::State, keys::tagged(METADATA_GROUP, TAG_IMAGE))? {
            Some(bytes) => codec::decode("metadata state", &bytes)?,
            None => Image::default(),
        };
        let (tx, rx) = watch::channel(Arc::new(image.state.clone()));
        Ok((Self { storage, image, tx }, rx))
    }

    fn persist_and_publish(&self) -> Result<(), storage::StorageError> {
        let mut batch = Batch::default();
        batch.put(
            Cf::State,
            keys::tagged(METADATA_GROUP, TAG_IMAGE),
            codec::encode("metadata state", &self.image)?,
        );
        self.storage.write(batch)?;
        self.tx.send_replace(Arc::new(self.image.state.clone()));
        Ok(())
    }
}

impl RaftStateMachine<MetaConfig> for MetadataStore {
    type SnapshotBuilder = ImageSnapshot;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.image.applied.last_applied, self.image.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetadataResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<MetaConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.image.applied.last_applied = Some(entry.log_id);
            responses.push(match entry.payload {
                EntryPayload::Blank => MetadataResponse::Done,
                EntryPayload::Normal(cmd) => self.image.state.apply(cmd),
                EntryPayload::Membership(m) => {
                    self.image.applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    MetadataResponse::Done
                }
            });
        }
        self.persist_and_publish().map_err(|e| sm_err(&e))?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        ImageSnapshot::new(self.image.applied.clone(), codec::encode("metadata state", &self.image.state))
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let state: MetadataState =
            codec::decode("metadata snapshot", snapshot.get_ref()).map_err(|e| sm_err(&e))?;
        self.image = Image { applied: Applied::from_meta(meta), state };
        self.persist_and_publish().map_err(|e| sm_err(&e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaConfig>>, StorageError<NodeId>> {
        let mut builder = self.get_snapshot_builder().await;
        builder.build_snapshot().await.map(Some)
    }
}
