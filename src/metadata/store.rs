//! The metadata group's Raft state machine: applies `MetadataCommand`s to the
//! in-memory `MetadataState`, persists the whole state with the last applied
//! log id in one RocksDB write per apply call (metadata is small and changes
//! rarely), and publishes every new state on a `watch` channel that the
//! partition manager, the handlers and the HTTP API read.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, EntryPayload, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership};
use tokio::sync::watch;

use crate::metadata::command::{MetaConfig, MetadataResponse};
use crate::metadata::state::MetadataState;
use crate::raft::applied::{sm_err, Image, ImageSnapshot};
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::storage::{self, Batch, Storage};

pub struct MetadataStore {
    storage: Arc<Storage>,
    image: Image<MetadataState>,
    tx: watch::Sender<Arc<MetadataState>>,
}

impl MetadataStore {
    pub fn open(
        storage: Arc<Storage>,
    ) -> Result<(Self, watch::Receiver<Arc<MetadataState>>), storage::StorageError> {
        let image: Image<MetadataState> = Image::load(&storage, METADATA_GROUP)?;
        let (tx, rx) = watch::channel(Arc::new(image.state.clone()));
        Ok((Self { storage, image, tx }, rx))
    }

    fn persist_and_publish(&self) -> Result<(), storage::StorageError> {
        let mut batch = Batch::default();
        self.image.put(METADATA_GROUP, &mut batch)?;
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
        Ok(self.image.applied_state())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetadataResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<MetaConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            responses.push(match entry.payload {
                EntryPayload::Blank => {
                    self.image.applied(entry.log_id, None);
                    MetadataResponse::Done
                }
                EntryPayload::Normal(cmd) => {
                    self.image.applied(entry.log_id, None);
                    self.image.state.apply(cmd)
                }
                EntryPayload::Membership(m) => {
                    self.image.applied(entry.log_id, Some(m));
                    MetadataResponse::Done
                }
            });
        }
        self.persist_and_publish().map_err(|e| sm_err(&e))?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.image.snapshot_builder()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.image.install(meta, snapshot.get_ref()).map_err(|e| sm_err(&e))?;
        self.persist_and_publish().map_err(|e| sm_err(&e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaConfig>>, StorageError<NodeId>> {
        self.image.current_snapshot().await
    }
}
