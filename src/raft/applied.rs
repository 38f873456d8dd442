//! What every state machine persists: an `Image` of its own state with the
//! last applied log id and the membership, stored under its group in one
//! RocksDB value; and the one openraft state machine over it (`Machine`),
//! with the one snapshot codepath — a snapshot is taken at the last applied
//! entry, installed by replacing the image, and absent until something was
//! applied. An owner provides what applying its commands means, how its
//! image is persisted, and — where its state refers to data kept beside the
//! image, as a partition's records — what else a snapshot must carry
//! (`ImageState::snapshot_data`, `ImageState::install`).
//!
//! openraft keeps only the metadata of a snapshot it builds (`ImageSnapshot`,
//! cheap: the image alone); the data a follower receives is made when it is
//! sent (`get_current_snapshot`), at the state machine's current applied
//! entry, between two applies, so it is always consistent.

use std::io::Cursor;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::raft::types::{GroupId, NodeId};
use crate::storage::{self, keys, Batch, Cf, Storage};

/// The key tag of a group's image in the `state` column family.
const TAG_IMAGE: u8 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// A storage or codec failure inside a state machine, as openraft wants it.
pub fn sm_err(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(e)).into()
}

/// A state machine's persisted image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Image<S> {
    pub applied: Applied,
    pub state: S,
}

impl<S: Serialize + DeserializeOwned + Default + Clone> Image<S> {
    /// The image stored for `group`, or an empty one for a new group.
    pub fn load(storage: &Storage, group: GroupId) -> Result<Self, storage::StorageError> {
        Ok(match storage.get(Cf::State, keys::tagged(group, TAG_IMAGE))? {
            Some(bytes) => codec::decode("state machine image", &bytes)?,
            None => Self::default(),
        })
    }

    /// Adds the image's write to `batch`.
    pub fn put(&self, group: GroupId, batch: &mut Batch) -> Result<(), CodecError> {
        batch.put(Cf::State, keys::tagged(group, TAG_IMAGE), codec::encode("state machine image", self)?);
        Ok(())
    }

    /// Notes an entry as applied; the membership too, if it carries one.
    pub fn applied(
        &mut self,
        log_id: LogId<NodeId>,
        membership: Option<openraft::Membership<NodeId, BasicNode>>,
    ) {
        self.applied.last_applied = Some(log_id);
        if let Some(m) = membership {
            self.applied.membership = StoredMembership::new(Some(log_id), m);
        }
    }

    pub fn applied_state(&self) -> (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>) {
        (self.applied.last_applied, self.applied.membership.clone())
    }

    /// What builds this image's snapshot (the state as it is now).
    pub fn snapshot_builder(&self) -> ImageSnapshot {
        ImageSnapshot {
            applied: self.applied.clone(),
            image: codec::encode("state machine state", &self.state),
        }
    }

    /// Replaces the image with an installed snapshot's.
    pub fn install(&mut self, meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> Result<(), CodecError> {
        let state: S = codec::decode("state machine snapshot", data)?;
        *self = Image { applied: Applied::from_meta(meta), state };
        Ok(())
    }
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
    image: Result<Vec<u8>, CodecError>,
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

/// A group kind's state machine over an `Image`: how its entries apply and
/// how it persists (and publishes) the image. `Machine` makes it openraft's.
pub trait ImageState: Send + Sync + 'static {
    type Config: RaftTypeConfig<NodeId = NodeId, Node = BasicNode, SnapshotData = Cursor<Vec<u8>>>;
    type State: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static;
    /// Why a received snapshot was not installed.
    type InstallError: std::error::Error + From<CodecError> + From<storage::StorageError> + 'static;

    fn image(&mut self) -> &mut Image<Self::State>;

    /// Applies committed entries (each noted in the image as applied) and
    /// persists the result in one write.
    #[allow(clippy::type_complexity)]
    fn apply_entries(
        &mut self,
        entries: Vec<<Self::Config as RaftTypeConfig>::Entry>,
    ) -> Result<Vec<<Self::Config as RaftTypeConfig>::R>, storage::StorageError>;

    /// Persists (and publishes) the image as it is, after an install.
    fn persist(&mut self) -> Result<(), storage::StorageError>;

    /// The data of a snapshot taken now: by default the encoded image state.
    fn snapshot_data(&mut self) -> Result<Vec<u8>, storage::StorageError> {
        Ok(codec::encode("state machine state", &self.image().state)?)
    }

    /// Replaces this replica's state with a snapshot's (`snapshot_data` of
    /// another replica) and persists it.
    fn install(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: &[u8],
    ) -> Result<(), Self::InstallError> {
        self.image().install(meta, data)?;
        Ok(self.persist()?)
    }
}

/// openraft's state machine for any `ImageState`.
pub struct Machine<T>(pub T);

impl<T: ImageState> RaftStateMachine<T::Config> for Machine<T> {
    type SnapshotBuilder = ImageSnapshot;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok(self.0.image().applied_state())
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<<T::Config as RaftTypeConfig>::R>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = <T::Config as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.0.apply_entries(entries.into_iter().collect()).map_err(|e| sm_err(&e))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.0.image().snapshot_builder()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.0
            .install(meta, snapshot.get_ref())
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<T::Config>>, StorageError<NodeId>> {
        let image = self.0.image();
        if image.applied.last_applied.is_none() {
            return Ok(None);
        }
        let applied = image.applied.clone();
        let data =
            self.0.snapshot_data().map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        Ok(Some(applied.snapshot(data)))
    }
}
