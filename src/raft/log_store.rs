//! Raft log and vote storage, generic over the group's type config so the
//! metadata group and every partition group share it. A group's entries are
//! named under `group ++ index` in the `raft_log` column family; its vote and
//! purge point under `group ++ tag` in `raft_state`. One `WriteBatch` per
//! append, acknowledged to openraft only after RocksDB has it in its WAL.
//!
//! The metadata group's entries are the `raft_log` values themselves. A
//! partition group's are its record batches, which stay where they were
//! appended (its log *is* the Raft log): they are written once, to the
//! group's segment files (`storage::segments`), and `raft_log` holds each
//! one's `Location`. Such a group gives the store a `Retained`
//! (`raft::retained`), which owns its segments and says what of its log the
//! state machine still reads: purged entries are deleted only below its
//! floor, and the state machine deletes the rest once it lets go of them
//! (`Retained::release`). openraft never reads purged entries, so keeping
//! them is invisible to it. Its newest entries are also kept in memory until
//! applied (`raft::tail`), and one AppendEntries carries at most an append
//! limit of them (`limited_get_log_entries`).
//!
//! The committed log id is not saved (openraft's default): every state machine
//! persists its last applied id with its state, and committed-but-unapplied
//! entries are re-committed by the next leader, so saving it would only cost a
//! RocksDB write per commit on the produce path.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::raft::retained::{location_value, Retained, Stored};
use crate::raft::tail::Tail;
use crate::raft::types::NodeId;
use crate::storage::{self, keys, Batch, Cf, GroupId, Storage};

const TAG_VOTE: u8 = 1;
const TAG_PURGED: u8 = 3;

/// One group's view of the shared log storage.
pub struct LogStore<C: RaftTypeConfig> {
    storage: Arc<Storage>,
    group: GroupId,
    retained: Option<Arc<Retained>>,
    /// A partition group's newest entries (`raft::tail`).
    tail: Option<Arc<Tail<C::Entry>>>,
    /// The most entry bytes one AppendEntries carries.
    append_limit: usize,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            group: self.group,
            retained: self.retained.clone(),
            tail: self.tail.clone(),
            append_limit: self.append_limit,
        }
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    pub fn new(storage: Arc<Storage>, group: GroupId) -> Self {
        Self { storage, group, retained: None, tail: None, append_limit: MAX_APPEND_BYTES }
    }

    /// A partition group's store: its entries in the segment files
    /// `retained` owns, and its purges keeping what `retained` says the state
    /// machine reads.
    pub fn retaining(storage: Arc<Storage>, group: GroupId, retained: Arc<Retained>) -> Self {
        Self {
            storage,
            group,
            retained: Some(retained),
            tail: Some(Arc::default()),
            append_limit: MAX_APPEND_BYTES,
        }
    }

    /// At most `bytes` of entries (but always one) per AppendEntries, so
    /// that its frame stays inside the peers' frame limit.
    pub fn with_append_limit(mut self, bytes: usize) -> Self {
        self.append_limit = bytes.clamp(1, MAX_APPEND_BYTES);
        self
    }

    /// The tail, rid of what the state machine applied.
    fn tail(&self) -> Option<&Tail<C::Entry>> {
        let (tail, retained) = (self.tail.as_deref()?, self.retained.as_deref()?);
        tail.evict_through(retained.applied.load(Ordering::SeqCst));
        Some(tail)
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
    C::Entry: Serialize + DeserializeOwned + Clone,
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

    /// The entry a `raft_log` value holds or locates (`buf` holds the bytes
    /// read from a segment).
    fn decode_entry(&self, value: &[u8], buf: &mut Vec<u8>) -> Result<C::Entry, storage::StorageError> {
        let bytes = match &self.retained {
            Some(retained) => retained.entry_bytes(value, buf)?,
            None => value,
        };
        Ok(codec::decode("raft entry", bytes)?)
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned + Clone,
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
        let end = match range.end_bound() {
            Bound::Included(i) => i.checked_add(1),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        self.read_entries(start, end, usize::MAX).map_err(|e| read_err(&e))
    }

    /// What one AppendEntries carries: at most the append limit of entries
    /// (at least one), however many openraft asks for — 300 entries of
    /// megabyte batches made a frame over the Raft listener's limit and an
    /// RPC over its deadline, and a replica that had been away never caught
    /// up.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<NodeId>> {
        self.read_entries(start, Some(end), self.append_limit).map_err(|e| read_err(&e))
    }
}

/// The most entry bytes one AppendEntries carries (`limited_get_log_entries`)
/// unless a smaller limit is set.
pub const MAX_APPEND_BYTES: usize = 8 << 20;

