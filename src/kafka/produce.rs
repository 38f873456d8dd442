//! Produce: each partition's record batches go through the node's validated
//! append (`partition::append`: CRC, format, size, records) and its Raft group. Every `acks` value waits
//! for the majority commit: `acks=1` is deliberately as strong as `acks=all`
//! (never weaker than Kafka's), and `acks=0` sends no response at all.

use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use crate::kafka::error::append_code;
use crate::node::Node;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `None` when no response is due (`acks=0`).
pub async fn handle(ctx: &Node, req: ProduceRequest) -> Option<ProduceResponse> {
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
                    let records = p.records.unwrap_or_default();
                    ctx.append(&name, index, records, timeout).await.map_err(|e| append_code(&e))
                } else {
                    Err(ResponseError::InvalidRequiredAcks)
                };
                match result {
                    Ok(appended) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(appended.base_offset)
                        .with_log_start_offset(appended.log_start_offset),
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
