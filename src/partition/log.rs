//! One replica's partition log on top of the `records` column family: reads by
//! offset and by timestamp, and the offsets readers may see. Appends happen
//! only through the partition's state machine (`partition::store`), which
//! publishes the new high watermark on a `watch` channel so waiting fetches
//! wake at once (STYLE.md §6).
//!
//! The high watermark is the last offset of the last applied record + 1:
//! entries are applied only once committed by a majority, so readers never see
//! data that could be rolled back.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::partition::batch::BatchHeader;
use crate::storage::{keys, Cf, GroupId, Storage, StorageError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Result of a read: whole batches, concatenated.
#[derive(Debug, Clone, Default)]
pub struct ReadBatches {
    pub bytes: Vec<u8>,
    pub batches: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, high_watermark: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct PartitionLog {
    storage: Arc<Storage>,
    group: GroupId,
    offsets: watch::Sender<LogOffsets>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog").field("group", &self.group).field("offsets", &self.offsets()).finish()
    }
}

fn offset_key(group: GroupId, offset: i64) -> [u8; 16] {
    keys::indexed(group, offset.max(0) as u64)
}

impl PartitionLog {
    pub fn new(storage: Arc<Storage>, group: GroupId, offsets: LogOffsets) -> Self {
        Self { storage, group, offsets: watch::Sender::new(offsets) }
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub fn offsets(&self) -> LogOffsets {
        *self.offsets.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<LogOffsets> {
        self.offsets.subscribe()
    }

    pub(crate) fn publish(&self, offsets: LogOffsets) {
        self.offsets.send_if_modified(|cur| {
            let changed = *cur != offsets;
            *cur = offsets;
            changed
        });
    }

    pub(crate) fn record_key(&self, base_offset: i64) -> [u8; 16] {
        offset_key(self.group, base_offset)
    }

    /// Whole batches from the one holding `offset`, below the high watermark,
    /// up to `max_bytes` (always at least one batch, as Kafka does since
    /// KIP-74, so a consumer can make progress past a large batch).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadBatches, ReadError> {
        let LogOffsets { log_start_offset, high_watermark } = self.offsets();
        if offset < log_start_offset || offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange { offset, log_start_offset, high_watermark });
        }
        let mut out = ReadBatches::default();
        if offset == high_watermark {
            return Ok(out);
        }
        let start = keys::group_start(self.group);
        let from = match self.storage.at_or_before(Cf::Records, &start, &self.record_key(offset))? {
            Some((key, value)) => match BatchHeader::parse(&value) {
                Ok(h) if h.last_offset() >= offset => key.to_vec(),
                _ => self.record_key(offset).to_vec(),
            },
            None => self.record_key(offset).to_vec(),
        };
        let end = self.record_key(high_watermark);
        self.storage.for_each(Cf::Records, &from, &end, |_, value| {
            if out.batches > 0 && out.bytes.len() + value.len() > max_bytes {
                return false;
            }
            out.bytes.extend_from_slice(value);
            out.batches += 1;
            true
        })?;
        Ok(out)
    }

    /// The first offset whose record timestamp is at or after `timestamp`, with
    /// that record's timestamp; `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let mut candidate = None;
        self.visit_headers(|h, bytes| {
            if h.max_timestamp >= timestamp {
                candidate = Some(bytes.to_vec());
                return false;
            }
            true
        })?;
        let Some(bytes) = candidate else {
            return Ok(None);
        };
        Ok(first_record_at_or_after(Bytes::from(bytes), timestamp))
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let mut best: Option<(i64, Vec<u8>)> = None;
        self.visit_headers(|h, bytes| {
            if best.as_ref().is_none_or(|(ts, _)| h.max_timestamp > *ts) {
                best = Some((h.max_timestamp, bytes.to_vec()));
            }
            true
        })?;
        let Some((ts, bytes)) = best else {
            return Ok(None);
        };
        Ok(first_record_at_or_after(Bytes::from(bytes), ts))
    }

    /// Visits each committed batch's header from the log start.
    pub fn visit_headers(
        &self,
        mut visit: impl FnMut(&BatchHeader, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let offsets = self.offsets();
        let from = self.record_key(offsets.log_start_offset);
        let to = self.record_key(offsets.high_watermark);
        self.storage.for_each(Cf::Records, &from, &to, |_, value| match BatchHeader::parse(value) {
            Ok(h) => visit(&h, value),
            Err(_) => true,
        })
    }
}

/// Decodes one stored batch (decompressing it) to find a record by timestamp.
fn first_record_at_or_after(batch: Bytes, timestamp: i64) -> Option<(i64, i64)> {
    let set = crate::partition::inflate::decode(&batch).ok()?;
    set.records.iter().find(|r| r.timestamp >= timestamp).map(|r| (r.offset, r.timestamp))
}
