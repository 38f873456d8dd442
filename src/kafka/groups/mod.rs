//! Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups and
//! OffsetDelete. Each translates between the wire and `group::coordinator`;
//! `__consumer_offsets` is created on the first FindCoordinator. Membership
//! requests are here, offsets in `offsets`, group administration in `admin`.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::ResponseError;

use crate::group::membership::{GroupError, JoinArgs};
use crate::group::OFFSETS_TOPIC;
use crate::kafka::error::{group_code, metadata_code};
use crate::kafka::str_bytes;
use crate::metadata::command::Rejection;
use crate::metadata::handle::{MetadataError, NewTopic};
use crate::node::Node;

mod admin;
mod offsets;

pub use admin::{delete, describe, list};
pub use offsets::{commit, delete_offsets, fetch_offsets};

/// How long FindCoordinator waits for a just-created `__consumer_offsets`.
const CREATE_WAIT: Duration = Duration::from_secs(10);
/// Kafka `offset.metadata.max.bytes`.
pub(super) const MAX_OFFSET_METADATA: usize = 4096;

pub(super) fn code(r: Result<(), GroupError>) -> i16 {
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
