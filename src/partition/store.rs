//! A partition replica's Raft state machine. Applying an `Append` assigns
//! offsets (contiguous from the log start, identical on every replica because
//! every replica applies the same entries in the same order) and checks
//! idempotent-producer sequences; its batches stay where the Raft log stored
//! them, and the `records` column family gets a 25-byte `BatchRef` per batch
//! (`partition::log`), written with the updated partition state in one
//! RocksDB write per apply call.
//!
//! **The Raft log is the partition log** (DESIGN.md's preference): a batch's
//! bytes are written once, in the Raft entry, which the log store writes to
//! the group's segment files (`storage::segments`; RocksDB only names where
//! each entry is). Its entries are deleted only when nothing refers to them
//! any more — retention moved the log start past them, compaction rewrote
//! what was below its point into batches stored themselves, the topic was
//! deleted — and openraft purged them (`raft::retained::Retained`), a
//! segment file at a time. Measured on one node (6 partitions, 100-byte
//! records, librdkafka): writing each batch twice (Raft log, then a copy
//! here) and keeping the Raft log in RocksDB (its WAL, then a blob file at
//! every flush: two disk writes and three copies per batch) cost 490 and then
//! 230 ms of broker CPU per million records; one write to a segment file
//! costs 110–135 (`bench/README.md`, issue 14). Reading through a reference costs a
//! point read of the entry's location and a read of the batch's bytes from
//! the page cache.
//!
//! openraft still purges its view of the log behind snapshots, whole segment
//! files below what retention and compaction let go of
//! (`partition::retention`), so a replica further behind than that catches
//! up through one, and **a partition
//! snapshot carries the records**: the state, then every retained batch
//! (`snapshot_data`). A replica installs it only after checking every batch's
//! CRC, that offsets ascend without overlap inside `[log_start_offset,
//! next_offset)` and that each stored value begins at its own offset; then
//! its records and state are replaced in one RocksDB write, so a crash leaves
//! either the old replica or the new one (`install`). A replica's Raft state
//! never claims a record it does not hold, whichever way it caught up.
//!
//! The snapshot is assembled in memory when it is sent; its size is the
//! retained log's. Streaming it from the segment files is the step for
//! partitions larger than memory.

use std::sync::Arc;

use bytes::Bytes;
use openraft::{BasicNode, EntryPayload, SnapshotMeta};
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::partition::batch;
use crate::partition::command::PartConfig;
use crate::partition::command::{AppendRejection, PartitionCommand, PartitionResponse};
use crate::partition::compact::{Latest, Rewrite};
use crate::partition::log::{BatchRef, LogOffsets, PartitionLog, StoredValue};
use crate::partition::producers::{Producers, SeqCheck};
use crate::raft::applied::{Applied, Image, ImageState};
use crate::raft::retained::Retained;
use crate::raft::types::NodeId;
use crate::storage::{self, keys, Batch, Cf};

/// Everything a replica persists about its partition besides the records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub next_offset: i64,
    pub log_start_offset: i64,
    /// Stored bytes of all retained batches (for `retention.bytes`).
    pub size_bytes: u64,
    pub producers: Producers,
}

