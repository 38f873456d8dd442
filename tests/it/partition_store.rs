//! A partition replica's state machine driven directly, with entries in its
//! real RocksDB Raft log: replicas that apply the same entries hold the same
//! batches however openraft cut the entries into apply calls, and a purge
//! after retention or compaction never deletes an entry a `BatchRef` still
//! points into.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use raftka::codec;
use raftka::partition::command::{PartConfig, PartitionCommand, PartitionResponse};
use raftka::partition::log::{PartitionLog, StoredBatch};
use raftka::partition::store::PartitionStore;
use raftka::raft::applied::Machine;
use raftka::raft::log_store::LogStore;
use raftka::storage::{keys, Batch, Cf, Storage};
use tempfile::TempDir;

use crate::common::ops::records_from;

const GROUP: u64 = 7;

struct Replica {
    _dir: TempDir,
    storage: Arc<Storage>,
    machine: Machine<PartitionStore>,
    log_store: LogStore<PartConfig>,
    log: Arc<PartitionLog>,
}

impl Replica {
    fn open() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(Storage::open(dir.path(), false).expect("open RocksDB"));
        let (store, log) = PartitionStore::open(storage.clone(), GROUP).expect("partition store");
        let log_store = LogStore::retaining(storage.clone(), GROUP, log.retained().clone());
        Self { _dir: dir, storage, machine: Machine(store), log_store, log }
    }

    /// Stores `entries` in the Raft log as openraft's append would.
    fn store(&self, entries: &[Entry<PartConfig>]) {
        let mut batch = Batch::default();
        for e in entries {
            batch.put(
                Cf::RaftLog,
                keys::indexed(GROUP, e.log_id.index),
                codec::encode("raft entry", e).expect("encode entry"),
            );
        }
        self.storage.write(batch).expect("write entries");
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
    whole.store(&entries);
    one_by_one.store(&entries);
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
    r.store(&entries);
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
    r.store(std::slice::from_ref(&trim));
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
