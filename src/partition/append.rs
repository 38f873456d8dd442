//! The validated append, whoever asks (a Kafka Produce, a REST produce, the
//! broker's own records): find the partition this broker leads, check every
//! batch (framing, CRC, size against the topic's `max.message.bytes`, its
//! records within the inflate limit), then append them through the
//! partition's Raft group and wait for the majority commit, or until this
//! broker stops serving as the leader. Each failure is
//! an `AppendError` that every front end maps to its own answer.

use std::time::Duration;

use bytes::Bytes;

use crate::config::Config;
use crate::metadata::topic_config::Effective;
use crate::partition::batch::{self, BatchError};
use crate::partition::handle::{Appended, PartitionError, PartitionHandle};
use crate::partition::routing::{Lookup, Routing};

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("no such topic or partition")]
    UnknownTopicOrPartition,
    #[error("this broker does not lead the partition")]
    NotLeader,
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("a record batch of {size} bytes exceeds max.message.bytes ({max})")]
    TooLarge { size: usize, max: i64 },
    #[error(transparent)]
    Partition(#[from] PartitionError),
}

/// Validates `records` (record batches as a client sends them) and appends
/// them to the partition this broker leads once a majority has them.
pub async fn append(
    routing: &Routing,
    config: &Config,
    topic: &str,
    partition: i32,
    records: Bytes,
    timeout: Duration,
) -> Result<Appended, AppendError> {
    let handle = match routing.leader_replica(topic, partition) {
        Lookup::Leader(h) => h,
        Lookup::NotLeader => return Err(AppendError::NotLeader),
        Lookup::UnknownTopicOrPartition => return Err(AppendError::UnknownTopicOrPartition),
    };
    let max = routing
        .metadata
        .state()
        .topic(topic)
        .map_or(i64::try_from(config.message_max_bytes).unwrap_or(i64::MAX), |t| {
            Effective::max_message_bytes(&t.configs, config)
        });
    let rejected = |e: BatchError| {
        tracing::info!(topic, partition, error = %e, "produce rejected");
        AppendError::Batch(e)
    };
    let batches = batch::validate(&records).map_err(rejected)?;
    if let Some((_, big)) = batches.iter().find(|(_, b)| b.len() as i64 > max) {
        tracing::info!(topic, partition, size = big.len(), max, "record batch too large");
        return Err(AppendError::TooLarge { size: big.len(), max });
    }
    for (header, bytes) in &batches {
        batch::check_records(header, bytes).map_err(rejected)?;
    }
    let appended = handle.append(records, timeout);
    tokio::select! {
        appended = appended => appended.map_err(|e| {
            tracing::debug!(topic, partition, error = %e, "append failed");
            AppendError::Partition(e)
        }),
        // A leader cut off from its majority cannot commit: the client hears
        // so and goes to the new leader, instead of waiting out its timeout
        // (the write may still commit there, as with Kafka's NOT_LEADER).
        () = lost_leadership(routing, &handle) => {
            tracing::debug!(topic, partition, "leadership lost while appending");
            Err(AppendError::NotLeader)
        }
    }
}

/// How often an append in flight checks that its leader still serves.
const LEADERSHIP_CHECK: Duration = Duration::from_millis(100);

/// Resolves once this node no longer serves as `handle`'s leader.
async fn lost_leadership(routing: &Routing, handle: &PartitionHandle) {
    loop {
        tokio::time::sleep(LEADERSHIP_CHECK).await;
        if !routing.partitions.serves_as_leader(handle) {
            return;
        }
    }
}
