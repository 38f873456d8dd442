//! What a partition group's Raft log holds and what of it is still needed.
//! Its entries are written to the group's segment files (`storage::segments`,
//! one write per batch) and RocksDB's `raft_log` holds each one's `Location`
//! (the log store writes them: `raft::log_store`); its state machine keeps
//! reading them after applying them — a partition's records stay where they
//! were appended — so `Retained` also says from which entry on they are read
//! (the floor), and lets go of the rest once openraft purged it too.

use std::sync::atomic::{AtomicU64, Ordering};

use openraft::LogId;

use crate::raft::types::NodeId;
use crate::storage::segments::{Location, Recovered, Segments};
use crate::storage::{self, keys, Batch, Cf, GroupId, Storage};

/// The first byte of an entry's value in `raft_log` when the entry's bytes
/// are in a segment file and the value is its `Location`. A value that is
/// the entry itself starts with a bincode varint (the term), never 0xFF.
const LOCATION_TAG: u8 = 0xFF;

pub(super) fn location_value(location: &Location) -> [u8; 21] {
    let mut v = [LOCATION_TAG; 21];
    v[1..].copy_from_slice(&location.encode());
    v
}

/// Where a `raft_log` value says its entry is.
pub(super) enum Stored<'a> {
    Inline(&'a [u8]),
    At(Location),
}

impl<'a> Stored<'a> {
    pub(super) fn of(value: &'a [u8]) -> Self {
        match value.split_first() {
            Some((&LOCATION_TAG, rest)) => match Location::decode(rest) {
                Some(l) => Self::At(l),
                None => Self::Inline(value),
            },
            _ => Self::Inline(value),
        }
    }
}

/// A partition group's entries: written to its segment files
/// (`storage::segments`, one write per batch), with their `Location`s in
/// RocksDB; and what of them its state machine still reads, entries from
/// `floor` on. Purged entries below both the floor and openraft's purge
/// point may be deleted; their segment files go once every entry in them
/// is (`drop_released`).
#[derive(Debug)]
pub struct Retained {
    group: GroupId,
    floor: AtomicU64,
    /// One past the last entry openraft purged.
    purged_end: AtomicU64,
    /// One past the last entry deleted from RocksDB.
    released_end: AtomicU64,
    /// `released_end` when segment files were last dropped for it.
    dropped_end: AtomicU64,
    /// The last entry the state machine applied: the log store's `Tail`
    /// need not keep it any more.
    pub(super) applied: AtomicU64,
    pub(super) segments: Segments,
}

impl Retained {
    /// Opens `group`'s segment files and makes them agree with the entries
    /// RocksDB names (`Segments::recover`): bytes no entry names are cut
    /// off, and entries whose bytes were lost (a power loss without
    /// `fsync`) are forgotten, as a Raft log losing its tail. `floor` is the
    /// first entry the state machine reads (`u64::MAX`: none).
    pub fn open(storage: &Storage, group: GroupId, floor: u64) -> Result<Self, storage::StorageError> {
        let segments = storage.segments(group)?;
        loop {
            let last = storage.last_in(Cf::RaftLog, &keys::group_start(group), &keys::group_end(group))?;
            let location = match &last {
                Some((_, v)) => match Stored::of(v) {
                    Stored::At(l) => Some(l),
                    Stored::Inline(_) => None,
                },
                None => None,
            };
            match segments.recover(location)? {
                Recovered::Whole => break,
                Recovered::Torn { segment, len } => {
                    let Some((key, _)) = last else { break };
                    tracing::warn!(
                        group,
                        segment,
                        len,
                        "a segment file ends before the entries it holds: forgetting them"
                    );
                    let mut batch = Batch::default();
                    batch.delete(Cf::RaftLog, key);
                    storage.write(batch)?;
                }
            }
        }
        Ok(Self {
            group,
            floor: AtomicU64::new(floor),
            purged_end: AtomicU64::new(0),
            released_end: AtomicU64::new(0),
            dropped_end: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            segments,
        })
    }

