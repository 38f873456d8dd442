//! openraft glue shared by every group: type configs, RocksDB log storage,
//! the multi-raft transport (outgoing pools, incoming server, group registry)
//! and the snapshot image both state machines use. No Kafka meaning here.

pub mod applied;
pub mod log_store;
pub mod network;
pub mod registry;
pub mod server;
pub mod types;
pub mod wire;

use std::sync::Arc;

/// openraft settings shared by every group of this node.
pub fn raft_config(
    cfg: &crate::config::Config,
    cluster: &str,
) -> Result<Arc<openraft::Config>, Box<openraft::ConfigError>> {
    let c = openraft::Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: cfg.raft_heartbeat_interval_ms,
        election_timeout_min: cfg.raft_election_timeout_ms,
        election_timeout_max: cfg.raft_election_timeout_ms * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.raft_snapshot_logs),
        max_in_snapshot_log_to_keep: cfg.raft_snapshot_logs / 2,
        ..Default::default()
    };
    Ok(Arc::new(c.validate().map_err(Box::new)?))
}
