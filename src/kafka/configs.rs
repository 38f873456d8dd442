//! DescribeConfigs for topics (overrides, broker defaults, built-in defaults)
//! and for this broker.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use crate::kafka::str_bytes;
use crate::metadata::topic_config::{self, ConfigSource};
use crate::node::Node;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

pub fn describe(ctx: &Node, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.as_str().to_string();
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries = match r.resource_type {
                TOPIC => match ctx.metadata.state().topic(&name) {
                    Some(t) => topic_config::describe(&t.configs, &ctx.config),
                    None => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(&format!("topic '{name}' does not exist"))))
                    }
                },
                BROKER if name.is_empty() || name == ctx.node_id.to_string() => broker_configs(ctx),
                BROKER => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(&format!("broker '{name}' is not this broker"))))
                }
                other => {
                    return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(
                        Some(str_bytes(&format!("resource type {other} is not supported"))),
                    )
                }
            };
            let wanted = r.configuration_keys.as_ref();
            let configs = entries
                .into_iter()
                .filter(|(k, _, _)| wanted.is_none_or(|w| w.iter().any(|x| x.as_str() == k)))
                .map(|(k, v, source)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&k))
                        .with_value(Some(str_bytes(&v)))
                        .with_config_source(source as i8)
                        .with_read_only(r.resource_type == BROKER)
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn broker_configs(ctx: &Node) -> Vec<(String, String, ConfigSource)> {
    let c = &ctx.config;
    [
        ("broker.id", c.node_id.to_string()),
        ("auto.create.topics.enable", c.auto_create_topics_enable.to_string()),
        ("num.partitions", c.num_partitions.to_string()),
        ("default.replication.factor", c.default_replication_factor.to_string()),
        ("message.max.bytes", c.message_max_bytes.to_string()),
        ("socket.request.max.bytes", c.socket_request_max_bytes.to_string()),
        ("queued.max.request.bytes", c.queued_max_request_bytes.to_string()),
        ("max.connections.per.ip", c.max_connections_per_ip.to_string()),
        ("connections.max.idle.ms", c.connections_max_idle_ms.to_string()),
        ("fetch.max.bytes", c.fetch_max_bytes.to_string()),
        ("log.retention.ms", c.log_retention_ms.to_string()),
        ("log.retention.bytes", c.log_retention_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v, ConfigSource::StaticBroker))
    .collect()
}
