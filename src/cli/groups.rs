//! `raftka group list|describe`.

use super::client::{CliError, Client};
use super::table::table;
use super::{ids, opt, print_json, GroupCmd, Opts};
use crate::http::groups::{GroupSummary, GroupView};

pub(super) async fn run(client: &Client, opts: &Opts, cmd: GroupCmd) -> Result<(), CliError> {
    match cmd {
        GroupCmd::List => {
            let groups: Vec<GroupSummary> = client.get("/v1/groups").await?;
            if opts.json {
                print_json(&groups);
            } else {
                let rows = groups
                    .into_iter()
                    .map(|g| vec![g.group_id, g.state, g.protocol_type, g.coordinator.to_string()])
                    .collect();
                print!("{}", table(&["GROUP", "STATE", "PROTOCOL TYPE", "COORDINATOR"], rows));
            }
        }
        GroupCmd::Describe { id } => {
            let g: GroupView = client.get(&format!("/v1/groups/{id}")).await?;
            if opts.json {
                print_json(&g);
                return Ok(());
            }
            println!(
                "group {}  state {}  protocol {}  coordinator {}",
                g.group_id, g.state, g.protocol, g.coordinator
            );
            let members = g
                .members
                .iter()
                .map(|m| {
                    let assigned: Vec<String> =
                        m.assignment.iter().map(|a| format!("{}:{}", a.topic, ids(&a.partitions))).collect();
                    vec![m.member_id.clone(), m.client_id.clone(), m.client_host.clone(), assigned.join(" ")]
                })
                .collect();
            print!("{}", table(&["MEMBER", "CLIENT", "HOST", "ASSIGNMENT"], members));
            let offsets = g
                .offsets
                .iter()
                .map(|o| {
                    vec![
                        o.topic.clone(),
                        o.partition.to_string(),
                        o.committed.to_string(),
                        opt(o.high_watermark),
                        opt(o.lag),
                    ]
                })
                .collect();
            print!("{}", table(&["TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG"], offsets));
        }
    }
    Ok(())
}
