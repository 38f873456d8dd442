//! RocksDB-backed Raft log and vote storage, generic over the group's type
//! config so the metadata group and every partition group share it. A group's
//! entries live under `group ++ index` in the `raft_log` column family; its vote
//! and purge point under `group ++ tag` in `raft_state`. One `WriteBatch` per
//! append, acknowledged to openraft only after RocksDB has it in its WAL.
//!
//! A group whose state machine keeps reading entries after applying them
//! (a partition's records stay where they were appended: its log *is* the
//! Raft log) gives the store a `Retained`: purged entries are deleted only
//! below its floor, and the state machine deletes the rest once it lets go
//! of them (`Retained::release`). openraft never reads purged entries, so
//! keeping them is invisible to it.
//!
//! The committed log id is not saved (openraft's default): every state machine
//! persists its last applied id with its state, and committed-but-unapplied
//! entries are re-committed by the next leader, so saving it would only cost a
//! RocksDB write per commit on the produce path.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::raft::types::NodeId;
use crate::storage::{self, keys, Batch, Cf, GroupId, Storage};

const TAG_VOTE: u8 = 1;
const TAG_PURGED: u8 = 3;

/// What of a group's log its state machine still reads: entries from
/// `floor` on. Purged entries below both the floor and openraft's purge
/// point may be deleted.
#[derive(Debug)]
pub struct Retained {
    group: GroupId,
    floor: AtomicU64,
    /// One past the last entry openraft purged.
    purged_end: AtomicU64,
}

impl Retained {
    /// `floor` is the first entry the state machine reads (`u64::MAX`: none).
    pub fn new(group: GroupId, floor: u64) -> Self {
        Self { group, floor: AtomicU64::new(floor), purged_end: AtomicU64::new(0) }
    }

    /// The state machine reads entries from `floor` on. It lowers the floor
    /// before it applies an entry it will read (which openraft cannot have
    /// purged: it purges only what a snapshot, so an apply, covers).
    pub fn set_floor(&self, floor: u64) {
        self.floor.store(floor, Ordering::SeqCst);
    }

    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::SeqCst)
    }

    /// Adds to `batch` the deletion of every entry both purged and below
    /// the floor.
    pub fn release(&self, batch: &mut Batch) {
        let end = self.floor().min(self.purged_end.load(Ordering::SeqCst));
        if end > 0 {
            batch.delete_range(Cf::RaftLog, keys::indexed(self.group, 0), keys::indexed(self.group, end));
        }
    }

    fn purged_to(&self, log_id: Option<&LogId<NodeId>>) {
        let end = log_id.map_or(0, |l| l.index.saturating_add(1));
        self.purged_end.fetch_max(end, Ordering::SeqCst);
    }
}

/// Calls `read` with the stored bytes of entry `index` of `group` (as
/// encoded by `codec::encode`), if it is there; without copying them.
pub fn with_entry_bytes<T>(
    storage: &Storage,
    group: GroupId,
    index: u64,
    read: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, storage::StorageError> {
    storage.with_value(Cf::RaftLog, keys::indexed(group, index), read)
}

/// One group's view of the shared log storage.
pub struct LogStore<C> {
    storage: Arc<Storage>,
    group: GroupId,
    retained: Option<Arc<Retained>>,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            group: self.group,
            retained: self.retained.clone(),
            _config: PhantomData,
        }
    }
}

impl<C> LogStore<C> {
    pub fn new(storage: Arc<Storage>, group: GroupId) -> Self {
        Self { storage, group, retained: None, _config: PhantomData }
    }

    /// A store whose purges keep what `retained` says the state machine reads.
    pub fn retaining(storage: Arc<Storage>, group: GroupId, retained: Arc<Retained>) -> Self {
        Self { storage, group, retained: Some(retained), _config: PhantomData }
    }
}

fn read_err(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::new(e)).into()
}

fn write_err(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned,
{
    fn read_state<T: DeserializeOwned>(
        &self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<T>, storage::StorageError> {
        self.storage
            .get(Cf::RaftState, keys::tagged(self.group, tag))?
            .map(|bytes| codec::decode(what, &bytes))
            .transpose()
            .map_err(storage::StorageError::from)
    }

    fn write_state<T: Serialize>(
        &self,
        tag: u8,
        what: &'static str,
        value: &T,
    ) -> Result<(), storage::StorageError> {
        let mut batch = Batch::default();
        batch.put(Cf::RaftState, keys::tagged(self.group, tag), codec::encode(what, value)?);
        self.storage.write(batch)
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let from = keys::indexed(self.group, start);
        let to: Vec<u8> = match range.end_bound() {
            Bound::Included(i) if *i == u64::MAX => keys::group_end(self.group).to_vec(),
            Bound::Included(i) => keys::indexed(self.group, i + 1).to_vec(),
            Bound::Excluded(i) => keys::indexed(self.group, *i).to_vec(),
            Bound::Unbounded => keys::group_end(self.group).to_vec(),
        };
        let mut entries = Vec::new();
        let mut failure = None;
        self.storage
            .for_each(Cf::RaftLog, &from, &to, |_, v| match codec::decode::<C::Entry>("raft entry", v) {
                Ok(e) => {
                    entries.push(e);
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            })
            .map_err(|e| read_err(&e))?;
        if let Some(e) = failure {
            return Err(read_err(&e));
        }
        Ok(entries)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeId>> {
        let purged: Option<LogId<NodeId>> =
            self.read_state(TAG_PURGED, "purged log id").map_err(|e| read_err(&e))?;
        if let Some(retained) = &self.retained {
            retained.purged_to(purged.as_ref());
        }
        let last = self
            .storage
            .last_in(Cf::RaftLog, &keys::group_start(self.group), &keys::group_end(self.group))
            .map_err(|e| read_err(&e))?;
        let last_log_id = match last {
            Some((_, v)) => {
                let entry: C::Entry = codec::decode("raft entry", &v).map_err(|e| read_err(&e))?;
                Some(*entry.get_log_id())
            }
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_state(TAG_VOTE, "vote", vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_state(TAG_VOTE, "vote").map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Batch::default();
        for entry in entries {
            let key = keys::indexed(self.group, entry.get_log_id().index);
            batch.put(Cf::RaftLog, key, codec::encode("raft entry", &entry).map_err(|e| write_err(&e))?);
        }
        let result = self.storage.write(batch);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = Batch::default();
        batch.delete_range(Cf::RaftLog, keys::indexed(self.group, log_id.index), keys::group_end(self.group));
        self.storage.write(batch).map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = Batch::default();
        batch.put(
            Cf::RaftState,
            keys::tagged(self.group, TAG_PURGED),
            codec::encode("purged log id", &log_id).map_err(|e| write_err(&e))?,
        );
        match &self.retained {
            Some(retained) => {
                retained.purged_to(Some(&log_id));
                retained.release(&mut batch);
            }
            None => batch.delete_range(
                Cf::RaftLog,
                keys::indexed(self.group, 0),
                keys::indexed(self.group, log_id.index.saturating_add(1)),
            ),
        }
        self.storage.write(batch).map_err(|e| write_err(&e))
    }
}
