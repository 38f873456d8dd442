//! One replica's partition log: reads by offset and by timestamp, and the
//! offsets readers may see. Appends happen only through the partition's state
//! machine (`partition::store`), which publishes the new high watermark on a
//! `watch` channel so waiting fetches wake at once (STYLE.md §6).
//!
//! The `records` column family maps each batch's base offset to a
//! `StoredValue`: usually a `BatchRef` — the batch is read from the Raft
//! entry that appended it, where its bytes were written once, and stamped
//! with its offset and leader epoch as it is read — or the batch itself, as
//! compaction rewrote it or a snapshot brought it.
//!
//! The high watermark is the last offset of the last applied record + 1:
//! entries are applied only once committed by a majority, so readers never see
//! data that could be rolled back.
//!
//! It also remembers, for the most recent applied Raft entries, the high
//! watermark each one left (`marks`), so the leader can say how many records
//! a follower that holds the log up to some entry is behind: the ISR is
//! measured in records, not in Raft entries (`PartitionHandle::replica_lag`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::watch;

use crate::partition::batch::{self, BatchHeader};
use crate::raft::retained::Retained;
use crate::storage::{keys, Cf, GroupId, Storage, StorageError};

/// The first byte of a `BatchRef` value. A stored batch starts with its base
/// offset, a non-negative big-endian `i64`, so its first byte is below 0x80.
const REF_TAG: u8 = 0xFF;
const REF_LEN: usize = 25;

/// Where a batch lies in the Raft entry that appended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRef {
    /// The Raft index of the entry.
    pub index: u64,
    /// The batch ends this many bytes before the end of the stored entry
    /// (`partition::command`).
    pub from_end: u32,
    pub len: u32,
    /// The leader epoch stamped into it as it is read.
    pub epoch: i32,
    pub last_offset_delta: i32,
}

impl BatchRef {
    pub fn encode(&self) -> [u8; REF_LEN] {
        let mut v = [0u8; REF_LEN];
        v[0] = REF_TAG;
        v[1..9].copy_from_slice(&self.index.to_be_bytes());
        v[9..13].copy_from_slice(&self.from_end.to_be_bytes());
        v[13..17].copy_from_slice(&self.len.to_be_bytes());
        v[17..21].copy_from_slice(&self.epoch.to_be_bytes());
        v[21..25].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<Self> {
        let v: &[u8; REF_LEN] = v.try_into().ok()?;
        let word = |at: usize| [v[at], v[at + 1], v[at + 2], v[at + 3]];
        (v[0] == REF_TAG).then(|| Self {
            index: u64::from_be_bytes([v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]]),
            from_end: u32::from_be_bytes(word(9)),
            len: u32::from_be_bytes(word(13)),
            epoch: i32::from_be_bytes(word(17)),
            last_offset_delta: i32::from_be_bytes(word(21)),
        })
    }
}

/// A value of the `records` column family.
#[derive(Debug, Clone, Copy)]
pub enum StoredValue<'a> {
    Ref(BatchRef),
    /// One or more whole batches, stamped.
    Inline(&'a [u8]),
}

impl<'a> StoredValue<'a> {
    pub fn of(value: &'a [u8]) -> Self {
        match BatchRef::decode(value) {
            Some(r) => Self::Ref(r),
            None => Self::Inline(value),
        }
    }

    /// Bytes the batch occupies once read.
    pub fn read_len(&self) -> usize {
        match self {
            Self::Ref(r) => r.len as usize,
            Self::Inline(b) => b.len(),
        }
    }

