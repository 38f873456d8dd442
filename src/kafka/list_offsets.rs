//! ListOffsets: earliest (-2) is the log start, latest (-1) the high watermark
//! (last record + 1), max timestamp (-3) the record with the largest
//! timestamp, and any other value the first record whose timestamp is at or
//! after it — never an offset past the end.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::node::Node;
use crate::partition::handle::PartitionHandle;
use crate::partition::routing::Lookup;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(ctx: &Node, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.as_str().to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp =
                        ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match ctx.routing.leader_replica(&name, p.partition_index) {
                        Lookup::Leader(h) => match lookup(&h, p.timestamp) {
                            Ok((offset, timestamp)) => {
                                let resp = resp.with_offset(offset).with_timestamp(timestamp);
                                // Leader epochs exist from v4; setting one earlier fails encoding.
                                if version >= 4 {
                                    resp.with_leader_epoch(h.leader_epoch())
                                } else {
                                    resp
                                }
                            }
                            Err(code) => resp.with_error_code(code.code()),
                        },
                        Lookup::NotLeader => resp.with_error_code(ResponseError::NotLeaderOrFollower.code()),
                        Lookup::UnknownTopicOrPartition => {
                            resp.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(h: &PartitionHandle, timestamp: i64) -> Result<(i64, i64), ResponseError> {
    let offsets = h.log.offsets();
    let found = match timestamp {
        LATEST => return Ok((offsets.high_watermark, -1)),
        EARLIEST => return Ok((offsets.log_start_offset, -1)),
        MAX_TIMESTAMP => h.log.max_timestamp(),
        ts => h.log.offset_for_timestamp(ts),
    };
    match found {
        Ok(Some((offset, ts))) => Ok((offset, ts)),
        Ok(None) => Ok((-1, -1)),
        Err(e) => {
            tracing::warn!(topic = %h.topic, partition = h.partition, error = %e, "list offsets");
            Err(ResponseError::KafkaStorageError)
        }
    }
}