    /// The state machine applied the entries up to `index`.
    pub fn mark_applied(&self, index: u64) {
        self.applied.fetch_max(index, Ordering::SeqCst);
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
    /// the floor; once `batch` is written, `drop_released` gives their
    /// segment files back.
    pub fn release(&self, batch: &mut Batch) {
        let end = self.floor().min(self.purged_end.load(Ordering::SeqCst));
        if end > 0 {
            batch.delete_range(Cf::RaftLog, keys::indexed(self.group, 0), keys::indexed(self.group, end));
            self.released_end.fetch_max(end, Ordering::SeqCst);
        }
    }

    /// Deletes the segment files whose entries were all released. Only after
    /// the release is written: until then RocksDB may still name them.
    pub fn drop_released(&self) -> Result<(), storage::StorageError> {
        let end = self.released_end.load(Ordering::SeqCst);
        if self.dropped_end.swap(end, Ordering::SeqCst) == end {
            return Ok(());
        }
        Ok(self.segments.delete_below(end)?)
    }

    /// The last entry up to which a purge would free whole segment files,
    /// purging no further than `upto`; `None` if no file would go.
    pub fn purge_point(&self, upto: u64) -> Option<u64> {
        whole_files_upto(&self.segments.firsts(), upto)
    }

    /// The first index of each segment file, oldest first.
    pub fn segment_firsts(&self) -> Vec<u64> {
        self.segments.firsts()
    }

    pub(super) fn purged_to(&self, log_id: Option<&LogId<NodeId>>) {
        let end = log_id.map_or(0, |l| l.index.saturating_add(1));
        self.purged_end.fetch_max(end, Ordering::SeqCst);
    }

    /// Appends to `out` the `len` bytes that end `from_end` bytes before the
    /// end of entry `index` as stored (`partition::command`);
    /// false if the entry is not there or is shorter.
    pub fn read_entry_tail(
        &self,
        storage: &Storage,
        index: u64,
        from_end: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool, storage::StorageError> {
        let Some(value) = storage.get(Cf::RaftLog, keys::indexed(self.group, index))? else {
            return Ok(false);
        };
        if len > from_end {
            return Ok(false);
        }
        match Stored::of(&value) {
            Stored::Inline(entry) => {
                let part = entry.len().checked_sub(from_end).and_then(|start| entry.get(start..start + len));
                if let Some(part) = part {
                    out.extend_from_slice(part);
                }
                Ok(part.is_some())
            }
            Stored::At(l) => {
                let Some(start) = u64::from(l.len).checked_sub(from_end as u64) else {
                    return Ok(false);
                };
                self.segments.read_into(l.segment, l.offset + start, len, out)?;
                Ok(true)
            }
        }
    }

    /// The bytes of an entry as `raft_log` stores or locates them.
    pub(super) fn entry_bytes<'a>(
        &self,
        value: &'a [u8],
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], storage::StorageError> {
        match Stored::of(value) {
            Stored::Inline(entry) => Ok(entry),
            Stored::At(l) => {
                buf.clear();
                self.segments.read_into(l.segment, l.offset, l.len as usize, buf)?;
                Ok(&buf[..])
            }
        }
    }
}

/// The last entry before the newest segment start that is at most one past
/// `upto` (the oldest file's start frees nothing); `firsts` oldest first.
fn whole_files_upto(firsts: &[u64], upto: u64) -> Option<u64> {
    firsts.iter().skip(1).rev().find(|&&first| first <= upto.saturating_add(1)).map(|first| first - 1)
}

#[cfg(test)]
mod tests {
    use super::whole_files_upto;

    #[test]
    fn a_purge_stops_at_a_segment_boundary() {
        assert_eq!(whole_files_upto(&[], 100), None);
        assert_eq!(whole_files_upto(&[0], 100), None, "the only file is in use");
        assert_eq!(whole_files_upto(&[0, 76], 1), None, "entries before the first batch free nothing");
        assert_eq!(whole_files_upto(&[0, 76], 74), None);
        assert_eq!(whole_files_upto(&[0, 76], 75), Some(75), "the whole first file");
        assert_eq!(whole_files_upto(&[0, 76, 150], 200), Some(149));
        assert_eq!(whole_files_upto(&[76, 150, 230], 229), Some(229));
        assert_eq!(whole_files_upto(&[76, 150, 230], 228), Some(149));
    }
}