    /// The last offset the value holds, stored under `base_offset`.
    fn last_offset(&self, base_offset: i64) -> Option<i64> {
        match self {
            Self::Ref(r) => Some(base_offset + i64::from(r.last_offset_delta)),
            Self::Inline(b) => StoredSpan::of_batches(base_offset, b).map(|s| s.last_offset),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Stored bytes of the retained batches (what `retention.bytes` is
    /// measured against).
    pub size_bytes: u64,
}

/// Result of a read: whole batches, concatenated.
#[derive(Debug, Clone, Default)]
pub struct ReadBatches {
    pub bytes: Vec<u8>,
    pub batches: usize,
}

/// One stored value as `PartitionLog::digest` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoredBatch {
    pub offset: i64,
    pub len: usize,
    pub crc: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, high_watermark: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Applied entries remembered for measuring lag: a follower further behind
/// than this many entries is out of the ISR whatever they held.
const MARKS: usize = 8_192;

pub struct PartitionLog {
    storage: Arc<Storage>,
    /// What of the group's Raft log the `BatchRef`s point into.
    retained: Arc<Retained>,
    group: GroupId,
    offsets: watch::Sender<LogOffsets>,
    /// (Raft index, high watermark once it was applied), ascending by index.
    marks: Mutex<VecDeque<(u64, i64)>>,
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
    pub fn new(storage: Arc<Storage>, group: GroupId, offsets: LogOffsets, retained: Arc<Retained>) -> Self {
        Self { storage, retained, group, offsets: watch::Sender::new(offsets), marks: Mutex::default() }
    }

    pub fn retained(&self) -> &Arc<Retained> {
        &self.retained
    }

    /// Appends the batch(es) stored under `base_offset` as `value` to `out`,
    /// stamped, reading a `BatchRef` from its Raft entry.
    pub fn append_stored(
        &self,
        base_offset: i64,
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        match StoredValue::of(value) {
            StoredValue::Inline(b) => out.extend_from_slice(b),
            StoredValue::Ref(r) => {
                let start = out.len();
                if !self.read_ref(&r, r.len as usize, out)? {
                    return Err(StorageError::MissingEntry { group: self.group, index: r.index });
                }
                batch::stamp(&mut out[start..], base_offset, r.epoch);
            }
        }
        Ok(())
    }

    /// Appends the first `len` bytes of the batch `r` points to to `out`,
    /// read from the Raft entry that appended it; false if it is missing.
    fn read_ref(&self, r: &BatchRef, len: usize, out: &mut Vec<u8>) -> Result<bool, StorageError> {
        self.retained.read_entry_tail(
            &self.storage,
            r.index,
            r.from_end as usize,
            len.min(r.len as usize),
            out,
        )
    }

    /// Visits every stored value with a base offset in `[from, to)` in order:
    /// its base offset, the stamped bytes and whether it is a `BatchRef`,
    /// until `visit` returns false.
    pub fn for_each_stored(
        &self,
        from: i64,
        to: i64,
        mut visit: impl FnMut(i64, &[u8], bool) -> bool,
    ) -> Result<(), StorageError> {
        let mut failure = None;
        let mut buf = Vec::new();
        self.storage.for_each(Cf::Records, &self.record_key(from), &self.record_key(to), |key, value| {
            let offset = key_offset(key);
            buf.clear();
            if let Err(e) = self.append_stored(offset, value, &mut buf) {
                failure = Some(e);
                return false;
            }
            visit(offset, &buf, matches!(StoredValue::of(value), StoredValue::Ref(_)))
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// Notes the high watermark each applied entry left, in apply order.
    pub(crate) fn mark_applied(&self, applied: impl IntoIterator<Item = (u64, i64)>) {
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        for mark in applied {
            marks.push_back(mark);
        }
        let excess = marks.len().saturating_sub(MARKS);
        marks.drain(..excess);
    }

    /// Forgets every mark: a snapshot replaced the state up to `index`.
    pub(crate) fn restart_marks(&self, index: u64, high_watermark: i64) {
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        marks.clear();
        marks.push_back((index, high_watermark));
    }

    /// The high watermark a replica holding the log up to Raft entry `index`
    /// reaches once it applies it; `None` when `index` is older than every
    /// remembered entry.
    pub fn high_watermark_at(&self, index: u64) -> Option<i64> {
        let marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let after = marks.partition_point(|(i, _)| *i <= index);
        match after.checked_sub(1) {
            Some(at) => marks.get(at).map(|(_, hw)| *hw),
            None => None,
        }
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
        let LogOffsets { log_start_offset, high_watermark, .. } = self.offsets();
        if offset < log_start_offset || offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange { offset, log_start_offset, high_watermark });
        }
        let mut out = ReadBatches::default();
        if offset == high_watermark {
            return Ok(out);
        }
        let start = keys::group_start(self.group);
        let from = match self.storage.at_or_before(Cf::Records, &start, &self.record_key(offset))? {
            Some((key, value)) if StoredValue::of(&value).last_offset(key_offset(&key)) >= Some(offset) => {
                key.to_vec()
            }
            _ => self.record_key(offset).to_vec(),
        };
        let end = self.record_key(high_watermark);
        // First the index (a few bytes a batch), then the batches into a
        // buffer of their exact size: each is read once, with no reallocation
        // copying it again, into the buffer a fetch response sends as it is.
        let (mut chosen, mut total) = (Vec::new(), 0usize);
        self.storage.for_each(Cf::Records, &from, &end, |key, value| {
            let len = StoredValue::of(value).read_len();
            if !chosen.is_empty() && total + len > max_bytes {
                return false;
            }
            total += len;
            chosen.push((key_offset(key), value.to_vec()));
            true
        })?;
        out.bytes.reserve_exact(total);
        let failure = chosen.iter().find_map(|(base_offset, value)| {
            let appended = self.append_stored(*base_offset, value, &mut out.bytes);
            out.batches += 1;
            appended.err()
        });
        if let Some(e) = failure {
            // Retention moved the log start past `offset` while this read
            // was on its way, and the batches went: as if it had come later.
            let now = self.offsets();
            if offset < now.log_start_offset {
                return Err(ReadError::OffsetOutOfRange {
                    offset,
                    log_start_offset: now.log_start_offset,
                    high_watermark: now.high_watermark,
                });
            }
            return Err(e.into());
        }
        Ok(out)
    }

    /// The first offset whose record timestamp is at or after `timestamp`, with
    /// that record's timestamp; `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let mut candidate = None;
        self.visit_stored(|v| {
            if v.max_timestamp >= timestamp {
                candidate = Some(v.base_offset);
                return false;
            }
            true
        })?;
        self.first_record_in(candidate, timestamp)
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let mut best: Option<(i64, i64)> = None;
        self.visit_stored(|v| {
            if best.is_none_or(|(ts, _)| v.max_timestamp > ts) {
                best = Some((v.max_timestamp, v.base_offset));
            }
            true
        })?;
        match best {
            Some((ts, base_offset)) => self.first_record_in(Some(base_offset), ts),
            None => Ok(None),
        }
    }

    /// The first record at or after `timestamp` in the value stored under
    /// `base_offset`.
    fn first_record_in(
        &self,
        base_offset: Option<i64>,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let Some(base_offset) = base_offset else { return Ok(None) };
        let mut bytes = Vec::new();
        self.for_each_stored(base_offset, base_offset + 1, |_, batch, _| {
            bytes.extend_from_slice(batch);
            false
        })?;
        Ok(first_record_at_or_after(Bytes::from(bytes), timestamp))
    }

    /// What this replica stores, value by value: the offset each is stored
    /// under, its length and its CRC-32C (of the bytes as stored, offsets and
    /// leader epoch included). Replicas holding the same batches give equal
    /// digests.
    pub fn digest(&self) -> Result<Vec<StoredBatch>, StorageError> {
        let offsets = self.offsets();
        let mut out = Vec::new();
        self.for_each_stored(offsets.log_start_offset, offsets.high_watermark, |offset, batch, _| {
            out.push(StoredBatch { offset, len: batch.len(), crc: crc32c::crc32c(batch) });
            true
        })?;
        Ok(out)
    }

    /// Visits what each committed stored value spans, from the log start,
    /// until `visit` returns false; reads only batch headers.
    pub fn visit_stored(&self, mut visit: impl FnMut(&StoredSpan) -> bool) -> Result<(), StorageError> {
        let offsets = self.offsets();
        let (from, to) = (self.record_key(offsets.log_start_offset), self.record_key(offsets.high_watermark));
        let mut failure = None;
        let mut head = Vec::with_capacity(batch::HEADER_LEN);
        self.storage.for_each(Cf::Records, &from, &to, |key, value| {
            let base_offset = key_offset(key);
            let span = match StoredValue::of(value) {
                StoredValue::Inline(b) => StoredSpan::of_batches(base_offset, b),
                StoredValue::Ref(r) => {
                    head.clear();
                    let header = self
                        .read_ref(&r, batch::HEADER_LEN, &mut head)
                        .map(|found| found.then(|| BatchHeader::parse(&head).ok()));
                    match header {
                        Ok(Some(Some(h))) => Some(StoredSpan {
                            base_offset,
                            last_offset: base_offset + i64::from(r.last_offset_delta),
                            max_timestamp: h.max_timestamp,
                            len: r.len as usize,
                        }),
                        Ok(_) => {
                            failure = Some(StorageError::MissingEntry { group: self.group, index: r.index });
                            return false;
                        }
                        Err(e) => {
                            failure = Some(e);
                            return false;
                        }
                    }
                }
            };
            span.is_none_or(|span| visit(&span))
        })?;
        failure.map_or(Ok(()), Err)
    }
}

/// The offsets, newest timestamp and size of one stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSpan {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub len: usize,
}

impl StoredSpan {
    /// The span of back-to-back batches stored under `base_offset`; `None`
    /// if the first header does not parse.
    fn of_batches(base_offset: i64, bytes: &[u8]) -> Option<Self> {
        let mut span: Option<Self> = None;
        let mut at = 0;
        while let Some(h) = bytes.get(at..).and_then(|rest| BatchHeader::parse(rest).ok()) {
            let s = span.get_or_insert(Self {
                base_offset,
                last_offset: base_offset,
                max_timestamp: i64::MIN,
                len: bytes.len(),
            });
            s.last_offset = h.last_offset();
            s.max_timestamp = s.max_timestamp.max(h.max_timestamp);
            at += h.total_len().max(1);
        }
        span
    }
}

/// The offset a `records` key is stored under.
fn key_offset(key: &[u8]) -> i64 {
    keys::index_of(key).and_then(|o| i64::try_from(o).ok()).unwrap_or(-1)
}

/// Decodes one stored batch (decompressing it) to find a record by timestamp.
fn first_record_at_or_after(batch: Bytes, timestamp: i64) -> Option<(i64, i64)> {
    let set = crate::partition::inflate::decode(&batch).ok()?;
    set.records.iter().find(|r| r.timestamp >= timestamp).map(|r| (r.offset, r.timestamp))
}
