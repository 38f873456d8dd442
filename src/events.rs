//! Cluster events as this node sees them: a partition or the metadata group
//! got a new leader (or lost it), a node went down or came back. One watcher
//! per broker diffs the leaders it knows (its own replicas' Raft state first,
//! then the metadata group's reports, as Kafka `Metadata` answers) and the
//! liveness detector against what it last saw, and broadcasts the changes to
//! `GET /v1/cluster/events` and the election counter of `/metrics`; a group
//! leaderless for longer than a bound is reported once (`stuck`), and
//! counted for `/metrics` and `/v1/ready`.
//!
//! It polls rather than subscribing to every Raft group: a pass costs about a
//! microsecond per partition, so it runs every `FAST` while someone listens
//! or something just changed, and every `SLOW` otherwise, keeping idle CPU
//! flat with thousands of partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::metadata::handle::MetadataHandle;
use crate::partition::manager::PartitionManager;
use crate::raft::types::NodeId;

const FAST: Duration = Duration::from_millis(50);
const SLOW: Duration = Duration::from_secs(1);
/// After a change, passes stay fast this long (elections come in bursts).
const SETTLE: Duration = Duration::from_secs(5);
/// Events a slow listener may fall behind before it misses some.
const BACKLOG: usize = 4096;

/// The group name of the metadata group in events.
pub const METADATA: &str = "metadata";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// `group` is `topic/partition` or `metadata`; `leader` is null while the
    /// group has no live leader.
    Leader { group: String, leader: Option<NodeId>, term: u64, at: String },
    /// A broker went down (`alive: false`) or came back.
    Node { node_id: NodeId, alive: bool, at: String },
    /// `group` has had no leader for longer than the bound (five node
    /// timeouts): it cannot elect one (a majority of its replicas is gone)
    /// until they return. Once per leaderless spell.
    Stuck { group: String, since: String, at: String },
}

impl Event {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Leader { .. } => "leader",
            Event::Node { .. } => "node",
            Event::Stuck { .. } => "stuck",
        }
    }
}

pub struct Events {
    tx: broadcast::Sender<Event>,
    elections: AtomicU64,
    stuck: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0, elections: AtomicU64::new(0), stuck: AtomicU64::new(0) }
    }
}

impl Events {
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// New leaders seen by this node since it started (metadata group and
    /// partitions).
    pub fn elections(&self) -> u64 {
        self.elections.load(Ordering::Relaxed)
    }

    /// Groups leaderless for longer than the bound, as of the last pass.
    pub fn stuck(&self) -> u64 {
        self.stuck.load(Ordering::Relaxed)
    }

    fn emit(&self, event: Event) {
        if matches!(event, Event::Leader { leader: Some(_), .. }) {
            self.elections.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(?event, "cluster event");
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(event);
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// What the last pass saw.
#[derive(Default)]
struct Seen {
    leaders: BTreeMap<String, (Option<NodeId>, u64)>,
    alive: BTreeMap<NodeId, bool>,
    /// Since when each leaderless group has had no leader (wall clock for
    /// the event, monotonic for the bound), and whether it was reported.
    leaderless: BTreeMap<String, (Instant, String, bool)>,
}

/// Runs until `shutdown`; a group leaderless for longer than `stuck_after`
/// is reported.
pub async fn run(
    events: Arc<Events>,
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    stuck_after: Duration,
    shutdown: CancellationToken,
) {
    let mut seen = Seen::default();
    let mut first = true;
    let mut changed_at = Instant::now();
    loop {
        let listening = events.tx.receiver_count() > 0;
        let pause = if listening || changed_at.elapsed() < SETTLE { FAST } else { SLOW };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let mut found = pass(&metadata, &partitions, &mut seen);
        found.extend(stuck(&mut seen, stuck_after));
        let stuck_now = seen.leaderless.values().filter(|(_, _, reported)| *reported).count();
        events.stuck.store(stuck_now as u64, Ordering::Relaxed);
        // The first pass records the state this node started in; only
        // changes after it are events.
        if first {
            first = false;
            continue;
        }
        if !found.is_empty() {
            changed_at = Instant::now();
        }
        for e in found {
            events.emit(e);
        }
    }
}

/// Notes when groups lost their leader and reports, once, those leaderless
/// for longer than `bound`.
fn stuck(seen: &mut Seen, bound: Duration) -> Vec<Event> {
    let leaderless: BTreeSet<&String> =
        seen.leaders.iter().filter(|(_, (leader, _))| leader.is_none()).map(|(g, _)| g).collect();
    seen.leaderless.retain(|g, _| leaderless.contains(g));
    let mut out = Vec::new();
    for group in leaderless {
        let (since, since_text, reported) =
            seen.leaderless.entry(group.clone()).or_insert_with(|| (Instant::now(), now(), false));
        if !*reported && since.elapsed() > bound {
            *reported = true;
            tracing::warn!(group = %group, since = %since_text, "no leader can be elected");
            out.push(Event::Stuck { group: group.clone(), since: since_text.clone(), at: now() });
        }
    }
    out
}

/// Diffs the current leaders and liveness against `seen`, updating it.
fn pass(metadata: &MetadataHandle, partitions: &PartitionManager, seen: &mut Seen) -> Vec<Event> {
    let state = metadata.state();
    let mut out = Vec::new();
    let at = now();
    for &id in state.brokers.keys() {
        let alive = metadata.is_alive(id);
        if seen.alive.insert(id, alive) != Some(alive) {
            out.push(Event::Node { node_id: id, alive, at: at.clone() });
        }
    }
    let (controller, term) = metadata.controller();
    let controller = controller.filter(|n| metadata.is_alive(*n));
    let mut current: BTreeMap<String, (Option<NodeId>, u64)> = BTreeMap::new();
    current.insert(METADATA.to_string(), (controller, term));
    for t in state.topics.values() {
        for p in 0..t.partitions.len() as i32 {
            let leader = partitions.leader_of(&state, &t.name, p);
            let entry = match leader {
                Some((l, term)) => (Some(l), term),
                None => (None, t.partitions[p as usize].leader_term),
            };
            current.insert(format!("{}/{}", t.name, p), entry);
        }
    }
    for (group, &(leader, term)) in &current {
        let before = seen.leaders.get(group);
        // A leader is news when it differs from the last one seen; losing a
        // leader is news once (not on every pass with the term unchanged).
        let news = match before {
            None => true,
            Some(&(l, t)) => l != leader || (leader.is_some() && t != term),
        };
        if news {
            out.push(Event::Leader { group: group.clone(), leader, term, at: at.clone() });
        }
    }
    seen.leaders = current;
    out
}
