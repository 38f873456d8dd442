//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default: info for
//! raftka, errors only for openraft, which is chatty below that and logs every
//! failed replication attempt to a down node; raftka logs node failures once).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=error,openraft::replication=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
