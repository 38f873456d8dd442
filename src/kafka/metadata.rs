//! Metadata: brokers, controller, topics and partition leaders, answered from
//! this broker's replica of the metadata state. Unknown topics are created on
//! request when `auto_create_topics_enable` is on, as Kafka does, and the
//! answer waits briefly for their leaders so the client can use them at once.
//!
//! An answer that would name no leader for a partition whose leader's node
//! went down moments ago, while enough replicas are up to elect another,
//! waits for that election (at most `ELECTION_WAIT` after the death). A
//! client told "no leader" asks again on its own schedule — librdkafka at
//! its next one-second topic scan — so the wait is what lets it write again
//! an election after a kill, not up to a second later. Responses on a
//! connection go out in request order, so requests behind this one wait
//! too, for as long as the election takes.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use crate::kafka::error::metadata_code;
use crate::kafka::str_bytes;
use crate::metadata::handle::{validate_topic_name, MetadataError, NewTopic};
use crate::metadata::state::TopicInfo;
use crate::node::Node;

/// How long a Metadata request waits for an auto-created topic's leaders.
const AUTO_CREATE_WAIT: Duration = Duration::from_secs(5);

/// How long after a node's death an answer still waits for the elections
/// of the partitions it led: librdkafka's topic scan interval, after which
/// waiting gains a client nothing.
const ELECTION_WAIT: Duration = Duration::from_secs(1);

pub async fn handle(ctx: &Node, version: i16, req: MetadataRequest) -> MetadataResponse {
    let requested: Option<Vec<String>> = match req.topics {
        // v0 has no null: an empty list means every topic.
        Some(t) if version == 0 && t.is_empty() => None,
        Some(t) => Some(t.into_iter().filter_map(|t| t.name.map(|n| n.as_str().to_string())).collect()),
        None => None,
    };
    let allow_auto_create = version < 4 || req.allow_auto_topic_creation;
    let mut creation_errors: BTreeMap<String, ResponseError> = BTreeMap::new();
    if let Some(names) = &requested {
        for name in names {
            if ctx.metadata.state().topic(name).is_some() {
                continue;
            }
            if let Some(code) = auto_create(ctx, name, allow_auto_create).await {
                creation_errors.insert(name.clone(), code);
            }
        }
    }

    let names: Vec<String> =
        requested.unwrap_or_else(|| ctx.metadata.state().topics.keys().cloned().collect());
    ctx.routing.wait_for_elections(&names, ELECTION_WAIT).await;

    let state = ctx.metadata.state();
    let brokers = state
        .brokers
        .values()
        .filter_map(|b| {
            let (host, port) = b.kafka_host_port()?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id as i32))
                    .with_host(str_bytes(host))
                    .with_port(port),
            )
        })
        .collect();
    let topics = names
        .into_iter()
        .map(|name| match (state.topic(&name), creation_errors.get(&name)) {
            (Some(t), _) => describe_topic(ctx, t),
            (None, code) => MetadataResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(&name))))
                .with_error_code(code.copied().unwrap_or(ResponseError::UnknownTopicOrPartition).code()),
        })
        .collect();
    let controller = ctx.metadata.controller().0.map_or(-1, |id| id as i32);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(state.cluster_id.as_deref().map(str_bytes))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
}

/// Creates `name` if allowed; returns the error code to report otherwise.
async fn auto_create(ctx: &Node, name: &str, allowed: bool) -> Option<ResponseError> {
    if validate_topic_name(name).is_err() {
        return Some(ResponseError::InvalidTopicException);
    }
    if !allowed || !ctx.config.auto_create_topics_enable {
        return Some(ResponseError::UnknownTopicOrPartition);
    }
    let req = NewTopic {
        name: name.to_string(),
        partitions: ctx.config.num_partitions,
        replication_factor: ctx.metadata.capped_replication(i32::from(ctx.config.default_replication_factor)),
        configs: BTreeMap::new(),
    };
    match ctx.metadata.create_topic(&req, false).await {
        Ok(_) | Err(MetadataError::Rejected(crate::metadata::command::Rejection::TopicExists(_))) => {
            tracing::info!(topic = name, partitions = req.partitions, "auto-created topic");
            if ctx.routing.wait_for_leaders(name, AUTO_CREATE_WAIT).await {
                None
            } else {
                Some(ResponseError::LeaderNotAvailable)
            }
        }
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-create failed");
            Some(match metadata_code(&e) {
                ResponseError::NotController | ResponseError::RequestTimedOut => {
                    ResponseError::LeaderNotAvailable
                }
                other => other,
            })
        }
    }
}

fn describe_topic(ctx: &Node, t: &TopicInfo) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let replicas: Vec<BrokerId> = p.replicas.iter().map(|r| BrokerId(*r as i32)).collect();
            // The leader knows which replicas keep up; other brokers list
            // them all, as they cannot tell.
            let isr = ctx
                .partitions
                .get(&t.name, i as i32)
                .filter(|h| ctx.partitions.serves_as_leader(h))
                .and_then(|h| h.in_sync(|n| ctx.metadata.is_alive(n), ctx.config.replica_lag_max_records))
                .map_or_else(
                    || replicas.clone(),
                    |isr| isr.into_iter().map(|r| BrokerId(r as i32)).collect(),
                );
            let part = MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_replica_nodes(replicas)
                .with_isr_nodes(isr);
            match ctx.routing.leader_of(&t.name, i as i32) {
                Some((leader, epoch)) => {
                    part.with_leader_id(BrokerId(leader as i32)).with_leader_epoch(epoch)
                }
                None => part
                    .with_leader_id(BrokerId(-1))
                    .with_error_code(ResponseError::LeaderNotAvailable.code()),
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&t.name))))
        .with_topic_id(t.id)
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}
