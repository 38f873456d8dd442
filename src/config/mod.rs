//! Every tunable of a broker, with its default. Layers, lowest first: the
//! built-in defaults, a TOML file (`--config`), `RAFTKA_<FIELD>` environment
//! variables (field name upper-cased, e.g. `RAFTKA_NUM_PARTITIONS=3`), then
//! command-line flags. Unknown keys in the file are an error; unknown
//! `RAFTKA_*` variables are a warning. `raftka broker` with nothing set runs a
//! one-node cluster on 127.0.0.1:9092 with its data in `./data`.
//!
//! Durations are `Duration`s here and whole milliseconds outside (keys end
//! in `_ms`, as Kafka's do); sizes are unsigned byte counts (keys end in
//! `_bytes`); Kafka's "-1 means none" is `None` here and `-1` outside.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod units;

use units::minus_one_is_none;
pub use units::{kafka_long, kafka_millis};

use crate::net::Budget;
use crate::raft::types::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// A topic to create at start-up: `name:partitions:replication[:cleanup.policy]`,
/// the format of the seed's `KAFKA_CREATE_TOPICS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub cleanup_policy: Option<String>,
}

impl std::str::FromStr for TopicSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let usage = || format!("'{s}' is not name:partitions:replication[:policy]");
        match parts.as_slice() {
            [name, p, r] | [name, p, r, _] => Ok(TopicSpec {
                name: name.to_string(),
                partitions: p.parse().map_err(|_| usage())?,
                replication_factor: r.parse().map_err(|_| usage())?,
                cleanup_policy: parts.get(3).map(|p| p.to_string()),
            }),
            _ => Err(usage()),
        }
    }
}

/// A voter of the metadata group: `id@host:port` (its Raft address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: NodeId,
    pub raft_addr: String,
}

