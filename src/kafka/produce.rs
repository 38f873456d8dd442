//! Produce: validates each partition's record batches (CRC, format, size) and
//! appends them through the partition's Raft group. Every `acks` value waits
//! for the majority commit: `acks=1` is deliberately as strong as `acks=all`
//! (never weaker than Kafka's), and `acks=0` sends no response at all.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use crate::kafka::ctx::{Ctx, Lookup};
use crate::kafka::error::{batch_code, partition_code};
use crate::metadata::topic_config::Effective;
use crate::partition::batch;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `None` when no response is due (`acks=0`).
pub async fn handle(ctx: &Ctx, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    let timeout = match req.timeout_ms {
        t if t > 0 => Duration::from_millis(t as u64),
        _ => DEFAULT_TIMEOUT,
    };
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.as_str().to_string();
        let parts = join_all(topic.partition_data.into_iter().map(|p| {
            let name = name.clone();
            async move {
                let index = p.index;
                let result = if matches!(acks, -1..=1) {
                    append_records(ctx, &name, index, p.records.unwrap_or_default(), timeout).await
                } else {
                    Err(ResponseError::InvalidRequiredAcks)
                };
                match result {
                    Ok((base_offset, log_start_offset)) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(base_offset)
                        .with_log_start_offset(log_start_offset),
                    Err(code) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(code.code())
                        .with_base_offset(-1),
                }
            }
        }))
        .await;
        responses.push(TopicProduceResponse::default().with_name(topic.name).with_partition_responses(parts));
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Validates `records` (record batches as a client sends them) and appends
/// them to the partition this broker leads once a majority has them: (base
/// offset, log start offset). The Kafka and HTTP produce paths both end here.
pub async fn append_records(
    ctx: &Ctx,
    topic: &str,
    partition: i32,
    records: Bytes,
    timeout: Duration,
) -> Result<(i64, i64), ResponseError> {
    let handle = match ctx.leader_replica(topic, partition) {
        Lookup::Leader(h) => h,
        Lookup::NotLeader => return Err(ResponseError::NotLeaderOrFollower),
        Lookup::UnknownTopicOrPartition => return Err(ResponseError::UnknownTopicOrPartition),
    };
    let max = ctx.metadata.state().topic(topic).map_or(i64::from(ctx.config.message_max_bytes), |t| {
        Effective::resolve(&t.configs, &ctx.config).max_message_bytes
    });
    let rejected = |e: batch::BatchError| {
        tracing::info!(topic, partition, error = %e, "produce rejected");
        batch_code(&e)
    };
    let batches = batch::validate(&records).map_err(rejected)?;
    if let Some((_, big)) = batches.iter().find(|(_, b)| b.len() as i64 > max) {
        tracing::info!(topic, partition, size = big.len(), max, "record batch too large");
        return Err(ResponseError::MessageTooLarge);
    }
    for (header, bytes) in &batches {
        batch::check_records(header, bytes).map_err(rejected)?;
    }
    let started = std::time::Instant::now();
    let appended = handle.append(records, timeout).await.map_err(|e| {
        tracing::debug!(topic, partition, error = %e, "append failed");
        partition_code(&e)
    })?;
    ctx.metrics.commit(started.elapsed());
    Ok((appended.base_offset, appended.log_start_offset))
}
