//! A partition replica's state machine driven directly, with entries in its
//! real Raft log (segment files named in RocksDB): replicas that apply the
//! same entries hold the same batches however openraft cut the entries into
//! apply calls, a purge after retention or compaction never deletes an entry
//! a `BatchRef` still points into, and a crash between an entry's segment
//! write and the RocksDB write naming it leaves the log RocksDB names.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::RaftLogReader;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use raftka::partition::command::{PartConfig, PartitionCommand, PartitionResponse};
use raftka::partition::log::{PartitionLog, StoredBatch};
use raftka::partition::store::PartitionStore;
use raftka::raft::applied::Machine;
use raftka::raft::log_store::LogStore;
use raftka::storage::{keys, Cf, Storage};
use tempfile::TempDir;

use crate::common::ops::records_from;

const GROUP: u64 = 7;

struct Replica {
    dir: TempDir,
    storage: Arc<Storage>,
    machine: Machine<PartitionStore>,
    log_store: LogStore<PartConfig>,
    log: Arc<PartitionLog>,
}

impl Replica {
    fn open() -> Self {
        Self::open_in(tempfile::tempdir().expect("temp dir"), 1 << 20)
    }

    /// The replica whose data is in `dir`, its segments rolling at
    /// `segment_bytes`.
    fn open_in(dir: TempDir, segment_bytes: u64) -> Self {
        let storage = Arc::new(Storage::open_with(dir.path(), false, segment_bytes).expect("open storage"));
        let (store, log) = PartitionStore::open(storage.clone(), GROUP).expect("partition store");
        let log_store = LogStore::retaining(storage.clone(), GROUP, log.retained().clone());
        Self { dir, storage, machine: Machine(store), log_store, log }
    }

    /// Closes the replica as `kill -9` would (nothing flushed on purpose) and
    /// opens it again.
    fn reopen(self, segment_bytes: u64) -> Self {
        let Self { dir, storage, machine, log_store, log } = self;
        drop((machine, log_store, log, storage));
        Self::open_in(dir, segment_bytes)
    }

    /// Appends `entries` to the Raft log as openraft does.
    async fn store(&mut self, entries: &[Entry<PartConfig>]) {
        self.log_store.blocking_append(entries.to_vec()).await.expect("append entries");
    }

    /// The group's segment files, oldest first.
    fn segment_files(&self) -> Vec<std::path::PathBuf> {
        let dir = self.dir.path().join("segments").join(format!("{GROUP:016x}"));
        let mut files: Vec<_> =
            std::fs::read_dir(dir).expect("segments").map(|e| e.expect("entry").path()).collect();
        files.sort();
        files
    }

    async fn apply(&mut self, entries: &[Entry<PartConfig>]) -> Vec<PartitionResponse> {
        self.machine.apply(entries.to_vec()).await.expect("apply")
    }

    fn digest(&self) -> Vec<StoredBatch> {
        self.log.digest().expect("every stored batch readable")
    }
}