impl std::str::FromStr for Voter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (id, addr) = s.trim().split_once('@').ok_or_else(|| format!("'{s}' is not id@host:port"))?;
        Ok(Voter {
            id: id.parse().map_err(|_| format!("'{id}' is not a node id"))?,
            raft_addr: addr.to_string(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This broker's id (Kafka `broker.id`, Raft node id). Default 1.
    pub node_id: NodeId,
    /// Kafka listener. Default 127.0.0.1:9092. Port 0 picks a free port.
    pub kafka_addr: String,
    /// Address advertised to Kafka clients; default: the bound Kafka address.
    pub advertised_kafka_addr: Option<String>,
    /// Admin HTTP listener. Default 127.0.0.1:8081.
    pub http_addr: String,
    /// Inter-broker Raft listener. Default 127.0.0.1:7001.
    pub raft_addr: String,
    /// Where RocksDB lives. Default ./data.
    pub data_dir: PathBuf,
    /// Initial metadata voters, `id@host:raft_port`; empty = this node alone.
    pub voters: Vec<String>,
    /// Topics created at start-up, `name:partitions:rf[:policy]`.
    pub create_topics: Vec<String>,
    /// Kafka `auto.create.topics.enable`. Default true.
    pub auto_create_topics_enable: bool,
    /// Kafka `num.partitions`: partitions of auto-created topics. Default 1.
    pub num_partitions: i32,
    /// Kafka `default.replication.factor`. Default 1.
    pub default_replication_factor: i16,
    /// Kafka `message.max.bytes`: the largest record batch. Default 1048588.
    pub message_max_bytes: usize,
    /// Kafka `socket.request.max.bytes`: the largest request frame. Default 100 MiB.
    pub socket_request_max_bytes: usize,
    /// Open Kafka connections at most. Default 10000.
    pub max_connections: usize,
    /// Kafka `fetch.max.bytes`: the most one Fetch answers, whatever the
    /// client asks (at least one batch is always returned). Default 57671680.
    pub fetch_max_bytes: usize,
    /// Kafka `max.connections.per.ip`: open Kafka connections from one
    /// address at most; more are closed on accept. Default 1000 (Kafka: no
    /// limit).
    pub max_connections_per_ip: usize,
    /// Kafka `connections.max.idle.ms`: a Kafka connection with nothing
    /// received, in flight or sent for this long is closed. Default 600000.
    #[serde(rename = "connections_max_idle_ms", with = "crate::codec::millis")]
    pub connections_max_idle: Duration,
    /// A frame (Kafka, Raft, HTTP headers) whose first bytes arrived must
    /// arrive whole within this, waiting for the budget included, and a
    /// response must be taken by its client within this, or the connection
    /// is closed. Default 30000.
    #[serde(rename = "frame_timeout_ms", with = "crate::codec::millis")]
    pub frame_timeout: Duration,
    /// Kafka `queued.max.request.bytes`: bytes of Kafka requests being read
    /// or served at once, over all connections; a connection whose next
    /// frame does not fit waits (stops reading) until it does, within
    /// `frame_timeout_ms`. An eighth is kept for frames of at most 64 KiB;
    /// the rest must hold a `socket_request_max_bytes` frame. Default 512 MiB.
    pub queued_max_request_bytes: usize,
    /// Largest admin HTTP request body. Default 8 MiB.
    pub http_max_body_bytes: usize,
    /// Open admin HTTP connections at most (more wait to be accepted).
    /// Default 1024.
    pub http_max_connections: usize,
    /// Partitions the cluster may hold, over all topics (each is a Raft
    /// group); creates and growth past it are refused with
    /// INVALID_PARTITIONS. Default 20000.
    pub max_partitions: usize,
    /// Open connections to the Raft listener at most. Default 1024.
    pub raft_max_connections: usize,
    /// Bytes of Raft frames being read or served at once, over all
    /// connections; seven eighths must hold a `raft_max_frame_bytes` frame.
    /// Default 512 MiB.
    pub raft_queued_max_bytes: usize,
    /// Requests decoded ahead of the one being answered, per connection. Default 16.
    pub max_inflight_requests: usize,
    /// Kafka `log.retention.ms` (-1 = forever). Default 7 days.
    #[serde(rename = "log_retention_ms", with = "minus_one_is_none::millis")]
    pub log_retention: Option<Duration>,
    /// Kafka `log.retention.bytes` (-1 = unlimited). Default -1.
    #[serde(with = "minus_one_is_none::bytes")]
    pub log_retention_bytes: Option<u64>,
    /// How often retention runs, in ms. Default 5000.
    #[serde(rename = "log_retention_check_interval_ms", with = "crate::codec::millis")]
    pub log_retention_check_interval: Duration,
    /// Sync RocksDB's WAL (and the segment files) before acknowledging a
    /// write. Default false: writes survive `kill -9` of the process, not a
    /// power loss of the machine. With it on, appends of all partitions
    /// share their syncs (`storage::syncer`).
    pub fsync: bool,
    /// A partition's record batches are written to segment files of this
    /// many bytes (the last may be a little larger); disk space is given back
    /// a whole segment at a time once retention, compaction or deletion let
    /// go of every batch in it. Kafka's `log.segment.bytes`. Default 64 MiB.
    pub log_segment_bytes: u64,
    /// Raft heartbeat interval in ms. Default 100.
    #[serde(rename = "raft_heartbeat_interval_ms", with = "crate::codec::millis")]
    pub raft_heartbeat_interval: Duration,
    /// Minimum Raft election timeout in ms (maximum is twice this). Default 500.
    #[serde(rename = "raft_election_timeout_ms", with = "crate::codec::millis")]
    pub raft_election_timeout: Duration,
    /// Entries between Raft snapshots. The metadata log is purged behind
    /// them; a partition's Raft log holds its records and is purged only
    /// where retention, compaction or deletion let go of them. Default 10000.
    pub raft_snapshot_logs: u64,
    /// Deadline of one inter-broker RPC in ms. Default 2000.
    #[serde(rename = "raft_rpc_timeout_ms", with = "crate::codec::millis")]
    pub raft_rpc_timeout: Duration,
    /// A broker not heard from for this long (ms) is taken for down, and the
    /// partitions it led elect new leaders. Default 500.
    #[serde(rename = "node_timeout_ms", with = "crate::codec::millis")]
    pub node_timeout: Duration,
    /// A broker that comes back (restarted, resumed, its network restored)
    /// takes its preferred partition leaderships back once it has been up
    /// this long (ms). Sooner, clients still backing off their reconnects to
    /// it would stall on those partitions: librdkafka waits up to
    /// `reconnect.backoff.max.ms` (10 s by default) between attempts.
    /// Default 12000.
    #[serde(rename = "leader_return_delay_ms", with = "crate::codec::millis")]
    pub leader_return_delay: Duration,
    /// Largest inter-broker frame. Default 256 MiB.
    pub raft_max_frame_bytes: usize,
    /// How long a graceful shutdown may take before tasks are aborted, in ms.
    #[serde(rename = "shutdown_timeout_ms", with = "crate::codec::millis")]
    pub shutdown_timeout: Duration,
    /// Kafka `offsets.topic.num.partitions`: partitions of `__consumer_offsets`. Default 50.
    pub offsets_topic_num_partitions: i32,
    /// Kafka `offsets.topic.replication.factor`, capped to the live brokers. Default 3.
    pub offsets_topic_replication_factor: i16,
    /// A `__consumer_offsets` partition is compacted (like any compacted
    /// topic, then its log start moved to the first record kept) once this
    /// many records, and as many as its last compaction kept, were written
    /// since. Default 10000.
    pub offsets_compaction_min_records: u64,
    /// Kafka `group.min.session.timeout.ms`. Default 1000 (Kafka: 6000), so
    /// tests and impatient users can expire members quickly.
    #[serde(rename = "group_min_session_timeout_ms", with = "crate::codec::millis")]
    pub group_min_session_timeout: Duration,
    /// Kafka `group.max.session.timeout.ms`. Default 1800000.
    #[serde(rename = "group_max_session_timeout_ms", with = "crate::codec::millis")]
    pub group_max_session_timeout: Duration,
    /// Kafka `group.initial.rebalance.delay.ms`. Default 0 (Kafka: 3000): the
    /// first member of an empty group starts consuming at once.
    #[serde(rename = "group_initial_rebalance_delay_ms", with = "crate::codec::millis")]
    pub group_initial_rebalance_delay: Duration,
    /// A replica is in sync (the ISR of Kafka's Metadata and the admin API)
    /// while it is alive and lacks at most this many committed records of its
    /// leader's log. Default 100,000 (a twentieth of a second at 2M records/s).
    pub replica_lag_max_records: u64,
    /// A `cleanup.policy=compact` partition is compacted once at least this
    /// many records (and as many as it kept last time) were written since its
    /// last compaction; checked every `log_retention_check_interval_ms`.
    /// Default 1000.
    pub log_cleaner_min_dirty_records: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 1,
            kafka_addr: "127.0.0.1:9092".into(),
            advertised_kafka_addr: None,
            http_addr: "127.0.0.1:8081".into(),
            raft_addr: "127.0.0.1:7001".into(),
            data_dir: PathBuf::from("data"),
            voters: Vec::new(),
            create_topics: Vec::new(),
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            fetch_max_bytes: 57_671_680,
            max_connections_per_ip: 1_000,
            connections_max_idle: Duration::from_millis(600_000),
            frame_timeout: Duration::from_millis(30_000),
            queued_max_request_bytes: 512 * 1024 * 1024,
            http_max_body_bytes: 8 * 1024 * 1024,
            http_max_connections: 1_024,
            max_partitions: 20_000,
            raft_max_connections: 1_024,
            raft_queued_max_bytes: 512 * 1024 * 1024,
            max_inflight_requests: 16,
            log_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            log_retention_bytes: None,
            log_retention_check_interval: Duration::from_millis(5_000),
            fsync: false,
            log_segment_bytes: crate::storage::DEFAULT_SEGMENT_BYTES,
            raft_heartbeat_interval: Duration::from_millis(100),
            raft_election_timeout: Duration::from_millis(500),
            raft_snapshot_logs: 10_000,
            raft_rpc_timeout: Duration::from_millis(2_000),
            node_timeout: Duration::from_millis(500),
            leader_return_delay: Duration::from_millis(12_000),
            raft_max_frame_bytes: 256 * 1024 * 1024,
            shutdown_timeout: Duration::from_millis(10_000),
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_compaction_min_records: 10_000,
            group_min_session_timeout: Duration::from_millis(1_000),
            group_max_session_timeout: Duration::from_millis(1_800_000),
            group_initial_rebalance_delay: Duration::from_millis(0),
            replica_lag_max_records: 100_000,
            log_cleaner_min_dirty_records: 1_000,
        }
    }
}

