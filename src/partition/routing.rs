//! Where a partition stands from this broker's point of view: whether it
//! exists, whether this broker leads it (and so may append to it), and who
//! leads it otherwise. Built on the metadata handle and the partition
//! manager; the Kafka handlers, the HTTP API and the group coordinator all
//! route through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metadata::handle::MetadataHandle;
use crate::partition::handle::PartitionHandle;
use crate::partition::manager::PartitionManager;
use crate::raft::types::NodeId;

/// Where a partition stands for this broker.
pub enum Lookup {
    UnknownTopicOrPartition,
    /// Exists, but this broker is not (or not yet) its leader.
    NotLeader,
    Leader(PartitionHandle),
}

#[derive(Clone)]
pub struct Routing {
    pub metadata: MetadataHandle,
    pub partitions: Arc<PartitionManager>,
}

impl Routing {
    pub fn new(metadata: MetadataHandle, partitions: Arc<PartitionManager>) -> Self {
        Self { metadata, partitions }
    }

    /// The local replica of `topic`/`partition`, if this broker leads it.
    pub fn leader_replica(&self, topic: &str, partition: i32) -> Lookup {
        let state = self.metadata.state();
        let Some(t) = state.topic(topic) else {
            return Lookup::UnknownTopicOrPartition;
        };
        if partition < 0 || partition as usize >= t.partitions.len() {
            return Lookup::UnknownTopicOrPartition;
        }
        match self.partitions.get(topic, partition) {
            Some(h) if self.partitions.serves_as_leader(&h) => Lookup::Leader(h),
            _ => Lookup::NotLeader,
        }
    }

    /// Leader and epoch of a partition, as far as this broker knows.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<(NodeId, i32)> {
        let (leader, term) = self.partitions.leader_of(&self.metadata.state(), topic, partition)?;
        Some((leader, term as i32))
    }

    /// Waits while a partition of `topics` is between leaders and about to
    /// have one (`PartitionManager::electing`: its leader's node went down
    /// less than `window` ago, or its connection just closed), so an answer
    /// names the new leader rather than none — or, asked the instant a
    /// leader dies, the dead one. Never longer than `window`.
    pub async fn wait_for_elections(&self, topics: &[String], window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let lost = self.partitions.just_lost(window);
            if lost.is_empty() || Instant::now() >= deadline {
                return;
            }
            let state = self.metadata.state();
            let electing = topics.iter().any(|name| {
                state.topic(name).is_some_and(|t| {
                    (0..t.partitions.len() as i32).any(|p| self.partitions.electing(&state, name, p, &lost))
                })
            });
            if !electing {
                return;
            }
            // Elections are not metadata changes: look again on a short tick.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (up to `timeout`) until every partition of `topic` has a leader,
    /// so a client told a topic exists can use it at once.
    pub async fn wait_for_leaders(&self, topic: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut changes = self.metadata.subscribe();
        loop {
            let count = self.metadata.state().topic(topic).map_or(0, |t| t.partitions.len());
            if count > 0 && (0..count as i32).all(|p| self.leader_of(topic, p).is_some()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Leader elections are not metadata changes, so also re-check on
            // a short tick.
            let tick = (deadline - now).min(Duration::from_millis(10));
            let _ = tokio::time::timeout(tick, changes.changed()).await;
        }
    }
}
