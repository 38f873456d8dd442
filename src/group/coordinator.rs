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
//! Compaction: the topic is `cleanup.policy=compact`, and the coordinator
//! keeps it so itself. When a partition's log holds many more records than
//! live keys, it appends the current value of every key (a checkpoint) and
//! moves the log start to the checkpoint through Raft, so every replica drops
//! the superseded records and a new leader replays only the checkpoint and
//! what followed. Writes hold the shard's gate shared from their append until
//! their effect is in memory; a checkpoint holds it exclusively, so it never
//! misses a write that is in the log but not yet in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::group::membership::{
    Committed, Group, GroupError, JoinArgs, JoinResult, Limits, Member, SyncResult,
};
use crate::group::records::{self, Entry, GroupValue, OffsetValue};
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::partition::command::PartitionCommand;
use crate::partition::handle::{PartitionError, PartitionHandle};
use crate::partition::routing::{Lookup, Routing};
use crate::raft::types::NodeId;

/// How often sessions and rebalance deadlines are checked.
const TICK: Duration = Duration::from_millis(100);
/// Bytes read per step while replaying a partition.
const LOAD_CHUNK: usize = 4 * 1024 * 1024;
/// Keys per record batch of a checkpoint.
const CHECKPOINT_CHUNK: usize = 5_000;

