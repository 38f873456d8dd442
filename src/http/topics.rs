//! `/v1/topics`: list, create, describe, delete, grow, alter configs. Checks
//! and placement are `MetadataHandle`'s, the same as for Kafka's admin APIs,
//! so both front ends accept and refuse exactly the same things.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, Body, ErrorBody};
use crate::http::status;
use crate::http::AppState;
use crate::metadata::command::Rejection;
use crate::metadata::handle::NewTopic;
use crate::metadata::topic_config;
use crate::raft::types::NodeId;

/// How long a create or grow waits for the new partitions' leaders before
/// answering, so the answer shows them and clients can use them at once.
const LEADER_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: usize,
    pub replication_factor: usize,
    /// Internal topics (`__consumer_offsets`) belong to the broker.
    pub internal: bool,
}

/// A config value: a string, or an integer or boolean taken as its text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConfigValue {
    Text(String),
    Integer(i64),
    Bool(bool),
}

impl ConfigValue {
    fn text(self) -> String {
        match self {
            ConfigValue::Text(s) => s,
            ConfigValue::Integer(n) => n.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    /// Default: the broker's `num_partitions`.
    pub partitions: Option<i32>,
    /// Default: the broker's `default_replication_factor`.
    pub replication_factor: Option<i32>,
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionView {
    pub id: i32,
    /// `null` while the partition has no live leader.
    pub leader: Option<NodeId>,
    /// The leader's Raft term: the Kafka leader epoch.
    pub leader_term: u64,
    pub replicas: Vec<NodeId>,
    /// Replicas alive and within `replica_lag_max_records` of the leader;
    /// `null` when the leader could not be asked.
    pub isr: Option<Vec<NodeId>>,
    pub high_watermark: Option<i64>,
    pub log_start_offset: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicView {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionView>,
    /// Every topic config with its effective value.
    pub configs: BTreeMap<String, String>,
    /// The configs set on this topic (the rest are defaults).
    pub overrides: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grow {
    /// The new partition count; must be larger than the current one.
    pub count: i32,
}

fn not_found(name: &str) -> ApiError {
    ApiError::from(crate::metadata::handle::MetadataError::from(Rejection::UnknownTopic(name.to_string())))
}

#[utoipa::path(get, operation_id = "topics_list", path = "/v1/topics", tag = "topics",
    responses((status = 200, description = "Every topic, by name", body = [TopicSummary])))]
pub async fn list(State(api): State<AppState>) -> Json<Vec<TopicSummary>> {
    let state = api.node.metadata.state();
    Json(
        state
            .topics
            .values()
            .map(|t| TopicSummary {
                name: t.name.clone(),
                partitions: t.partitions.len(),
                replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len()),
                internal: t.name.starts_with("__"),
            })
            .collect(),
    )
}

#[utoipa::path(post, operation_id = "topics_create", path = "/v1/topics", tag = "topics", request_body = CreateTopic,
    responses(
        (status = 201, description = "Created", body = TopicView),
        (status = 400, description = "Bad name, counts or configs", body = ErrorBody),
        (status = 409, description = "The topic exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)))]
pub async fn create(
    State(api): State<AppState>,
    Body(req): Body<CreateTopic>,
) -> Result<(StatusCode, Json<TopicView>), ApiError> {
    let ctx = &api.node;
    let new = NewTopic {
        name: req.name.clone(),
        partitions: req.partitions.unwrap_or(ctx.config.num_partitions),
        replication_factor: req
            .replication_factor
            .unwrap_or(i32::from(ctx.config.default_replication_factor)),
        configs: req.configs.into_iter().map(|(k, v)| (k, v.text())).collect(),
    };
    ctx.metadata.create_topic(&new, false).await?;
    ctx.routing.wait_for_leaders(&req.name, LEADER_WAIT).await;
    let view =
        view(&api, &req.name).await.ok_or_else(|| ApiError::unavailable("created; not visible here yet"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, operation_id = "topics_describe", path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, body = TopicView), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(api): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TopicView>, ApiError> {
    view(&api, &name).await.map(Json).ok_or_else(|| not_found(&name))
}

#[utoipa::path(delete, operation_id = "topics_delete", path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 204, description = "Deleted; every node removes its data"), (status = 404, body = ErrorBody)))]
pub async fn delete(State(api): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    api.node.metadata.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "topics_grow", path = "/v1/topics/{name}/partitions", tag = "topics", request_body = Grow,
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, body = TopicView), (status = 400, description = "Count not larger", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn grow(
    State(api): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<Grow>,
) -> Result<Json<TopicView>, ApiError> {
    api.node.metadata.create_partitions(&name, req.count, false).await?;
    api.node.routing.wait_for_leaders(&name, LEADER_WAIT).await;
    view(&api, &name).await.map(Json).ok_or_else(|| not_found(&name))
}

#[utoipa::path(patch, operation_id = "topics_alter", path = "/v1/topics/{name}/configs", tag = "topics",
    request_body(content = Object,
        description = "Configs to set (string, integer or boolean values); `null` removes an override"),
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, body = TopicView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn alter(
    State(api): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<BTreeMap<String, Option<ConfigValue>>>,
) -> Result<Json<TopicView>, ApiError> {
    let (mut set, mut delete) = (BTreeMap::new(), Vec::new());
    for (k, v) in req {
        match v {
            Some(v) => {
                set.insert(k, v.text());
            }
            None => delete.push(k),
        }
    }
    api.node.metadata.alter_configs(&name, set, delete).await?;
    view(&api, &name).await.map(Json).ok_or_else(|| not_found(&name))
}

/// The topic as its partitions' leaders see it.
pub async fn view(api: &AppState, name: &str) -> Option<TopicView> {
    let ctx = &api.node;
    let state = ctx.metadata.state();
    let topic = state.topic(name)?;
    let statuses = status::gather(api, &[name.to_string()]).await;
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = i as i32;
            let status = statuses.get(&(name.to_string(), id));
            let leader = ctx.routing.leader_of(name, id);
            PartitionView {
                id,
                leader: leader.map(|(l, _)| l),
                leader_term: leader.map_or(p.leader_term, |(_, t)| t as u64),
                replicas: p.replicas.clone(),
                isr: status.and_then(|s| s.isr.clone()),
                high_watermark: status.map(|s| s.high_watermark),
                log_start_offset: status.map(|s| s.log_start_offset),
            }
        })
        .collect();
    let configs = topic_config::describe(&topic.configs, &ctx.config)
        .into_iter()
        .map(|d| (d.key.to_string(), d.value))
        .collect();
    Some(TopicView {
        name: topic.name.clone(),
        id: topic.id.to_string(),
        internal: topic.name.starts_with("__"),
        partitions,
        configs,
        overrides: topic.configs.clone(),
    })
}
