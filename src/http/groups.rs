//! `/v1/groups`: consumer groups as their coordinators know them. A group is
//! described by its coordinator (the leader of its `__consumer_offsets`
//! partition; another node forwards there), with each committed offset's lag
//! behind its partition's high watermark. The list gathers every node's
//! coordinated groups, as Kafka's admin client asks every broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Buf;
use futures::future::join_all;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::group::coordinator::Description;
use crate::group::membership::{GroupError, GroupState};
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::{peer, status, AppState};
use crate::raft::types::NodeId;

/// How long a describe waits for a coordinator that is still loading.
const LOAD_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupSummary {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub coordinator: NodeId,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded for `consumer` groups; empty otherwise.
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OffsetView {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub metadata: Option<String>,
    /// `null` when the partition's leader could not be asked.
    pub high_watermark: Option<i64>,
    /// Records between the committed offset and the high watermark.
    pub lag: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub group_id: String,
    /// Empty, PreparingRebalance, CompletingRebalance, Stable.
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub coordinator: NodeId,
    pub members: Vec<MemberView>,
    pub offsets: Vec<OffsetView>,
}

/// `GET /v1/internal/groups`: the groups this node coordinates.
pub async fn local_list(State(api): State<AppState>) -> Json<Vec<GroupSummary>> {
    let me = api.node.node_id;
    let groups = api.node.groups.list().await;
    Json(
        groups
            .into_iter()
            .map(|g| GroupSummary {
                group_id: g.id,
                protocol_type: g.protocol_type,
                state: g.state.name().to_string(),
                coordinator: me,
            })
            .collect(),
    )
}

#[utoipa::path(get, operation_id = "groups_list", path = "/v1/groups", tag = "groups",
    responses((status = 200, description = "Groups of every reachable coordinator", body = [GroupSummary])))]
pub async fn list(State(api): State<AppState>) -> Json<Vec<GroupSummary>> {
    let state = api.node.metadata.state();
    let me = api.node.node_id;
    let api = &api;
    let others = state.brokers.values().filter(|b| b.id != me && api.node.metadata.is_alive(b.id));
    let asks = others.map(|b| async move {
        api.peers.get_json::<Vec<GroupSummary>>(&b.http_addr, "/v1/internal/groups").await.unwrap_or_default()
    });
    let mut all: BTreeMap<String, GroupSummary> = BTreeMap::new();
    let Json(mine) = local_list(State(api.clone())).await;
    for g in mine.into_iter().chain(join_all(asks).await.into_iter().flatten()) {
        all.insert(g.group_id.clone(), g);
    }
    Json(all.into_values().collect())
}

#[utoipa::path(get, operation_id = "groups_describe", path = "/v1/groups/{id}", tag = "groups",
    params(("id" = String, Path, description = "Group id")),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody),
        (status = 503, description = "No coordinator reachable yet", body = ErrorBody)))]
pub async fn describe(
    State(api): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = &api.node;
    let state = ctx.metadata.state();
    let missing = || ApiError::from(GroupError::GroupIdNotFound);
    let count = state.topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len());
    if count == 0 {
        return Err(missing());
    }
    let partition = partition_for(&id, count);
    let coordinator = ctx
        .routing
        .leader_of(OFFSETS_TOPIC, partition)
        .map(|(n, _)| n)
        .ok_or_else(|| ApiError::unavailable("the group's coordinator is being elected"))?;
    if coordinator != ctx.node_id {
        if peer::was_forwarded(&headers) {
            return Err(ApiError::unavailable("not this node's group; its coordinator is moving"));
        }
        let addr = state.brokers.get(&coordinator).map(|b| b.http_addr.clone()).ok_or_else(missing)?;
        return api.peers.forward(&addr, Method::GET, &format!("/v1/groups/{id}"), None).await;
    }
    let deadline = Instant::now() + LOAD_WAIT;
    let (description, offsets) = loop {
        let attempt = async {
            Ok::<_, GroupError>((ctx.groups.describe(&id).await?, ctx.groups.offsets(&id, None).await?))
        };
        match attempt.await {
            Err(GroupError::LoadInProgress) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    if description.state == GroupState::Dead && offsets.is_empty() {
        return Err(missing());
    }
    let mut topics: Vec<String> = offsets.iter().map(|(t, _, _)| t.clone()).collect();
    topics.sort();
    topics.dedup();
    let statuses = status::gather(&api, &topics).await;
    let offsets = offsets
        .into_iter()
        .filter_map(|(topic, partition, committed)| {
            let c = committed?;
            let hw = statuses.get(&(topic.clone(), partition)).map(|s| s.high_watermark);
            Some(OffsetView {
                lag: hw.map(|hw| (hw - c.offset).max(0)),
                high_watermark: hw,
                topic,
                partition,
                committed: c.offset,
                metadata: c.metadata,
            })
        })
        .collect();
    Ok(Json(view(id, coordinator, description, offsets)).into_response())
}

fn view(group_id: String, coordinator: NodeId, d: Description, offsets: Vec<OffsetView>) -> GroupView {
    let consumer = d.protocol_type == "consumer";
    let members = d
        .members
        .into_iter()
        .map(|m| MemberView {
            member_id: m.id,
            instance_id: m.instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            assignment: if consumer { decode_assignment(m.assignment) } else { Vec::new() },
        })
        .collect();
    GroupView {
        group_id,
        state: d.state.name().to_string(),
        protocol_type: d.protocol_type,
        protocol: d.protocol,
        coordinator,
        members,
        offsets,
    }
}

/// A consumer's assignment (`ConsumerProtocolAssignment`, version-prefixed);
/// empty when it does not decode.
fn decode_assignment(mut bytes: bytes::Bytes) -> Vec<TopicPartitions> {
    if bytes.remaining() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)) else {
        return Vec::new();
    };
    a.assigned_partitions
        .into_iter()
        .map(|tp| TopicPartitions { topic: tp.topic.to_string(), partitions: tp.partitions })
        .collect()
}