impl<C> LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned + Clone,
{
    /// The entries `[start, end)` (`None`: to the last), as many of them as
    /// fit `max_bytes` as stored but at least the first.
    fn read_entries(
        &self,
        start: u64,
        end: Option<u64>,
        max_bytes: usize,
    ) -> Result<Vec<C::Entry>, storage::StorageError> {
        if let Some(kept) = end.and_then(|end| self.tail()?.get(start, end, max_bytes)) {
            return Ok(kept);
        }
        let from = keys::indexed(self.group, start);
        let to: Vec<u8> = match end {
            Some(end) => keys::indexed(self.group, end).to_vec(),
            None => keys::group_end(self.group).to_vec(),
        };
        let mut entries = Vec::new();
        let mut failure = None;
        let mut buf = Vec::new();
        let mut total = 0usize;
        self.storage.for_each(Cf::RaftLog, &from, &to, |_, v| {
            let size = match Stored::of(v) {
                Stored::Inline(e) => e.len(),
                Stored::At(l) => l.len as usize,
            };
            if !entries.is_empty() && total.saturating_add(size) > max_bytes {
                return false;
            }
            total = total.saturating_add(size);
            match self.decode_entry(v, &mut buf) {
                Ok(e) => {
                    entries.push(e);
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        failure.map_or(Ok(entries), Err)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned + Clone,
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
                let entry = self.decode_entry(&v, &mut Vec::new()).map_err(|e| read_err(&e))?;
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
        // A partition group's entries, kept in its tail once written.
        let mut appended = Vec::new();
        let mut unsynced = None;
        match &self.retained {
            // The entries' bytes go to the segment files first, then RocksDB
            // names them: a crash between leaves bytes nobody names, which
            // `Retained::open` cuts off.
            Some(retained) => {
                let mut encoded = Vec::new();
                let mut spans = Vec::new();
                for entry in entries {
                    let start = encoded.len();
                    codec::encode_into("raft entry", &entry, &mut encoded).map_err(|e| write_err(&e))?;
                    let index = entry.get_log_id().index;
                    spans.push((index, start..encoded.len()));
                    appended.push((index, entry, encoded.len() - start));
                }
                let pieces: Vec<(u64, &[u8])> =
                    spans.iter().map(|(i, r)| (*i, &encoded[r.clone()])).collect();
                let (locations, file) =
                    retained.segments.append_unsynced(&pieces).map_err(|e| write_err(&e))?;
                unsynced = file;
                for ((index, _), location) in spans.iter().zip(locations) {
                    batch.put(Cf::RaftLog, keys::indexed(self.group, *index), location_value(&location));
                }
            }
            None => {
                for entry in entries {
                    let key = keys::indexed(self.group, entry.get_log_id().index);
                    batch.put(
                        Cf::RaftLog,
                        key,
                        codec::encode("raft entry", &entry).map_err(|e| write_err(&e))?,
                    );
                }
            }
        }
        // openraft counts the entries as stored when `callback` runs: at
        // once, or with `fsync` on once the group commit has synced them.
        let done: crate::storage::syncer::Done = Box::new(move |synced| {
            callback.log_io_completed(synced.map_err(|e| std::io::Error::other(e.to_string())))
        });
        self.storage.write_then_sync(batch, unsynced, done).map_err(|e| write_err(&e))?;
        if let Some(tail) = self.tail() {
            for (index, entry, size) in appended {
                tail.push(index, entry, size);
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let key = keys::indexed(self.group, log_id.index);
        let first = match &self.retained {
            Some(_) => self.storage.get(Cf::RaftLog, key).map_err(|e| write_err(&e))?,
            None => None,
        };
        if let Some(tail) = &self.tail {
            tail.truncate(log_id.index);
        }
        let mut batch = Batch::default();
        batch.delete_range(Cf::RaftLog, key, keys::group_end(self.group));
        self.storage.write(batch).map_err(|e| write_err(&e))?;
        // The segment files are cut back once RocksDB no longer names what
        // they lose.
        if let (Some(retained), Some(value)) = (&self.retained, first) {
            if let Stored::At(location) = Stored::of(&value) {
                retained.segments.truncate(location).map_err(|e| write_err(&e))?;
            }
        }
        Ok(())
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
                if let Some(tail) = &self.tail {
                    tail.evict_through(log_id.index);
                }
            }
            None => batch.delete_range(
                Cf::RaftLog,
                keys::indexed(self.group, 0),
                keys::indexed(self.group, log_id.index.saturating_add(1)),
            ),
        }
        self.storage.write(batch).map_err(|e| write_err(&e))?;
        if let Some(retained) = &self.retained {
            retained.drop_released().map_err(|e| write_err(&e))?;
        }
        Ok(())
    }
}
