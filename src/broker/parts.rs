//! The parts of a node, built in order by `Broker::start`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::events::{self, Events};
use crate::group::coordinator::GroupCoordinator;
use crate::group::membership::Limits;
use crate::http;
use crate::kafka;
use crate::metadata::command::BrokerInfo;
use crate::metadata::command::MetaRaft;
use crate::metadata::forward::MetadataRpc;
use crate::metadata::handle::MetadataHandle;
use crate::metadata::producer_ids::ProducerIdPool;
use crate::metadata::store::MetadataStore;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::partition::leadership;
use crate::partition::manager::PartitionManager;
use crate::partition::routing::Routing;
use crate::raft::applied::Machine;
use crate::raft::leadership::Elections;
use crate::raft::liveness::{self, Liveness};
use crate::raft::log_store::LogStore;
use crate::raft::network::{NetworkFactory, Transport};
use crate::raft::registry::Registry;
use crate::raft::rpc::RaftRpc;
use crate::raft::types::METADATA_GROUP;
use crate::raft::{partition_raft_config, raft_config, Timing};
use crate::storage::Storage;

use super::cluster::{follow_metadata, form_metadata_group, join, register};
use super::BrokerError;

/// A group leaderless for this many node timeouts cannot elect (a majority
/// of its replicas is gone): the events stream, `/metrics` and `/v1/ready`
/// report it (`events`).
const STUCK_AFTER_NODE_TIMEOUTS: u32 = 5;

pub(super) async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, BrokerError> {
    TcpListener::bind(addr).await.map_err(|source| BrokerError::Bind { what, addr: addr.to_string(), source })
}

/// The three listeners, bound before anything starts so a port clash fails
/// the start at once.
pub(super) struct Listeners {
    pub(super) kafka: TcpListener,
    pub(super) http: TcpListener,
    pub(super) raft: TcpListener,
    pub(super) addrs: Addrs,
}

/// Where the listeners are bound.
#[derive(Debug, Clone, Copy)]
pub(super) struct Addrs {
    pub(super) kafka: SocketAddr,
    pub(super) http: SocketAddr,
    pub(super) raft: SocketAddr,
}

impl Listeners {
    pub(super) async fn bind(config: &Config) -> Result<Self, BrokerError> {
        let kafka = bind("kafka", &config.kafka_addr).await?;
        let http = bind("http", &config.http_addr).await?;
        let raft = bind("raft", &config.raft_addr).await?;
        let local = |l: &TcpListener| l.local_addr().map_err(BrokerError::LocalAddr);
        let addrs = Addrs { kafka: local(&kafka)?, http: local(&http)?, raft: local(&raft)? };
        Ok(Self { kafka, http, raft, addrs })
    }
}

/// The broker settings Raft groups are configured from.
fn timing(config: &Config) -> Timing {
    Timing {
        heartbeat_interval: config.raft_heartbeat_interval,
        election_timeout: config.raft_election_timeout,
        node_timeout: config.node_timeout,
        snapshot_logs: config.raft_snapshot_logs,
    }
}

/// What every part of a node is built from.
pub(super) struct Core {
    pub(super) config: Arc<Config>,
    pub(super) storage: Arc<Storage>,
    pub(super) transport: Arc<Transport>,
    pub(super) liveness: Arc<Liveness>,
    pub(super) registry: Arc<Registry>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) shutdown: CancellationToken,
    pub(super) tasks: TaskTracker,
}

impl Core {
    /// The metadata group's Raft (not formed yet) and its handle.
    pub(super) async fn start_metadata(&self) -> Result<MetadataHandle, BrokerError> {
        let config = &self.config;
        let node_id = config.node_id;
        let (store, state_rx) = MetadataStore::open(self.storage.clone())?;
        let raft = MetaRaft::new(
            node_id,
            raft_config(&timing(config), "raftka")?,
            NetworkFactory::new(
                self.transport.clone(),
                self.registry.ballots().clone(),
                self.registry.liveness().clone(),
                METADATA_GROUP,
            ),
            LogStore::new(self.storage.clone(), METADATA_GROUP),
            Machine(store),
        )
        .await?;
        let handler = MetadataRpc {
            rpc: RaftRpc {
                group: METADATA_GROUP,
                raft: raft.clone(),
                liveness: self.registry.liveness().clone(),
                ballots: self.registry.ballots().clone(),
            },
            registry: self.registry.clone(),
        };
        self.registry.register(METADATA_GROUP, Arc::new(handler));
        let seeds =
            config.voter_list().into_iter().filter(|v| v.id != node_id).map(|v| v.raft_addr).collect();
        let handle = MetadataHandle::new(
            node_id,
            raft,
            state_rx,
            self.transport.clone(),
            seeds,
            config.raft_rpc_timeout * 5,
            self.liveness.clone(),
        );
        Ok(handle.with_max_partitions(config.max_partitions))
    }

