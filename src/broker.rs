//! Builds one broker from its `Config`: opens RocksDB, binds the Kafka, HTTP
//! and Raft listeners, starts the metadata group and the partition manager,
//! creates start-up topics, and owns the ordered graceful shutdown: stop
//! accepting → drain connections under a deadline → shut every Raft group
//! down → flush RocksDB (STYLE.md §12).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::events::{self, Events};
use crate::group::coordinator::GroupCoordinator;
use crate::group::membership::Limits;
use crate::http;
use crate::kafka;
use crate::metadata::command::MetaRaft;
use crate::metadata::command::{BrokerInfo, MetadataCommand};
use crate::metadata::forward::MetadataRpc;
use crate::metadata::handle::{MetadataHandle, NewTopic};
use crate::metadata::producer_ids::ProducerIdPool;
use crate::metadata::store::MetadataStore;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::partition::failover::Failover;
use crate::partition::manager::PartitionManager;
use crate::partition::routing::Routing;
use crate::partition::{leadership, retention};
use crate::raft::applied::Machine;
use crate::raft::liveness::{self, Liveness};
use crate::raft::log_store::LogStore;
use crate::raft::network::{NetworkFactory, Transport};
use crate::raft::registry::Registry;
use crate::raft::rpc::RaftRpc;
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::raft::{partition_raft_config, raft_config, server};
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error("raft: {0}")]
    Raft(String),
    #[error("no metadata leader within {0:?}")]
    NoLeader(Duration),
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
    shutdown: CancellationToken,
    tasks: TaskTracker,
    raft_stop: CancellationToken,
    raft_tasks: TaskTracker,
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, BrokerError> {
    TcpListener::bind(addr).await.map_err(|source| BrokerError::Bind { what, addr: addr.to_string(), source })
}

