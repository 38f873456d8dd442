//! The groups this broker coordinates. A group belongs to one partition of
//! `__consumer_offsets` (`group::partition_for`); while this broker leads that
//! partition it holds the partition's groups in memory (a `Shard`), loaded by
//! replaying the partition's log once per leadership term, after the Raft
//! leader has applied everything committed before it. Changes that must
//! outlive this broker — committed offsets, a group's settled membership,
//! deletions — are appended to the partition through its Raft group before
//! they are acknowledged. A shard whose leadership ended is dropped, which
//! fails its waiting joins and syncs with NOT_COORDINATOR. While a partition
//! is being replayed, the request that started the replay waits for it and
//! every other request for that partition's groups gets
//! COORDINATOR_LOAD_IN_PROGRESS, as from Kafka, so clients back off and retry.
//!
//! Requests are served in `requests`; the replay lives in `load`.
//!
//! Compaction: the topic is `cleanup.policy=compact`, compacted by the
//! partition layer like any compacted topic (`partition::retention`), which
//! keeps the last record of every key and moves the log start past what it
//! dropped; replaying the compacted log gives the same groups as replaying
//! all of it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::group::membership::{Group, GroupError, Limits};
use crate::group::records::{self, Entry, GroupValue};
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::partition::handle::{PartitionError, PartitionHandle};
use crate::partition::routing::{Lookup, Routing};
use crate::raft::types::NodeId;

mod load;
mod requests;

pub use requests::{DescribedMember, Description, Listing, OffsetCommit};

/// How often sessions and rebalance deadlines are checked.
const TICK: Duration = Duration::from_millis(100);
/// Bytes read per step while replaying a partition.
const LOAD_CHUNK: usize = 4 * 1024 * 1024;

/// One `__consumer_offsets` partition this broker leads, in one term.
pub struct Shard {
    pub(super) partition: i32,
    pub(super) term: u64,
    pub(super) handle: PartitionHandle,
    // A tokio mutex: joins hand their channels over under it; never held
    // across a Raft write.
    pub(super) groups: Mutex<HashMap<String, Group>>,
}

/// A partition's groups: being replayed (in that term), or ready.
enum Slot {
    Loading(u64),
    Ready(Arc<Shard>),
}

pub struct GroupCoordinator {
    pub(super) node_id: NodeId,
    pub(super) routing: Routing,
    pub(super) limits: Limits,
    pub(super) write_timeout: Duration,
    // A std mutex: lookups and inserts only, never held across an await (a
    // dropped loader must be able to clear its marker from `Drop`).
    shards: std::sync::Mutex<HashMap<i32, Slot>>,
}

/// Clears a partition's `Loading` marker unless the load finished, so a
/// request dropped mid-load (its client went away) does not leave the
/// partition loading for ever.
struct LoadGuard<'a> {
    shards: &'a std::sync::Mutex<HashMap<i32, Slot>>,
    partition: i32,
    done: bool,
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(shards.get(&self.partition), Some(Slot::Loading(_))) {
            shards.remove(&self.partition);
        }
    }
}

impl GroupCoordinator {
    pub fn new(node_id: NodeId, routing: Routing, limits: Limits, write_timeout: Duration) -> Self {
        Self { node_id, routing, limits, write_timeout, shards: std::sync::Mutex::new(HashMap::new()) }
    }

