//! Runs this broker's partition replicas: one openraft group per partition
//! whose replica set includes this node, started and stopped to follow the
//! metadata state. A deleted topic's groups are shut down and their data
//! removed by range from every column family.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openraft::BasicNode;

use crate::metadata::state::{MetadataState, PartitionInfo};
use crate::partition::command::PartRaft;
use crate::partition::handle::PartitionHandle;
use crate::partition::hints::LeaderHints;
use crate::partition::store::PartitionStore;
use crate::raft::applied::Machine;
use crate::raft::log_store::LogStore;
use crate::raft::network::{NetworkFactory, Transport};
use crate::raft::registry::Registry;
use crate::raft::rpc::RaftRpc;
use crate::raft::types::NodeId;
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the partition's raft stopped: {0}")]
    RaftStopped(#[from] openraft::error::Fatal<NodeId>),
}

type Key = (Arc<str>, i32);

pub struct PartitionManager {
    node_id: NodeId,
    storage: Arc<Storage>,
    transport: Arc<Transport>,
    registry: Arc<Registry>,
    raft_config: Arc<openraft::Config>,
    /// The most entry bytes one AppendEntries carries (`LogStore::with_append_limit`).
    append_limit: usize,
    // A std lock: read on every produce and fetch, written on topic changes;
    // never held across an await.
    partitions: RwLock<HashMap<Key, PartitionHandle>>,
    hints: LeaderHints,
}

