//! A partition group's log entries and their results, and where an
//! `Append`'s records lie in an entry as the Raft log stores it: bincode
//! writes an entry's fields in order and an `Append`'s records last, as a
//! length and the bytes themselves, so the stored entry ends with its records
//! exactly (`records_are_the_stored_suffix` checks it). A batch that starts
//! `at` bytes into the records is the `batch.len()` bytes ending
//! `records.len() - at` bytes before the entry's end: the `BatchRef` of
//! `partition::log` keeps that distance, and
//! `raft::retained::Retained::read_entry_tail` reads the batch by it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// Validated record batches (as the client sent them) to append.
    Append { records: Bytes },
    /// Moves the log start forward to `log_start_offset` (a batch boundary),
    /// deleting whole batches below it; `removed_bytes` is their stored size.
    Trim { log_start_offset: i64, removed_bytes: u64 },
    /// Compacts the batches below `up_to` (a batch boundary): the last record
    /// of each key stays, tombstones stamped before `tombstones_before` go
    /// (`partition::compact`).
    Compact { up_to: i64, tombstones_before: i64 },
}

/// Why a partition refused an append; travels in Raft responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppendRejection {
    #[error("out-of-order sequence number")]
    OutOfOrderSequence,
    #[error("producer epoch is older than the partition's")]
    InvalidProducerEpoch,
    #[error("corrupt record batch")]
    Corrupt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionResponse {
    /// A compaction kept this many records below its compaction point.
    Compacted {
        records: u64,
    },
    Appended {
        base_offset: i64,
        log_start_offset: i64,
    },
    Rejected(AppendRejection),
    /// Applied; nothing to report (trims, blank and membership entries).
    Done,
}

openraft::declare_raft_types!(
    /// One partition's replica group's openraft types.
    pub PartConfig:
        D = PartitionCommand,
        R = PartitionResponse,
        NodeId = crate::raft::types::NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<PartConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type PartRaft = openraft::Raft<PartConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_the_stored_suffix() {
        let records = Bytes::from_static(b"first batch|second batch");
        for index in [1, 300, u64::MAX] {
            let entry = openraft::Entry::<PartConfig> {
                log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(7, 2), index),
                payload: openraft::EntryPayload::Normal(PartitionCommand::Append {
                    records: records.clone(),
                }),
            };
            let stored = crate::codec::encode("raft entry", &entry).unwrap();
            assert!(stored.ends_with(&records), "the records end the stored entry");
        }
    }
}
