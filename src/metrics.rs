//! `/metrics`: what this node counts as it works (Kafka requests and their
//! latency per API, produce commit latency) and, read at scrape time, what it
//! holds (its replicas' offsets, terms and follower lag, the metadata group,
//! node liveness, elections seen, RocksDB sizes). Rendered in the OpenMetrics
//! text format that Prometheus scrapes, with `prometheus-client`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::events::Events;
use crate::metadata::handle::MetadataHandle;
use crate::net::stats::EdgeStats;
use crate::partition::manager::PartitionManager;
use crate::storage::Storage;

/// A Kafka API, labelled by its name (`Produce`, `Fetch`, …).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub struct Api(pub i16);

impl EncodeLabelValue for Api {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> std::fmt::Result {
        match ApiKey::try_from(self.0) {
            Ok(key) => write!(encoder, "{key:?}"),
            Err(_) => write!(encoder, "{}", self.0),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: Api,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

type LatencyFamily = Family<ApiLabels, Histogram, fn() -> Histogram>;

/// The counters of one broker; cheap to share.
pub struct Metrics {
    requests: Family<ApiLabels, Counter>,
    latency: LatencyFamily,
    commit_latency: Histogram,
    /// Fetches parked until data arrives or their wait runs out.
    fetches_waiting: Gauge,
    /// What the Kafka, Raft and HTTP listeners refused and hold.
    pub kafka_edge: Arc<EdgeStats>,
    pub raft_edge: Arc<EdgeStats>,
    pub http_edge: Arc<EdgeStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        let refused = Family::default();
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            commit_latency: latency_histogram(),
            fetches_waiting: Gauge::default(),
            kafka_edge: Arc::new(EdgeStats::new("kafka", refused.clone())),
            raft_edge: Arc::new(EdgeStats::new("raft", refused.clone())),
            http_edge: Arc::new(EdgeStats::new("http", refused)),
        }
    }
}

impl Metrics {
    /// One Kafka request of `api` answered in `elapsed`.
    pub fn request(&self, api: i16, elapsed: Duration) {
        let labels = ApiLabels { api: Api(api) };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// A produce append committed by its partition's Raft group in `elapsed`.
    pub fn commit(&self, elapsed: Duration) {
        self.commit_latency.observe(elapsed.as_secs_f64());
    }

    /// Counts one parked fetch until the guard is dropped.
    pub fn fetch_waiting(&self) -> Parked {
        self.fetches_waiting.inc();
        Parked(self.fetches_waiting.clone())
    }

    /// Fetches parked right now.
    pub fn fetches_waiting(&self) -> i64 {
        self.fetches_waiting.get()
    }

    /// The text exposition: the counters above and `live`'s state.
    pub fn render(&self, live: Live) -> String {
        let mut registry = Registry::with_prefix("raftka");
        registry.register("kafka_requests", "Kafka requests answered, per API", self.requests.clone());
        registry.register(
            "kafka_request_duration_seconds",
            "Kafka request latency, per API",
            self.latency.clone(),
        );
        registry.register(
            "raft_commit_duration_seconds",
            "Produce appends: proposal to majority commit",
            self.commit_latency.clone(),
        );
        registry.register(
            "kafka_fetches_waiting",
            "Fetches parked until data arrives or their wait runs out",
            self.fetches_waiting.clone(),
        );
        // One family for every listener, labelled by `listener`.
        let refused = self.kafka_edge.refusal_family();
        registry.register(
            "connections_refused",
            "Connections the broker closed or never admitted, per listener and reason",
            refused,
        );
        registry.register_collector(Box::new(live));
        registry.register_collector(Box::new(Edges([
            self.kafka_edge.clone(),
            self.raft_edge.clone(),
            self.http_edge.clone(),
        ])));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "cannot render metrics");
        }
        out
    }
}