impl PartitionManager {
    pub fn new(
        node_id: NodeId,
        storage: Arc<Storage>,
        transport: Arc<Transport>,
        registry: Arc<Registry>,
        raft_config: Arc<openraft::Config>,
        append_limit: usize,
    ) -> Self {
        Self {
            node_id,
            storage,
            transport,
            registry,
            raft_config,
            append_limit,
            partitions: RwLock::new(HashMap::new()),
            hints: LeaderHints::default(),
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<PartitionHandle> {
        let key: Key = (Arc::from(topic), partition);
        self.partitions.read().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
    }

    /// Leader and term of a partition, as far as this broker knows: from its
    /// own replica when it hosts one (freshest), else as last reported to the
    /// metadata group.
    pub fn leader_of(&self, state: &MetadataState, topic: &str, partition: i32) -> Option<(NodeId, u64)> {
        let (best, hinted) = self.last_known(state, topic, partition)?;
        // A leader on a node known to be down is no leader: clients told so
        // keep asking (quickly) instead of waiting on a dead broker. But a
        // node that hears from no majority is the one cut off: its view of
        // who is down is what failed, and it names the last leaders it knew.
        (hinted || self.registry.liveness().is_alive(best.0) || self.cut_off(state)).then_some(best)
    }

    /// Whether a partition is between leaders and about to have one: its
    /// last leader known is on a node just `lost` (`Liveness::just_lost`),
    /// or none is known (this replica won the election that followed and
    /// lost it again to a later candidate, or voted in one whose winner has
    /// not written yet), and a majority of its replicas is up to elect the
    /// next.
    pub fn electing(&self, state: &MetadataState, topic: &str, partition: i32, lost: &[NodeId]) -> bool {
        match self.last_known(state, topic, partition) {
            Some((_, true)) => return false,
            Some(((last, _), false)) if !lost.contains(&last) => return false,
            Some(_) | None => {}
        }
        if self.cut_off(state) {
            return false;
        }
        let Some(info) = state.topic(topic).and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
        else {
            return false;
        };
        let liveness = self.registry.liveness();
        let up = info.replicas.iter().filter(|&&r| liveness.is_alive(r) && !lost.contains(&r)).count();
        up * 2 > info.replicas.len()
    }

    /// The newest leader this broker knows of, alive or not, and whether
    /// another node reported it (`partition::hints`) lately.
    fn last_known(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: i32,
    ) -> Option<((NodeId, u64), bool)> {
        let info = state.topic(topic).and_then(|t| t.partitions.get(usize::try_from(partition).ok()?));
        // A replica of a deleted topic of the same name, not yet stopped, is
        // no replica of this one.
        let current = |h: &PartitionHandle| info.is_some_and(|info| info.group == h.group);
        let local = self.get(topic, partition).filter(current).and_then(|h| match h.leader() {
            (Some(leader), _) if leader == self.node_id && !self.serves_as_leader(&h) => None,
            (Some(leader), term) => Some((leader, term)),
            (None, _) => None,
        });
        let reported = info.and_then(|info| info.leader.map(|l| (l, info.leader_term)));
        // A replica that missed an election still names the old leader; the
        // report of a newer term wins. A leader cut off from its quorum does
        // not name itself.
        let reported = reported.filter(|(l, _)| *l != self.node_id || local.is_some());
        let newer = |a: Option<(NodeId, u64)>, b: Option<(NodeId, u64)>| match (a, b) {
            (Some(a), Some(b)) if b.1 > a.1 => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let best = newer(local, reported);
        // Another node's report of a newer term (`hints`): it answered lately.
        let hint = info.and_then(|info| self.hints.get(info.group));
        if let Some(hint) = hint.filter(|h| best.is_none_or(|b| h.1 > b.1)) {
            return Some((hint, true));
        }
        best.map(|b| (b, false))
    }

    /// Brokers that went down less than `window` ago, or are about to be
    /// found down (`Liveness::just_lost`).
    pub fn just_lost(&self, window: Duration) -> Vec<NodeId> {
        self.registry.liveness().just_lost(window)
    }

    /// Whether this node hears from fewer than half of the other brokers.
    pub fn cut_off(&self, state: &MetadataState) -> bool {
        let liveness = self.registry.liveness();
        let alive = state.brokers.keys().filter(|&&n| liveness.is_alive(n)).count();
        state.brokers.len() > 1 && alive * 2 <= state.brokers.len()
    }

    /// Whether this node should ask the others who leads what
    /// (`partition::hints`): it is cut off, or knows no leader for some
    /// partition.
    pub fn needs_hints(&self, state: &MetadataState) -> bool {
        self.cut_off(state) || self.leaderless(state) > 0
    }

    /// Leaders other nodes reported (`partition::hints`).
    pub fn hints(&self) -> &LeaderHints {
        &self.hints
    }

    /// Whether this node leads `h` and can reach a majority of its voters. A
    /// leader cut off from them keeps its Raft role until it hears of a newer
    /// term, but it could not commit anything, so it answers clients
    /// NOT_LEADER_OR_FOLLOWER at once and they look elsewhere.
    pub fn serves_as_leader(&self, h: &PartitionHandle) -> bool {
        let metrics = h.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(self.node_id) || m.state != openraft::ServerState::Leader {
            return false;
        }
        let membership = m.membership_config.membership();
        let (mut voters, mut alive) = (0, 0);
        for id in membership.voter_ids() {
            voters += 1;
            if self.registry.liveness().is_alive(id) {
                alive += 1;
            }
        }
        alive * 2 > voters
    }

    /// Partitions of the cluster with no known leader.
    pub fn leaderless(&self, state: &MetadataState) -> usize {
        state
            .topics
            .values()
            .flat_map(|t| (0..t.partitions.len() as i32).map(move |p| (t.name.as_str(), p)))
            .filter(|(t, p)| self.leader_of(state, t, *p).is_none())
            .count()
    }

    pub fn all(&self) -> Vec<PartitionHandle> {
        self.partitions.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Starts the groups this node should host and stops the rest.
    pub async fn reconcile(&self, state: &MetadataState) {
        let desired: HashMap<Key, &PartitionInfo> =
            state.replicas_on(self.node_id).map(|(t, p, info)| ((Arc::from(t), p), info)).collect();
        let stale: Vec<PartitionHandle> = self
            .all()
            .into_iter()
            .filter(|h| desired.get(&(h.topic.clone(), h.partition)).is_none_or(|info| info.group != h.group))
            .collect();
        for handle in stale {
            self.stop(&handle, true).await;
        }
        for ((topic, partition), info) in desired {
            if self.get(&topic, partition).is_some() {
                continue;
            }
            let addrs: BTreeMap<NodeId, BasicNode> = info
                .replicas
                .iter()
                .filter_map(|id| state.brokers.get(id).map(|b| (*id, BasicNode::new(b.raft_addr.clone()))))
                .collect();
            match self.start(topic.clone(), partition, info, addrs).await {
                Ok(handle) => {
                    self.partitions
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert((topic, partition), handle);
                }
                Err(e) => {
                    tracing::error!(%topic, partition, group = info.group, error = %e, "cannot start partition")
                }
            }
        }
    }

    async fn start(
        &self,
        topic: Arc<str>,
        partition: i32,
        info: &PartitionInfo,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> Result<PartitionHandle, StartError> {
        let group = info.group;
        let (store, log) = PartitionStore::open(self.storage.clone(), group)?;
        let raft = PartRaft::new(
            self.node_id,
            self.raft_config.clone(),
            NetworkFactory::new(
                self.transport.clone(),
                self.registry.ballots().clone(),
                self.registry.liveness().clone(),
                group,
            ),
            LogStore::retaining(self.storage.clone(), group, log.retained().clone())
                .with_append_limit(self.append_limit),
            Machine(store),
        )
        .await?;
        // Asked before the group can hear from its peers: a new group's
        // replica is not initialised yet, a restarted one's is (`restored`).
        let initialized = raft.is_initialized().await?;
        self.registry.register(
            group,
            Arc::new(RaftRpc {
                group,
                raft: raft.clone(),
                liveness: self.registry.liveness().clone(),
                ballots: self.registry.ballots().clone(),
            }),
        );
        // The preferred replica forms the group; initialising twice with the
        // same members is harmless, and the others join when it contacts them.
        if !initialized && info.replicas.first() == Some(&self.node_id) {
            if let Err(e) = raft.initialize(members).await {
                tracing::warn!(%topic, partition, group, error = %e, "partition group initialisation");
            }
        }
        tracing::info!(%topic, partition, group, "partition replica started");
        Ok(PartitionHandle {
            topic,
            partition,
            group,
            raft,
            log,
            fence: Arc::default(),
            restored: initialized,
        })
    }

    async fn stop(&self, handle: &PartitionHandle, delete_data: bool) {
        self.partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(handle.topic.clone(), handle.partition));
        self.registry.remove(handle.group);
        if let Err(e) = handle.raft.shutdown().await {
            tracing::warn!(topic = %handle.topic, partition = handle.partition, error = %e, "raft shutdown");
        }
        if delete_data {
            match self.storage.drop_group(handle.group) {
                Ok(()) => {
                    tracing::info!(topic = %handle.topic, partition = handle.partition, group = handle.group, "partition data deleted")
                }
                Err(e) => {
                    tracing::error!(topic = %handle.topic, partition = handle.partition, error = %e, "cannot delete partition data")
                }
            }
        }
    }

    /// Stops every group, keeping its data (graceful shutdown).
    pub async fn shutdown(&self) {
        for handle in self.all() {
            self.stop(&handle, false).await;
        }
    }
}