/// `RAFTKA_*` variables read by the CLI and `scripts/cluster`, not settings.
const NOT_SETTINGS: [&str; 6] = ["CONFIG", "BIN", "CLUSTER_DIR", "KAFKA_PORT", "HTTP_PORT", "RAFT_PORT"];

/// Fields whose environment value is a comma-separated list.
const LIST_FIELDS: [&str; 2] = ["voters", "create_topics"];

impl Config {
    /// Defaults, then `file`, then `RAFTKA_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                toml::from_str::<toml::Table>(&text)?
            }
            None => toml::Table::new(),
        };
        let mut known: BTreeSet<String> = match toml::Table::try_from(Config::default()) {
            Ok(t) => t.keys().cloned().collect(),
            Err(_) => BTreeSet::new(),
        };
        // `None` by default, so serialization leaves it out.
        known.insert("advertised_kafka_addr".into());
        for (key, value) in env {
            let Some(field) = key.strip_prefix("RAFTKA_") else {
                continue;
            };
            if NOT_SETTINGS.contains(&field) {
                continue;
            }
            let field = field.to_ascii_lowercase();
            if !known.contains(&field) {
                tracing::warn!(variable = %key, "unknown RAFTKA_ variable ignored");
                continue;
            }
            let parsed = if LIST_FIELDS.contains(&field.as_str()) {
                toml::Value::Array(
                    value
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| toml::Value::String(s.trim().into()))
                        .collect(),
                )
            } else {
                parse_scalar(&value)
            };
            table.insert(field, parsed);
        }
        let config: Config = table.try_into()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.to_string() });
        if self.log_segment_bytes < 1024 {
            return invalid("log_segment_bytes", "must be at least 1024");
        }
        if self.num_partitions < 1 {
            return invalid("num_partitions", "must be at least 1");
        }
        if self.default_replication_factor < 1 {
            return invalid("default_replication_factor", "must be at least 1");
        }
        if self.message_max_bytes < 64 || i32::try_from(self.message_max_bytes).is_err() {
            return invalid("message_max_bytes", "must be at least 64 and fit Kafka's int32");
        }
        if self.max_connections == 0 || self.max_inflight_requests == 0 {
            return invalid("max_connections", "limits must be at least 1");
        }
        if self.max_connections_per_ip == 0
            || self.raft_max_connections == 0
            || self.http_max_connections == 0
        {
            return invalid("max_connections_per_ip", "limits must be at least 1");
        }
        if self.frame_timeout.is_zero() || self.connections_max_idle.is_zero() {
            return invalid("frame_timeout_ms", "timeouts must be at least 1 ms");
        }
        // The largest frame, with its 4-byte length, must fit the budget's
        // large lane (seven eighths of it, `net::budget`).
        let fits =
            |budget: usize, frame: usize| Budget::new(budget).largest_frame() >= frame.saturating_add(4);
        if !fits(self.queued_max_request_bytes, self.socket_request_max_bytes) {
            return invalid(
                "queued_max_request_bytes",
                "must hold a socket_request_max_bytes frame in 7/8 of it",
            );
        }
        // One AppendEntries carries at least one entry, which may hold a
        // whole produce request's batches for its partition.
        if self.raft_max_frame_bytes < self.socket_request_max_bytes.saturating_add(1 << 20) {
            return invalid("raft_max_frame_bytes", "must exceed socket_request_max_bytes by at least 1 MiB");
        }
        if !fits(self.raft_queued_max_bytes, self.raft_max_frame_bytes) {
            return invalid("raft_queued_max_bytes", "must hold a raft_max_frame_bytes frame in 7/8 of it");
        }
        if self.raft_heartbeat_interval.is_zero()
            || self.raft_election_timeout <= self.raft_heartbeat_interval
        {
            return invalid("raft_election_timeout_ms", "must exceed raft_heartbeat_interval_ms");
        }
        if self.node_timeout < Duration::from_millis(100) {
            return invalid("node_timeout_ms", "must be at least 100");
        }
        for spec in &self.create_topics {
            spec.parse::<TopicSpec>()
                .map_err(|reason| ConfigError::Invalid { key: "create_topics", reason })?;
        }
        for v in &self.voters {
            v.parse::<Voter>().map_err(|reason| ConfigError::Invalid { key: "voters", reason })?;
        }
        Ok(())
    }

    pub fn topic_specs(&self) -> Vec<TopicSpec> {
        self.create_topics.iter().filter_map(|s| s.parse().ok()).collect()
    }

    /// The metadata voters; this node alone when none are configured.
    pub fn voter_list(&self) -> Vec<Voter> {
        let voters: Vec<Voter> = self.voters.iter().filter_map(|s| s.parse().ok()).collect();
        if voters.is_empty() {
            vec![Voter { id: self.node_id, raft_addr: self.raft_addr.clone() }]
        } else {
            voters
        }
    }
}

