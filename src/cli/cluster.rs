//! `raftka cluster status|watch`.

use std::io::Write;

use futures::StreamExt;

use super::client::{CliError, Client};
use super::table::table;
use super::{opt, Opts};
use crate::events::Event;
use crate::http::cluster::{ClusterView, Hello};

pub(super) async fn status(client: &Client, opts: &Opts) -> Result<(), CliError> {
    let cluster: ClusterView = client.get("/v1/cluster").await?;
    if opts.json {
        super::print_json(&cluster);
        return Ok(());
    }
    println!(
        "cluster {}  controller {} (term {})",
        opt(cluster.cluster_id.as_deref()),
        opt(cluster.controller.node_id),
        cluster.controller.term
    );
    let nodes = cluster
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                if n.alive { "up" } else { "DOWN" }.into(),
                n.kafka_addr.clone(),
                n.http_addr.clone(),
                if n.is_controller_voter { "yes" } else { "no" }.into(),
                n.leader_count.to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["NODE", "STATE", "KAFKA", "HTTP", "VOTER", "LEADS"], nodes));
    Ok(())
}

/// Follows the events stream until the node closes it.
pub(super) async fn watch(client: &Client, opts: &Opts) -> Result<(), CliError> {
    let resp = client.stream("/v1/cluster/events").await?;
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut event = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Unreachable {
            server: client.server().to_string(),
            reason: e.to_string(),
        })?;
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                print_event(opts, &event, data.trim());
            }
        }
    }
    Err(CliError::StreamClosed { server: client.server().to_string() })
}

/// One event as a line; events of kinds this CLI does not know are skipped.
fn print_event(opts: &Opts, event: &str, data: &str) {
    if opts.json {
        println!("{data}");
    } else if event == "hello" {
        let Ok(hello) = serde_json::from_str::<Hello>(data) else { return };
        println!("watching node {} (Ctrl-C stops)", hello.node_id);
    } else {
        match serde_json::from_str::<Event>(data) {
            Ok(Event::Leader { group, leader, term, at }) => {
                println!("{at}  {group}: leader {} (term {term})", opt(leader))
            }
            Ok(Event::Node { node_id, alive, at }) => {
                println!("{at}  node {node_id} {}", if alive { "up" } else { "DOWN" })
            }
            Ok(Event::Stuck { group, since, at }) => {
                println!("{at}  {group}: NO LEADER since {since} (a majority of its replicas is gone)")
            }
            Err(_) => return,
        }
    }
    let _ = std::io::stdout().flush();
}
