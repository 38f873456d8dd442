//! Append-only segment files: where a partition group's Raft entries — its
//! record batches, as clients sent them — are written, once. RocksDB keeps
//! only a 20-byte `Location` per entry (`raft::log_store`), written after the
//! entry's bytes, so a batch costs one write of its bytes (to the page cache,
//! then to disk) instead of two (RocksDB's WAL, then its blob file at the next
//! memtable flush) plus the copies into a write batch and a memtable.
//!
//! A group's segments live in `<root>/<group, 16 hex digits>/`, each named by
//! the first Raft index written to it (`<index, 20 digits>.seg`). Entries are
//! written in ascending index order, back to back, and a segment holds the
//! entries from its own first index to the next segment's; the last one is
//! the *active* segment, the one appended to, until it reaches the segment
//! size and the next entry starts a new one. Space is given back a segment at
//! a time (as Kafka does): a segment is deleted once every entry in it is
//! released (`delete_below`), and a truncation of the log's tail cuts the
//! active segment back (`truncate`).
//!
//! Crashes: an entry is written here before its `Location` is written to
//! RocksDB, so after `kill -9` a segment may end with bytes no `Location`
//! names, never the other way round; `recover` cuts them off when the group
//! is opened. With `fsync` on, the segment is synced before the RocksDB
//! write is, so that holds after a power loss too; with it off (the default,
//! as Kafka's), a power loss can also lose a tail that RocksDB still names,
//! which `recover` reports so the log store forgets those entries.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::storage::GroupId;

/// Where one entry's bytes are: its segment (by first index), the offset in
/// it and the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
}

const LOCATION_LEN: usize = 20;

impl Location {
    pub fn encode(&self) -> [u8; LOCATION_LEN] {
        let mut v = [0u8; LOCATION_LEN];
        v[..8].copy_from_slice(&self.segment.to_be_bytes());
        v[8..16].copy_from_slice(&self.offset.to_be_bytes());
        v[16..].copy_from_slice(&self.len.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let v: &[u8; LOCATION_LEN] = v.try_into().ok()?;
        let (segment, rest) = v.split_at(8);
        let (offset, len) = rest.split_at(8);
        Some(Self {
            segment: u64::from_be_bytes(segment.try_into().ok()?),
            offset: u64::from_be_bytes(offset.try_into().ok()?),
            len: u32::from_be_bytes(len.try_into().ok()?),
        })
    }

    /// One past the entry's last byte in its segment.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// A failed segment file operation, with the file it was on.
#[derive(Debug, thiserror::Error)]
#[error("segment file {path}: {source}")]
pub struct SegmentError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// What `recover` found at the end of the active segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// Every named entry is whole.
    Whole,
    /// The active segment ends at `len`, before the last named entries end
    /// (a power loss without `fsync`): entries whose bytes are not all there
    /// must be forgotten.
    Torn { segment: u64, len: u64 },
}

struct Active {
    first: u64,
    file: Arc<File>,
    len: u64,
}

#[derive(Default)]
struct Inner {
    /// Every segment by first index, with its file once opened.
    files: BTreeMap<u64, Option<Arc<File>>>,
    active: Option<Active>,
}

/// One group's segment files.
pub struct Segments {
    dir: PathBuf,
    fsync: bool,
    segment_bytes: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn file_name(first: u64) -> String {
    format!("{first:020}.seg")
}

impl Segments {
    /// The segments of `group` under `root`, as found on disk (none for a
    /// new group). Call `recover` before appending.
    pub fn open(root: &Path, group: GroupId, fsync: bool, segment_bytes: u64) -> Result<Self, SegmentError> {
        let dir = root.join(format!("{group:016x}"));
        let mut files = BTreeMap::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|source| SegmentError { path: dir.clone(), source })?;
                    let name = entry.file_name();
                    let first =
                        name.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse().ok());
                    if let Some(first) = first {
                        files.insert(first, None);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(SegmentError { path: dir, source }),
        }
        Ok(Self {
            dir,
            fsync,
            segment_bytes: segment_bytes.max(1),
            inner: Mutex::new(Inner { files, active: None }),
        })
    }

