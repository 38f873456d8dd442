//! openraft glue shared by every group: type configs, log storage (RocksDB, and
//! a partition group's segment files and in-memory tail: `retained`, `tail`),
//! the multi-raft transport (outgoing pools, incoming server, group registry)
//! the node-level failure detector, what this node's campaigns learned,
//! leadership of every group (`leadership`), and the snapshot image both state
//! machines use. No Kafka meaning here, and no broker `Config`: groups are
//! configured from a `Timing`.

pub mod applied;
pub mod ballots;
pub mod leadership;
pub mod liveness;
pub mod log_store;
pub mod network;
pub mod registry;
pub mod retained;
pub mod rpc;
pub mod server;
pub mod tail;
pub mod types;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

/// A duration in openraft's unit, whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The node's settings every Raft group's configuration is made from (the
/// broker fills it from its `Config`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    /// A peer not heard from for this long is down (`liveness`).
    pub node_timeout: Duration,
    /// Entries between snapshots (and, in the metadata group, log purges).
    pub snapshot_logs: u64,
}

/// openraft settings of the metadata group: openraft's own heartbeats and
/// election timers (a handful of voters, so their cost does not matter).
pub fn raft_config(cfg: &Timing, cluster: &str) -> Result<Arc<openraft::Config>, Box<openraft::ConfigError>> {
    let c = openraft::Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: millis(cfg.heartbeat_interval),
        election_timeout_min: millis(cfg.election_timeout),
        election_timeout_max: millis(cfg.election_timeout) * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs),
        max_in_snapshot_log_to_keep: cfg.snapshot_logs / 2,
        ..Default::default()
    };
    Ok(Arc::new(c.validate().map_err(Box::new)?))
}

/// openraft settings of partition groups. A node hosts thousands of them, so
/// per-group heartbeats and election timers are off: `liveness` detects dead
/// nodes once per peer and `leadership::Elections` starts elections and
/// nudges lagging followers (DESIGN.md: "coalesce heartbeats").
///
/// Timers still matter in two ways. `heartbeat_interval` is openraft's
/// deadline for one AppendEntries, so it is generous; and
/// `election_timeout_max` is the leader lease during which a follower that
/// heard from its leader refuses to vote. It is short (0.3 node timeouts): a
/// leader whose process is gone is known dead at once (`liveness` sees its
/// port refuse), and the vote must not wait long behind that; the lease
/// guards little more anyway, since a leader that writes renews it with
/// every AppendEntries and an idle one, sending no heartbeats, has none.
pub fn partition_raft_config(
    cfg: &Timing,
    cluster: &str,
) -> Result<Arc<openraft::Config>, Box<openraft::ConfigError>> {
    let lease = (millis(cfg.node_timeout) * 3 / 10).max(60);
    let c = openraft::Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: lease / 2,
        election_timeout_min: lease / 2 + 1,
        election_timeout_max: lease,
        enable_heartbeat: false,
        enable_elect: false,
        // The tick only drives those two timers (and a leader's step-down
        // after a membership change removes it, which partition groups never
        // make): a wake-up per group every few hundred ms saved.
        enable_tick: false,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs),
        // Never purged on openraft's schedule: a partition's Raft log is its
        // record log, purged where retention and compaction let go of it
        // (`partition::retention`), so followers catch up from it.
        max_in_snapshot_log_to_keep: u64::MAX,
        ..Default::default()
    };
    let mut c = c.validate().map_err(Box::new)?;
    // Set after validation, which wants it below the election timeout: with
    // heartbeats off it is only the AppendEntries deadline and the period of
    // openraft's tick task, which wakes even when disabled — at 1,000 groups
    // a short period alone costs several percent of a core.
    c.heartbeat_interval = PARTITION_APPEND_TIMEOUT_MS;
    Ok(Arc::new(c))
}

/// Deadline of one AppendEntries in a partition group (see above).
const PARTITION_APPEND_TIMEOUT_MS: u64 = 5_000;
