//! Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups and
//! OffsetDelete. Each translates between the wire and `group::coordinator`;
//! `__consumer_offsets` is created on the first FindCoordinator.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
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
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::group::membership::{Committed, GroupError, JoinArgs};
use crate::group::records::now_ms;
use crate::group::OFFSETS_TOPIC;
use crate::kafka::error::{group_code, metadata_code};
use crate::kafka::str_bytes;
use crate::metadata::command::Rejection;
use crate::metadata::handle::{MetadataError, NewTopic};
use crate::node::Node;

/// How long FindCoordinator waits for a just-created `__consumer_offsets`.
const CREATE_WAIT: Duration = Duration::from_secs(10);
/// Kafka `offset.metadata.max.bytes`.
const MAX_OFFSET_METADATA: usize = 4096;

fn code(r: Result<(), GroupError>) -> i16 {
    r.err().map_or(0, |e| group_code(&e).code())
}

/// Creates `__consumer_offsets` if it is missing and waits for its leaders.
async fn ensure_offsets_topic(ctx: &Node) -> Result<(), ResponseError> {
    if ctx.metadata.state().topic(OFFSETS_TOPIC).is_none() {
        let cfg = &ctx.config;
        let req = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions: cfg.offsets_topic_num_partitions,
            replication_factor: ctx
                .metadata
                .capped_replication(i32::from(cfg.offsets_topic_replication_factor)),
            configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        };
        match ctx.metadata.create_topic(&req, false).await {
            Ok(_) => tracing::info!(
                partitions = req.partitions,
                rf = req.replication_factor,
                "created __consumer_offsets"
            ),
            Err(MetadataError::Rejected(Rejection::TopicExists(_))) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot create __consumer_offsets");
                return Err(match metadata_code(&e) {
                    ResponseError::InvalidReplicationFactor => ResponseError::CoordinatorNotAvailable,
                    ResponseError::NotController | ResponseError::RequestTimedOut => {
                        ResponseError::CoordinatorNotAvailable
                    }
                    other => other,
                });
            }
        }
    }
    if ctx.routing.wait_for_leaders(OFFSETS_TOPIC, CREATE_WAIT).await {
        Ok(())
    } else {
        Err(ResponseError::CoordinatorNotAvailable)
    }
}

/// The broker coordinating `group`: (node id, host, port).
fn coordinator_of(ctx: &Node, group: &str) -> Result<(i32, String, i32), ResponseError> {
    if group.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    let state = ctx.metadata.state();
    let count = state.topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len());
    let partition = crate::group::partition_for(group, count);
    let (leader, _) =
        ctx.routing.leader_of(OFFSETS_TOPIC, partition).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let broker = state.brokers.get(&leader).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let (host, port) = broker.kafka_host_port().ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok((leader as i32, host.to_string(), port))
}

pub async fn find_coordinator(
    ctx: &Node,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.as_str().to_string()).collect()
    } else {
        vec![req.key.as_str().to_string()]
    };
    let ready = if req.key_type == 0 { ensure_offsets_topic(ctx).await } else { Ok(()) };
    let found: Vec<Result<(i32, String, i32), ResponseError>> = keys
        .iter()
        .map(|key| match (req.key_type, &ready) {
            // Transactions are not supported, so there is no transaction coordinator.
            (0, Ok(())) => coordinator_of(ctx, key),
            (0, Err(e)) => Err(*e),
            _ => Err(ResponseError::CoordinatorNotAvailable),
        })
        .collect();
    if version >= 4 {
        let coordinators = keys
            .iter()
            .zip(found)
            .map(|(key, f)| {
                let c = Coordinator::default().with_key(str_bytes(key));
                match f {
                    Ok((id, host, port)) => {
                        c.with_node_id(BrokerId(id)).with_host(str_bytes(&host)).with_port(port)
                    }
                    Err(e) => c.with_node_id(BrokerId(-1)).with_port(-1).with_error_code(e.code()),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match found.into_iter().next().unwrap_or(Err(ResponseError::InvalidRequest)) {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(id))
            .with_host(str_bytes(&host))
            .with_port(port),
        Err(e) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(&e.to_string()))),
    }
}

