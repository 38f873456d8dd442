//! A partition replica's Raft state machine. Applying an `Append` assigns
//! offsets (contiguous from the log start, identical on every replica because
//! every replica applies the same entries in the same order), checks
//! idempotent-producer sequences, stamps each batch and writes it to the
//! `records` column family together with the updated partition state, in one
//! RocksDB write per apply call.
//!
//! Departure from DESIGN.md ("prefer the Raft log being the partition log"):
//! batches are written twice, once in the Raft log and once here, and the Raft
//! log is purged behind snapshots. That keeps reads independent of openraft's
//! log layout and lets retention delete by range without touching Raft. The
//! snapshot holds the partition state only (offsets, producers), not the
//! records; a follower that needs a snapshot must also stream records (issue 3).

use std::sync::Arc;

use openraft::EntryPayload;
use serde::{Deserialize, Serialize};

use crate::partition::batch;
use crate::partition::command::PartConfig;
use crate::partition::command::{AppendRejection, PartitionCommand, PartitionResponse};
use crate::partition::compact::{Latest, Rewrite};
use crate::partition::log::{LogOffsets, PartitionLog};
use crate::partition::producers::{Producers, SeqCheck};
use crate::raft::applied::{Image, ImageState};
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

pub struct PartitionStore {
    log: Arc<PartitionLog>,
    image: Image<PartitionState>,
}

impl PartitionStore {
    /// Loads the replica's state (empty for a new partition) and its log.
    pub fn open(
        storage: Arc<storage::Storage>,
        group: u64,
    ) -> Result<(Self, Arc<PartitionLog>), storage::StorageError> {
        let image: Image<PartitionState> = Image::load(&storage, group)?;
        let offsets = LogOffsets {
            log_start_offset: image.state.log_start_offset,
            high_watermark: image.state.next_offset,
        };
        let log = Arc::new(PartitionLog::new(storage, group, offsets));
        Ok((Self { log: log.clone(), image }, log))
    }

    fn publish(&self) {
        self.log.publish(LogOffsets {
            log_start_offset: self.image.state.log_start_offset,
            high_watermark: self.image.state.next_offset,
        });
    }

    /// Writes the image with the records in `writes`, then publishes the
    /// new offsets.
    fn commit(&self, mut writes: Batch) -> Result<(), storage::StorageError> {
        self.image.put(self.log.group(), &mut writes)?;
        self.log.storage().write(writes)?;
        self.publish();
        Ok(())
    }

    fn append(&mut self, records: &bytes::Bytes, epoch: i32, writes: &mut Batch) -> PartitionResponse {
        let Ok(batches) = batch::validate(records) else {
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
        for (header, bytes) in batches {
            let base_offset = state.next_offset;
            let mut stored = bytes.to_vec();
            batch::stamp(&mut stored, base_offset, epoch);
            state.size_bytes += stored.len() as u64;
            writes.put(Cf::Records, keys::indexed(self.log.group(), base_offset as u64), stored);
            state.producers.record(&header, base_offset);
            state.next_offset = base_offset + i64::from(header.last_offset_delta) + 1;
        }
        PartitionResponse::Appended { base_offset: first_offset, log_start_offset: state.log_start_offset }
    }

    fn trim(&mut self, log_start_offset: i64, removed_bytes: u64, writes: &mut Batch) -> PartitionResponse {
        let state = &mut self.image.state;
        if log_start_offset > state.log_start_offset && log_start_offset <= state.next_offset {
            writes.delete_range(
                Cf::Records,
                keys::group_start(self.log.group()),
                keys::indexed(self.log.group(), log_start_offset as u64),
            );
            state.log_start_offset = log_start_offset;
            state.size_bytes = state.size_bytes.saturating_sub(removed_bytes);
        }
        PartitionResponse::Done
    }
}

impl PartitionStore {
    /// Applies a `Compact`: two scans of the committed batches between the
    /// log start and `up_to` (all in RocksDB: they were applied by earlier
    /// calls, and a `Trim` earlier in this call already moved the log start),
    /// then the rewrites into `writes`.
    fn compact(
        &mut self,
        up_to: i64,
        tombstones_before: i64,
        writes: &mut Batch,
    ) -> Result<PartitionResponse, storage::StorageError> {
        let group = self.log.group();
        let state = &mut self.image.state;
        let from = keys::indexed(group, state.log_start_offset.max(0) as u64);
        let to = keys::indexed(group, up_to.clamp(0, state.next_offset) as u64);
        let storage = self.log.storage();
        let mut latest = Latest::default();
        storage.for_each(Cf::Records, &from, &to, |_, batch| {
            latest.observe(batch);
            true
        })?;
        // The newest batch stays as it is, so the log always ends in a
        // stored batch: a consumer fetching near the end never finds nothing
        // below the high watermark (Kafka never cleans its active segment).
        let newest = storage.last_in(Cf::Records, &from, &to)?.map(|(key, _)| key);
        let mut kept = 0u64;
        storage.for_each(Cf::Records, &from, &to, |key, batch| {
            let rewrite = if newest.as_deref() == Some(key) {
                Rewrite::Keep
            } else {
                latest.rewrite(batch, tombstones_before)
            };
            match rewrite {
                Rewrite::Keep => {
                    kept += batch::BatchHeader::parse(batch).map_or(0, |h| h.records_count.max(0) as u64)
                }
                Rewrite::Drop => {
                    writes.delete(Cf::Records, key);
                    state.size_bytes = state.size_bytes.saturating_sub(batch.len() as u64);
                }
                Rewrite::Replace { base_offset, batch: rewritten, records } => {
                    let new_key = keys::indexed(group, base_offset as u64);
                    if key != new_key.as_slice() {
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
        Ok(PartitionResponse::Compacted { records: kept })
    }
}

impl ImageState for PartitionStore {
    type Config = PartConfig;
    type State = PartitionState;

    fn image(&mut self) -> &mut Image<PartitionState> {
        &mut self.image
    }

    fn apply_entries(
        &mut self,
        entries: Vec<openraft::Entry<PartConfig>>,
    ) -> Result<Vec<PartitionResponse>, storage::StorageError> {
        let mut writes = Batch::default();
        let mut responses = Vec::new();
        for entry in entries {
            let epoch = entry.log_id.leader_id.term as i32;
            let membership = match &entry.payload {
                EntryPayload::Membership(m) => Some(m.clone()),
                EntryPayload::Blank | EntryPayload::Normal(_) => None,
            };
            self.image.applied(entry.log_id, membership);
            let response = match entry.payload {
                EntryPayload::Blank | EntryPayload::Membership(_) => PartitionResponse::Done,
                EntryPayload::Normal(PartitionCommand::Append { records }) => {
                    self.append(&records, epoch, &mut writes)
                }
                EntryPayload::Normal(PartitionCommand::Trim { log_start_offset, removed_bytes }) => {
                    self.trim(log_start_offset, removed_bytes, &mut writes)
                }
                EntryPayload::Normal(PartitionCommand::Compact { up_to, tombstones_before }) => {
                    self.compact(up_to, tombstones_before, &mut writes)?
                }
            };
            responses.push(response);
        }
        self.commit(writes)?;
        Ok(responses)
    }

    fn persist(&mut self) -> Result<(), storage::StorageError> {
        self.commit(Batch::default())
    }
}