impl Broker {
    pub async fn start(config: Config) -> Result<Broker, BrokerError> {
        let config = Arc::new(config);
        let node_id = config.node_id;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| BrokerError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let storage = Arc::new(Storage::open(&config.data_dir.join("db"), config.fsync)?);

        let kafka_listener = bind("kafka", &config.kafka_addr).await?;
        let http_listener = bind("http", &config.http_addr).await?;
        let raft_listener = bind("raft", &config.raft_addr).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(|e| BrokerError::Raft(e.to_string()));
        let (kafka_addr, http_addr, raft_addr) =
            (local(&kafka_listener)?, local(&http_listener)?, local(&raft_listener)?);

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let transport = Transport::new(config.raft_max_frame_bytes);
        let liveness = Arc::new(Liveness::new(node_id, Duration::from_millis(config.node_timeout_ms)));
        let registry = Arc::new(Registry::new(liveness.clone()));
        let rcfg = raft_config(&config, "raftka").map_err(|e| BrokerError::Raft(e.to_string()))?;
        let part_cfg =
            partition_raft_config(&config, "raftka").map_err(|e| BrokerError::Raft(e.to_string()))?;

        let (store, state_rx) = MetadataStore::open(storage.clone())?;
        let raft = MetaRaft::new(
            node_id,
            rcfg.clone(),
            NetworkFactory::new(transport.clone(), registry.ballots().clone(), METADATA_GROUP),
            LogStore::new(storage.clone(), METADATA_GROUP),
            Machine(store),
        )
        .await
        .map_err(|e| BrokerError::Raft(e.to_string()))?;
        let handler = MetadataRpc(RaftRpc { group: METADATA_GROUP, raft: raft.clone() });
        registry.register(METADATA_GROUP, Arc::new(handler));
        // The Raft server outlives the other tasks on shutdown: handing
        // leaderships over needs this node's votes.
        let raft_stop = CancellationToken::new();
        let raft_tasks = TaskTracker::new();
        let metrics = Arc::new(Metrics::default());
        let raft_limits = server::Limits {
            max_frame: config.raft_max_frame_bytes,
            max_connections: config.raft_max_connections,
            queued_max_bytes: config.raft_queued_max_bytes,
            frame_timeout: Duration::from_millis(config.frame_timeout_ms),
        };
        raft_tasks.spawn(server::serve(
            raft_listener,
            registry.clone(),
            raft_limits,
            metrics.raft_edge.clone(),
            raft_stop.clone(),
        ));

        let write_timeout = Duration::from_millis(config.raft_rpc_timeout_ms * 5);
        let voters = config.voter_list();
        let seeds = voters.iter().filter(|v| v.id != node_id).map(|v| v.raft_addr.clone()).collect();
        let metadata = MetadataHandle::new(
            node_id,
            raft.clone(),
            state_rx,
            transport.clone(),
            seeds,
            write_timeout,
            liveness.clone(),
        )
        .with_max_partitions(config.max_partitions);
        let advertised = config.advertised_kafka_addr.clone().unwrap_or_else(|| kafka_addr.to_string());
        let info = BrokerInfo {
            id: node_id,
            kafka_addr: advertised,
            http_addr: http_addr.to_string(),
            raft_addr: raft_addr.to_string(),
        };
        if voters.iter().any(|v| v.id == node_id) {
            form_metadata_group(&config, &raft, raft_addr).await?;
            register(&metadata, info).await;
        } else {
            join(&metadata, info).await?;
        }

        let ballots = registry.ballots().clone();
        let partitions =
            Arc::new(PartitionManager::new(node_id, storage.clone(), transport.clone(), registry, part_cfg));
        partitions.reconcile(&metadata.state()).await;
        tasks.spawn(follow_metadata(metadata.clone(), partitions.clone(), shutdown.clone()));
        let peers = {
            let metadata = metadata.clone();
            move || metadata.state().brokers.values().map(|b| (b.id, b.raft_addr.clone())).collect()
        };
        tasks.spawn(liveness::run(liveness.clone(), transport.clone(), peers, shutdown.clone()));
        tasks.spawn(leadership::run(
            node_id,
            metadata.clone(),
            partitions.clone(),
            transport.clone(),
            Failover::new(node_id, liveness.clone(), ballots),
            liveness,
            shutdown.clone(),
        ));
        create_startup_topics(&config, &metadata).await;

        let routing = Routing::new(metadata.clone(), partitions.clone());
        let groups = Arc::new(GroupCoordinator::new(
            node_id,
            routing.clone(),
            Limits {
                min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
                max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
                initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            },
            write_timeout,
            config.offsets_compaction_min_records,
        ));
        tasks.spawn(groups.clone().run(shutdown.clone()));
        let node = Arc::new(Node {
            config: config.clone(),
            node_id,
            metadata: metadata.clone(),
            partitions: partitions.clone(),
            routing,
            producer_ids: ProducerIdPool::new(metadata.clone()),
            groups,
            metrics: metrics.clone(),
        });
        tasks.spawn(kafka::listener::run(kafka_listener, node.clone(), shutdown.clone(), tasks.clone()));
        let events = Arc::new(Events::default());
        tasks.spawn(events::run(events.clone(), metadata.clone(), partitions.clone(), shutdown.clone()));
        let app = http::router(Arc::new(http::Api {
            node: node.clone(),
            peers: Default::default(),
            events,
            storage: storage.clone(),
            shutdown: shutdown.clone(),
            next_partition: Default::default(),
        }));
        let http_limits = http::server::Limits {
            max_connections: config.http_max_connections,
            max_per_ip: config.max_connections_per_ip,
            header_timeout: Duration::from_millis(config.frame_timeout_ms),
        };
        tasks.spawn(http::server::serve(
            http_listener,
            app,
            http_limits,
            metrics.http_edge.clone(),
            shutdown.clone(),
            tasks.clone(),
        ));
        tasks.spawn(retention::run(config.clone(), metadata.clone(), partitions.clone(), shutdown.clone()));

        tracing::info!(node_id, kafka = %kafka_addr, http = %http_addr, raft = %raft_addr, "ready");
        Ok(Broker {
            node_id,
            kafka_addr,
            http_addr,
            raft_addr,
            metadata,
            partitions,
            node,
            config,
            storage,
            transport,
            shutdown,
            tasks,
            raft_stop,
            raft_tasks,
        })
    }