fn entry(index: u64, command: PartitionCommand) -> Entry<PartConfig> {
    Entry { log_id: log_id(index), payload: EntryPayload::Normal(command) }
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// One batch of five records over three keys.
fn keyed(n: u64) -> Bytes {
    records_from(
        (0..5u64)
            .map(|i| {
                let key = format!("k{}", (n * 5 + i) % 3);
                (Some(Bytes::from(key)), Bytes::from(format!("v{n}-{i}")), 1_000)
            })
            .collect(),
        Compression::None,
        None,
    )
}

/// Eight batches, a compaction of the first six, two more batches.
fn entries() -> Vec<Entry<PartConfig>> {
    let mut out: Vec<_> = (1..=8).map(|i| entry(i, PartitionCommand::Append { records: keyed(i) })).collect();
    out.push(entry(9, PartitionCommand::Compact { up_to: 30, tombstones_before: 0 }));
    out.extend((10..=11).map(|i| entry(i, PartitionCommand::Append { records: keyed(i) })));
    out
}

#[tokio::test]
async fn compaction_is_the_same_however_the_entries_were_cut_into_apply_calls() {
    let entries = entries();
    let (mut whole, mut one_by_one) = (Replica::open(), Replica::open());
    whole.store(&entries).await;
    one_by_one.store(&entries).await;
    let responses = whole.apply(&entries).await;
    for e in &entries {
        one_by_one.apply(std::slice::from_ref(e)).await;
    }
    assert!(
        matches!(responses[8], PartitionResponse::Compacted { records } if records < 30),
        "the compaction removed records: {:?}",
        responses[8]
    );
    assert_eq!(whole.digest(), one_by_one.digest());
    assert!(whole.digest().len() < 10, "compaction removed no batch: {:?}", whole.digest());
}

#[tokio::test]
async fn a_purge_after_compaction_keeps_every_entry_a_batch_refers_to() {
    let entries = entries();
    let mut r = Replica::open();
    r.store(&entries).await;
    r.apply(&entries).await;
    let before = r.digest();
    // openraft purges everything applied; the store keeps what is read.
    r.log_store.purge(log_id(11)).await.expect("purge");
    assert_eq!(r.digest(), before);
    let read = r.log.read(0, usize::MAX).expect("read from the log start");
    assert_eq!(read.batches, before.len());

    // Retention past the compacted part lets go of the entries below it.
    let trim_at = before.iter().find(|b| b.offset >= 30).map(|b| b.offset).expect("a batch after 30");
    let trim = entry(12, PartitionCommand::Trim { log_start_offset: trim_at, removed_bytes: 0 });
    r.store(std::slice::from_ref(&trim)).await;
    r.apply(std::slice::from_ref(&trim)).await;
    r.log_store.purge(log_id(12)).await.expect("purge");
    let kept: Vec<_> = before.into_iter().filter(|b| b.offset >= trim_at).collect();
    assert_eq!(r.digest(), kept);
    // Entry 7 holds the first batch kept; entry 6 held the compacted part's
    // newest batch, which was read through its entry until the trim.
    let entry_at = |i| r.storage.get(Cf::RaftLog, keys::indexed(GROUP, i)).expect("get");
    assert!(entry_at(6).is_none(), "the entry below the first batch kept was not deleted");
    assert!(entry_at(7).is_some(), "the entry of the first batch kept was deleted");
}

#[tokio::test]
async fn bytes_written_to_a_segment_but_never_named_are_cut_off_at_restart() {
    let entries = entries();
    // Small segments: the eleven entries span several.
    let mut r = Replica::open_in(tempfile::tempdir().expect("temp dir"), 700);
    r.store(&entries[..8]).await;
    r.apply(&entries[..8]).await;
    let before = r.digest();
    let files = r.segment_files();
    assert!(files.len() > 1, "the entries span several segments: {files:?}");
    // A crash after the segment writes of an append, before RocksDB named
    // the entries: the active segment ends in bytes nothing names, and a
    // segment a roll-over started exists with nothing named in it.
    let active = files.last().expect("an active segment");
    let len = std::fs::metadata(active).expect("segment").len();
    let mut bytes = std::fs::read(active).expect("read segment");
    bytes.extend_from_slice(&[0xAB; 300]);
    std::fs::write(active, bytes).expect("write segment");
    let orphan = active.with_file_name(format!("{:020}.seg", 9));
    std::fs::write(&orphan, [0xCD; 100]).expect("write orphan");

    let mut r = r.reopen(700);
    assert_eq!(std::fs::metadata(active).expect("segment").len(), len, "the unnamed bytes were cut off");
    assert!(!orphan.exists(), "the segment nothing is named in was deleted");
    assert_eq!(r.log_store.get_log_state().await.expect("log state").last_log_id, Some(log_id(8)));
    assert_eq!(r.digest(), before);
    // The log goes on from where RocksDB said it ended.
    r.store(&entries[8..]).await;
    r.apply(&entries[8..]).await;
    let read = r.log_store.try_get_log_entries(1..12).await.expect("entries");
    assert_eq!(read, entries, "every entry reads back as appended");
    let reopened = r.reopen(700);
    assert_eq!(reopened.log.offsets().high_watermark, 50, "ten batches of five records");
}

#[tokio::test]
async fn entries_whose_bytes_were_lost_are_forgotten_at_restart() {
    let entries = entries();
    let mut r = Replica::open_in(tempfile::tempdir().expect("temp dir"), 1 << 20);
    r.store(&entries[..8]).await;
    // A power loss without fsync: the segment lost the last entry's tail,
    // although RocksDB names it.
    let active = r.segment_files().pop().expect("a segment");
    let len = std::fs::metadata(&active).expect("segment").len();
    std::fs::OpenOptions::new().write(true).open(&active).expect("open").set_len(len - 10).expect("cut");

    let mut r = r.reopen(1 << 20);
    assert_eq!(
        r.log_store.get_log_state().await.expect("log state").last_log_id,
        Some(log_id(7)),
        "the torn entry is forgotten, as a Raft log losing its tail"
    );
    let read = r.log_store.try_get_log_entries(1..8).await.expect("entries");
    assert_eq!(read, entries[..7]);
    r.store(&entries[7..8]).await;
    assert_eq!(r.log_store.try_get_log_entries(8..9).await.expect("entry"), entries[7..8]);
}