    /// Forms the metadata group (or joins it) and registers this broker.
    pub(super) async fn enter_cluster(
        &self,
        metadata: &MetadataHandle,
        addrs: Addrs,
    ) -> Result<(), BrokerError> {
        let config = &self.config;
        let advertised = config.advertised_kafka_addr.clone().unwrap_or_else(|| addrs.kafka.to_string());
        let info = BrokerInfo {
            id: config.node_id,
            kafka_addr: advertised,
            http_addr: addrs.http.to_string(),
            raft_addr: addrs.raft.to_string(),
        };
        if config.voter_list().iter().any(|v| v.id == config.node_id) {
            form_metadata_group(config, metadata.raft(), addrs.raft).await?;
            register(metadata, info).await;
            Ok(())
        } else {
            join(metadata, info).await
        }
    }

    /// The partition manager, with the tasks that keep its replicas in line
    /// with the metadata: reconciling, liveness, leadership.
    pub(super) async fn start_partitions(
        &self,
        metadata: &MetadataHandle,
    ) -> Result<Arc<PartitionManager>, BrokerError> {
        let config = &self.config;
        let node_id = config.node_id;
        let partitions = Arc::new(PartitionManager::new(
            node_id,
            self.storage.clone(),
            self.transport.clone(),
            self.registry.clone(),
            partition_raft_config(&timing(config), "raftka")?,
            // A quarter of a frame: room for the request around the entries.
            config.raft_max_frame_bytes / 4,
        ));
        partitions.reconcile(&metadata.state()).await;
        let shutdown = &self.shutdown;
        self.tasks.spawn(follow_metadata(metadata.clone(), partitions.clone(), shutdown.clone()));
        let peers = {
            let metadata = metadata.clone();
            move || metadata.state().brokers.values().map(|b| (b.id, b.raft_addr.clone())).collect()
        };
        self.tasks.spawn(liveness::run(
            self.liveness.clone(),
            self.transport.clone(),
            peers,
            shutdown.clone(),
        ));
        self.tasks.spawn(leadership::run(
            node_id,
            metadata.clone(),
            partitions.clone(),
            self.transport.clone(),
            Elections::new(node_id, self.registry.clone()).with_return_delay(config.leader_return_delay),
            leadership::Availability {
                liveness: self.liveness.clone(),
                return_delay: config.leader_return_delay,
            },
            shutdown.clone(),
        ));
        Ok(partitions)
    }

    /// The node's services, with the group coordinator's task.
    pub(super) fn node(&self, metadata: &MetadataHandle, partitions: &Arc<PartitionManager>) -> Arc<Node> {
        let config = &self.config;
        let routing = Routing::new(metadata.clone(), partitions.clone());
        let limits = Limits {
            min_session_timeout: config.group_min_session_timeout,
            max_session_timeout: config.group_max_session_timeout,
            initial_rebalance_delay: config.group_initial_rebalance_delay,
        };
        let write_timeout = config.raft_rpc_timeout * 5;
        let groups = Arc::new(GroupCoordinator::new(config.node_id, routing.clone(), limits, write_timeout));
        self.tasks.spawn(groups.clone().run(self.shutdown.clone()));
        Arc::new(Node {
            config: config.clone(),
            node_id: config.node_id,
            metadata: metadata.clone(),
            partitions: partitions.clone(),
            routing,
            producer_ids: ProducerIdPool::new(metadata.clone()),
            groups,
            metrics: self.metrics.clone(),
        })
    }

    /// The Kafka listener, the events watcher and the admin HTTP server.
    pub(super) fn serve_clients(&self, node: &Arc<Node>, kafka: TcpListener, http: TcpListener) {
        let (config, shutdown, tasks) = (&self.config, &self.shutdown, &self.tasks);
        tasks.spawn(kafka::listener::run(kafka, node.clone(), shutdown.clone(), tasks.clone()));
        let events = Arc::new(Events::default());
        tasks.spawn(events::run(
            events.clone(),
            node.metadata.clone(),
            node.partitions.clone(),
            config.node_timeout * STUCK_AFTER_NODE_TIMEOUTS,
            shutdown.clone(),
        ));
        let api = Arc::new(http::Api {
            node: node.clone(),
            peers: Default::default(),
            events,
            storage: self.storage.clone(),
            shutdown: shutdown.clone(),
            next_partition: Default::default(),
        });
        tasks.spawn(http::hints::run(api.clone(), shutdown.clone()));
        let app = http::router(api);
        let limits = http::server::Limits {
            max_connections: config.http_max_connections,
            max_per_ip: config.max_connections_per_ip,
            header_timeout: config.frame_timeout,
        };
        let edge = self.metrics.http_edge.clone();
        tasks.spawn(http::server::serve(http, app, limits, edge, shutdown.clone(), tasks.clone()));
    }
}
