//! Builds one broker from its `Config`: opens RocksDB, binds the Kafka, HTTP
//! and Raft listeners, starts the metadata group and the partition manager,
//! creates start-up topics, and owns the ordered graceful shutdown: stop
//! accepting → drain connections under a deadline → shut every Raft group
//! down → flush RocksDB (STYLE.md §12). `parts` builds the pieces in order;
//! `cluster` forms or joins the cluster and follows its metadata.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metadata::handle::MetadataHandle;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::partition::manager::PartitionManager;
use crate::partition::{leadership, retention};
use crate::raft::liveness::Liveness;
use crate::raft::network::Transport;
use crate::raft::registry::Registry;
use crate::raft::server;
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::storage::{Storage, StorageError};

mod cluster;
mod parts;

use cluster::create_startup_topics;
use parts::{Core, Listeners};
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error("cannot read the address of a bound listener: {0}")]
    LocalAddr(std::io::Error),
    #[error("invalid raft settings: {0}")]
    RaftConfig(#[from] Box<openraft::ConfigError>),
    // openraft's errors are large; boxed so every `Result` stays small.
    #[error("the metadata raft stopped: {0}")]
    RaftStopped(Box<openraft::error::Fatal<NodeId>>),
    #[error("cannot initialise the metadata group: {0}")]
    Initialize(Box<InitializeFailure>),
    #[error("no metadata leader within {0:?}")]
    NoLeader(Duration),
}

type InitializeFailure =
    openraft::error::RaftError<NodeId, openraft::error::InitializeError<NodeId, BasicNode>>;

impl From<openraft::error::Fatal<NodeId>> for BrokerError {
    fn from(e: openraft::error::Fatal<NodeId>) -> Self {
        BrokerError::RaftStopped(Box::new(e))
    }
}

impl From<InitializeFailure> for BrokerError {
    fn from(e: InitializeFailure) -> Self {
        BrokerError::Initialize(Box::new(e))
    }
}

/// How long start-up waits for the metadata group to elect a leader.
const LEADER_WAIT: Duration = Duration::from_secs(60);
/// How long a graceful shutdown waits for leaderships to move.
const HANDOVER_WAIT: Duration = Duration::from_secs(3);

/// A running broker.
pub struct Broker {
    pub node_id: NodeId,
    pub kafka_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub metadata: MetadataHandle,
    pub partitions: Arc<PartitionManager>,
    node: Arc<Node>,
    config: Arc<Config>,
    storage: Arc<Storage>,
    transport: Arc<Transport>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    raft_stop: CancellationToken,
    raft_tasks: TaskTracker,
}

impl Broker {
    pub async fn start(config: Config) -> Result<Broker, BrokerError> {
        let config = Arc::new(config);
        let node_id = config.node_id;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| BrokerError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let storage = Arc::new(Storage::open_with(&config.data_dir, config.fsync, config.log_segment_bytes)?);
        let listeners = Listeners::bind(&config).await?;
        let liveness = Arc::new(Liveness::new(node_id, config.node_timeout));
        let core = Core {
            config: config.clone(),
            storage,
            transport: Transport::new(config.raft_max_frame_bytes),
            registry: Arc::new(Registry::new(liveness.clone())),
            liveness,
            metrics: Arc::new(Metrics::default()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let metadata = core.start_metadata().await?;
        // The Raft server outlives the other tasks on shutdown: handing
        // leaderships over needs this node's votes.
        let (raft_stop, raft_tasks) = (CancellationToken::new(), TaskTracker::new());
        let raft_limits = server::Limits {
            max_frame: config.raft_max_frame_bytes,
            max_connections: config.raft_max_connections,
            queued_max_bytes: config.raft_queued_max_bytes,
            frame_timeout: config.frame_timeout,
        };
        let Listeners { kafka, http, raft, addrs } = listeners;
        let edge = core.metrics.raft_edge.clone();
        raft_tasks.spawn(server::serve(raft, core.registry.clone(), raft_limits, edge, raft_stop.clone()));
        core.enter_cluster(&metadata, addrs).await?;
        let partitions = core.start_partitions(&metadata).await?;
        create_startup_topics(&config, &metadata).await;
        let node = core.node(&metadata, &partitions);
        core.serve_clients(&node, kafka, http);
        core.tasks.spawn(retention::run(
            config.clone(),
            metadata.clone(),
            partitions.clone(),
            core.shutdown.clone(),
        ));

        tracing::info!(node_id, kafka = %addrs.kafka, http = %addrs.http, raft = %addrs.raft, "ready");
        let Core { storage, transport, registry, shutdown, tasks, .. } = core;
        Ok(Broker {
            node_id,
            kafka_addr: addrs.kafka,
            http_addr: addrs.http,
            raft_addr: addrs.raft,
            metadata,
            partitions,
            node,
            config,
            storage,
            transport,
            registry,
            shutdown,
            tasks,
            raft_stop,
            raft_tasks,
        })
    }

    /// Graceful shutdown; returns once RocksDB is flushed.
    pub async fn shutdown(self) {
        tracing::info!(node_id = self.node_id, "shutting down");
        // Leaderships go first, while clients are still connected: a write
        // in flight commits or hears NOT_LEADER_OR_FOLLOWER with the new
        // leader known, and the client moves at once. Connections closed
        // first would leave clients finding this node still named leader and
        // backing off for seconds.
        self.registry.drain();
        self.hand_over_leaderships().await;
        self.shutdown.cancel();
        self.tasks.close();
        let deadline = self.config.shutdown_timeout;
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "tasks still running at the shutdown deadline");
        }
        self.raft_stop.cancel();
        self.raft_tasks.close();
        self.raft_tasks.wait().await;
        self.partitions.shutdown().await;
        if let Err(e) = self.metadata.raft().shutdown().await {
            tracing::warn!(error = %e, "metadata raft shutdown");
        }
        if let Err(e) = self.storage.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
        tracing::info!(node_id = self.node_id, "stopped");
    }
}

impl Broker {
    /// The node's database, for tests that check what is stored.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// The node's Raft transport: in-process cluster tests cut and slow its
    /// links (`Transport::set_link_rule`).
    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// The node's failure detector, for tests that wait on what it knows
    /// of its peers.
    pub fn liveness(&self) -> &Arc<Liveness> {
        self.registry.liveness()
    }

    /// The node's services, for in-process harnesses (the fuzzer feeds
    /// requests to `kafka::dispatch` without a socket).
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Moves this node's partition and metadata leaderships to caught-up
    /// replicas so clients fail over at once instead of after an election
    /// timeout.
    async fn hand_over_leaderships(&self) {
        let state = self.metadata.state();
        let availability = leadership::Availability {
            liveness: self.registry.liveness().clone(),
            return_delay: self.config.leader_return_delay,
        };
        leadership::hand_over(
            self.node_id,
            &state,
            &self.partitions,
            &self.transport,
            &availability,
            HANDOVER_WAIT,
        )
        .await;
        let raft = self.metadata.raft();
        if self.metadata.controller().0 != Some(self.node_id) {
            return;
        }
        let voters: Vec<NodeId> =
            raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        let asked =
            leadership::hand_over_group(raft, METADATA_GROUP, self.node_id, &voters, &state, &self.transport)
                .await;
        if let Some(to) = asked {
            let moved = raft
                .wait(Some(HANDOVER_WAIT))
                .metrics(|m| m.current_leader != Some(self.node_id), "handed over")
                .await;
            if moved.is_ok() {
                tracing::info!(node_id = self.node_id, to, "metadata leadership handed over");
            }
        }
    }
}
