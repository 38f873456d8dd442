//! Topic administration over Kafka: CreateTopics, DeleteTopics and
//! CreatePartitions. Validation and placement live in `MetadataHandle`; this
//! file turns requests into its calls and its errors into Kafka codes.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::ResponseError;

use crate::kafka::error::metadata_code;
use crate::kafka::str_bytes;
use crate::metadata::handle::{MetadataError, NewTopic};
use crate::metadata::topic_config;
use crate::node::Node;

fn timeout_of(ms: i32) -> Duration {
    Duration::from_millis(ms.clamp(0, 60_000) as u64)
}

pub async fn create(ctx: &Node, version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.as_str().to_string();
        let (partitions, rf) = if t.assignments.is_empty() {
            let p = if t.num_partitions == -1 { ctx.config.num_partitions } else { t.num_partitions };
            let rf = if t.replication_factor == -1 {
                ctx.metadata.capped_replication(i32::from(ctx.config.default_replication_factor))
            } else {
                i32::from(t.replication_factor)
            };
            (p, rf)
        } else {
            (t.assignments.len() as i32, t.assignments.first().map_or(0, |a| a.broker_ids.len() as i32))
        };
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| Some((c.name.as_str().to_string(), c.value.as_ref()?.as_str().to_string())))
            .collect();
        let new =
            NewTopic { name: name.clone(), partitions, replication_factor: rf, configs: configs.clone() };
        let result = CreatableTopicResult::default().with_name(t.name);
        match ctx.metadata.create_topic(&new, req.validate_only).await {
            Ok(id) => {
                if !req.validate_only {
                    tracing::info!(topic = %name, partitions, replication_factor = rf, "topic created");
                    ctx.routing.wait_for_leaders(&name, timeout_of(req.timeout_ms)).await;
                }
                let mut r = result.with_num_partitions(partitions).with_replication_factor(rf as i16);
                if version >= 7 {
                    r = r.with_topic_id(id);
                }
                if version >= 5 {
                    let described = topic_config::describe(&configs, &ctx.config)
                        .into_iter()
                        .map(|d| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(d.key))
                                .with_value(Some(str_bytes(&d.value)))
                                .with_config_source(d.source as i8)
                        })
                        .collect();
                    r = r.with_configs(Some(described));
                }
                results.push(r);
            }
            Err(e) => {
                tracing::info!(topic = %name, error = %e, "create topic refused");
                results.push(error_result(result, &e));
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn error_result(r: CreatableTopicResult, e: &MetadataError) -> CreatableTopicResult {
    r.with_error_code(metadata_code(e).code()).with_error_message(Some(str_bytes(&e.to_string())))
}

pub async fn delete(ctx: &Node, version: i16, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
    let state = ctx.metadata.state();
    let mut targets: Vec<(Option<String>, uuid::Uuid)> =
        req.topic_names.iter().map(|n| (Some(n.as_str().to_string()), uuid::Uuid::nil())).collect();
    for t in &req.topics {
        let name = t.name.as_ref().map(|n| n.as_str().to_string()).or_else(|| {
            state
                .topics
                .values()
                .find(|info| info.id == t.topic_id && !t.topic_id.is_nil())
                .map(|i| i.name.clone())
        });
        targets.push((name, t.topic_id));
    }
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str_bytes(&n))));
        if version >= 6 {
            r = r.with_topic_id(id);
        }
        let Some(name) = name else {
            responses.push(r.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        match ctx.metadata.delete_topic(&name).await {
            Ok(()) => tracing::info!(topic = %name, "topic deleted"),
            Err(e) => {
                r = r.with_error_code(metadata_code(&e).code());
                if version >= 5 {
                    r = r.with_error_message(Some(str_bytes(&e.to_string())));
                }
            }
        }
        responses.push(r);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(ctx: &Node, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.as_str().to_string();
        let r = CreatePartitionsTopicResult::default().with_name(t.name);
        match ctx.metadata.create_partitions(&name, t.count, req.validate_only).await {
            Ok(()) => {
                if !req.validate_only {
                    tracing::info!(topic = %name, count = t.count, "partitions created");
                    ctx.routing.wait_for_leaders(&name, timeout_of(req.timeout_ms)).await;
                }
                results.push(r);
            }
            Err(e) => results.push(
                r.with_error_code(metadata_code(&e).code())
                    .with_error_message(Some(str_bytes(&e.to_string()))),
            ),
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}