    /// The ready shards, for passes over all of them.
    pub(super) fn ready_shards(&self) -> Vec<Arc<Shard>> {
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        shards
            .values()
            .filter_map(|s| match s {
                Slot::Ready(s) => Some(s.clone()),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    pub(super) fn is_current(&self, shard: &Shard) -> bool {
        shard.handle.leader() == (Some(self.node_id), shard.term)
    }

    /// The shard holding `group`, loading it if this broker just became
    /// the leader of its partition.
    pub(super) async fn shard(&self, group: &str) -> Result<Arc<Shard>, GroupError> {
        if group.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let count = self.routing.metadata.state().topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len());
        if count == 0 {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let partition = partition_for(group, count);
        let handle = match self.routing.leader_replica(OFFSETS_TOPIC, partition) {
            Lookup::Leader(h) => h,
            Lookup::NotLeader | Lookup::UnknownTopicOrPartition => return Err(GroupError::NotCoordinator),
        };
        let term = handle.leader().1;
        {
            let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
            match shards.get(&partition) {
                Some(Slot::Ready(s)) if s.term == term => return Ok(s.clone()),
                Some(Slot::Loading(t)) if *t == term => return Err(GroupError::LoadInProgress),
                _ => {
                    shards.insert(partition, Slot::Loading(term));
                }
            }
        }
        let mut guard = LoadGuard { shards: &self.shards, partition, done: false };
        let started = Instant::now();
        let groups = load::load(&handle).await?;
        tracing::info!(
            partition,
            term,
            groups = groups.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "loaded consumer groups"
        );
        let shard = Arc::new(Shard { partition, term, handle, groups: Mutex::new(groups) });
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        shards.insert(partition, Slot::Ready(shard.clone()));
        guard.done = true;
        Ok(shard)
    }

    /// Appends `entries`, then applies `apply` to the shard's groups.
    pub(super) async fn write_then(
        &self,
        shard: &Shard,
        entries: &[Entry],
        apply: impl FnOnce(&mut HashMap<String, Group>),
    ) -> Result<(), GroupError> {
        self.append(shard, entries).await?;
        apply(&mut *shard.groups.lock().await);
        Ok(())
    }

    /// Appends `entries` to the shard's partition, committed by a majority.
    async fn append(&self, shard: &Shard, entries: &[Entry]) -> Result<(), GroupError> {
        let batch = records::encode(entries).map_err(|e| {
            tracing::error!(error = %e, "cannot encode group records");
            GroupError::CoordinatorNotAvailable
        })?;
        shard.handle.append(batch, self.write_timeout).await.map(|_| ()).map_err(|e| {
            tracing::warn!(partition = shard.partition, error = %e, "group write failed");
            match e {
                PartitionError::NotLeader { .. } | PartitionError::ShuttingDown => GroupError::NotCoordinator,
                PartitionError::Timeout(_) | PartitionError::Rejected(_) | PartitionError::Read(_) => {
                    GroupError::CoordinatorNotAvailable
                }
            }
        })
    }

    pub(super) async fn persist_group(&self, shard: &Shard, group: &str, value: GroupValue) {
        let entry = Entry::Group { group: group.to_string(), value: Some(value) };
        if let Err(e) = self.write_then(shard, &[entry], |_| {}).await {
            tracing::warn!(group, error = %e, "group membership not persisted");
        }
    }

    /// Runs until `shutdown`: expires sessions, ends rebalances that waited
    /// long enough, and drops shards whose leadership ended.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Poisoning: the map stays consistent whatever panicked.
            self.shards.lock().unwrap_or_else(PoisonError::into_inner).retain(|partition, slot| match slot {
                Slot::Loading(_) => true,
                Slot::Ready(s) => {
                    let keep = self.is_current(s);
                    if !keep {
                        tracing::info!(
                            partition,
                            term = s.term,
                            "no longer coordinating this partition's groups"
                        );
                    }
                    keep
                }
            });
            let shards = self.ready_shards();
            for shard in shards {
                let emptied: Vec<(String, GroupValue)> = {
                    let mut groups = shard.groups.lock().await;
                    let now = Instant::now();
                    let emptied = groups
                        .values_mut()
                        .filter_map(|g| g.tick(&self.limits, now).then(|| (g.id.clone(), g.snapshot())))
                        .collect();
                    groups.retain(|_, g| !g.is_vacant());
                    emptied
                };
                for (group, value) in emptied {
                    self.persist_group(&shard, &group, value).await;
                }
            }
        }
    }
}
