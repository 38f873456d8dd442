//! The `raftka` binary: parse arguments, load the config, run the subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use raftka::broker::Broker;
use raftka::cli;
use raftka::config::Config;

#[derive(Parser)]
#[command(name = "raftka", version, about = "A Kafka-compatible broker on Raft and RocksDB")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    opts: cli::Opts,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker node.
    Broker(BrokerArgs),
    #[command(flatten)]
    Client(cli::Command),
}

#[derive(clap::Args)]
struct BrokerArgs {
    /// TOML config file (also RAFTKA_CONFIG).
    #[arg(long, env = "RAFTKA_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long)]
    node_id: Option<u64>,
    #[arg(long)]
    kafka_addr: Option<String>,
    #[arg(long)]
    http_addr: Option<String>,
    #[arg(long)]
    raft_addr: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => {
            raftka::telemetry::init();
            run_broker(args)
        }
        Command::Client(cmd) => run_client(cli.opts, cmd),
    }
}

/// A client verb: a small runtime, one API conversation, an exit code.
fn run_client(opts: cli::Opts, cmd: cli::Command) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(cli::run(opts, cmd)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(args: BrokerArgs) -> ExitCode {
    let mut config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(2);
        }
    };
    if let Some(v) = args.node_id {
        config.node_id = v;
    }
    if let Some(v) = args.kafka_addr {
        config.kafka_addr = v;
    }
    if let Some(v) = args.http_addr {
        config.http_addr = v;
    }
    if let Some(v) = args.raft_addr {
        config.raft_addr = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = match Broker::start(config).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "broker failed to start");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        broker.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
