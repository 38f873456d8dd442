//! The metadata group's Raft state machine: applies `MetadataCommand`s to the
//! in-memory `MetadataState`, persists the whole state with the last applied
//! log id in one RocksDB write per apply call (metadata is small and changes
//! rarely), and publishes every new state on a `watch` channel that the
//! partition manager, the handlers and the HTTP API read.

use std::sync::Arc;

use openraft::EntryPayload;
use tokio::sync::watch;

use crate::metadata::command::{MetaConfig, MetadataResponse};
use crate::metadata::state::MetadataState;
use crate::raft::applied::{Image, ImageState};
use crate::raft::types::METADATA_GROUP;
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

impl ImageState for MetadataStore {
    type Config = MetaConfig;
    type State = MetadataState;
    type InstallError = storage::StorageError;

    fn image(&mut self) -> &mut Image<MetadataState> {
        &mut self.image
    }

    fn apply_entries(
        &mut self,
        entries: Vec<openraft::Entry<MetaConfig>>,
    ) -> Result<Vec<MetadataResponse>, storage::StorageError> {
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
        self.persist()?;
        Ok(responses)
    }

    fn persist(&mut self) -> Result<(), storage::StorageError> {
        self.persist_and_publish()
    }
}