/// One `__consumer_offsets` partition this broker leads, in one term.
pub struct Shard {
    partition: i32,
    term: u64,
    handle: PartitionHandle,
    // A tokio mutex: joins hand their channels over under it; never held
    // across a Raft write.
    groups: Mutex<HashMap<String, Group>>,
    /// Shared by each write from its append until its effect is in memory;
    /// exclusive for a checkpoint (see the module doc).
    gate: tokio::sync::RwLock<()>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct Description {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, subscription, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// An offset to commit for one partition.
pub type OffsetCommit = (String, i32, Committed);

/// A partition's groups: being replayed (in that term), or ready.
enum Slot {
    Loading(u64),
    Ready(Arc<Shard>),
}

pub struct GroupCoordinator {
    node_id: NodeId,
    routing: Routing,
    limits: Limits,
    write_timeout: Duration,
    /// A partition is compacted once its log holds at least this many records
    /// (and twice its live keys).
    compact_min_records: i64,
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
        if let Ok(mut shards) = self.shards.lock() {
            if matches!(shards.get(&self.partition), Some(Slot::Loading(_))) {
                shards.remove(&self.partition);
            }
        }
    }
}

impl GroupCoordinator {
    pub fn new(
        node_id: NodeId,
        routing: Routing,
        limits: Limits,
        write_timeout: Duration,
        compact_min_records: i64,
    ) -> Self {
        Self {
            node_id,
            routing,
            limits,
            write_timeout,
            compact_min_records,
            shards: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The ready shards, for passes over all of them.
    fn ready_shards(&self) -> Vec<Arc<Shard>> {
        let Ok(shards) = self.shards.lock() else { return Vec::new() };
        shards
            .values()
            .filter_map(|s| match s {
                Slot::Ready(s) => Some(s.clone()),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    fn is_current(&self, shard: &Shard) -> bool {
        shard.handle.leader() == (Some(self.node_id), shard.term)
    }

    /// The shard holding `group`, loading it if this broker just became
    /// the leader of its partition.
    async fn shard(&self, group: &str) -> Result<Arc<Shard>, GroupError> {
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
            let mut shards = self.shards.lock().map_err(|_| GroupError::CoordinatorNotAvailable)?;
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
        let groups = load(&handle).await?;
        tracing::info!(
            partition,
            term,
            groups = groups.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "loaded consumer groups"
        );
        let shard = Arc::new(Shard {
            partition,
            term,
            handle,
            groups: Mutex::new(groups),
            gate: tokio::sync::RwLock::new(()),
        });
        let mut shards = self.shards.lock().map_err(|_| GroupError::CoordinatorNotAvailable)?;
        shards.insert(partition, Slot::Ready(shard.clone()));
        guard.done = true;
        Ok(shard)
    }

    /// Appends `entries`, then applies `apply` to the shard's groups, both
    /// under the shard's gate (see the module doc).
    async fn write_then(
        &self,
        shard: &Shard,
        entries: &[Entry],
        apply: impl FnOnce(&mut HashMap<String, Group>),
    ) -> Result<(), GroupError> {
        let _gate = shard.gate.read().await;
        self.append(shard, entries).await?;
        apply(&mut *shard.groups.lock().await);
        Ok(())
    }

    /// Appends `entries` to the shard's partition, committed by a majority;
    /// returns the first record's offset.
    async fn append(&self, shard: &Shard, entries: &[Entry]) -> Result<i64, GroupError> {
        let batch = records::encode(entries).map_err(|e| {
            tracing::error!(error = %e, "cannot encode group records");
            GroupError::CoordinatorNotAvailable
        })?;
        shard.handle.append(batch, self.write_timeout).await.map(|a| a.base_offset).map_err(|e| {
            tracing::warn!(partition = shard.partition, error = %e, "group write failed");
            match e {
                PartitionError::NotLeader { .. } | PartitionError::ShuttingDown => GroupError::NotCoordinator,
                PartitionError::Timeout(_) | PartitionError::Rejected(_) | PartitionError::Read(_) => {
                    GroupError::CoordinatorNotAvailable
                }
            }
        })
    }

    async fn persist_group(&self, shard: &Shard, group: &str, value: GroupValue) {
        let entry = Entry::Group { group: group.to_string(), value: Some(value) };
        if let Err(e) = self.write_then(shard, &[entry], |_| {}).await {
            tracing::warn!(group, error = %e, "group membership not persisted");
        }
    }

    pub async fn join(&self, group: &str, args: JoinArgs) -> JoinResult {
        let shard = self.shard(group).await?;
        let client_id = args.client_id.clone();
        let reply = {
            let mut groups = shard.groups.lock().await;
            let g = groups.entry(group.to_string()).or_insert_with(|| Group::new(group));
            g.join(args, &self.limits, Instant::now(), || format!("{client_id}-{}", uuid::Uuid::new_v4()))
        };
        reply.answer().await
    }

    pub async fn sync(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let shard = self.shard(group).await?;
        let (reply, settled) = {
            let mut groups = shard.groups.lock().await;
            let g = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
            let (reply, stable) = g.sync(member_id, instance_id, generation, assignments, Instant::now());
            (reply, stable.then(|| GroupValue::from(g.snapshot())))
        };
        if let Some(value) = settled {
            self.persist_group(&shard, group, value).await;
        }
        reply.answer().await
    }

    pub async fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        let mut groups = shard.groups.lock().await;
        let g = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
        g.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// LeaveGroup for each (member id, instance id); one result each.
    pub async fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let shard = self.shard(group).await?;
        let (results, emptied) = {
            let mut groups = shard.groups.lock().await;
            let Some(g) = groups.get_mut(group) else {
                return Ok(members.iter().map(|_| Err(GroupError::UnknownMember)).collect());
            };
            let now = Instant::now();
            let mut emptied = false;
            let results = members
                .iter()
                .map(|(id, inst)| g.leave(id, inst.as_deref(), &self.limits, now).map(|e| emptied |= e))
                .collect();
            (results, emptied.then(|| GroupValue::from(g.snapshot())))
        };
        if let Some(value) = emptied {
            self.persist_group(&shard, group, value).await;
        }
        Ok(results)
    }

    /// OffsetCommit of offsets whose partitions exist.
    pub async fn commit(
        &self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        {
            let groups = shard.groups.lock().await;
            match groups.get(group) {
                Some(g) => g.check_commit(member_id, instance_id, generation)?,
                None if generation < 0 => {}
                None => return Err(GroupError::IllegalGeneration(generation)),
            }
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = offsets
            .iter()
            .map(|(topic, partition, c)| Entry::Offset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: Some(OffsetValue::from(c)),
            })
            .collect();
        self.write_then(&shard, &entries, |groups| {
            let g = groups.entry(group.to_string()).or_insert_with(|| Group::new(group));
            for (topic, partition, c) in offsets {
                g.offsets.insert((topic, partition), c);
            }
        })
        .await
    }

    /// Committed offsets of `group`: of the given partitions, or all.
    pub async fn offsets(
        &self,
        group: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, Option<Committed>)>, GroupError> {
        let shard = self.shard(group).await?;
        let groups = shard.groups.lock().await;
        let g = groups.get(group);
        Ok(match wanted {
            Some(list) => list
                .into_iter()
                .map(|(t, p)| {
                    let c = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                    (t, p, c)
                })
                .collect(),
            None => g
                .map(|g| g.offsets.iter().map(|((t, p), c)| (t.clone(), *p, Some(c.clone()))).collect())
                .unwrap_or_default(),
        })
    }

    pub async fn describe(&self, group: &str) -> Result<Description, GroupError> {
        let shard = self.shard(group).await?;
        let groups = shard.groups.lock().await;
        let Some(g) = groups.get(group).filter(|g| !g.is_vacant()) else {
            return Ok(Description {
                state: "Dead",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let member = |(m, sub): (&Member, Bytes)| {
            (
                m.info.id.clone(),
                m.info.instance_id.clone(),
                m.info.client_id.clone(),
                m.info.client_host.clone(),
                sub,
                m.info.assignment.clone(),
            )
        };
        Ok(Description {
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: g.protocol.clone().unwrap_or_default(),
            members: g.describe_members().into_iter().map(member).collect(),
        })
    }

    /// Every group this broker coordinates: (id, protocol type, state).
    pub async fn list(&self) -> Vec<(String, String, &'static str)> {
        let shards = self.ready_shards();
        let mut out = Vec::new();
        for shard in shards.iter().filter(|s| self.is_current(s)) {
            let groups = shard.groups.lock().await;
            out.extend(
                groups
                    .values()
                    .filter(|g| !g.is_vacant())
                    .map(|g| (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state.name())),
            );
        }
        out.sort();
        out
    }

    /// DeleteGroups for one group: only a group without members.
    pub async fn delete(&self, group: &str) -> Result<(), GroupError> {
        let shard = self.shard(group).await?;
        let entries = {
            let groups = shard.groups.lock().await;
            let g = groups.get(group).filter(|g| !g.is_vacant()).ok_or(GroupError::GroupIdNotFound)?;
            if !g.members.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut entries: Vec<Entry> = g
                .offsets
                .keys()
                .map(|(t, p)| Entry::Offset {
                    group: group.to_string(),
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                })
                .collect();
            entries.push(Entry::Group { group: group.to_string(), value: None });
            entries
        };
        self.write_then(&shard, &entries, |groups| {
            groups.remove(group);
        })
        .await
    }

    /// OffsetDelete: drops committed offsets of topics no member consumes.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<(String, i32, Result<(), GroupError>)>, GroupError> {
        let shard = self.shard(group).await?;
        let (results, entries) = {
            let groups = shard.groups.lock().await;
            let g = groups.get(group).filter(|g| !g.is_vacant()).ok_or(GroupError::GroupIdNotFound)?;
            let results: Vec<(String, i32, Result<(), GroupError>)> = partitions
                .into_iter()
                .map(|(t, p)| {
                    let r = if g.consumes(&t) { Err(GroupError::SubscribedToTopic) } else { Ok(()) };
                    (t, p, r)
                })
                .collect();
            let entries: Vec<Entry> = results
                .iter()
                .filter(|(t, p, r)| r.is_ok() && g.offsets.contains_key(&(t.clone(), *p)))
                .map(|(t, p, _)| Entry::Offset {
                    group: group.to_string(),
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                })
                .collect();
            (results, entries)
        };
        if !entries.is_empty() {
            self.write_then(&shard, &entries, |groups| {
                if let Some(g) = groups.get_mut(group) {
                    for e in &entries {
                        if let Entry::Offset { topic, partition, .. } = e {
                            g.offsets.remove(&(topic.clone(), *partition));
                        }
                    }
                }
            })
            .await?;
        }
        Ok(results)
    }

    /// Checkpoints and trims the shard's partition when its log holds many
    /// more records than live keys (see the module doc).
    async fn compact(&self, shard: &Shard) -> Result<(), GroupError> {
        let in_log = |s: &Shard| {
            let o = s.handle.log.offsets();
            o.high_watermark - o.log_start_offset
        };
        if in_log(shard) < self.compact_min_records {
            return Ok(());
        }
        let _gate = shard.gate.write().await;
        let entries = live_entries(&*shard.groups.lock().await);
        if in_log(shard) < 2 * entries.len() as i64 {
            return Ok(());
        }
        let mut cut = shard.handle.log.offsets().high_watermark;
        for (i, chunk) in entries.chunks(CHECKPOINT_CHUNK).enumerate() {
            let base = self.append(shard, chunk).await?;
            if i == 0 {
                cut = base;
            }
        }
        let mut removed_bytes = 0u64;
        shard
            .handle
            .log
            .visit_headers(|h, bytes| {
                if h.base_offset >= cut {
                    return false;
                }
                removed_bytes += bytes.len() as u64;
                true
            })
            .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        let trim = PartitionCommand::Trim { log_start_offset: cut, removed_bytes };
        shard.handle.propose(trim, self.write_timeout).await.map_err(|_| GroupError::NotCoordinator)?;
        tracing::info!(
            partition = shard.partition,
            keys = entries.len(),
            log_start_offset = cut,
            "compacted __consumer_offsets partition"
        );
        Ok(())
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
            if let Ok(mut map) = self.shards.lock() {
                map.retain(|partition, slot| match slot {
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
            }
            let shards = self.ready_shards();
            for shard in shards {
                let emptied: Vec<(String, GroupValue)> = {
                    let mut groups = shard.groups.lock().await;
                    let now = Instant::now();
                    let emptied = groups
                        .values_mut()
                        .filter_map(|g| {
                            g.tick(&self.limits, now).then(|| (g.id.clone(), GroupValue::from(g.snapshot())))
                        })
                        .collect();
                    groups.retain(|_, g| !g.is_vacant());
                    emptied
                };
                for (group, value) in emptied {
                    self.persist_group(&shard, &group, value).await;
                }
                if let Err(e) = self.compact(&shard).await {
                    tracing::warn!(partition = shard.partition, error = %e, "compaction failed");
                }
            }
        }
    }
}

/// The current value of every live key of `groups`, as a checkpoint writes them.
fn live_entries(groups: &HashMap<String, Group>) -> Vec<Entry> {
    let mut entries = Vec::new();
    for g in groups.values().filter(|g| !g.is_vacant()) {
        if g.generation > 0 || !g.members.is_empty() {
            entries.push(Entry::Group { group: g.id.clone(), value: Some(GroupValue::from(g.snapshot())) });
        }
        entries.extend(g.offsets.iter().map(|((t, p), c)| Entry::Offset {
            group: g.id.clone(),
            topic: t.clone(),
            partition: *p,
            value: Some(OffsetValue::from(c)),
        }));
    }
    entries
}

/// Replays a partition's log into its groups, once the leader has applied
/// every entry committed before its term.
async fn load(handle: &PartitionHandle) -> Result<HashMap<String, Group>, GroupError> {
    handle.raft.ensure_linearizable().await.map_err(|e| {
        tracing::info!(group = handle.group, error = %e, "cannot load groups: leadership not confirmed");
        GroupError::NotCoordinator
    })?;
    let now = Instant::now();
    let mut groups = HashMap::new();
    let mut offset = handle.log.offsets().log_start_offset;
    loop {
        let read = handle.log.read(offset, LOAD_CHUNK).map_err(|e| {
            tracing::warn!(group = handle.group, error = %e, "cannot read __consumer_offsets");
            GroupError::CoordinatorNotAvailable
        })?;
        if read.batches == 0 {
            break;
        }
        let next = records::replay(Bytes::from(read.bytes), &mut groups, now).map_err(|e| {
            tracing::warn!(group = handle.group, error = %e, "cannot replay __consumer_offsets");
            GroupError::CoordinatorNotAvailable
        })?;
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(groups)
}