/// Why a partition snapshot was refused: it does not hold what its state
/// claims.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot ends inside its state")]
    Truncated,
    #[error("a batch of the snapshot is invalid: {0}")]
    Batch(#[from] batch::BatchError),
    #[error("batch at offset {base_offset} is outside [{log_start_offset}, {next_offset}) or overlaps the one before")]
    Misplaced { base_offset: i64, log_start_offset: i64, next_offset: i64 },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

pub struct PartitionStore {
    log: Arc<PartitionLog>,
    image: Image<PartitionState>,
    /// The first Raft index this apply call appended `BatchRef`s for (not in
    /// RocksDB until the call commits).
    appended_from: Option<u64>,
}

impl PartitionStore {
    /// Loads the replica's state (empty for a new partition) and its log,
    /// and what of its Raft log the records still live in (give it to the
    /// group's `LogStore::retaining`).
    pub fn open(
        storage: Arc<storage::Storage>,
        group: u64,
    ) -> Result<(Self, Arc<PartitionLog>), storage::StorageError> {
        let image: Image<PartitionState> = Image::load(&storage, group)?;
        let offsets = LogOffsets {
            log_start_offset: image.state.log_start_offset,
            high_watermark: image.state.next_offset,
            size_bytes: image.state.size_bytes,
        };
        let floor = first_ref(&storage, group, image.state.log_start_offset)?;
        let retained = Arc::new(Retained::open(&storage, group, floor)?);
        let log = Arc::new(PartitionLog::new(storage, group, offsets, retained));
        if let Some(applied) = image.applied.last_applied {
            log.mark_applied([(applied.index, image.state.next_offset)]);
        }
        Ok((Self { log: log.clone(), image, appended_from: None }, log))
    }

    /// Lets go of the Raft entries below the first `BatchRef` from
    /// `from_offset` on: they are deleted in `writes` once openraft purged
    /// them too (and by the next purge otherwise).
    fn release_from(&self, from_offset: i64, writes: &mut Batch) -> Result<(), storage::StorageError> {
        let retained = self.log.retained();
        let stored = first_ref(self.log.storage(), self.log.group(), from_offset)?;
        retained.set_floor(stored.min(self.appended_from.unwrap_or(u64::MAX)));
        retained.release(writes);
        Ok(())
    }

    fn publish(&self) {
        self.log.publish(LogOffsets {
            log_start_offset: self.image.state.log_start_offset,
            high_watermark: self.image.state.next_offset,
            size_bytes: self.image.state.size_bytes,
        });
    }

    /// Writes the image with the records in `writes`, then publishes the
    /// new offsets.
    fn commit(&mut self, mut writes: Batch) -> Result<(), storage::StorageError> {
        self.image.put(self.log.group(), &mut writes)?;
        self.log.storage().write(writes)?;
        self.log.retained().drop_released()?;
        self.appended_from = None;
        self.publish();
        Ok(())
    }

    /// Appends the batches of entry `index` (of leader epoch `epoch`) as
    /// `BatchRef`s into it.
    fn append(&mut self, records: &Bytes, index: u64, epoch: i32, writes: &mut Batch) -> PartitionResponse {
        // The leader validated every batch (CRC included) before proposing
        // it; an entry is applied as it was checked (`batch::split`).
        let Ok(batches) = batch::split(records) else {
            return PartitionResponse::Rejected(AppendRejection::Corrupt);
        };
        let state = &mut self.image.state;
        for (header, _) in &batches {
            match state.producers.check(header) {
                SeqCheck::Append => {}
                SeqCheck::Duplicate { base_offset } => {
                    return PartitionResponse::Appended {
                        base_offset,
                        log_start_offset: state.log_start_offset,
                    };
                }
                SeqCheck::Reject(r) => return PartitionResponse::Rejected(r),
            }
        }
        let first_offset = state.next_offset;
        // The batches stay in the Raft entry (`BatchRef`): the floor must be
        // at or below it before this apply returns.
        let retained = self.log.retained();
        if retained.floor() > index {
            retained.set_floor(index);
        }
        self.appended_from.get_or_insert(index);
        let mut from_end = records.len();
        for (header, bytes) in batches {
            let base_offset = state.next_offset;
            let stored = BatchRef {
                index,
                from_end: u32::try_from(from_end).unwrap_or(u32::MAX),
                len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                epoch,
                last_offset_delta: header.last_offset_delta,
            };
            from_end -= bytes.len();
            state.size_bytes += bytes.len() as u64;
            writes.put(Cf::Records, keys::indexed(self.log.group(), base_offset as u64), stored.encode());
            state.producers.record(&header, base_offset);
            state.next_offset = base_offset + i64::from(header.last_offset_delta) + 1;
        }
        PartitionResponse::Appended { base_offset: first_offset, log_start_offset: state.log_start_offset }
    }

    fn trim(
        &mut self,
        log_start_offset: i64,
        removed_bytes: u64,
        writes: &mut Batch,
    ) -> Result<PartitionResponse, storage::StorageError> {
        let state = &mut self.image.state;
        if log_start_offset > state.log_start_offset && log_start_offset <= state.next_offset {
            writes.delete_range(
                Cf::Records,
                keys::group_start(self.log.group()),
                keys::indexed(self.log.group(), log_start_offset as u64),
            );
            state.log_start_offset = log_start_offset;
            state.size_bytes = state.size_bytes.saturating_sub(removed_bytes);
            self.release_from(log_start_offset, writes)?;
        }
        Ok(PartitionResponse::Done)
    }
}

impl PartitionStore {
    /// Applies a `Compact`: two scans of the batches between the log start
    /// and `up_to` (all in RocksDB: `apply_entries` commits what came before
    /// it), the rewrites committed in one write with the image, then the
    /// Raft entries nothing refers to any more are let go of in `writes`.
    fn compact(
        &mut self,
        up_to: i64,
        tombstones_before: i64,
        writes: &mut Batch,
    ) -> Result<PartitionResponse, storage::StorageError> {
        let group = self.log.group();
        let log = self.log.clone();
        let state = &mut self.image.state;
        let (from, to) = (state.log_start_offset, up_to.clamp(0, state.next_offset));
        let mut latest = Latest::default();
        log.for_each_stored(from, to, |_, batch, _| {
            latest.observe(batch);
            true
        })?;
        // The newest batch stays as it is, so the log always ends in a
        // stored batch: a consumer fetching near the end never finds nothing
        // below the high watermark (Kafka never cleans its active segment).
        let newest = log
            .storage()
            .last_in(Cf::Records, &log.record_key(from), &log.record_key(to))?
            .and_then(|(key, _)| keys::index_of(&key));
        let mut kept = 0u64;
        log.for_each_stored(from, to, |offset, batch, is_ref| {
            let key = keys::indexed(group, offset.max(0) as u64);
            let rewrite = if newest == Some(offset.max(0) as u64) {
                Rewrite::Keep
            } else {
                latest.rewrite(batch, tombstones_before)
            };
            match rewrite {
                Rewrite::Keep => {
                    kept += batch::BatchHeader::parse(batch).map_or(0, |h| h.records_count.max(0) as u64);
                    // Below the compaction point every batch is stored
                    // itself, so the Raft entries there can go.
                    if is_ref {
                        writes.put(Cf::Records, key, batch.to_vec());
                    }
                }
                Rewrite::Drop => {
                    writes.delete(Cf::Records, key);
                    state.size_bytes = state.size_bytes.saturating_sub(batch.len() as u64);
                }
                Rewrite::Replace { base_offset, batch: rewritten, records } => {
                    let new_key = keys::indexed(group, base_offset as u64);
                    if key != new_key {
                        writes.delete(Cf::Records, key);
                    }
                    state.size_bytes =
                        state.size_bytes.saturating_sub(batch.len() as u64) + rewritten.len() as u64;
                    writes.put(Cf::Records, new_key, rewritten);
                    kept += records as u64;
                }
            }
            true
        })?;
        // The floor is raised only from what RocksDB holds once the rewrites
        // are in it: the newest batch below `up_to` is still a `BatchRef`, and
        // so is everything this call appends after the compaction.
        self.commit(std::mem::take(writes))?;
        self.release_from(from, writes)?;
        Ok(PartitionResponse::Compacted { records: kept })
    }
}

impl ImageState for PartitionStore {
    type Config = PartConfig;
    type State = PartitionState;
    type InstallError = SnapshotError;

    fn image(&mut self) -> &mut Image<PartitionState> {
        &mut self.image
    }

    fn apply_entries(
        &mut self,
        entries: Vec<openraft::Entry<PartConfig>>,
    ) -> Result<Vec<PartitionResponse>, storage::StorageError> {
        let mut writes = Batch::default();
        let mut responses = Vec::new();
        let mut marks = Vec::with_capacity(entries.len());
        for entry in entries {
            let epoch = entry.log_id.leader_id.term as i32;
            let index = entry.log_id.index;
            let membership = match &entry.payload {
                EntryPayload::Membership(m) => Some(m.clone()),
                EntryPayload::Blank | EntryPayload::Normal(_) => None,
            };
            if matches!(entry.payload, EntryPayload::Normal(PartitionCommand::Compact { .. })) {
                // Compaction reads the log from RocksDB: what this call
                // applied before it must be there (with the image that says
                // so, not yet claiming the compaction), or replicas whose
                // apply calls were cut differently would compact different
                // batches.
                self.commit(std::mem::take(&mut writes))?;
            }
            self.image.applied(entry.log_id, membership);
            let response = match entry.payload {
                EntryPayload::Blank | EntryPayload::Membership(_) => PartitionResponse::Done,
                EntryPayload::Normal(PartitionCommand::Append { records }) => {
                    self.append(&records, index, epoch, &mut writes)
                }
                EntryPayload::Normal(PartitionCommand::Trim { log_start_offset, removed_bytes }) => {
                    self.trim(log_start_offset, removed_bytes, &mut writes)?
                }
                EntryPayload::Normal(PartitionCommand::Compact { up_to, tombstones_before }) => {
                    self.compact(up_to, tombstones_before, &mut writes)?
                }
            };
            responses.push(response);
            marks.push((index, self.image.state.next_offset));
        }
        self.commit(writes)?;
        if let Some(&(last, _)) = marks.last() {
            self.log.retained().mark_applied(last);
        }
        self.log.mark_applied(marks);
        Ok(responses)
    }

    fn persist(&mut self) -> Result<(), storage::StorageError> {
        self.commit(Batch::default())
    }

    /// The state, then every stored value (one or more batches) under its
    /// key's offset: `u64` state length, state, then `u64` offset, `u32`
    /// length and the value, for each.
    fn snapshot_data(&mut self) -> Result<Vec<u8>, storage::StorageError> {
        let state = &self.image.state;
        let encoded = codec::encode("partition snapshot state", state)?;
        let mut out = Vec::with_capacity(8 + encoded.len() + usize::try_from(state.size_bytes).unwrap_or(0));
        out.extend_from_slice(&(encoded.len() as u64).to_be_bytes());
        out.extend_from_slice(&encoded);
        self.log.for_each_stored(state.log_start_offset, state.next_offset, |offset, value, _| {
            out.extend_from_slice(&(offset.max(0) as u64).to_be_bytes());
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
            true
        })?;
        Ok(out)
    }

    fn install(&mut self, meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> Result<(), SnapshotError> {
        let (state, values) = parse_snapshot(data)?;
        let group = self.log.group();
        let mut writes = Batch::default();
        writes.delete_range(Cf::Records, keys::group_start(group), keys::group_end(group));
        for (offset, value) in values {
            writes.put(Cf::Records, keys::indexed(group, offset), value);
        }
        let next_offset = state.next_offset;
        self.image = Image { applied: Applied::from_meta(meta), state };
        // Every batch is stored itself now: none of the Raft log is read.
        self.log.retained().set_floor(u64::MAX);
        self.log.retained().release(&mut writes);
        self.commit(writes)?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.log.restart_marks(index, next_offset);
        Ok(())
    }
}

/// The Raft index of the first `BatchRef` stored from `from_offset` on;
/// `u64::MAX` when there is none.
fn first_ref(storage: &storage::Storage, group: u64, from_offset: i64) -> Result<u64, storage::StorageError> {
    let mut found = u64::MAX;
    let from = keys::indexed(group, from_offset.max(0) as u64);
    storage.for_each(Cf::Records, &from, &keys::group_end(group), |_, value| {
        match StoredValue::of(value) {
            StoredValue::Ref(r) => {
                found = r.index;
                false
            }
            StoredValue::Inline(_) => true,
        }
    })?;
    Ok(found)
}

/// Reads `n` bytes off the front of `data`.
fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], SnapshotError> {
    if data.len() < n {
        return Err(SnapshotError::Truncated);
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn take_u64(data: &mut &[u8]) -> Result<u64, SnapshotError> {
    let b: [u8; 8] = take(data, 8)?.try_into().map_err(|_| SnapshotError::Truncated)?;
    Ok(u64::from_be_bytes(b))
}

/// Splits and checks snapshot data (`snapshot_data`): every batch's CRC and
/// header, each value starting at its key's offset, offsets ascending
/// without overlap inside the state's `[log_start_offset, next_offset)`; the
/// state's `size_bytes` is taken from the batches.
/// Each stored value of a snapshot under the offset it is stored at.
type SnapshotValues = Vec<(u64, Vec<u8>)>;

fn parse_snapshot(mut data: &[u8]) -> Result<(PartitionState, SnapshotValues), SnapshotError> {
    let len = usize::try_from(take_u64(&mut data)?).map_err(|_| SnapshotError::Truncated)?;
    let state: PartitionState = codec::decode("partition snapshot state", take(&mut data, len)?)?;
    let mut values = Vec::new();
    let mut floor = state.log_start_offset;
    let mut found = 0u64;
    while !data.is_empty() {
        let offset = take_u64(&mut data)?;
        let len_bytes: [u8; 4] = take(&mut data, 4)?.try_into().map_err(|_| SnapshotError::Truncated)?;
        let value = take(&mut data, u32::from_be_bytes(len_bytes) as usize)?;
        let batches = batch::split_checked(&Bytes::copy_from_slice(value))?;
        for (i, (header, _)) in batches.iter().enumerate() {
            let misplaced = header.base_offset < floor
                || header.last_offset() >= state.next_offset
                || (i == 0 && i64::try_from(offset).ok() != Some(header.base_offset));
            if misplaced {
                return Err(SnapshotError::Misplaced {
                    base_offset: header.base_offset,
                    log_start_offset: state.log_start_offset,
                    next_offset: state.next_offset,
                });
            }
            floor = header.last_offset() + 1;
        }
        found += value.len() as u64;
        values.push((offset, value.to_vec()));
    }
    let mut state = state;
    if found != state.size_bytes {
        // The records are the truth; a size kept by arithmetic over trims
        // and rewrites is only what retention.bytes is measured against.
        tracing::warn!(claimed = state.size_bytes, found, "partition snapshot size differs from its batches");
        state.size_bytes = found;
    }
    Ok((state, values))
}