pub async fn join(
    ctx: &Node,
    version: i16,
    client_id: &str,
    client_host: &str,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance =
        if version >= 1 { Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64) } else { session };
    let args = JoinArgs {
        member_id: req.member_id.as_str().to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout: session,
        rebalance_timeout: rebalance,
        protocol_type: req.protocol_type.as_str().to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.as_str().to_string(), p.metadata)).collect(),
        require_known_id: version >= 4 && req.group_instance_id.is_none(),
    };
    match ctx.groups.join(req.group_id.as_str(), args).await {
        Ok(j) => JoinGroupResponse::default()
            .with_generation_id(j.generation)
            .with_protocol_type(j.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(
                j.protocol.as_deref().map(str_bytes).or_else(|| (version < 7).then(|| str_bytes(""))),
            )
            .with_leader(str_bytes(&j.leader))
            .with_member_id(str_bytes(&j.member_id))
            .with_members(
                j.members
                    .into_iter()
                    .map(|(id, inst, meta)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(str_bytes(&id))
                            .with_group_instance_id(inst.as_deref().map(str_bytes))
                            .with_metadata(meta)
                    })
                    .collect(),
            ),
        Err(e) => {
            let member = match &e {
                GroupError::MemberIdRequired(id) => id.clone(),
                _ => String::new(),
            };
            JoinGroupResponse::default()
                .with_error_code(group_code(&e).code())
                .with_generation_id(-1)
                .with_member_id(str_bytes(&member))
                // v0–6 have no nullable protocol name: send an empty one.
                .with_protocol_name((version < 7).then(|| str_bytes("")))
        }
    }
}

pub async fn sync(ctx: &Node, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments =
        req.assignments.into_iter().map(|a| (a.member_id.as_str().to_string(), a.assignment)).collect();
    let result = ctx
        .groups
        .sync(
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.generation_id,
            assignments,
        )
        .await;
    match result {
        Ok(assignment) => SyncGroupResponse::default()
            .with_protocol_type(req.protocol_type)
            .with_protocol_name(req.protocol_name)
            .with_assignment(assignment),
        Err(e) => SyncGroupResponse::default().with_error_code(group_code(&e).code()),
    }
}

pub async fn heartbeat(ctx: &Node, req: HeartbeatRequest) -> HeartbeatResponse {
    let r = ctx
        .groups
        .heartbeat(
            req.group_id.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(code(r))
}

pub async fn leave(ctx: &Node, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.as_str().to_string(),
                    m.group_instance_id.as_ref().map(|s| s.as_str().to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.as_str().to_string(), None)]
    };
    match ctx.groups.leave(req.group_id.as_str(), &members).await {
        Err(e) => LeaveGroupResponse::default().with_error_code(group_code(&e).code()),
        Ok(results) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(results.into_iter().next().map_or(0, code))
        }
        Ok(results) => LeaveGroupResponse::default().with_members(
            members
                .iter()
                .zip(results)
                .map(|((id, inst), r)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(inst.as_deref().map(str_bytes))
                        .with_error_code(code(r))
                })
                .collect(),
        ),
    }
}

/// Whether `topic` has partition `p`.
fn partition_exists(ctx: &Node, topic: &str, p: i32) -> bool {
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

pub async fn describe(ctx: &Node, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = join_all(req.groups.into_iter().map(|g| async move {
        let described = DescribedGroup::default().with_group_id(g.clone());
        match ctx.groups.describe(g.as_str()).await {
            Err(e) => described.with_error_code(group_code(&e).code()),
            Ok(d) => described
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(&d.protocol_type))
                .with_protocol_data(str_bytes(&d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|(id, inst, client, host, sub, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(&id))
                                .with_group_instance_id(inst.as_deref().map(str_bytes))
                                .with_client_id(str_bytes(&client))
                                .with_client_host(str_bytes(&host))
                                .with_member_metadata(sub)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                ),
        }
    }))
    .await;
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn list(ctx: &Node, req: ListGroupsRequest) -> ListGroupsResponse {
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.as_str().to_lowercase()).collect();
    let groups = ctx
        .groups
        .list()
        .await
        .into_iter()
        .filter(|(_, _, state)| filter.is_empty() || filter.contains(&state.to_lowercase()))
        .map(|(id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type))
                .with_group_state(str_bytes(state))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete(ctx: &Node, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = join_all(req.groups_names.into_iter().map(|g| async move {
        let r = ctx.groups.delete(g.as_str()).await;
        DeletableGroupResult::default().with_group_id(g).with_error_code(code(r))
    }))
    .await;
    DeleteGroupsResponse::default().with_results(results)
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
