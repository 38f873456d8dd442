//! The broker's storage: its one RocksDB instance, and the segment files
//! partition groups write their Raft entries to (`segments`). Owns the column
//! families, the fsync policy and every read and write of the database; no
//! other module touches a raw `DB` (STYLE.md, module map). Under the data
//! directory: `db/` (RocksDB) and `segments/` (a directory per partition
//! group).
//!
//! Column families, each keyed by `storage::keys` (group-prefixed, big-endian):
//! - `raft_log`: Raft log entries of every group, `group ++ index`: the entry
//!   itself (the metadata group) or where in its group's segment files it is
//!   (partition groups: `raft::log_store`).
//! - `raft_state`: per-group vote, committed and purged log ids.
//! - `state`: per-group state machine state (metadata state, partition state).
//! - `records`: partition logs, `group ++ base_offset` → where the batch is
//!   (a reference into its Raft entry) or the batch itself (`partition::log`).
//!
//! Durability: every write goes to RocksDB's WAL before it is acknowledged, so
//! it survives `kill -9` of the process (the OS keeps the page cache). With
//! `fsync = true` the WAL is also synced, which survives power loss too; the
//! default is `false`, as in Kafka (`log.flush.interval.messages` unset).
//! Raft log appends are then synced by the group commit (`syncer`), one round
//! for every partition group waiting, instead of each in its own write.

pub mod keys;
pub mod segments;
pub mod syncer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

pub use keys::GroupId;

use crate::codec::CodecError;

/// A key and its value, as read from RocksDB.
pub type Pair = (Box<[u8]>, Box<[u8]>);

/// A column family of the broker's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    RaftLog,
    RaftState,
    State,
    Records,
}

impl Cf {
    pub const ALL: [Cf; 4] = [Cf::RaftLog, Cf::RaftState, Cf::State, Cf::Records];

    fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
            Cf::State => "state",
            Cf::Records => "records",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("column family {0} is missing")]
    MissingCf(&'static str),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("group {group}: Raft entry {index}, which holds stored records, is missing")]
    MissingEntry { group: GroupId, index: u64 },
    #[error(transparent)]
    Segment(#[from] segments::SegmentError),
    #[error("syncing the log to disk failed: {0}")]
    SyncFailed(String),
    #[error("the log syncer has stopped")]
    SyncerGone,
    #[error("cannot start the log syncer: {0}")]
    SyncerStart(std::io::Error),
}

/// The broker's database. Cheap to share behind an `Arc`; RocksDB does its own
/// locking.
pub struct Storage {
    /// With `fsync` on; dropped (joined) before `db`, which it holds.
    syncer: Option<syncer::Syncer>,
    db: Arc<DB>,
    fsync: bool,
    segments: PathBuf,
    segment_bytes: u64,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("path", &self.db.path()).field("fsync", &self.fsync).finish()
    }
}

/// A set of writes applied atomically by [`Storage::write`].
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

impl Batch {
    pub fn put(&mut self, cf: Cf, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(cf, key.as_ref().to_vec(), value.into()));
    }

    pub fn delete(&mut self, cf: Cf, key: impl AsRef<[u8]>) {
        self.ops.push(Op::Delete(cf, key.as_ref().to_vec()));
    }

    /// Deletes `[from, to)`.
    pub fn delete_range(&mut self, cf: Cf, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) {
        self.ops.push(Op::DeleteRange(cf, from.as_ref().to_vec(), to.as_ref().to_vec()));
    }
}

/// What all memtables together may hold.
const MEMTABLE_BYTES: usize = 64 << 20;

/// Segment size when none is configured (`log_segment_bytes`).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

