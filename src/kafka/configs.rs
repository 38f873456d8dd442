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
                    Some(t) => topic_config::describe(&t.configs, &ctx.config)
                        .into_iter()
                        .map(|d| Entry {
                            name: d.key.to_string(),
                            value: d.value,
                            source: d.source,
                            documentation: (!d.enforced).then_some(NOT_ENFORCED),
                        })
                        .collect(),
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
                .filter(|e| wanted.is_none_or(|w| w.iter().any(|x| x.as_str() == e.name)))
                .map(|e| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&e.name))
                        .with_value(Some(str_bytes(&e.value)))
                        .with_config_source(e.source as i8)
                        .with_read_only(r.resource_type == BROKER)
                        .with_documentation(e.documentation.map(str_bytes))
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One described config.
struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    documentation: Option<&'static str>,
}

/// The documentation of a topic config raftka accepts but does not act on.
const NOT_ENFORCED: &str = "accepted for compatibility; raftka does not act on this config";

fn broker_configs(ctx: &Node) -> Vec<Entry> {
    let c = &ctx.config;
    // The broker settings that are topic configs' defaults come from the
    // descriptor table.
    let own = [
        ("broker.id", c.node_id.to_string()),
        ("auto.create.topics.enable", c.auto_create_topics_enable.to_string()),
        ("num.partitions", c.num_partitions.to_string()),
        ("default.replication.factor", c.default_replication_factor.to_string()),
        ("socket.request.max.bytes", c.socket_request_max_bytes.to_string()),
        ("queued.max.request.bytes", c.queued_max_request_bytes.to_string()),
        ("max.connections.per.ip", c.max_connections_per_ip.to_string()),
        ("connections.max.idle.ms", c.connections_max_idle.as_millis().to_string()),
        ("fetch.max.bytes", c.fetch_max_bytes.to_string()),
    ];
    own.into_iter()
        .chain(topic_config::broker_defaults(c))
        .map(|(name, value)| Entry {
            name: name.to_string(),
            value,
            source: ConfigSource::StaticBroker,
            documentation: None,
        })
        .collect()
}
