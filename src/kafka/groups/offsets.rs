//! OffsetCommit, OffsetFetch and OffsetDelete.

use std::collections::BTreeMap;

use futures::future::join_all;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::group::membership::Committed;
use crate::group::records::now_ms;
use crate::kafka::error::group_code;
use crate::kafka::str_bytes;
use crate::node::Node;

use super::{code, MAX_OFFSET_METADATA};

/// Whether `topic` has partition `p`.
pub(super) fn partition_exists(ctx: &Node, topic: &str, p: i32) -> bool {
    ctx.metadata.state().topic(topic).is_some_and(|t| p >= 0 && (p as usize) < t.partitions.len())
}

/// A partition of an OffsetCommit: the offset to commit, or its own error.
type CheckedOffset = (i32, Result<Committed, ResponseError>);

pub async fn commit(ctx: &Node, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = now_ms();
    // Per partition: Ok(offset to commit) or the partition's own error.
    let mut checked: Vec<(TopicName, Vec<CheckedOffset>)> = Vec::new();
    for t in req.topics {
        let parts = t
            .partitions
            .into_iter()
            .map(|p| {
                let metadata = p.committed_metadata.as_ref().map(|m| m.as_str().to_string());
                let r = if !partition_exists(ctx, t.name.as_str(), p.partition_index) {
                    Err(ResponseError::UnknownTopicOrPartition)
                } else if metadata.as_ref().is_some_and(|m| m.len() > MAX_OFFSET_METADATA) {
                    Err(ResponseError::OffsetMetadataTooLarge)
                } else {
                    Ok(Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp: now,
                    })
                };
                (p.partition_index, r)
            })
            .collect();
        checked.push((t.name, parts));
    }
    let valid = checked
        .iter()
        .flat_map(|(t, parts)| {
            parts
                .iter()
                .filter_map(move |(p, r)| r.as_ref().ok().map(|c| (t.as_str().to_string(), *p, c.clone())))
        })
        .collect();
    let outcome = ctx
        .groups
        .commit(
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.generation_id_or_member_epoch,
            valid,
        )
        .await
        .map_err(|e| group_code(&e));
    let topics = checked
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, r)| {
                    let err = match (r, &outcome) {
                        (Err(e), _) => e.code(),
                        (Ok(_), Err(e)) => e.code(),
                        (Ok(_), Ok(())) => 0,
                    };
                    OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(err)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One group's committed offsets as OffsetFetch wants them, grouped by topic.
type Fetched = Vec<(String, Vec<(i32, Option<Committed>)>)>;

async fn fetch_one(
    ctx: &Node,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, ResponseError> {
    let flat = wanted
        .map(|w| w.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect());
    let rows = ctx.groups.offsets(group, flat).await.map_err(|e| group_code(&e))?;
    let mut by_topic: Fetched = Vec::new();
    for (t, p, c) in rows {
        match by_topic.last_mut() {
            Some((last, parts)) if *last == t => parts.push((p, c)),
            _ => by_topic.push((t, vec![(p, c)])),
        }
    }
    Ok(by_topic)
}

/// (offset, leader epoch, metadata) of a committed offset, or Kafka's "none"
/// (-1); the epoch only where the version carries it (v5+).
fn committed_or_none(c: &Option<Committed>, version: i16) -> (i64, i32, Option<String>) {
    match c {
        Some(c) => (c.offset, if version >= 5 { c.leader_epoch } else { -1 }, c.metadata.clone()),
        None => (-1, -1, Some(String::new())),
    }
}

/// Builds OffsetFetch's per-topic answers; v0–7 and v8+ have the same shape
/// in different types, hence the two constructors.
fn topic_answers<T, P>(
    topics: Fetched,
    version: i16,
    topic: impl Fn(TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i64, i32, Option<StrBytes>) -> P,
) -> Vec<T> {
    topics
        .into_iter()
        .map(|(t, parts)| {
            let parts = parts
                .iter()
                .map(|(p, c)| {
                    let (offset, epoch, meta) = committed_or_none(c, version);
                    partition(*p, offset, epoch, meta.as_deref().map(str_bytes))
                })
                .collect();
            topic(TopicName(str_bytes(&t)), parts)
        })
        .collect()
}

pub async fn fetch_offsets(ctx: &Node, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = join_all(req.groups.into_iter().map(|g| async move {
            let wanted = g.topics.map(|ts| {
                ts.into_iter().map(|t| (t.name.as_str().to_string(), t.partition_indexes)).collect()
            });
            let fetched = fetch_one(ctx, g.group_id.as_str(), wanted).await;
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id);
            match fetched {
                Err(e) => group.with_error_code(e.code()),
                Ok(topics) => group.with_topics(topic_answers(
                    topics,
                    version,
                    |name, parts| OffsetFetchResponseTopics::default().with_name(name).with_partitions(parts),
                    |p, offset, epoch, meta| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(meta)
                    },
                )),
            }
        }))
        .await;
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = req
        .topics
        .map(|ts| ts.into_iter().map(|t| (t.name.as_str().to_string(), t.partition_indexes)).collect());
    let topics = match fetch_one(ctx, req.group_id.as_str(), wanted.clone()).await {
        Ok(topics) => topics,
        Err(e) if version >= 2 => return OffsetFetchResponse::default().with_error_code(e.code()),
        // v1 has no group-level error: every partition carries it.
        Err(e) => {
            let parts = |ps: Vec<i32>| {
                ps.into_iter()
                    .map(|p| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(-1)
                            .with_error_code(e.code())
                    })
                    .collect()
            };
            let topics = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(&t)))
                        .with_partitions(parts(ps))
                })
                .collect();
            return OffsetFetchResponse::default().with_topics(topics);
        }
    };
    OffsetFetchResponse::default().with_topics(topic_answers(
        topics,
        version,
        |name, parts| OffsetFetchResponseTopic::default().with_name(name).with_partitions(parts),
        |p, offset, epoch, meta| {
            OffsetFetchResponsePartition::default()
                .with_partition_index(p)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(meta)
        },
    ))
}

pub async fn delete_offsets(ctx: &Node, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut unknown: Vec<(String, i32)> = Vec::new();
    let mut known: Vec<(String, i32)> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let key = (t.name.as_str().to_string(), p.partition_index);
            if partition_exists(ctx, &key.0, key.1) {
                known.push(key);
            } else {
                unknown.push(key);
            }
        }
    }
    let results = match ctx.groups.delete_offsets(req.group_id.as_str(), known).await {
        Err(e) => return OffsetDeleteResponse::default().with_error_code(group_code(&e).code()),
        Ok(r) => r,
    };
    let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
    for (t, p, r) in results {
        by_topic
            .entry(t)
            .or_default()
            .push(OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(code(r)));
    }
    for (t, p) in unknown {
        by_topic.entry(t).or_default().push(
            OffsetDeleteResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, parts)| {
            OffsetDeleteResponseTopic::default().with_name(TopicName(str_bytes(&t))).with_partitions(parts)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
