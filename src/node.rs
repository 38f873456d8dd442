//! The services of one node, built once by `broker` and shared by every
//! front end: its config, the metadata handle, the partition replicas and
//! the routing over them, the group coordinator, the producer-id pool and
//! the metrics. The Kafka handlers and the HTTP API are siblings above it;
//! nothing below it knows it exists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::group::coordinator::GroupCoordinator;
use crate::metadata::handle::MetadataHandle;
use crate::metadata::producer_ids::ProducerIdPool;
use crate::metrics::Metrics;
use crate::partition::append::{self, AppendError};
use crate::partition::handle::Appended;
use crate::partition::manager::PartitionManager;
use crate::partition::routing::Routing;
use crate::raft::types::NodeId;

pub struct Node {
    pub config: Arc<Config>,
    pub node_id: NodeId,
    pub metadata: MetadataHandle,
    pub partitions: Arc<PartitionManager>,
    pub routing: Routing,
    pub producer_ids: ProducerIdPool,
    pub groups: Arc<GroupCoordinator>,
    pub metrics: Arc<Metrics>,
}

impl Node {
    /// The validated append (`partition::append`), its commit timed for
    /// `/metrics`: the Kafka and the REST produce paths both end here.
    pub async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        timeout: Duration,
    ) -> Result<Appended, AppendError> {
        let started = Instant::now();
        let appended =
            append::append(&self.routing, &self.config, topic, partition, records, timeout).await?;
        self.metrics.commit(started.elapsed());
        Ok(appended)
    }
}