/// One fetch counted as parked while this lives.
pub struct Parked(Gauge);

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the node holds, read at scrape time.
pub struct Live {
    pub metadata: MetadataHandle,
    pub partitions: Arc<PartitionManager>,
    pub storage: Arc<Storage>,
    pub events: Arc<Events>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    topic: String,
    partition: i32,
    replica: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CfLabels {
    cf: &'static str,
}

fn family<L: EncodeLabelSet + Clone + Eq + std::hash::Hash + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: Vec<(L, i64)>,
) -> std::fmt::Result {
    let f: Family<L, Gauge> = Family::default();
    for (labels, value) in rows {
        f.get_or_create(&labels).set(value);
    }
    f.encode(encoder.encode_descriptor(name, help, None, f.metric_type())?)
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let state = self.metadata.state();
        let (mut hw, mut lso, mut term, mut leader, mut lag) = (vec![], vec![], vec![], vec![], vec![]);
        for h in self.partitions.all() {
            let labels = PartitionLabels { topic: h.topic.to_string(), partition: h.partition };
            let offsets = h.log.offsets();
            hw.push((labels.clone(), offsets.high_watermark));
            lso.push((labels.clone(), offsets.log_start_offset));
            let (_, t) = h.leader();
            term.push((labels.clone(), t as i64));
            let leads = self.partitions.serves_as_leader(&h);
            leader.push((labels.clone(), i64::from(leads)));
            if leads {
                for (replica, behind) in h.replica_lag() {
                    lag.push((
                        ReplicaLabels { topic: labels.topic.clone(), partition: h.partition, replica },
                        i64::try_from(behind).unwrap_or(i64::MAX),
                    ));
                }
            }
        }
        family(
            &mut encoder,
            "partition_high_watermark",
            "Next offset to be committed, per local replica",
            hw,
        )?;
        family(&mut encoder, "partition_log_start_offset", "First offset kept, per local replica", lso)?;
        family(&mut encoder, "partition_raft_term", "Raft term (leader epoch), per local replica", term)?;
        family(&mut encoder, "partition_is_leader", "1 where this node leads the partition", leader)?;
        family(
            &mut encoder,
            "partition_replica_lag_records",
            "Committed records a follower lacks, per partition this node leads",
            lag,
        )?;
        let (controller, metadata_term) = self.metadata.controller();
        family(
            &mut encoder,
            "metadata_raft_term",
            "Raft term of the metadata group",
            vec![(NodeLabels { node: self.metadata.node_id() }, metadata_term as i64)],
        )?;
        family(
            &mut encoder,
            "metadata_leader",
            "The metadata group's leader as this node knows it (-1: none)",
            vec![(NodeLabels { node: self.metadata.node_id() }, controller.map_or(-1, |c| c as i64))],
        )?;
        let alive =
            state.brokers.keys().map(|&n| (NodeLabels { node: n }, i64::from(self.metadata.is_alive(n))));
        family(&mut encoder, "node_alive", "1 while this node hears from the broker", alive.collect())?;
        let stuck = Gauge::<i64>::default();
        stuck.set(i64::try_from(self.events.stuck()).unwrap_or(i64::MAX));
        stuck.encode(encoder.encode_descriptor(
            "partitions_stuck",
            "Groups without a leader for longer than five node timeouts (a majority of replicas gone)",
            None,
            stuck.metric_type(),
        )?)?;
        let elections = ConstCounter::new(self.events.elections());
        elections.encode(encoder.encode_descriptor(
            "raft_elections",
            "New leaders (metadata group and partitions) this node has seen",
            None,
            elections.metric_type(),
        )?)?;
        let (appends, rounds) = self.storage.sync_counts();
        for (name, help, value) in [
            ("log_synced_appends", "Log appends made durable by the group commit (fsync = true)", appends),
            (
                "log_sync_rounds",
                "Group-commit rounds: file and WAL syncs shared by the appends waiting",
                rounds,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let (mut sst, mut mem) = (vec![], vec![]);
        for (cf, sst_bytes, mem_bytes) in self.storage.sizes() {
            sst.push((CfLabels { cf }, sst_bytes as i64));
            mem.push((CfLabels { cf }, mem_bytes as i64));
        }
        family(&mut encoder, "rocksdb_sst_bytes", "Bytes in SST files, per column family", sst)?;
        family(&mut encoder, "rocksdb_memtable_bytes", "Bytes in memtables, per column family", mem)?;
        Ok(())
    }
}

/// Open connections and budget in use, per listener, read at scrape time.
#[derive(Debug)]
struct Edges([Arc<EdgeStats>; 3]);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

impl Collector for Edges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let rows = |f: fn(&EdgeStats) -> i64| {
            self.0.iter().map(|e| (ListenerLabels { listener: e.listener }, f(e))).collect()
        };
        family(
            &mut encoder,
            "connections_open",
            "Open connections, per listener",
            rows(|e| e.open_connections()),
        )?;
        family(
            &mut encoder,
            "queued_request_bytes",
            "Bytes of requests being read or served, per listener (its budget in use)",
            rows(|e| e.queued_bytes() as i64),
        )
    }
}