/// An environment value as TOML: integers and booleans typed, the rest strings.
fn parse_scalar(value: &str) -> toml::Value {
    if let Ok(i) = value.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = value.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_a_one_node_cluster() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.kafka_addr, "127.0.0.1:9092");
        assert_eq!(c.voter_list(), vec![Voter { id: 1, raft_addr: "127.0.0.1:7001".into() }]);
    }

    #[test]
    fn env_overrides_file_and_lists_split_on_commas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "node_id = 3\nnum_partitions = 2\n").unwrap();
        let c = Config::load(
            Some(&path),
            env(&[("RAFTKA_NUM_PARTITIONS", "5"), ("RAFTKA_CREATE_TOPICS", "Topic1:1:3,Topic2:1:1:compact")]),
        )
        .unwrap();
        assert_eq!(c.node_id, 3);
        assert_eq!(c.num_partitions, 5);
        let specs = c.topic_specs();
        assert_eq!(specs[1].cleanup_policy.as_deref(), Some("compact"));
        assert_eq!(specs[0].replication_factor, 3);
    }

    #[test]
    fn minus_one_means_none_and_durations_are_milliseconds() {
        let c = Config::load(
            None,
            env(&[
                ("RAFTKA_LOG_RETENTION_MS", "-1"),
                ("RAFTKA_LOG_RETENTION_BYTES", "4096"),
                ("RAFTKA_NODE_TIMEOUT_MS", "750"),
            ]),
        )
        .unwrap();
        assert_eq!((c.log_retention, c.log_retention_bytes), (None, Some(4096)));
        assert_eq!(c.node_timeout, Duration::from_millis(750));
        assert_eq!(kafka_millis(Config::default().log_retention), 604_800_000);
        assert!(Config::load(None, env(&[("RAFTKA_LOG_RETENTION_MS", "-2")])).is_err());
    }

    #[test]
    fn typos_in_the_file_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "num_partitons = 2\n").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err());
        assert!(Config::load(None, env(&[("RAFTKA_CREATE_TOPICS", "a:b")])).is_err());
        assert!(Config::load(None, env(&[("RAFTKA_NUM_PARTITIONS", "0")])).is_err());
    }
}