    /// Graceful shutdown; returns once RocksDB is flushed.
    pub async fn shutdown(self) {
        tracing::info!(node_id = self.node_id, "shutting down");
        self.shutdown.cancel();
        self.tasks.close();
        let deadline = Duration::from_millis(self.config.shutdown_timeout_ms);
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "tasks still running at the shutdown deadline");
        }
        self.hand_over_leaderships().await;
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
        leadership::hand_over(self.node_id, &state, &self.partitions, &self.transport, HANDOVER_WAIT).await;
        let raft = self.metadata.raft();
        if self.metadata.controller().0 != Some(self.node_id) {
            return;
        }
        let voters: Vec<NodeId> =
            raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        let Some(to) = leadership::caught_up_replica(raft, self.node_id, &voters) else { return };
        if let Some(broker) = state.brokers.get(&to) {
            leadership::ask_to_campaign(&self.transport, &broker.raft_addr, METADATA_GROUP).await;
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

/// Joins an existing cluster as a broker that is not an initial voter.
async fn join(metadata: &MetadataHandle, info: BrokerInfo) -> Result<(), BrokerError> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        match metadata.join(info.clone()).await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for the cluster to accept this broker");
            }
            Err(_) => return Err(BrokerError::NoLeader(LEADER_WAIT)),
        }
    }
    metadata
        .raft()
        .wait(Some(LEADER_WAIT))
        .metrics(|m| m.current_leader.is_some(), "metadata replicated to this learner")
        .await
        .map_err(|_| BrokerError::NoLeader(LEADER_WAIT))?;
    tracing::info!(node_id = info.id, "joined the cluster as a broker");
    Ok(())
}

/// Initialises the metadata group on the very first start (the lowest-id
/// voter does it, once) and waits until it has a leader.
async fn form_metadata_group(
    config: &Config,
    raft: &MetaRaft,
    raft_addr: SocketAddr,
) -> Result<(), BrokerError> {
    let voters = config.voter_list();
    let initialized = raft.is_initialized().await.map_err(|e| BrokerError::Raft(e.to_string()))?;
    let lowest = voters.iter().map(|v| v.id).min();
    if !initialized && lowest == Some(config.node_id) {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|v| {
                let addr = if v.id == config.node_id && config.voters.is_empty() {
                    raft_addr.to_string()
                } else {
                    v.raft_addr.clone()
                };
                (v.id, BasicNode::new(addr))
            })
            .collect();
        tracing::info!(voters = ?members.keys().collect::<Vec<_>>(), "initialising the metadata group");
        raft.initialize(members).await.map_err(|e| BrokerError::Raft(e.to_string()))?;
    }
    raft.wait(Some(LEADER_WAIT))
        .metrics(|m| m.current_leader.is_some(), "metadata leader elected")
        .await
        .map_err(|_| BrokerError::NoLeader(LEADER_WAIT))?;
    Ok(())
}

/// Records the cluster id (first start) and this broker's listeners.
async fn register(metadata: &MetadataHandle, info: BrokerInfo) {
    let state = metadata.state();
    if state.cluster_id.is_none() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Err(e) = metadata.propose(MetadataCommand::Init { cluster_id: id }).await {
            tracing::warn!(error = %e, "cannot set the cluster id");
        }
    }
    if state.brokers.get(&info.id) != Some(&info) {
        if let Err(e) = metadata.propose(MetadataCommand::RegisterBroker(info)).await {
            tracing::warn!(error = %e, "cannot register this broker");
        }
    }
}

async fn follow_metadata(
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    shutdown: CancellationToken,
) {
    let mut rx = metadata.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let state = rx.borrow_and_update().clone();
        partitions.reconcile(&state).await;
    }
}

/// Creates the `create_topics` of the config that do not exist yet, capping
/// the replication factor to the live brokers.
async fn create_startup_topics(config: &Config, metadata: &MetadataHandle) {
    for spec in config.topic_specs() {
        if metadata.state().topic(&spec.name).is_some() {
            continue;
        }
        let requested = i32::from(spec.replication_factor);
        let rf = metadata.capped_replication(requested);
        if rf < requested {
            tracing::warn!(topic = %spec.name, requested, rf, "replication factor capped to live brokers");
        }
        let mut configs = BTreeMap::new();
        if let Some(policy) = &spec.cleanup_policy {
            configs.insert("cleanup.policy".to_string(), policy.clone());
        }
        let req = NewTopic {
            name: spec.name.clone(),
            partitions: spec.partitions,
            replication_factor: rf,
            configs,
        };
        match metadata.create_topic(&req, false).await {
            Ok(_) => {
                tracing::info!(topic = %spec.name, partitions = spec.partitions, replication_factor = rf, "created start-up topic")
            }
            Err(e) => {
                tracing::error!(topic = %spec.name, error = %e, "cannot create start-up topic")
            }
        }
    }
}
