//! The client verbs of the `raftka` binary — `topic`, `cluster`, `group`,
//! `produce`, `consume` — all talking to a node's admin HTTP API
//! (`--server`, default the local node 127.0.0.1:8081). Human tables by
//! default, `--json` for scripts; errors go to stderr as one line and the
//! exit code is 1 (2 for bad usage, from clap).

pub mod client;
mod table;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::client::{CliError, Client};
use crate::cli::table::table;

/// Options every client verb takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Opts {
    /// A node's admin HTTP address.
    #[arg(long, global = true, env = "RAFTKA_SERVER", default_value = "127.0.0.1:8081")]
    pub server: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create, list, describe, delete and alter topics.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// The cluster's nodes and controller; watch leader changes live.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Consumer groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Produce stdin to a topic, one record a line.
    Produce(ProduceArgs),
    /// Print a topic's records to stdout, one a line.
    Consume(ConsumeArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum TopicCmd {
    Create {
        name: String,
        #[arg(long, short)]
        partitions: Option<i32>,
        #[arg(long, short = 'r')]
        replication_factor: Option<i32>,
        /// A topic config, `key=value` (repeatable).
        #[arg(long = "config", short = 'c', value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    List,
    Describe {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Set or remove configs, or grow the partition count.
    Alter {
        name: String,
        /// `key=value` to set (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// A config override to remove (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
        /// The new, larger partition count.
        #[arg(long)]
        partitions: Option<i32>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCmd {
    Status,
    /// Print leader changes and nodes going down or up as they happen.
    Watch,
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupCmd {
    List,
    Describe { id: String },
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    topic: String,
    /// Every record to this partition (default: by key, else spread).
    #[arg(long, short)]
    partition: Option<i32>,
    /// Split each line into key and value at the first SEP.
    #[arg(long, short = 'K')]
    key_separator: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    topic: String,
    /// Only this partition (default: all).
    #[arg(long, short)]
    partition: Option<i32>,
    /// `beginning`, `end`, or an offset.
    #[arg(long, short, default_value = "beginning")]
    offset: String,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max: Option<usize>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long, short)]
    follow: bool,
    /// Print the key too, then SEP, then the value.
    #[arg(long, short = 'K')]
    key_separator: Option<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not key=value"))
}

/// Runs one verb; the process exit code.
pub async fn run(opts: Opts, cmd: Command) -> ExitCode {
    let client = Client::new(&opts.server);
    let result = match cmd {
        Command::Topic(c) => topic(&client, &opts, c).await,
        Command::Cluster(ClusterCmd::Status) => cluster_status(&client, &opts).await,
        Command::Cluster(ClusterCmd::Watch) => watch(&client, &opts).await,
        Command::Group(c) => group(&client, &opts, c).await,
        Command::Produce(a) => produce(&client, &opts, a).await,
        Command::Consume(a) => consume(&client, &opts, a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

async fn topic(client: &Client, opts: &Opts, cmd: TopicCmd) -> Result<(), CliError> {
    match cmd {
        TopicCmd::Create { name, partitions, replication_factor, configs } => {
            let configs: BTreeMap<String, String> = configs.into_iter().collect();
            let body = json!({"name": name, "partitions": partitions, "replication_factor": replication_factor,
                "configs": configs});
            let topic: Value = client.call(Method::POST, "/v1/topics", Some(&body)).await?;
            show_topic(opts, &topic);
        }
        TopicCmd::List => {
            let topics: Value = client.get("/v1/topics").await?;
            if opts.json {
                print_json(&topics);
            } else {
                let rows = rows(&topics, &["name", "partitions", "replication_factor"]);
                print!("{}", table(&["TOPIC", "PARTITIONS", "REPLICATION"], rows));
            }
        }
        TopicCmd::Describe { name } => {
            let topic: Value = client.get(&format!("/v1/topics/{name}")).await?;
            show_topic(opts, &topic);
        }
        TopicCmd::Delete { name } => {
            client.call::<Value>(Method::DELETE, &format!("/v1/topics/{name}"), None::<&()>).await?;
            if opts.json {
                print_json(&json!({"deleted": name}));
            } else {
                println!("deleted topic {name}");
            }
        }
        TopicCmd::Alter { name, set, delete, partitions } => {
            if set.is_empty() && delete.is_empty() && partitions.is_none() {
                return Err(CliError::Usage("nothing to alter: give --set, --delete or --partitions".into()));
            }
            let mut topic = Value::Null;
            if let Some(count) = partitions {
                let path = format!("/v1/topics/{name}/partitions");
                topic = client.call(Method::POST, &path, Some(&json!({ "count": count }))).await?;
            }
            if !set.is_empty() || !delete.is_empty() {
                let mut body: BTreeMap<String, Value> =
                    set.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                body.extend(delete.into_iter().map(|k| (k, Value::Null)));
                topic =
                    client.call(Method::PATCH, &format!("/v1/topics/{name}/configs"), Some(&body)).await?;
            }
            show_topic(opts, &topic);
        }
    }
    Ok(())
}

fn rows(list: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().map(|item| fields.iter().map(|f| text(&item[*f])).collect()).collect()
}

fn show_topic(opts: &Opts, topic: &Value) {
    if opts.json {
        print_json(topic);
        return;
    }
    println!("topic {}  id {}", text(&topic["name"]), text(&topic["id"]));
    let fields = ["id", "leader", "leader_term", "replicas", "isr", "log_start_offset", "high_watermark"];
    let headers = ["PARTITION", "LEADER", "TERM", "REPLICAS", "ISR", "LOG START", "HIGH WATERMARK"];
    print!("{}", table(&headers, rows(&topic["partitions"], &fields)));
    if let Some(overrides) = topic["overrides"].as_object().filter(|o| !o.is_empty()) {
        let set: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={}", text(v))).collect();
        println!("configs: {}", set.join(" "));
    }
}

async fn cluster_status(client: &Client, opts: &Opts) -> Result<(), CliError> {
    let cluster: Value = client.get("/v1/cluster").await?;
    if opts.json {
        print_json(&cluster);
        return Ok(());
    }
    println!(
        "cluster {}  controller {} (term {})",
        text(&cluster["cluster_id"]),
        text(&cluster["controller"]["node_id"]),
        text(&cluster["controller"]["term"])
    );
    let mut nodes = rows(
        &cluster["nodes"],
        &["id", "alive", "kafka_addr", "http_addr", "is_controller_voter", "leader_count"],
    );
    for row in &mut nodes {
        row[1] = if row[1] == "true" { "up".into() } else { "DOWN".into() };
        row[4] = if row[4] == "true" { "yes".into() } else { "no".into() };
    }
    print!("{}", table(&["NODE", "STATE", "KAFKA", "HTTP", "VOTER", "LEADS"], nodes));
    Ok(())
}

/// Follows the events stream until the node closes it.
async fn watch(client: &Client, opts: &Opts) -> Result<(), CliError> {
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

fn print_event(opts: &Opts, event: &str, data: &str) {
    let Ok(v) = serde_json::from_str::<Value>(data) else { return };
    if opts.json {
        println!("{}", v);
    } else {
        match event {
            "hello" => println!("watching node {} (Ctrl-C stops)", text(&v["node_id"])),
            "leader" => println!(
                "{}  {}: leader {} (term {})",
                text(&v["at"]),
                text(&v["group"]),
                text(&v["leader"]),
                text(&v["term"])
            ),
            "node" => {
                let state = if v["alive"] == Value::Bool(true) { "up" } else { "DOWN" };
                println!("{}  node {} {state}", text(&v["at"]), text(&v["node_id"]));
            }
            _ => return,
        }
    }
    let _ = std::io::stdout().flush();
}

async fn group(client: &Client, opts: &Opts, cmd: GroupCmd) -> Result<(), CliError> {
    match cmd {
        GroupCmd::List => {
            let groups: Value = client.get("/v1/groups").await?;
            if opts.json {
                print_json(&groups);
            } else {
                let rows = rows(&groups, &["group_id", "state", "protocol_type", "coordinator"]);
                print!("{}", table(&["GROUP", "STATE", "PROTOCOL TYPE", "COORDINATOR"], rows));
            }
        }
        GroupCmd::Describe { id } => {
            let g: Value = client.get(&format!("/v1/groups/{id}")).await?;
            if opts.json {
                print_json(&g);
                return Ok(());
            }
            println!(
                "group {}  state {}  protocol {}  coordinator {}",
                text(&g["group_id"]),
                text(&g["state"]),
                text(&g["protocol"]),
                text(&g["coordinator"])
            );
            let members: Vec<Vec<String>> = g["members"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let assigned: Vec<String> = m["assignment"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|a| format!("{}:{}", text(&a["topic"]), text(&a["partitions"])))
                        .collect();
                    vec![
                        text(&m["member_id"]),
                        text(&m["client_id"]),
                        text(&m["client_host"]),
                        assigned.join(" "),
                    ]
                })
                .collect();
            print!("{}", table(&["MEMBER", "CLIENT", "HOST", "ASSIGNMENT"], members));
            let fields = ["topic", "partition", "committed", "high_watermark", "lag"];
            print!(
                "{}",
                table(
                    &["TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG"],
                    rows(&g["offsets"], &fields)
                )
            );
        }
    }
    Ok(())
}

/// Records per request.
const PRODUCE_BATCH: usize = 1000;

async fn produce(client: &Client, opts: &Opts, args: ProduceArgs) -> Result<(), CliError> {
    let path = format!("/v1/topics/{}/records", args.topic);
    let mut pending = Vec::new();
    let (mut sent, mut offsets) = (0usize, Vec::new());
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let line = lines.next().transpose()?;
        if let Some(line) = &line {
            let (key, value) = match &args.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(k), v),
                    None => (None, line.as_str()),
                },
                None => (None, line.as_str()),
            };
            pending.push(json!({"key": key, "value": value, "partition": args.partition}));
        }
        if pending.len() >= PRODUCE_BATCH || (line.is_none() && !pending.is_empty()) {
            let body = json!({ "records": std::mem::take(&mut pending) });
            let produced: Value = client.call(Method::POST, &path, Some(&body)).await?;
            let batch = produced["offsets"].as_array().cloned().unwrap_or_default();
            sent += batch.len();
            if opts.json {
                offsets.extend(batch);
            }
        }
        if line.is_none() {
            break;
        }
    }
    if opts.json {
        print_json(&json!({ "offsets": offsets }));
    } else {
        eprintln!("produced {sent} records to {}", args.topic);
    }
    Ok(())
}

async fn consume(client: &Client, opts: &Opts, args: ConsumeArgs) -> Result<(), CliError> {
    let topic: Value = client.get(&format!("/v1/topics/{}", args.topic)).await?;
    let count = topic["partitions"].as_array().map_or(0, Vec::len) as i32;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if (0..count).contains(&p) => vec![p],
        Some(p) => {
            return Err(CliError::Usage(format!("partition {p} out of range: '{}' has {count}", args.topic)))
        }
        None => (0..count).collect(),
    };
    let mut cursors = BTreeMap::new();
    for &p in &partitions {
        let info = &topic["partitions"][p as usize];
        let start = match args.offset.as_str() {
            "beginning" => info["log_start_offset"].as_i64().unwrap_or(0),
            "end" => info["high_watermark"].as_i64().unwrap_or(0),
            n => n
                .parse()
                .map_err(|_| CliError::Usage(format!("--offset '{n}' is not beginning, end or a number")))?,
        };
        cursors.insert(p, start);
    }
    let mut printed = 0usize;
    let out = std::io::stdout();
    loop {
        let mut idle = true;
        for (&p, cursor) in cursors.iter_mut() {
            let want = args.max.map_or(1000, |m| (m - printed).min(1000));
            let path = format!("/v1/topics/{}/partitions/{p}/records?offset={cursor}&max={want}", args.topic);
            let page: Value = client.get(&path).await?;
            let records = page["records"].as_array().cloned().unwrap_or_default();
            let mut lock = out.lock();
            for r in &records {
                let line = if opts.json {
                    let mut r = r.clone();
                    r["partition"] = json!(p);
                    r.to_string()
                } else {
                    match &args.key_separator {
                        Some(sep) => format!(
                            "{}{sep}{}",
                            r["key"].as_str().unwrap_or(""),
                            r["value"].as_str().unwrap_or("")
                        ),
                        None => r["value"].as_str().unwrap_or("").to_string(),
                    }
                };
                let _ = writeln!(lock, "{line}");
            }
            let _ = lock.flush();
            printed += records.len();
            idle &= records.is_empty();
            *cursor = page["next_offset"].as_i64().unwrap_or(*cursor);
            if args.max.is_some_and(|m| printed >= m) {
                return Ok(());
            }
        }
        if idle {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