    fn path(&self, first: u64) -> PathBuf {
        self.dir.join(file_name(first))
    }

    fn err(&self, first: u64) -> impl FnOnce(io::Error) -> SegmentError + '_ {
        move |source| SegmentError { path: self.path(first), source }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the segment files agree with the last entry RocksDB names
    /// (`None`: no entry): segments after its segment are deleted, bytes
    /// after it are cut off, and its segment becomes the active one.
    pub fn recover(&self, last: Option<Location>) -> Result<Recovered, SegmentError> {
        let mut inner = self.lock();
        let Some(last) = last else {
            let all: Vec<u64> = inner.files.keys().copied().collect();
            for first in all {
                self.remove(&mut inner, first)?;
            }
            return Ok(Recovered::Whole);
        };
        let later: Vec<u64> = inner.files.range(last.segment.saturating_add(1)..).map(|(k, _)| *k).collect();
        for first in later {
            self.remove(&mut inner, first)?;
        }
        let file = match OpenOptions::new().read(true).write(true).open(self.path(last.segment)) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Recovered::Torn { segment: last.segment, len: 0 });
            }
            Err(e) => return Err(self.err(last.segment)(e)),
        };
        let len = file.metadata().map_err(self.err(last.segment))?.len();
        if len < last.end() {
            return Ok(Recovered::Torn { segment: last.segment, len });
        }
        if len > last.end() {
            file.set_len(last.end()).map_err(self.err(last.segment))?;
        }
        inner.files.insert(last.segment, Some(file.clone()));
        inner.active = Some(Active { first: last.segment, file, len: last.end() });
        Ok(Recovered::Whole)
    }

    /// Appends entries, `(index, bytes)` in ascending index order; returns
    /// where each went. With `fsync` on, they are on disk when this returns.
    pub fn append(&self, entries: &[(u64, &[u8])]) -> Result<Vec<Location>, SegmentError> {
        let (locations, unsynced) = self.append_unsynced(entries)?;
        if let Some(file) = unsynced {
            file.sync_data().map_err(|source| SegmentError { path: self.dir.clone(), source })?;
        }
        Ok(locations)
    }

    /// `append`, but with `fsync` on the file the last entries went to is
    /// returned unsynced, for the caller to sync (`storage::syncer`); files
    /// rolled away from on the way are synced here.
    pub fn append_unsynced(
        &self,
        entries: &[(u64, &[u8])],
    ) -> Result<(Vec<Location>, Option<Arc<File>>), SegmentError> {
        let mut inner = self.lock();
        let mut locations = Vec::with_capacity(entries.len());
        // Consecutive entries bound for the same segment go in one write.
        let mut run: Vec<u8> = Vec::new();
        for &(index, bytes) in entries {
            let len = u32::try_from(bytes.len()).map_err(|_| SegmentError {
                path: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "a Raft entry over 4 GiB"),
            })?;
            // A segment takes entries until the next would cross its size;
            // its first entry, however large, goes in.
            let full = inner.active.as_ref().is_none_or(|a| {
                let used = a.len + run.len() as u64;
                used > 0 && used + bytes.len() as u64 > self.segment_bytes
            });
            if full {
                self.flush_run(&mut inner, &mut run)?;
                self.roll(&mut inner, index)?;
            }
            let Some(active) = inner.active.as_ref() else {
                return Err(SegmentError {
                    path: self.dir.clone(),
                    source: io::Error::other("no active segment after a roll"),
                });
            };
            locations.push(Location { segment: active.first, offset: active.len + run.len() as u64, len });
            run.extend_from_slice(bytes);
        }
        self.flush_run(&mut inner, &mut run)?;
        let unsynced = if self.fsync { inner.active.as_ref().map(|a| a.file.clone()) } else { None };
        Ok((locations, unsynced))
    }

    fn flush_run(&self, inner: &mut Inner, run: &mut Vec<u8>) -> Result<(), SegmentError> {
        if run.is_empty() {
            return Ok(());
        }
        if let Some(active) = inner.active.as_mut() {
            active
                .file
                .write_all_at(run, active.len)
                .map_err(|source| SegmentError { path: self.dir.join(file_name(active.first)), source })?;
            active.len += run.len() as u64;
        }
        run.clear();
        Ok(())
    }

    /// Starts a new active segment whose first entry is `first`.
    fn roll(&self, inner: &mut Inner, first: u64) -> Result<(), SegmentError> {
        if self.fsync {
            if let Some(active) = inner.active.as_ref() {
                active.file.sync_data().map_err(self.err(active.first))?;
            }
        }
        fs::create_dir_all(&self.dir).map_err(|source| SegmentError { path: self.dir.clone(), source })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(first))
            .map_err(self.err(first))?;
        if self.fsync {
            // The new file's name must survive a power loss too.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| SegmentError { path: self.dir.clone(), source })?;
        }
        let file = Arc::new(file);
        inner.files.insert(first, Some(file.clone()));
        inner.active = Some(Active { first, file, len: 0 });
        Ok(())
    }

    /// The file of segment `first`, opened on first use.
    fn file(&self, first: u64) -> Result<Arc<File>, SegmentError> {
        let mut inner = self.lock();
        match inner.files.get(&first) {
            Some(Some(file)) => return Ok(file.clone()),
            Some(None) => {}
            None => {
                return Err(SegmentError {
                    path: self.path(first),
                    source: io::Error::new(io::ErrorKind::NotFound, "no such segment"),
                })
            }
        }
        let file = Arc::new(File::open(self.path(first)).map_err(self.err(first))?);
        inner.files.insert(first, Some(file.clone()));
        Ok(file)
    }

    /// Appends `len` bytes at `offset` of segment `first` to `out`.
    pub fn read_into(
        &self,
        first: u64,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), SegmentError> {
        let file = self.file(first)?;
        let start = out.len();
        out.resize(start + len, 0);
        let read = file.read_exact_at(&mut out[start..], offset).map_err(self.err(first));
        if read.is_err() {
            out.truncate(start);
        }
        read
    }

    /// Forgets the entry at `from` and everything after it: later segments
    /// are deleted and its own is cut back to where the entry began.
    pub fn truncate(&self, from: Location) -> Result<(), SegmentError> {
        let mut inner = self.lock();
        let later: Vec<u64> = inner.files.range(from.segment.saturating_add(1)..).map(|(k, _)| *k).collect();
        for first in later {
            self.remove(&mut inner, first)?;
        }
        if from.offset == 0 {
            return self.remove(&mut inner, from.segment);
        }
        let file = match inner.files.get(&from.segment) {
            Some(Some(file)) => file.clone(),
            _ => Arc::new(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.path(from.segment))
                    .map_err(self.err(from.segment))?,
            ),
        };
        file.set_len(from.offset).map_err(self.err(from.segment))?;
        inner.files.insert(from.segment, Some(file.clone()));
        inner.active = Some(Active { first: from.segment, file, len: from.offset });
        Ok(())
    }

    /// Deletes every segment all of whose entries are below `end` (those
    /// followed by a segment starting at or below it; never the active one).
    pub fn delete_below(&self, end: u64) -> Result<(), SegmentError> {
        let mut inner = self.lock();
        let firsts: Vec<u64> = inner.files.keys().copied().collect();
        for pair in firsts.windows(2) {
            if pair[1] <= end {
                self.remove(&mut inner, pair[0])?;
            }
        }
        Ok(())
    }

    fn remove(&self, inner: &mut Inner, first: u64) -> Result<(), SegmentError> {
        inner.files.remove(&first);
        if inner.active.as_ref().is_some_and(|a| a.first == first) {
            inner.active = None;
        }
        match fs::remove_file(self.path(first)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(first)(e)),
        }
    }

    /// Deletes every segment and the group's directory (the partition was
    /// deleted).
    pub fn remove_all(&self) -> Result<(), SegmentError> {
        let mut inner = self.lock();
        *inner = Inner::default();
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SegmentError { path: self.dir.clone(), source }),
        }
    }

    /// The first index of every segment, oldest first.
    pub fn firsts(&self) -> Vec<u64> {
        self.lock().files.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &Segments, l: Location) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_into(l.segment, l.offset, l.len as usize, &mut out).unwrap();
        out
    }

    #[test]
    fn entries_roll_into_new_segments_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 3, false, 10).unwrap();
        s.recover(None).unwrap();
        let locs = s.append(&[(1, b"aaaa"), (2, b"bbbb"), (3, b"cccc")]).unwrap();
        assert_eq!(locs.iter().map(|l| l.segment).collect::<Vec<_>>(), vec![1, 1, 3]);
        assert_eq!(read(&s, locs[1]), b"bbbb");
        assert_eq!(read(&s, locs[2]), b"cccc");
        // An entry larger than a segment gets one of its own.
        let big = s.append(&[(4, b"0123456789abc")]).unwrap();
        assert_eq!((big[0].segment, big[0].offset), (4, 0));
        assert_eq!(s.firsts(), vec![1, 3, 4]);
    }

    #[test]
    fn truncation_cuts_back_and_appends_continue_there() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 3, false, 10).unwrap();
        s.recover(None).unwrap();
        let locs = s.append(&[(1, b"aaaa"), (2, b"bbbb"), (3, b"cccc"), (4, b"dd")]).unwrap();
        s.truncate(locs[1]).unwrap();
        assert_eq!(s.firsts(), vec![1]);
        let again = s.append(&[(2, b"xx")]).unwrap();
        assert_eq!(again[0], Location { segment: 1, offset: 4, len: 2 });
        assert_eq!(read(&s, again[0]), b"xx");
        // Truncating a segment's first entry removes the segment.
        s.truncate(locs[0]).unwrap();
        assert!(s.firsts().is_empty());
    }

    #[test]
    fn only_wholly_released_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 3, false, 4).unwrap();
        s.recover(None).unwrap();
        s.append(&[(1, b"aaaa"), (2, b"bbbb"), (3, b"cccc")]).unwrap();
        s.delete_below(2).unwrap();
        assert_eq!(s.firsts(), vec![2, 3]);
        s.delete_below(100).unwrap();
        assert_eq!(s.firsts(), vec![3], "the active segment stays");
    }

    #[test]
    fn recovery_cuts_unnamed_bytes_and_reports_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let locs = {
            let s = Segments::open(dir.path(), 3, false, 8).unwrap();
            s.recover(None).unwrap();
            s.append(&[(1, b"aaaa"), (2, b"bbbb"), (3, b"cccc"), (4, b"dddd")]).unwrap()
        };
        // RocksDB named entries up to 2 only: 3 and 4 were written, not named.
        let s = Segments::open(dir.path(), 3, false, 8).unwrap();
        assert_eq!(s.firsts(), vec![1, 3]);
        assert_eq!(s.recover(Some(locs[1])).unwrap(), Recovered::Whole);
        assert_eq!(s.firsts(), vec![1]);
        let next = s.append(&[(3, b"ee")]).unwrap();
        assert_eq!(next[0].segment, 3, "segment 1 is full: a new one starts");
        // A name past the end of its segment is a torn tail.
        let s = Segments::open(dir.path(), 3, false, 8).unwrap();
        let past = Location { segment: 3, offset: 0, len: 9 };
        assert_eq!(s.recover(Some(past)).unwrap(), Recovered::Torn { segment: 3, len: 2 });
    }
}
