//! `raftka topic create|list|describe|delete|alter`.

use std::collections::BTreeMap;

use reqwest::Method;

use super::client::{CliError, Client};
use super::table::table;
use super::{ids, opt, print_json, Opts, TopicCmd};
use crate::http::topics::{ConfigValue, CreateTopic, Grow, TopicSummary, TopicView};

pub(super) async fn run(client: &Client, opts: &Opts, cmd: TopicCmd) -> Result<(), CliError> {
    match cmd {
        TopicCmd::Create { name, partitions, replication_factor, configs } => {
            let configs = configs.into_iter().map(|(k, v)| (k, ConfigValue::Text(v))).collect();
            let body = CreateTopic { name, partitions, replication_factor, configs };
            let topic: TopicView = client.call(Method::POST, "/v1/topics", Some(&body)).await?;
            show(opts, &topic);
        }
        TopicCmd::List => {
            let topics: Vec<TopicSummary> = client.get("/v1/topics").await?;
            if opts.json {
                print_json(&topics);
            } else {
                let rows = topics
                    .iter()
                    .map(|t| vec![t.name.clone(), t.partitions.to_string(), t.replication_factor.to_string()])
                    .collect();
                print!("{}", table(&["TOPIC", "PARTITIONS", "REPLICATION"], rows));
            }
        }
        TopicCmd::Describe { name } => {
            let topic: TopicView = client.get(&format!("/v1/topics/{name}")).await?;
            show(opts, &topic);
        }
        TopicCmd::Delete { name } => {
            client.call::<()>(Method::DELETE, &format!("/v1/topics/{name}"), None::<&()>).await?;
            if opts.json {
                print_json(&BTreeMap::from([("deleted", &name)]));
            } else {
                println!("deleted topic {name}");
            }
        }
        TopicCmd::Alter { name, set, delete, partitions } => {
            if set.is_empty() && delete.is_empty() && partitions.is_none() {
                return Err(CliError::Usage("nothing to alter: give --set, --delete or --partitions".into()));
            }
            let mut topic = None;
            if let Some(count) = partitions {
                let path = format!("/v1/topics/{name}/partitions");
                topic = Some(client.call::<TopicView>(Method::POST, &path, Some(&Grow { count })).await?);
            }
            if !set.is_empty() || !delete.is_empty() {
                let mut body: BTreeMap<String, Option<String>> =
                    set.into_iter().map(|(k, v)| (k, Some(v))).collect();
                body.extend(delete.into_iter().map(|k| (k, None)));
                let path = format!("/v1/topics/{name}/configs");
                topic = Some(client.call::<TopicView>(Method::PATCH, &path, Some(&body)).await?);
            }
            if let Some(topic) = topic {
                show(opts, &topic);
            }
        }
    }
    Ok(())
}

fn show(opts: &Opts, topic: &TopicView) {
    if opts.json {
        print_json(topic);
        return;
    }
    println!("topic {}  id {}", topic.name, topic.id);
    let headers = ["PARTITION", "LEADER", "TERM", "REPLICAS", "ISR", "LOG START", "HIGH WATERMARK"];
    let rows = topic
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                opt(p.leader),
                p.leader_term.to_string(),
                ids(&p.replicas),
                p.isr.as_deref().map_or_else(|| "-".into(), ids),
                opt(p.log_start_offset),
                opt(p.high_watermark),
            ]
        })
        .collect();
    print!("{}", table(&headers, rows));
    if !topic.overrides.is_empty() {
        let set: Vec<String> = topic.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("configs: {}", set.join(" "));
    }
}