impl Storage {
    /// Opens (or creates) the storage under `dir` with the default segment
    /// size.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, StorageError> {
        Self::open_with(dir, fsync, DEFAULT_SEGMENT_BYTES)
    }

    /// Opens (or creates) the storage under `dir`; partition groups' segment
    /// files roll over at `segment_bytes`.
    pub fn open_with(dir: &Path, fsync: bool, segment_bytes: u64) -> Result<Self, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        // Values are small: record batches are in segment files, the rest
        // is state, references and metadata entries. Every column family's
        // memtables together stay under one bound (RocksDB flushes the
        // largest when they pass it), instead of up to two 64 MiB memtables
        // each: a broker's memory does not swing with its write rate.
        opts.set_db_write_buffer_size(MEMTABLE_BYTES);
        let cfs = Cf::ALL.iter().map(|&cf| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_write_buffer_size(MEMTABLE_BYTES / 2);
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?);
        let syncer = if fsync {
            Some(syncer::Syncer::start(db.clone()).map_err(StorageError::SyncerStart)?)
        } else {
            None
        };
        Ok(Self { syncer, db, fsync, segments: dir.join("segments"), segment_bytes })
    }

    /// The segment files of `group` (`segments::Segments::recover` them
    /// before use).
    pub fn segments(&self, group: GroupId) -> Result<segments::Segments, StorageError> {
        Ok(segments::Segments::open(&self.segments, group, self.fsync, self.segment_bytes)?)
    }

    fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db.cf_handle(cf.name()).ok_or(StorageError::MissingCf(cf.name()))
    }

    /// Applies `batch` atomically, through the WAL (synced when `fsync` is on).
    pub fn write(&self, batch: Batch) -> Result<(), StorageError> {
        self.write_opt(batch, self.fsync)
    }

    fn write_opt(&self, batch: Batch, sync: bool) -> Result<(), StorageError> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put(cf, k, v) => wb.put_cf(self.cf(cf)?, k, v),
                Op::Delete(cf, k) => wb.delete_cf(self.cf(cf)?, k),
                Op::DeleteRange(cf, from, to) => wb.delete_range_cf(self.cf(cf)?, from, to),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo)?;
        Ok(())
    }

    /// Applies `batch` like `write`, but with `fsync` on leaves the syncing
    /// to the group commit (`syncer`): `done` runs once `batch` and what was
    /// written to `file` are on disk, together with whatever other appends
    /// were waiting. With `fsync` off, `done` runs before this returns.
    pub fn write_then_sync(
        &self,
        batch: Batch,
        file: Option<Arc<File>>,
        done: syncer::Done,
    ) -> Result<(), StorageError> {
        let Some(syncer) = &self.syncer else {
            self.write(batch)?;
            done(Ok(()));
            return Ok(());
        };
        self.write_opt(batch, false)?;
        syncer.sync(file, done);
        Ok(())
    }

    /// Log appends made durable and the sync rounds that did it (`(0, 0)`
    /// with `fsync` off).
    pub fn sync_counts(&self) -> (u64, u64) {
        self.syncer.as_ref().map_or((0, 0), |s| s.counts().get())
    }

    pub fn get(&self, cf: Cf, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    /// Calls `read` with the value at `key`, if any, without copying it out
    /// of RocksDB.
    pub fn with_value<T>(
        &self,
        cf: Cf,
        key: impl AsRef<[u8]>,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StorageError> {
        Ok(self.db.get_pinned_cf(self.cf(cf)?, key)?.map(|v| read(&v)))
    }

    /// Visits pairs in `[from, to)` in key order until `visit` returns false.
    pub fn for_each(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        let iter = self.db.iterator_cf_opt(self.cf(cf)?, ro, IteratorMode::From(from, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// The last pair with a key in `[from, to)`.
    pub fn last_in(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Option<Pair>, StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(from.to_vec());
        ro.set_iterate_upper_bound(to.to_vec());
        let mut iter = self.db.iterator_cf_opt(self.cf(cf)?, ro, IteratorMode::End);
        Ok(iter.next().transpose()?)
    }

    /// The last pair with a key in `[from, at]`: the entry at or just before `at`.
    pub fn at_or_before(&self, cf: Cf, from: &[u8], at: &[u8]) -> Result<Option<Pair>, StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(from.to_vec());
        let mut iter = self.db.iterator_cf_opt(self.cf(cf)?, ro, IteratorMode::From(at, Direction::Reverse));
        Ok(iter.next().transpose()?)
    }

    /// Removes every key of `group` from every column family, then its
    /// segment files.
    pub fn drop_group(&self, group: GroupId) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        for cf in Cf::ALL {
            batch.delete_range(cf, keys::group_start(group), keys::group_end(group));
        }
        self.write(batch)?;
        self.segments(group)?.remove_all()?;
        Ok(())
    }

    /// Flushes memtables and the WAL: the last step of a graceful shutdown.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        for cf in Cf::ALL {
            self.db.flush_cf(self.cf(cf)?)?;
        }
        Ok(())
    }

    /// Per column family: (name, bytes in SST files, bytes in memtables), for
    /// `/metrics`. A property RocksDB cannot give reads as 0.
    pub fn sizes(&self) -> Vec<(&'static str, u64, u64)> {
        Cf::ALL
            .iter()
            .filter_map(|&cf| {
                let handle = self.cf(cf).ok()?;
                let prop =
                    |name: &str| self.db.property_int_value_cf(handle, name).ok().flatten().unwrap_or(0);
                Some((
                    cf.name(),
                    prop("rocksdb.total-sst-files-size"),
                    prop("rocksdb.cur-size-all-mem-tables"),
                ))
            })
            .collect()
    }
}
