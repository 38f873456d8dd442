//! openraft's storage conformance suite (`openraft::testing::Suite`) against
//! raftka's RocksDB log store, with each group kind's real state machine:
//! votes, appends, truncation, purges, log state, snapshots and membership,
//! as openraft expects them.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use raftka::metadata::store::MetadataStore;
use raftka::partition::store::PartitionStore;
use raftka::raft::applied::Machine;
use raftka::raft::log_store::LogStore;
use raftka::raft::types::{NodeId, METADATA_GROUP};
use raftka::storage::Storage;
use tempfile::TempDir;

use raftka::metadata::command::MetaConfig;
use raftka::partition::command::PartConfig;

struct Partitions;

impl StoreBuilder<PartConfig, LogStore<PartConfig>, Machine<PartitionStore>, TempDir> for Partitions {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<PartConfig>, Machine<PartitionStore>), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(Storage::open(dir.path(), false).expect("open RocksDB"));
        let (sm, log) = PartitionStore::open(storage.clone(), 7).expect("partition store");
        Ok((dir, LogStore::retaining(storage, 7, log.retained().clone()), Machine(sm)))
    }
}

struct Metadata;

impl StoreBuilder<MetaConfig, LogStore<MetaConfig>, Machine<MetadataStore>, TempDir> for Metadata {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<MetaConfig>, Machine<MetadataStore>), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(Storage::open(dir.path(), false).expect("open RocksDB"));
        let (sm, _state) = MetadataStore::open(storage.clone()).expect("metadata store");
        Ok((dir, LogStore::new(storage, METADATA_GROUP), Machine(sm)))
    }
}

#[test]
fn the_log_store_passes_openraft_suite_with_partition_groups() {
    Suite::test_all(Partitions).expect("openraft storage suite");
}

#[test]
fn the_log_store_passes_openraft_suite_with_the_metadata_group() {
    Suite::test_all(Metadata).expect("openraft storage suite");
}
