//! The client verbs of the `raftka` binary — `topic`, `cluster`, `group`,
//! `produce`, `consume` — all talking to a node's admin HTTP API
//! (`--server`, default the local node 127.0.0.1:8081). Human tables by
//! default, `--json` for scripts; errors go to stderr as one line and the
//! exit code is 1 (2 for bad usage, from clap).

//!
//! Answers are read into the server's own view types (`crate::http::*`), so
//! a change to the API's shape breaks the build, not a field lookup.

pub mod client;
mod cluster;
mod groups;
mod records;
mod table;
mod topics;

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::client::Client;

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
    pub(crate) topic: String,
    /// Every record to this partition (default: by key, else spread).
    #[arg(long, short)]
    pub(crate) partition: Option<i32>,
    /// Split each line into key and value at the first SEP.
    #[arg(long, short = 'K')]
    pub(crate) key_separator: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    pub(crate) topic: String,
    /// Only this partition (default: all).
    #[arg(long, short)]
    pub(crate) partition: Option<i32>,
    /// `beginning`, `end`, or an offset.
    #[arg(long, short, default_value = "beginning")]
    pub(crate) offset: String,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub(crate) max: Option<usize>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long, short)]
    pub(crate) follow: bool,
    /// Print the key too, then SEP, then the value.
    #[arg(long, short = 'K')]
    pub(crate) key_separator: Option<String>,
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
        Command::Topic(c) => topics::run(&client, &opts, c).await,
        Command::Cluster(ClusterCmd::Status) => cluster::status(&client, &opts).await,
        Command::Cluster(ClusterCmd::Watch) => cluster::watch(&client, &opts).await,
        Command::Group(c) => groups::run(&client, &opts, c).await,
        Command::Produce(a) => records::produce(&client, &opts, a).await,
        Command::Consume(a) => records::consume(&client, &opts, a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A cell: the value, or `-` when there is none.
fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A cell listing ids, comma-separated.
fn ids(v: &[impl ToString]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
